"""Studies: create, find, name the one meant, and their guidelines."""

from __future__ import annotations

import json
from typing import Any

from annotate.core import assignment
from annotate.core.scale import DEFAULT_TAGS, QUESTION, RATINGS, Guidelines, Rules
from annotate.core.schema import now_iso
from annotate.core.store.database import Database


def _study_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for key in ("scale", "tags", "rules", "guidelines"):
        row[key] = json.loads(row[key])
    return row


class Studies:
    """The `studies` table (and each new study's settings row)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_study(
        self,
        name: str,
        *,
        question: str = QUESTION,
        tags: list[str] | tuple[str, ...] = DEFAULT_TAGS,
        rules: Rules | dict | None = None,
        guidelines: Guidelines | None = None,
    ) -> dict[str, Any]:
        """Create a rating study; ValueError when the name exists or the settings are inconsistent."""
        if not name or not name.strip():
            raise ValueError("study name must not be empty")
        rules = rules if isinstance(rules, Rules) else Rules.from_dict(rules)
        bad = [t for t in tags if ";" in t or not t.strip()]
        if bad:
            raise ValueError(f"shortcoming tags must be non-empty and contain no ';': {bad}")
        for tag in rules.exclusive_tags:
            if tag not in tags:
                raise ValueError(f"rules.exclusive_tags: {tag!r} is not one of the study's tags")
        if self.get_study(name) is not None:
            raise ValueError(f"study {name!r} already exists")
        with self.db.transaction():
            self.insert(name, question, tags, rules, guidelines or Guidelines())
        return self.get_study(name)  # type: ignore[return-value]

    def insert(self, name: str, question: str = QUESTION, tags: list[str] | tuple[str, ...] = DEFAULT_TAGS,
               rules: Rules | None = None, guidelines: Guidelines | None = None) -> int:
        """The one INSERT of a study (inside the caller's transaction); returns its id."""
        g = guidelines or Guidelines()
        study_id = self.db["studies"].insert({
            "name": name, "question": question, "scale": json.dumps(list(RATINGS)), "tags": json.dumps(list(tags)),
            "rules": json.dumps((rules or Rules()).to_dict()), "guidelines": json.dumps(g.__dict__),
            "guidelines_version": g.version, "created_at": now_iso(),
        }).last_pk
        # Every new study, however created (import, pairwise, import-ratings, the demo), starts at k = 2.
        self.db.execute("INSERT INTO study_settings (study_id, overlap) VALUES (?, ?)",
                        (study_id, assignment.DEFAULT_OVERLAP))
        return study_id

    def get_study(self, name: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM studies WHERE name = ?", (name,))
        return _study_row(row) if row else None

    def study_by_id(self, study_id: int) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM studies WHERE id = ?", (study_id,))
        if row is None:
            raise KeyError(f"no study with id {study_id}")
        return _study_row(row)

    def studies(self) -> list[dict[str, Any]]:
        return [_study_row(r) for r in self.db.query("SELECT * FROM studies ORDER BY id")]

    def resolve_study(self, name: str | None) -> dict[str, Any]:
        """The named study, or the only one when no name is given; ValueError otherwise."""
        if name is not None:
            study = self.get_study(name)
            if study is None:
                known = ", ".join(s["name"] for s in self.studies()) or "none"
                raise ValueError(f"unknown study {name!r} (studies in this database: {known})")
            return study
        return self.get_study(self.target_study(None))  # type: ignore[return-value]

    def target_study(self, name: str | None, *, create: bool = False) -> str:
        """The one rule for "which study": the name given, else the only study; with `create`, an empty database
        gets "default". ValueError when several studies exist and none is named, or none exists."""
        if name is not None:
            return name
        names = [s["name"] for s in self.studies()]
        if len(names) == 1:
            return names[0]
        if not names:
            if create:
                return "default"
            raise ValueError("this database has no study yet; import an NLE file first")
        raise ValueError("this database has several studies; name one with --study: " + ", ".join(names))

    def set_guidelines(self, study: str, guidelines: Guidelines) -> None:
        """Replace a study's guidelines; ratings made afterwards record the new version."""
        s = self.resolve_study(study)
        with self.db.transaction() as conn:
            conn.execute("UPDATE studies SET guidelines = ?, guidelines_version = ? WHERE id = ?",
                         (json.dumps(guidelines.__dict__), guidelines.version, s["id"]))
