"""The annotator's queue: which items each annotator is given, in which order, and what they may see of one.

In a k = all study every annotator's queue holds every item, filled by `sync_assignments`; in a k-of-N study it
grows one reservation at a time (the rules and their queries are annotate/core/assignment.py).
"""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Any

from annotate.core import assignment
from annotate.core.store.database import Database


class Queue:
    """The `assignments` table: queues, reservations and the blind view of a queued item."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def sync_assignments(self, conn: sqlite3.Connection, study_id: int, annotator_id: int | None = None) -> None:
        """Append each annotator's missing items to their queue, in an order random per annotator. In a k-of-N
        study queues grow one claim at a time instead; only ratings imported from elsewhere are entered. Never
        the blank items a ratings import created (see QUEUEABLE)."""
        if assignment.read_settings(conn, study_id).overlap is not None:
            missing = conn.execute(
                "SELECT r.annotator_id, r.item_id, r.submitted_at FROM ratings r"
                " JOIN annotators n ON n.id = r.annotator_id WHERE n.study_id = ? AND NOT EXISTS"
                " (SELECT 1 FROM assignments a WHERE a.annotator_id = r.annotator_id AND a.item_id = r.item_id)"
                " ORDER BY r.annotator_id, r.id", (study_id,)).fetchall()
            for aid, item_id, submitted_at in missing:
                conn.execute("INSERT INTO assignments (annotator_id, item_id, position, answered_at) VALUES"
                             " (?, ?, (SELECT COALESCE(MAX(position) + 1, 0) FROM assignments"
                             " WHERE annotator_id = ?), ?)", (aid, item_id, aid, submitted_at))
            return
        annotators = conn.execute(
            "SELECT id, name FROM annotators WHERE study_id = ?" + (" AND id = ?" if annotator_id else ""),
            (study_id, annotator_id) if annotator_id else (study_id,),
        ).fetchall()
        for aid, name in annotators:
            missing = [r[0] for r in conn.execute(
                f"SELECT id FROM items WHERE study_id = ? AND {assignment.QUEUEABLE} AND id NOT IN "
                "(SELECT item_id FROM assignments WHERE annotator_id = ?) ORDER BY id", (study_id, aid))]
            if not missing:
                continue
            start = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM assignments WHERE annotator_id = ?",
                                 (aid,)).fetchone()[0]
            random.Random(f"{study_id}:{name}:{start}").shuffle(missing)
            answered = dict(conn.execute(
                "SELECT item_id, submitted_at FROM ratings WHERE annotator_id = ?", (aid,)).fetchall())
            conn.executemany(
                "INSERT INTO assignments (annotator_id, item_id, position, answered_at) VALUES (?, ?, ?, ?)",
                [(aid, item, start + i, answered.get(item)) for i, item in enumerate(missing)],
            )

    def queue_length(self, annotator_id: int) -> int:
        """Items in the annotator's queue; in a k-of-N study, plus those they could still be given."""
        conn = self.db.conn
        held = conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?", (annotator_id,)).fetchone()[0]
        return held + assignment.remaining(conn, annotator_id)

    def answered_count(self, annotator_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ? AND answered_at IS NOT NULL",
                               (annotator_id,)).fetchone()[0]

    def next_unanswered(self, annotator_id: int, after: int = -1) -> int | None:
        """Position of the first unanswered item after `after` (wrapping round to the start), or None when done.

        In a k-of-N study this reserves the next item when the annotator holds none after `after`."""
        conn = self.db.conn
        if assignment.read_settings(conn, assignment.study_of(conn, annotator_id)).overlap is not None:
            with self.db.transaction() as tx:
                pos = assignment.own_open(tx, annotator_id, after)
                if pos is None:
                    pos = assignment.claim(tx, annotator_id)
                if pos is None:
                    pos = assignment.own_open(tx, annotator_id, -1)
                return pos
        for sql, arg in (("position > ?", after), ("position <= ?", after)):
            row = conn.execute(
                f"SELECT position FROM assignments WHERE annotator_id = ? AND answered_at IS NULL AND {sql}"
                " ORDER BY position LIMIT 1", (annotator_id, arg)).fetchone()
            if row:
                return row[0]
        return None

    def queue_number(self, annotator_id: int, position: int) -> int:
        """The number the annotator sees for a queue position ("Item N"), counted past positions that left it."""
        return assignment.queue_number(self.db.conn, annotator_id, position)

    def neighbour(self, annotator_id: int, position: int | None, step: int) -> int | None:
        """The annotator's queue position before (step -1) or after (+1) `position` (None: from the end or the
        start), or None."""
        return assignment.neighbour(self.db.conn, annotator_id, position, -1 if step < 0 else 1)

    def holds_most_open(self, annotator_id: int) -> bool:
        """Whether the annotator holds as many unanswered items as a k-of-N study lets anyone hold at once."""
        conn = self.db.conn
        if assignment.read_settings(conn, assignment.study_of(conn, annotator_id)).overlap is None:
            return False
        return assignment.open_count(conn, annotator_id) >= assignment.MAX_OPEN

    def annotator_item(self, annotator_id: int, position: int) -> dict[str, Any] | None:
        """What an annotator may see of the item at `position` in their own queue: no config, model or metadata."""
        row = self.db.execute(
            """SELECT i.id, i.dataset, i.input, i.predicted_label, i.explanation,
                      r.rating, r.tags, r.comment, r.revision
               FROM assignments a JOIN items i ON i.id = a.item_id
               LEFT JOIN ratings r ON r.item_id = a.item_id AND r.annotator_id = a.annotator_id
               WHERE a.annotator_id = ? AND a.position = ?""", (annotator_id, position)).fetchone()
        if row is None:
            return None
        item = {"item_id": row[0], "position": position, "dataset": row[1], "input": json.loads(row[2]),
                "predicted_label": row[3], "explanation": row[4], "answer": None}
        if row[5] is not None:
            item["answer"] = {"rating": row[5], "tags": [t for t in row[6].split(";") if t], "comment": row[7],
                              "revision": row[8]}
        return item
