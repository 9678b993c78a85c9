"""Items: NLEs imported into a study, and the researcher's unblinded view of them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from annotate.core import importing
from annotate.core.errors import InputFileError
from annotate.core.formats import NLE, read_nle_file
from annotate.core.importing import GOLD_CONFIG, ImportResult
from annotate.core.schema import now_iso
from annotate.core.store.database import Database
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies

if TYPE_CHECKING:
    from annotate.core.kinds import StudyKinds

# Every metric score of one study's items: (item_id, name, value).
_STUDY_METRICS = ("SELECT m.item_id, m.name, m.value FROM item_metrics m CROSS JOIN items i ON i.id = m.item_id"
                  " WHERE i.study_id = ?")


class Items:
    """The `items` table of rating studies (pair items: pairwise.py)."""

    def __init__(self, db: Database, studies: Studies, queue: Queue, kinds: StudyKinds) -> None:
        self.db, self.studies, self.queue, self.kinds = db, studies, queue, kinds

    def import_nles(self, path: str | Path, study: str | None = None, *, with_gold: bool = False,
                    data: bytes | None = None, allow_mixed: bool = False) -> ImportResult:
        """Import an NLE JSONL file (or `data`, an upload named `path`) into a study, all or nothing;
        re-importing the same file changes nothing. NLEs of another model or split_seed than a configuration
        already holds are refused (ValueError) unless `allow_mixed`; then they are listed in `mixed_sources`."""
        records = read_nle_file(path, data)
        study = self.studies.target_study(study, create=True)
        importing.check_study_fields(path, records, study, {s["name"] for s in self.studies.studies()})
        gold_skipped = 0
        if with_gold:
            records, gold_skipped = importing.with_gold_references(records)
        s = self.studies.get_study(study)
        if s is not None:
            self.kinds.refuse(study, s["id"], "nle_file")
        existing = self.contents(s["id"]) if s else {}
        result, new = importing.diff_items(path, records, existing, study)
        result.gold_skipped = gold_skipped
        result.mixed_sources = importing.mixed_sources(self._sources(s["id"]) if s else {}, new)
        if result.mixed_sources and not allow_mixed:
            raise ValueError(f"{path}: {result.mixed_sources[0]}; give them another config name, or pass "
                             "--allow-mixed to merge them (nothing was imported)")
        with self.db.transaction() as conn:
            study_id = s["id"] if s else self.studies.insert(study)
            self.db["items"].insert_all(importing.item_rows(new, study_id, now_iso()))
            result.metrics_added = self.write_metrics(conn, study_id, study, [(path, records)])
            self.queue.sync_assignments(conn, study_id)
        return result

    def contents(self, study_id: int) -> dict[tuple[str, str, str], dict[str, Any]]:
        """(dataset, sample_id, config) -> the fields an import must not change, for a study's items."""
        return {(r["dataset"], r["sample_id"], r["config"]): r for r in self.db.query(
            "SELECT dataset, sample_id, config, explanation, predicted_label, input FROM items WHERE study_id = ?",
            (study_id,))}

    def write_metrics(self, conn: sqlite3.Connection, study_id: int, study: str,
                      files: list[tuple[str | Path, list[NLE]]]) -> int:
        """Store the metric scores the records of each file carry on their items (already in the study), inside
        the caller's transaction; returns how many were added. A name new to an item is added, whether the item is
        new or not; a name the item already has with the same value changes nothing, with another value it is an
        InputFileError naming the file, line and field (the caller's transaction then writes nothing)."""
        if not any(r.metrics for _, records in files for r in records):
            return 0
        ids = {(d, s, c): i for i, d, s, c in conn.execute(
            "SELECT id, dataset, sample_id, config FROM items WHERE study_id = ?", (study_id,))}
        held = {(i, name): value for i, name, value in conn.execute(_STUDY_METRICS, (study_id,))}
        new: dict[tuple[int, str], float] = {}
        for path, records in files:
            for r in records:
                item_id = ids[r.key]
                for name, value in r.metrics.items():
                    old = held.get((item_id, name), new.get((item_id, name)))
                    if old is None:
                        new[(item_id, name)] = value
                    elif old != value:
                        raise InputFileError(path, abs(r.line), f"metrics.{name}",
                                             f"item {r.key!r} already has {name} = {old!r} in study {study!r}, not "
                                             f"{value!r}; give the new score another metric name")
        conn.executemany("INSERT INTO item_metrics (item_id, name, value) VALUES (?, ?, ?)",
                         [(i, name, value) for (i, name), value in new.items()])
        return len(new)

    def metrics_frame(self, study: str | None = None) -> pd.DataFrame:
        """Every metric score of a study's items, one row per item and metric (analysis.metric_correlation's
        TABLE_COLUMNS: item_id, dataset, config, is_gold_reference, is_attention_check, metric, value), ordered by
        item and metric; for researchers only. Empty (with those columns) when the study has none."""
        s = self.studies.resolve_study(study)
        # item_metrics first: a study without scores costs one probe of an empty range, however many items it has.
        df = pd.read_sql_query(
            "SELECT i.id AS item_id, i.dataset, i.config, i.config = ? AS is_gold_reference,"
            " i.expected_rating IS NOT NULL AS is_attention_check, m.name AS metric, m.value"
            " FROM item_metrics m CROSS JOIN items i ON i.id = m.item_id WHERE i.study_id = ?"
            " ORDER BY m.item_id, m.name", self.db.conn, params=(GOLD_CONFIG, s["id"]))
        for col in ("is_gold_reference", "is_attention_check"):
            df[col] = df[col].astype(bool)
        df["value"] = df["value"].astype(float)
        return df

    def _metrics_by_item(self, study_id: int) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = {}
        for item_id, name, value in self.db.execute(_STUDY_METRICS + " ORDER BY m.item_id, m.name", (study_id,)):
            out.setdefault(item_id, {})[name] = value
        return out

    def _sources(self, study_id: int) -> dict[str, dict[tuple[str | None, int | None], int]]:
        """config -> (model, split_seed) -> number of items, for a study's items."""
        out: dict[str, dict[tuple[str | None, int | None], int]] = {}
        for config, model, seed, n in self.db.execute(
                "SELECT config, model, split_seed, COUNT(*) FROM items WHERE study_id = ? GROUP BY 1, 2, 3",
                (study_id,)):
            out.setdefault(config, {})[(model, seed)] = n
        return out

    def items_frame(self, study: str | None = None) -> pd.DataFrame:
        """Every item of a study with its full (unblinded) content and its metric scores (`metrics`, a dict by
        name); for researchers only."""
        s = self.studies.resolve_study(study)
        df = pd.read_sql_query(
            "SELECT id AS item_id, dataset, sample_id, config, input, predicted_label, explanation, model,"
            " split_seed, gold_label, gold_explanations, prompt, metadata FROM items WHERE study_id = ? ORDER BY id",
            self.db.conn, params=(s["id"],),
        )
        for col in ("input", "gold_explanations", "metadata"):
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        metrics = self._metrics_by_item(s["id"])
        df["metrics"] = [metrics.get(i, {}) for i in df["item_id"]]
        return df
