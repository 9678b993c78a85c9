"""The study kinds, one module each, registered in one table.

A kind (`annotate.core.kinds.base.StudyKind`) decides how a study of its kind is imported, how its answers come in
from elsewhere and how they go out. `KINDS` maps a kind's name to it; the analysis (`analysis.kinds.REPORTS`) and
the app (`annotate.app.kinds.PAGES`) have a table each under the same names. Adding a kind is one new module per
layer and one line in each table (docs/development.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from annotate.core.exporting import ratings_bytes
from annotate.core.kinds import pairwise, rating
from annotate.core.kinds.base import StudyKind

KINDS: dict[str, StudyKind] = {k.name: k for k in (
    rating.KIND,  # one explanation, the 4-point answer
    pairwise.KIND,  # two configurations' explanations of a sample, 1 / 2 / tie
)}
# A study that no other kind claims: every study before pairwise ones existed, and any study `import` creates
# without a kind's option.
DEFAULT_KIND = "rating"


def kind_named(name: str) -> StudyKind:
    if name not in KINDS:
        raise ValueError(f"no study kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]


def for_import(args: argparse.Namespace) -> StudyKind:
    """The kind `nle-annotate import`'s options ask for (the rating kind when none does)."""
    return next((k for k in KINDS.values() if k.chosen_by(args)), KINDS[DEFAULT_KIND])


def for_answers(args: argparse.Namespace, head: bytes) -> StudyKind:
    """The kind whose answers `nle-annotate import-ratings` reads, from its options and the file's first bytes."""
    return next((k for k in KINDS.values() if k.reads_answers(args, head)), KINDS[DEFAULT_KIND])


def name_options() -> dict[str, int]:
    """Every kind's options whose values are configuration names (option -> number of values)."""
    return {option: n for k in KINDS.values() for option, n in k.name_options.items()}


class StudyKinds:
    """Which kind each study of one Store is, and what depends on it: the export and the refusals of the rating
    study's imports. The Store forwards `study_kind`, `export_bytes` and `export` here."""

    def __init__(self, store: Any, kinds: Mapping[str, StudyKind] = KINDS) -> None:
        self.store, self.kinds = store, kinds

    def study_kind(self, study_id: int) -> StudyKind:
        """The kind of the study with this id: the kind whose `setup` claims it, else the rating kind."""
        for kind in self.kinds.values():
            if kind.name != DEFAULT_KIND and kind.setup(self.store, study_id) is not None:
                return kind
        return self.kinds[DEFAULT_KIND]

    def refuse(self, study: str, study_id: int, what: str) -> None:
        """ValueError when the study is of a kind that refuses the rating study's import `what` ("nle_file",
        "ratings", "rated_items"); nothing for a rating study."""
        kind = self.study_kind(study_id)
        why = kind.refusals.get(what)
        if why:
            raise ValueError(f"study {study!r} is a {kind.name} study; {why}")

    def _export_rows(self, study: str | None) -> tuple[pd.DataFrame, list[str]]:
        s = self.store.resolve_study(study)
        return self.study_kind(s["id"]).export_frame(self.store, s["name"])

    def export_bytes(self, study: str | None = None, fmt: str = "csv", *, raw: bool = False) -> bytes:
        """The export of a study's answers as CSV or JSONL bytes: one row per rating (EXPORT_COLUMNS), or per
        answer of another kind in its own columns (a pairwise study: pairwise.EXPORT_PREFERENCE_COLUMNS). CSV
        cells are escaped for spreadsheets unless `raw`."""
        rows, columns = self._export_rows(study)
        return ratings_bytes(rows, fmt, columns=columns, raw=raw)

    def export(self, out: str | Path, fmt: str = "csv", study: str | None = None, *, raw: bool = False) -> int:
        """Write `export_bytes` to `out`; returns the number of rows."""
        rows, columns = self._export_rows(study)
        Path(out).write_bytes(ratings_bytes(rows, fmt, columns=columns, raw=raw))
        return len(rows)
