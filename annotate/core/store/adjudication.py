"""Adjudication: a researcher's final answer where annotators disagree, and the kind of disagreement."""

from __future__ import annotations

import pandas as pd

from annotate.core.scale import RATINGS
from annotate.core.schema import now_iso
from annotate.core.store.database import Database
from annotate.core.store.studies import Studies

DISAGREEMENT_KINDS = ("perception", "position", "expectation", "other")


class Adjudication:
    """The `adjudications` table."""

    def __init__(self, db: Database, studies: Studies) -> None:
        self.db, self.studies = db, studies

    def set_adjudication(self, item_id: int, final_rating: str, kind: str, note: str = "",
                         decided_by: str | None = None) -> None:
        """Record a researcher's final answer for an item where annotators disagree, and the kind of disagreement."""
        if final_rating not in RATINGS:
            raise ValueError(f"unknown rating {final_rating!r}; expected one of {', '.join(RATINGS)}")
        if kind not in DISAGREEMENT_KINDS:
            raise ValueError(f"unknown disagreement kind {kind!r}; expected one of {', '.join(DISAGREEMENT_KINDS)}")
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO adjudications (item_id, final_rating, kind, note, decided_by, decided_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET final_rating = excluded.final_rating,"
                " kind = excluded.kind, note = excluded.note, decided_by = excluded.decided_by,"
                " decided_at = excluded.decided_at",
                (item_id, final_rating, kind, note, decided_by, now_iso()))

    def adjudications_frame(self, study: str | None = None) -> pd.DataFrame:
        s = self.studies.resolve_study(study)
        return pd.read_sql_query(
            """SELECT j.item_id, i.dataset, i.sample_id, i.config, j.final_rating, j.kind, j.note, j.decided_by,
                      j.decided_at
               FROM adjudications j JOIN items i ON i.id = j.item_id WHERE i.study_id = ? ORDER BY j.item_id""",
            self.db.conn, params=(s["id"],))
