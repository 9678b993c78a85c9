"""Ratings: an annotator's answers in, the researcher's ratings out, and ratings imported from elsewhere."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annotate.core import auth, importing, limits
from annotate.core.errors import AccessDenied, RuleViolation
from annotate.core.formats import NLE, RatingRow, read_ratings_csv
from annotate.core.importing import ImportResult
from annotate.core.scale import DEFAULT_TAGS, RATINGS, Guidelines, Rules, score
from annotate.core.schema import now_iso
from annotate.core.store.annotators import Annotators
from annotate.core.store.database import Database
from annotate.core.store.items import Items
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies

if TYPE_CHECKING:
    from annotate.core.kinds import StudyKinds


class Ratings:
    """The `ratings` table and its append-only `rating_history`."""

    def __init__(self, db: Database, studies: Studies, queue: Queue, annotators: Annotators, items: Items,
                 kinds: StudyKinds) -> None:
        self.db, self.studies, self.queue, self.annotators = db, studies, queue, annotators
        self.items, self.kinds = items, kinds

    def submit(
        self,
        annotator_id: int,
        item_id: int,
        rating: str,
        tags: list[str] | tuple[str, ...] = (),
        comment: str = "",
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """Save (or revise) an annotator's answer in one committed transaction; the earlier answer stays in history.

        Raises RuleViolation when the answer and tags break the study's rules, AccessDenied when the item is not
        in this annotator's queue; nothing is written then.
        """
        if rating not in RATINGS:
            raise ValueError(f"unknown rating {rating!r}; expected one of {', '.join(RATINGS)}")
        # The ratings CSV refuses these, so storing one would make the export impossible to re-import.
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        comment = limits.check_comment(comment)
        tags = list(dict.fromkeys(tags))
        # Checked inside the write transaction: in a k-of-N study another process may take over a lapsed
        # reservation between a read and the write.
        with self.db.transaction() as conn:
            ctx = conn.execute(
                """SELECT s.tags, s.rules, s.guidelines_version FROM assignments a
                   JOIN annotators n ON n.id = a.annotator_id JOIN studies s ON s.id = n.study_id
                   WHERE a.annotator_id = ? AND a.item_id = ?""", (annotator_id, item_id)).fetchone()
            if ctx is None:
                raise AccessDenied("This item is not in your queue.")
            unknown = [t for t in tags if t not in json.loads(ctx[0])]
            if unknown:
                raise ValueError(f"unknown shortcoming tags: {unknown}")
            problems = Rules.from_dict(json.loads(ctx[1])).violations(rating, tags)
            if problems:
                raise RuleViolation(problems)
            return _write_rating(conn, annotator_id, item_id, rating, tags, comment, seconds, now_iso(), ctx[2],
                                 "app")

    def history(self, annotator_id: int, item_id: int) -> list[dict[str, Any]]:
        """Every version of an annotator's answer to an item, oldest first."""
        return [dict(r, tags=[t for t in r["tags"].split(";") if t]) for r in self.db.query(
            "SELECT rating, score, tags, comment, seconds, submitted_at, guidelines_version, revision, source"
            " FROM rating_history WHERE annotator_id = ? AND item_id = ? ORDER BY id", (annotator_id, item_id))]

    # -- out ------------------------------------------------------------------------------------------------------

    def ratings_frame(self, study: str | None = None, *, extra: bool = False) -> pd.DataFrame:
        """One row per current rating with the export columns (plus ids and provenance when `extra`); attention
        checks are left out (see `attention_frame`)."""
        s = self.studies.resolve_study(study)
        more = (", r.item_id, r.guidelines_version, r.revision, r.source" if extra else "")
        df = pd.read_sql_query(
            f"""SELECT i.dataset, i.sample_id, i.config, a.name AS annotator, r.rating, r.score, r.tags, r.comment,
                       r.seconds, r.submitted_at{more}
                FROM ratings r JOIN items i ON i.id = r.item_id JOIN annotators a ON a.id = r.annotator_id
                WHERE i.study_id = ? AND i.expected_rating IS NULL ORDER BY r.item_id, a.name""", self.db.conn,
            params=(s["id"],))
        return df

    def analysis_frames(self, study: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Lean read for analysis: (items: item_id, dataset, sample_id, config; ratings: item_id, annotator,
        rating, tags), attention checks left out. SQLite builds each column as one string (integers
        comma-separated, text as a JSON array), several times faster than a row-by-row fetch at a million ratings;
        text columns other than sample_id come back as categoricals."""
        def ints(text: str | None) -> np.ndarray:
            return np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64)

        s = self.studies.resolve_study(study)
        conn = self.db.conn
        row = conn.execute(
            "SELECT group_concat(id), json_group_array(dataset), json_group_array(sample_id),"
            " json_group_array(config) FROM items WHERE study_id = ? AND expected_rating IS NULL", (s["id"],)).fetchone()
        items = pd.DataFrame({"item_id": ints(row[0]), "dataset": pd.Categorical(json.loads(row[1])),
                              "sample_id": pd.Series(json.loads(row[2]), dtype=object),
                              "config": pd.Categorical(json.loads(row[3]))})
        names = dict(conn.execute("SELECT id, name FROM annotators WHERE study_id = ?", (s["id"],)).fetchall())
        cases = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(RATINGS))
        row = conn.execute(
            f"SELECT group_concat(r.item_id), group_concat(r.annotator_id),"
            f" group_concat(CASE r.rating {cases} ELSE -1 END), json_group_array(r.tags) FROM ratings r"
            # Annotators belong to one study and only rate its items; filtering on them scans the ratings in
            # index order, where filtering on item ids would jump around the table.
            " WHERE r.annotator_id IN (SELECT id FROM annotators WHERE study_id = ?)"
            # Attention checks are never counted in scores or agreement.
            " AND r.item_id NOT IN (SELECT id FROM items WHERE study_id = ? AND expected_rating IS NOT NULL)",
            (s["id"], s["id"])).fetchone()
        codes = ints(row[2])
        if (codes < 0).any():
            raise ValueError(f"study {s['name']!r} holds a rating outside {', '.join(RATINGS)}")
        annotator = pd.Categorical.from_codes(
            pd.Categorical(ints(row[1]), categories=list(names)).codes, categories=list(names.values()))
        ratings_df = pd.DataFrame({"item_id": ints(row[0]), "annotator": annotator,
                                   "rating": pd.Categorical.from_codes(codes, categories=list(RATINGS)),
                                   "tags": pd.Categorical(json.loads(row[3]))})
        return items, ratings_df

    # -- in from elsewhere ------------------------------------------------------------------------------------------

    def import_ratings(self, path: str | Path, study: str | None = None, *, data: bytes | None = None,
                       raw: bool = False) -> ImportResult:
        """Import ratings collected elsewhere (or `data`, an upload named `path`), all or nothing. Missing items and
        annotators are created (items queued for annotators only when the row carries input, predicted_label and
        explanation); answer/tag rules are not enforced, but violations are counted. `raw`: cells were written
        without the export's spreadsheet escaping."""
        target = self.studies.target_study(study, create=True)
        s = self.studies.get_study(target)
        if s is not None:
            self.kinds.refuse(target, s["id"], "ratings")
        rows = read_ratings_csv(path, s["tags"] if s else list(DEFAULT_TAGS), data, raw=raw)
        result = ImportResult(study=target)
        with self.db.transaction() as conn:
            study_id = s["id"] if s else self.studies.insert(target)
            self._write_imported(conn, study_id, [(path, rows)], result)
            self.queue.sync_assignments(conn, study_id)
        return result

    def import_rated_items(self, files: list[tuple[str | Path, list[NLE], list[RatingRow]]],
                           study: str | None = None, *, rules: Rules | None = None,
                           guidelines: Guidelines | None = None) -> ImportResult:
        """Items and their ratings that another reader parsed (e.g. `feb_mturk`), file by file, written in one
        transaction: all or nothing. Items are added as `import_nles` adds them (an existing one with other content
        is an error naming its file and line), ratings as `import_ratings` adds them, so re-importing the same
        files changes nothing. A study created here gets `rules` and `guidelines`."""
        target = self.studies.target_study(study, create=True)
        s = self.studies.get_study(target)
        if s is not None:
            self.kinds.refuse(target, s["id"], "rated_items")
        existing = self.items.contents(s["id"]) if s else {}
        result, new = ImportResult(study=target), []
        for path, records, _ in files:
            counts, added = importing.diff_items(path, records, existing, target)
            importing.add_counts(result, counts)
            new += added
        with self.db.transaction() as conn:
            study_id = s["id"] if s else self.studies.insert(target, rules=rules, guidelines=guidelines)
            self.db["items"].insert_all(importing.item_rows(new, study_id, now_iso()))
            result.metrics_added = self.items.write_metrics(conn, study_id, target,
                                                            [(path, records) for path, records, _ in files])
            self._write_imported(conn, study_id, [(path, rows) for path, _, rows in files], result)
            self.queue.sync_assignments(conn, study_id)
        return result

    def _write_imported(self, conn: sqlite3.Connection, study_id: int,
                        files: list[tuple[str | Path, list[RatingRow]]], result: ImportResult) -> None:
        """Ratings from files into a study, inside the caller's transaction; rule violations counted, not refused."""
        rules_json, gv = conn.execute("SELECT rules, guidelines_version FROM studies WHERE id = ?",
                                      (study_id,)).fetchone()
        rules = Rules.from_dict(json.loads(rules_json))
        items = {(d, sid, c): i for i, d, sid, c in conn.execute(
            "SELECT id, dataset, sample_id, config FROM items WHERE study_id = ?", (study_id,))}
        annotators = {auth.name_key(n): (i, st) for i, n, st in conn.execute(
            "SELECT id, name, study_id FROM annotators")}
        current = {(a, i): (r, t, c) for a, i, r, t, c in conn.execute(
            "SELECT r.annotator_id, r.item_id, r.rating, r.tags, r.comment FROM ratings r"
            " JOIN items i ON i.id = r.item_id WHERE i.study_id = ?", (study_id,))}
        ts = now_iso()
        for path, row in ((path, row) for path, rows in files for row in rows):
            item_id = self._ensure_item(items, row, study_id, ts, result)
            aid = self.annotators.ensure(annotators, row, study_id, ts, result, path)
            importing.count_rule_violations(rules, row, result)
            old = current.get((aid, item_id))
            if old == (row.rating, ";".join(row.tags), row.comment or ""):
                result.ratings_unchanged += 1
                continue
            _write_rating(conn, aid, item_id, row.rating, row.tags, row.comment, row.seconds, row.submitted_at or ts,
                          gv, "import")
            if old is None:
                result.ratings_added += 1
            else:
                result.ratings_updated += 1

    def _ensure_item(self, items: dict[tuple[str, str, str], int], row: RatingRow, study_id: int, ts: str,
                     result: ImportResult) -> int:
        """The id of the rated item, created (with what the row carries) when the study lacks it."""
        key = (row.dataset, row.sample_id, row.config)
        if key not in items:
            queued = row.has_content
            items[key] = self.db["items"].insert({
                "study_id": study_id, "dataset": row.dataset, "sample_id": row.sample_id, "config": row.config,
                "input": json.dumps(row.input or {}, ensure_ascii=False), "predicted_label": row.predicted_label or "",
                "explanation": row.explanation or "",
                "metadata": json.dumps({"created_by": "import-ratings", "queued": queued}), "created_at": ts}).last_pk
            result.items_created += 1
            result.items_not_queued += not queued
        return items[key]


def _write_rating(c: sqlite3.Connection, annotator_id: int, item_id: int, rating: str, tags: list[str],
                  comment: str, seconds: float | None, submitted_at: str, guidelines_version: str | None,
                  source: str) -> dict[str, Any]:
    """Upsert the current rating, append it to the history and mark the assignment answered (in the caller's
    transaction)."""
    old = c.execute("SELECT revision FROM ratings WHERE annotator_id = ? AND item_id = ?",
                    (annotator_id, item_id)).fetchone()
    revision = old[0] + 1 if old else 1
    values = (item_id, annotator_id, rating, score(rating), ";".join(tags), comment or "", seconds,
              submitted_at, guidelines_version, revision, source)
    c.execute(
        "INSERT INTO ratings (item_id, annotator_id, rating, score, tags, comment, seconds, submitted_at,"
        " guidelines_version, revision, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (annotator_id, item_id) DO UPDATE SET rating = excluded.rating, score = excluded.score,"
        " tags = excluded.tags, comment = excluded.comment, seconds = excluded.seconds,"
        " submitted_at = excluded.submitted_at, guidelines_version = excluded.guidelines_version,"
        " revision = excluded.revision, source = excluded.source", values)
    c.execute(
        "INSERT INTO rating_history (item_id, annotator_id, rating, score, tags, comment, seconds, submitted_at,"
        " guidelines_version, revision, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    c.execute("UPDATE assignments SET answered_at = ? WHERE annotator_id = ? AND item_id = ?",
              (submitted_at, annotator_id, item_id))
    return {"item_id": item_id, "annotator_id": annotator_id, "rating": rating, "tags": tags,
            "revision": revision, "submitted_at": submitted_at}
