"""Pairwise studies: pair items, sides per annotator, preferences in and out.

Pair items are ordinary `items` rows, so assignments and the annotator's queue treat them like any other item;
`pair_items` holds both explanations and `pair_sides` which one each annotator sees first.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from annotate.core import auth, importing, limits
from annotate.core.errors import AccessDenied, InputFileError
from annotate.core.formats import read_nle_file
from annotate.core.importing import ImportResult, PairImportResult
from annotate.core.pairwise import (
    CHOICES,
    EXPORT_PREFERENCE_COLUMNS,
    PAIR_QUESTION,
    pair_config,
    read_preferences_csv,
    select_pairs,
    to_choice,
    to_preference,
)
from annotate.core.scale import DEFAULT_TAGS, RATINGS
from annotate.core.schema import now_iso
from annotate.core.store.annotators import Annotators
from annotate.core.store.database import Database
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies

# Sides are drawn with the operating system's randomness: nobody, not even with the code, can predict them.
_SIDES = random.SystemRandom()


class Pairwise:
    """The pairwise tables: `pairwise_studies`, `pair_items`, `pair_sides`, `preferences` and their history."""

    def __init__(self, db: Database, studies: Studies, queue: Queue, annotators: Annotators) -> None:
        self.db, self.studies, self.queue, self.annotators = db, studies, queue, annotators

    # -- studies ---------------------------------------------------------------------------------------------------

    def pairwise_setup(self, study_id: int) -> dict[str, Any] | None:
        """{"a", "b", "rate_sides"} of a pairwise study, None for a rating study."""
        row = self.db.execute("SELECT config_a, config_b, rate_sides FROM pairwise_studies WHERE study_id = ?",
                              (study_id,)).fetchone()
        return None if row is None else {"a": row[0], "b": row[1], "rate_sides": bool(row[2])}

    def _pairwise_target(self, conn: sqlite3.Connection, study: str, a: str | None, b: str | None,
                         rate_sides: bool | None) -> tuple[int, str, str]:
        """(study id, a, b) of the pairwise study named `study`, created when new; ValueError on a mismatch."""
        s = self.studies.get_study(study)
        if s is None:
            if a is None or b is None:
                raise ValueError(f"study {study!r} does not exist; name the two configurations with --pairwise A B")
            if a == b:
                raise ValueError("--pairwise needs two different configurations")
            sid = self.studies.insert(study, PAIR_QUESTION)
            conn.execute("INSERT INTO pairwise_studies (study_id, config_a, config_b, rate_sides) VALUES (?, ?, ?, ?)",
                         (sid, a, b, int(bool(rate_sides))))
            return sid, a, b
        setup = self.pairwise_setup(s["id"])
        if setup is None:
            raise ValueError(f"study {study!r} is a rating study; put the pairwise comparison in a new study "
                             "(--study NAME)")
        if a is not None and (a, b) != (setup["a"], setup["b"]):
            raise ValueError(f"study {study!r} compares {setup['a']!r} with {setup['b']!r}, not {a!r} with {b!r}")
        if rate_sides is not None and rate_sides != setup["rate_sides"]:
            conn.execute("UPDATE pairwise_studies SET rate_sides = ? WHERE study_id = ?", (int(rate_sides), s["id"]))
        return s["id"], setup["a"], setup["b"]

    def set_rate_sides(self, study: str, rate_sides: bool) -> None:
        """Turn the optional 4-point rating of each side on or off for a pairwise study."""
        s = self.studies.resolve_study(study)
        if self.pairwise_setup(s["id"]) is None:
            raise ValueError(f"study {study!r} is not a pairwise study")
        with self.db.transaction() as conn:
            conn.execute("UPDATE pairwise_studies SET rate_sides = ? WHERE study_id = ?", (int(rate_sides), s["id"]))

    # -- items -------------------------------------------------------------------------------------------------

    def import_pairwise(self, path: str | Path, a: str, b: str, study: str | None = None, *,
                        rate_sides: bool | None = None, data: bytes | None = None) -> PairImportResult:
        """Build a pairwise study of `a` against `b` from an NLE file: one pair item per sample both predicted
        correctly; all or nothing, and re-importing the same file changes nothing."""
        records = read_nle_file(path, data)
        target = self.studies.target_study(study, create=True)
        importing.check_study_fields(path, records, target, {s["name"] for s in self.studies.studies()})
        selection = select_pairs(path, records, a, b)
        out = PairImportResult(ImportResult(study=target), selection)
        with self.db.transaction() as conn:
            sid, a, b = self._pairwise_target(conn, target, a, b, rate_sides)
            existing = {(d, s_): (i, json.loads(inp), ea, eb) for i, d, s_, inp, ea, eb in conn.execute(
                "SELECT i.id, i.dataset, i.sample_id, i.input, p.explanation_a, p.explanation_b FROM items i"
                " JOIN pair_items p ON p.item_id = i.id WHERE i.study_id = ?", (sid,))}
            ts = now_iso()
            for pair in selection.pairs:
                old = existing.get(pair.key)
                if old is not None:
                    if (old[1], old[2], old[3]) != (pair.a.input, pair.a.explanation, pair.b.explanation):
                        raise InputFileError(path, pair.b.line, "explanation",
                                             f"pair {pair.key!r} is already in study {target!r} with different content")
                    out.result.unchanged += 1
                    continue
                row = importing.item_rows([pair.a], sid, ts)[0]
                row.update(config=pair_config(a, b), explanation="", model=None,
                           metadata=json.dumps({"pair": [a, b], "lines": [pair.a.line, pair.b.line]}))
                item_id = self.db["items"].insert(row).last_pk
                conn.execute("INSERT INTO pair_items (item_id, explanation_a, explanation_b) VALUES (?, ?, ?)",
                             (item_id, pair.a.explanation, pair.b.explanation))
                out.result.added += 1
            self.queue.sync_assignments(conn, sid)
        return out

    # -- the annotator's view (blind) --------------------------------------------------------------------------

    def _a_first(self, conn: sqlite3.Connection, annotator_id: int, item_id: int) -> bool:
        """Which configuration this annotator sees first on this item: drawn on first view, then stored."""
        row = conn.execute("SELECT a_first FROM pair_sides WHERE annotator_id = ? AND item_id = ?",
                           (annotator_id, item_id)).fetchone()
        if row is not None:
            return bool(row[0])
        conn.execute("INSERT OR IGNORE INTO pair_sides (annotator_id, item_id, a_first) VALUES (?, ?, ?)",
                     (annotator_id, item_id, _SIDES.randrange(2)))
        return bool(conn.execute("SELECT a_first FROM pair_sides WHERE annotator_id = ? AND item_id = ?",
                                 (annotator_id, item_id)).fetchone()[0])

    def annotator_pair(self, annotator_id: int, position: int) -> dict[str, Any] | None:
        """What an annotator may see of the pair at `position` in their queue: the explanations in their own
        order as "1" and "2", and their earlier answer in those terms; no configuration, no side mapping."""
        row = self.db.execute(
            """SELECT i.id, i.dataset, i.input, i.predicted_label, p.explanation_a, p.explanation_b
               FROM assignments a JOIN items i ON i.id = a.item_id JOIN pair_items p ON p.item_id = i.id
               WHERE a.annotator_id = ? AND a.position = ?""", (annotator_id, position)).fetchone()
        if row is None:
            return None
        side = self.db.execute("SELECT a_first FROM pair_sides WHERE annotator_id = ? AND item_id = ?",
                               (annotator_id, row[0])).fetchone()
        if side is not None:
            a_first = bool(side[0])
        else:
            with self.db.transaction() as conn:
                a_first = self._a_first(conn, annotator_id, row[0])
        first, second = (row[4], row[5]) if a_first else (row[5], row[4])
        item = {"item_id": row[0], "position": position, "dataset": row[1], "input": json.loads(row[2]),
                "predicted_label": row[3], "explanations": (first, second), "answer": None}
        ans = self.db.execute(
            "SELECT preference, tags_a, tags_b, rating_a, rating_b, comment, revision FROM preferences"
            " WHERE annotator_id = ? AND item_id = ?", (annotator_id, row[0])).fetchone()
        if ans is not None:
            tags = {"a": [t for t in ans[1].split(";") if t], "b": [t for t in ans[2].split(";") if t]}
            ratings = {"a": ans[3], "b": ans[4]}
            one, two = ("a", "b") if a_first else ("b", "a")
            item["answer"] = {"choice": to_choice(ans[0], a_first), "tags_1": tags[one], "tags_2": tags[two],
                              "rating_1": ratings[one], "rating_2": ratings[two], "comment": ans[5],
                              "revision": ans[6]}
        return item

    def submit_preference(self, annotator_id: int, item_id: int, choice: str, *, tags_1: list[str] | tuple = (),
                          tags_2: list[str] | tuple = (), rating_1: str | None = None, rating_2: str | None = None,
                          comment: str = "", seconds: float | None = None) -> dict[str, Any]:
        """Save (or revise) an answer given on screen ("1", "2" or "tie", tags and ratings per shown side),
        stored by configuration; AccessDenied for an item not in this annotator's queue or never shown."""
        if choice not in CHOICES:
            raise ValueError(f"unknown choice {choice!r}; expected one of {', '.join(CHOICES)}")
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        for r in (rating_1, rating_2):
            if r is not None and r not in RATINGS:
                raise ValueError(f"unknown rating {r!r}; expected one of {', '.join(RATINGS)}")
        comment = limits.check_comment(comment)
        with self.db.transaction() as conn:
            ctx = conn.execute(
                """SELECT s.tags, s.guidelines_version, w.rate_sides, d.a_first FROM assignments x
                   JOIN annotators n ON n.id = x.annotator_id JOIN studies s ON s.id = n.study_id
                   JOIN pairwise_studies w ON w.study_id = s.id
                   LEFT JOIN pair_sides d ON d.annotator_id = x.annotator_id AND d.item_id = x.item_id
                   WHERE x.annotator_id = ? AND x.item_id = ?""", (annotator_id, item_id)).fetchone()
            if ctx is None or ctx[3] is None:
                raise AccessDenied("This item is not in your queue.")
            allowed = json.loads(ctx[0])
            unknown = [t for t in (*tags_1, *tags_2) if t not in allowed]
            if unknown:
                raise ValueError(f"unknown shortcoming tags: {unknown}")
            if ctx[2] and (rating_1 is None or rating_2 is None):
                raise ValueError("this study asks for a rating of each explanation")
            a_first = bool(ctx[3])
            tags = {"1": list(dict.fromkeys(tags_1)), "2": list(dict.fromkeys(tags_2))}
            ratings = {"1": rating_1, "2": rating_2}
            one, two = ("1", "2") if a_first else ("2", "1")
            return self._write_preference(conn, annotator_id, item_id, to_preference(choice, a_first), a_first,
                                          tags[one], tags[two], ratings[one], ratings[two], comment, seconds,
                                          now_iso(), ctx[1], "app")

    @staticmethod
    def _write_preference(c: sqlite3.Connection, annotator_id: int, item_id: int, preference: str,
                          a_first: bool | None, tags_a: list[str], tags_b: list[str], rating_a: str | None,
                          rating_b: str | None, comment: str, seconds: float | None, submitted_at: str,
                          guidelines_version: str | None, source: str) -> dict[str, Any]:
        old = c.execute("SELECT revision FROM preferences WHERE annotator_id = ? AND item_id = ?",
                        (annotator_id, item_id)).fetchone()
        revision = old[0] + 1 if old else 1
        cols = ("item_id, annotator_id, preference, a_first, tags_a, tags_b, rating_a, rating_b, comment, seconds,"
                " submitted_at, guidelines_version, revision, source")
        values = (item_id, annotator_id, preference, None if a_first is None else int(a_first), ";".join(tags_a),
                  ";".join(tags_b), rating_a, rating_b, comment or "", seconds, submitted_at, guidelines_version,
                  revision, source)
        marks = ", ".join("?" * len(values))
        updates = ", ".join(f"{c_.strip()} = excluded.{c_.strip()}" for c_ in cols.split(",")[2:])
        c.execute(f"INSERT INTO preferences ({cols}) VALUES ({marks})"
                  f" ON CONFLICT (annotator_id, item_id) DO UPDATE SET {updates}", values)
        c.execute(f"INSERT INTO preference_history ({cols}) VALUES ({marks})", values)
        c.execute("UPDATE assignments SET answered_at = ? WHERE annotator_id = ? AND item_id = ?",
                  (submitted_at, annotator_id, item_id))
        return {"item_id": item_id, "annotator_id": annotator_id, "preference": preference, "revision": revision,
                "submitted_at": submitted_at}

    # -- preferences out and in --------------------------------------------------------------------------------

    def preferences_frame(self, study: str | None = None) -> pd.DataFrame:
        """One row per current answer of a pairwise study: item_id, dataset, sample_id, annotator, preference
        ("a", "b", "tie"), a_first (1/0, NaN when unknown), tags_a, tags_b, rating_a, rating_b, comment, seconds,
        submitted_at."""
        s = self.studies.resolve_study(study)
        return pd.read_sql_query(
            """SELECT p.item_id, i.dataset, i.sample_id, n.name AS annotator, p.preference, p.a_first, p.tags_a,
                      p.tags_b, p.rating_a, p.rating_b, p.comment, p.seconds, p.submitted_at
               FROM preferences p JOIN items i ON i.id = p.item_id JOIN annotators n ON n.id = p.annotator_id
               WHERE i.study_id = ? ORDER BY p.item_id, n.name""", self.db.conn, params=(s["id"],))

    def preferences_export_frame(self, study: str | None = None) -> pd.DataFrame:
        """The export's rows: the preferred configuration by name (or "tie"), and which one was shown first."""
        s = self.studies.resolve_study(study)
        setup = self.pairwise_setup(s["id"])
        if setup is None:
            raise ValueError(f"study {s['name']!r} is not a pairwise study")
        df = self.preferences_frame(s["name"])
        names = {"a": setup["a"], "b": setup["b"], "tie": "tie"}
        df["preference"] = df["preference"].map(names)
        df["shown_first"] = df["a_first"].map({1: setup["a"], 0: setup["b"]}).fillna("")
        for col in ("rating_a", "rating_b"):
            df[col] = df[col].fillna("")
        return df[EXPORT_PREFERENCE_COLUMNS]

    def pair_explanations(self, study: str | None = None) -> dict[int, tuple[str, str]]:
        """item id -> (A's explanation, B's explanation) of every pair of a study (researchers only)."""
        s = self.studies.resolve_study(study)
        return {i: (ea, eb) for i, ea, eb in self.db.execute(
            "SELECT p.item_id, p.explanation_a, p.explanation_b FROM pair_items p JOIN items i ON i.id = p.item_id"
            " WHERE i.study_id = ?", (s["id"],))}

    def import_preferences(self, path: str | Path, study: str | None = None, *, pairwise: tuple[str, str] | None = None,
                           data: bytes | None = None, raw: bool = False) -> ImportResult:
        """Import pairwise answers collected elsewhere, all or nothing; missing pair items and annotators are
        created (`pairwise` names the configurations when the study is new)."""
        target = self.studies.target_study(study, create=True)
        s = self.studies.get_study(target)
        setup = self.pairwise_setup(s["id"]) if s else None
        if s is not None and setup is None:
            raise ValueError(f"study {target!r} is a rating study; import pairwise answers into a pairwise study")
        if setup is None and pairwise is None:
            raise ValueError(f"study {target!r} does not exist; name the two configurations with --pairwise A B")
        a, b = (setup["a"], setup["b"]) if setup else pairwise  # type: ignore[misc]
        rows = read_preferences_csv(path, a, b, s["tags"] if s else list(DEFAULT_TAGS), data, raw=raw)
        result = ImportResult(study=target)
        with self.db.transaction() as conn:
            sid, a, b = self._pairwise_target(conn, target, *(pairwise or (None, None)), None)
            gv = conn.execute("SELECT guidelines_version FROM studies WHERE id = ?", (sid,)).fetchone()[0]
            items = {(d, s_): i for i, d, s_ in conn.execute(
                "SELECT i.id, i.dataset, i.sample_id FROM items i JOIN pair_items p ON p.item_id = i.id"
                " WHERE i.study_id = ?", (sid,))}
            annotators = {auth.name_key(n): (i, st) for i, n, st in conn.execute(
                "SELECT id, name, study_id FROM annotators")}
            current = {(x, i): (p, ta, tb, ra, rb, c) for x, i, p, ta, tb, ra, rb, c in conn.execute(
                "SELECT annotator_id, item_id, preference, tags_a, tags_b, rating_a, rating_b, comment"
                " FROM preferences")}
            ts = now_iso()
            for row in rows:
                key = (row.dataset, row.sample_id)
                if key not in items:
                    items[key] = self.db["items"].insert({
                        "study_id": sid, "dataset": row.dataset, "sample_id": row.sample_id,
                        "config": pair_config(a, b), "input": "{}", "predicted_label": "", "explanation": "",
                        "metadata": json.dumps({"pair": [a, b], "created_by": "import-ratings"}),
                        "created_at": ts}).last_pk
                    conn.execute("INSERT INTO pair_items (item_id, explanation_a, explanation_b) VALUES (?, '', '')",
                                 (items[key],))
                    result.items_created += 1
                aid = self.annotators.ensure(annotators, row, sid, ts, result, path)
                old = current.get((aid, items[key]))
                new = (row.preference, ";".join(row.tags_a), ";".join(row.tags_b), row.rating_a, row.rating_b,
                       row.comment or "")
                if old == new:
                    result.ratings_unchanged += 1
                    continue
                self._write_preference(conn, aid, items[key], row.preference, row.a_first, row.tags_a, row.tags_b,
                                       row.rating_a, row.rating_b, row.comment, row.seconds, row.submitted_at or ts,
                                       gv, "import")
                if old is None:
                    result.ratings_added += 1
                else:
                    result.ratings_updated += 1
            self.queue.sync_assignments(conn, sid)
        return result
