"""Items: NLEs imported into a study, and the researcher's unblinded view of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from annotate.core import importing
from annotate.core.formats import read_nle_file
from annotate.core.importing import ImportResult
from annotate.core.schema import now_iso
from annotate.core.store.database import Database
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies

if TYPE_CHECKING:
    from annotate.core.kinds import StudyKinds


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
            self.queue.sync_assignments(conn, study_id)
        return result

    def contents(self, study_id: int) -> dict[tuple[str, str, str], dict[str, Any]]:
        """(dataset, sample_id, config) -> the fields an import must not change, for a study's items."""
        return {(r["dataset"], r["sample_id"], r["config"]): r for r in self.db.query(
            "SELECT dataset, sample_id, config, explanation, predicted_label, input FROM items WHERE study_id = ?",
            (study_id,))}

    def _sources(self, study_id: int) -> dict[str, dict[tuple[str | None, int | None], int]]:
        """config -> (model, split_seed) -> number of items, for a study's items."""
        out: dict[str, dict[tuple[str | None, int | None], int]] = {}
        for config, model, seed, n in self.db.execute(
                "SELECT config, model, split_seed, COUNT(*) FROM items WHERE study_id = ? GROUP BY 1, 2, 3",
                (study_id,)):
            out.setdefault(config, {})[(model, seed)] = n
        return out

    def items_frame(self, study: str | None = None) -> pd.DataFrame:
        """Every item of a study with its full (unblinded) content; for researchers only."""
        s = self.studies.resolve_study(study)
        df = pd.read_sql_query(
            "SELECT id AS item_id, dataset, sample_id, config, input, predicted_label, explanation, model,"
            " split_seed, gold_label, gold_explanations, prompt, metadata FROM items WHERE study_id = ? ORDER BY id",
            self.db.conn, params=(s["id"],),
        )
        for col in ("input", "gold_explanations", "metadata"):
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        return df
