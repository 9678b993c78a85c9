"""A study's settings (k-of-N assignment, attention checks, completion code) and the researcher's progress view."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from annotate.core import assignment, crowd
from annotate.core.scale import RATINGS
from annotate.core.store.database import Database
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies

# Every submitted answer, rating or pairwise preference, for the researcher's progress figures.
_ANSWERS = ("(SELECT annotator_id, item_id, submitted_at, seconds FROM ratings"
            " UNION ALL SELECT annotator_id, item_id, submitted_at, seconds FROM preferences)")


class Settings:
    """The `study_settings` table, and progress read across queues and answers."""

    def __init__(self, db: Database, studies: Studies, queue: Queue) -> None:
        self.db, self.studies, self.queue = db, studies, queue

    def assignment_settings(self, study: str | None = None) -> assignment.AssignmentSettings:
        return assignment.read_settings(self.db.conn, self.studies.resolve_study(study)["id"])

    def configure_study(self, study: str | None = None, **changes: Any) -> assignment.AssignmentSettings:
        """Change a study's assignment settings (overlap: int, None or 'all'; max_per_annotator; lapse_seconds;
        attention_tolerance), completion_code, redirect_url and code_min_answers (the fewest answers that earn the
        code); ValueError on an impossible value, nothing changed.

        Going from k = all to a number drops the unanswered queue entries (every annotator had every item);
        going back to all fills every queue again. Ratings are never touched."""
        s = self.studies.resolve_study(study)
        known = {"overlap", "max_per_annotator", "lapse_seconds", "attention_tolerance", "completion_code",
                 "redirect_url", "code_min_answers"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown study settings: {sorted(unknown)}")
        old = assignment.read_settings(self.db.conn, s["id"])
        fields = {f: changes.get(f, getattr(old, f)) for f in
                  ("overlap", "max_per_annotator", "lapse_seconds", "attention_tolerance")}
        if "overlap" in changes:
            fields["overlap"] = assignment.parse_overlap(changes["overlap"])
        new = assignment.AssignmentSettings(**fields)
        extra = {}
        if "completion_code" in changes:
            code = (changes["completion_code"] or "").strip()
            extra["completion_code"] = code or None
        if "redirect_url" in changes:
            extra["redirect_url"] = crowd.check_redirect(changes["redirect_url"])
        if "code_min_answers" in changes:
            extra["code_min_answers"] = crowd.check_code_min_answers(changes["code_min_answers"])
        with self.db.transaction() as conn:
            # A study without a settings row predates them: it is k = all (NULL), not a new study's default.
            conn.execute("INSERT OR IGNORE INTO study_settings (study_id, overlap) VALUES (?, NULL)", (s["id"],))
            values = {**new.__dict__, **extra}
            conn.execute("UPDATE study_settings SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE study_id = ?",
                         (*values.values(), s["id"]))
            if old.overlap is None and new.overlap is not None:
                conn.execute("DELETE FROM assignments WHERE answered_at IS NULL AND annotator_id IN"
                             " (SELECT id FROM annotators WHERE study_id = ?)", (s["id"],))
            self.queue.sync_assignments(conn, s["id"])
        return new

    def study_settings(self, study: str | None = None) -> dict[str, Any]:
        """Every setting of a study as a dict (never the join token itself, only whether joining is open)."""
        s = self.studies.resolve_study(study)
        row = self.db.one("SELECT * FROM study_settings WHERE study_id = ?", (s["id"],)) or {}
        return {"overlap": row.get("overlap"), "max_per_annotator": row.get("max_per_annotator"),
                "lapse_seconds": row.get("lapse_seconds", assignment.DEFAULT_LAPSE_SECONDS),
                "attention_tolerance": row.get("attention_tolerance", "exact"),
                "join_open": bool(row.get("join_open")), "max_joined": row.get("max_joined"),
                "joins_per_address": row.get("joins_per_address", crowd.DEFAULT_JOINS_PER_ADDRESS),
                "completion_code": row.get("completion_code"), "redirect_url": row.get("redirect_url"),
                "code_min_answers": row.get("code_min_answers", crowd.DEFAULT_CODE_MIN_ANSWERS)}

    def progress(self, study: str | None = None) -> dict[str, Any]:
        """The researcher's view of a study: per annotator assigned (answered + live reservations), done, median
        seconds per item, last activity, attention pass rate; and the study's complete k-sets with an ETA."""
        s = self.studies.resolve_study(study)
        conn = self.db.conn
        settings = assignment.read_settings(conn, s["id"])
        live_after = time.time() - settings.lapse_seconds
        per = pd.read_sql_query(
            f"""SELECT a.id, a.name, a.joined, a.code_hash IS NOT NULL AND a.joined = 0 AS can_sign_in, a.created_at,
                 (SELECT COUNT(*) FROM assignments x WHERE x.annotator_id = a.id AND (x.answered_at IS NOT NULL
                    OR x.reserved_at IS NULL OR x.reserved_at >= ?)) AS assigned,
                 (SELECT COUNT(*) FROM {_ANSWERS} r WHERE r.annotator_id = a.id) AS done,
                 (SELECT MAX(submitted_at) FROM {_ANSWERS} r WHERE r.annotator_id = a.id) AS last_activity
               FROM annotators a WHERE a.study_id = ? ORDER BY a.id""", conn, params=(live_after, s["id"]))
        seconds = pd.read_sql_query(
            f"SELECT r.annotator_id AS id, r.seconds FROM {_ANSWERS} r JOIN annotators a ON a.id = r.annotator_id"
            " WHERE a.study_id = ? AND r.seconds IS NOT NULL", conn, params=(s["id"],))
        medians = seconds.groupby("id")["seconds"].median()
        per["median_seconds"] = per["id"].map(medians)
        att = self.attention_frame(s["name"]).set_index("annotator")
        per["attention_checks"] = per["name"].map(att["checks"]).fillna(0).astype(int)
        per["attention_pass_rate"] = per["name"].map(att["pass_rate"])
        # Ratings and pairwise answers, as the triggers count them (migration 0005).
        counts = [r[0] for r in conn.execute(
            "SELECT rating_count FROM items WHERE study_id = ? AND expected_rating IS NULL", (s["id"],))]
        n_annotators = max(len(per), 1)
        k = settings.overlap if settings.overlap is not None else n_annotators
        complete = sum(c >= k for c in counts)
        needed = sum(max(k - c, 0) for c in counts)
        # ETA: ratings still needed over the pace of the last hour's ratings (None until there is a pace).
        recent = conn.execute(
            f"SELECT COUNT(*), MIN(submitted_at) FROM {_ANSWERS} r JOIN annotators a ON a.id = r.annotator_id"
            " WHERE a.study_id = ? AND r.submitted_at >= ?",
            (s["id"], (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)).isoformat(timespec="milliseconds"),
             )).fetchone()
        eta = None
        if needed == 0:
            eta = 0.0
        elif recent[0] >= 2:
            span = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(recent[1])).total_seconds()
            if span > 0:
                eta = needed / (recent[0] / span)
        return {"annotators": per.drop(columns=["id"]).to_dict("records"), "k": settings.overlap,
                "items": len(counts), "complete_sets": complete, "ratings_needed": needed, "eta_seconds": eta}

    def attention_frame(self, study: str | None = None) -> pd.DataFrame:
        """Per annotator: attention checks answered, passed (exact, or within one step when the study says so)
        and the pass rate."""
        s = self.studies.resolve_study(study)
        tolerance = assignment.read_settings(self.db.conn, s["id"]).attention_tolerance
        rows = self.db.execute(
            "SELECT a.name, r.rating, i.expected_rating FROM ratings r JOIN items i ON i.id = r.item_id"
            " JOIN annotators a ON a.id = r.annotator_id WHERE i.study_id = ? AND i.expected_rating IS NOT NULL",
            (s["id"],)).fetchall()
        step = 1 if tolerance == "within_one" else 0
        tally: dict[str, list[int]] = {}
        for name, rating, expected in rows:
            ok = any(abs(RATINGS.index(rating) - RATINGS.index(e)) <= step for e in json.loads(expected))
            t = tally.setdefault(name, [0, 0])
            t[0] += 1
            t[1] += ok
        return pd.DataFrame([{"annotator": n, "checks": c, "passed": p, "pass_rate": p / c}
                             for n, (c, p) in tally.items()], columns=["annotator", "checks", "passed", "pass_rate"])
