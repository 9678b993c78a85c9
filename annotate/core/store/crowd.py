"""Crowd joining: join links, workers bound to their browser or a resume code, and the finished screen.

The rules themselves (tokens, worker names, address keys, limits) are annotate/core/crowd.py; this module holds
their queries.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from annotate.core import auth, crowd
from annotate.core.errors import TooManyAttempts
from annotate.core.schema import now_iso
from annotate.core.store.annotators import Annotators
from annotate.core.store.database import Database
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies


def _new_code() -> tuple[str, str]:
    """A new access (or resume) code and its hash."""
    code = auth.new_access_code()
    return code, auth.hash_code(code)


class Crowd:
    """Joining columns of `study_settings`, the `crowd_joins` table, and the annotators who joined."""

    def __init__(self, db: Database, studies: Studies, queue: Queue, annotators: Annotators) -> None:
        self.db, self.studies, self.queue, self.annotators = db, studies, queue, annotators

    def open_joining(self, study: str | None = None, *, max_joined: int | None = None,
                     joins_per_address: int | None = crowd.DEFAULT_JOINS_PER_ADDRESS) -> str:
        """Open crowd joining with a new secret token (returned once; earlier links stop working); at most
        `max_joined` workers, and at most `joins_per_address` new workers from one client address (0 or None: no
        limit)."""
        if max_joined is not None and max_joined < 1:
            raise ValueError(f"max_joined must be at least 1, got {max_joined}")
        per_address = crowd.check_joins_per_address(joins_per_address)
        s = self.studies.resolve_study(study)
        token = crowd.new_token()
        with self.db.transaction() as conn:
            # As in configure_study: a study without a settings row keeps k = all.
            conn.execute("INSERT OR IGNORE INTO study_settings (study_id, overlap) VALUES (?, NULL)", (s["id"],))
            conn.execute("UPDATE study_settings SET join_token_hash = ?, join_open = 1, max_joined = ?,"
                         " joins_per_address = ? WHERE study_id = ?",
                         (crowd.hash_token(token), max_joined, per_address, s["id"]))
        return token

    def close_joining(self, study: str | None = None) -> None:
        """End joining: join links stop working, also for workers who joined earlier."""
        s = self.studies.resolve_study(study)
        with self.db.transaction() as conn:
            conn.execute("UPDATE study_settings SET join_open = 0 WHERE study_id = ?", (s["id"],))

    def join(self, study: str, token: str, pid: str | None, client: str = "local", *,
             browser_annotator: int | None = None, resume_code: str | None = None) -> dict[str, Any]:
        """The crowd worker for a join link: the annotator named crowd.worker_name(pid), created on the first visit
        with a resume code (returned that once, as "resume_code"), resumed later only from the browser bound to
        them (`browser_annotator`: the annotator this browser's session or resume cookie proves) or with
        `resume_code`; ResumeNeeded otherwise.

        JoinRefused with a plain message, and no annotator written, for an unknown study, a wrong or closed token,
        a bad pid, a full study, a client address that already joined the study's `joins_per_address` workers, or
        a client that sent too many wrong links or resume codes (auth.begin_attempt, decided and recorded in the
        same transaction before the token or the code is compared)."""
        pid = crowd.check_pid(pid)
        name = crowd.worker_name(pid)
        fresh = _new_code() if self._may_get_a_code(study, token, name, client) else None
        refused: str | None = None
        try:
            with self.db.transaction() as conn:
                attempt = auth.begin_attempt(conn, auth.join_attempt_key(str(study or "")), client)
                s = self.studies.get_study(study) if study else None
                row = None if s is None else conn.execute(
                    "SELECT join_token_hash, join_open, max_joined, joins_per_address FROM study_settings"
                    " WHERE study_id = ?", (s["id"],)).fetchone()
                if s is None:
                    refused = "This study does not exist. Check the link you were given."
                elif row is None or not crowd.token_matches(str(token or ""), row[0]):
                    refused = "This join link is not valid. Check the link you were given."
                else:
                    auth.finish_attempt(conn, attempt, True)
                    worker = self._join_checked(conn, s, row, name, client, fresh)
                    code_hash = worker.pop("code_hash")
                    if "resume_code" in worker or worker["id"] == browser_annotator:
                        return worker
                    if not (resume_code or "").strip():  # rolls back: a right link that needs a code records nothing
                        raise crowd.ResumeNeeded(
                            "This worker ID has already started in another browser. To continue here, enter the "
                            "resume code you were shown when you started, or go back to that browser. If you no "
                            "longer have the code, contact the researcher.")
                    try:
                        code_attempt = auth.begin_attempt(conn, auth.annotator_attempt_key(name), client)
                    except TooManyAttempts as e:
                        raise crowd.ResumeNeeded(f"Too many wrong resume codes from this address; try again in "
                                                 f"{math.ceil(e.wait_seconds)} s.") from None
        except TooManyAttempts as e:
            raise crowd.JoinRefused(f"Too many wrong join links from this address; try again in "
                                    f"{math.ceil(e.wait_seconds)} s.") from None
        if refused is not None:
            # Committed above: the failed attempt counts; nothing else was written.
            raise crowd.JoinRefused(refused)
        # The code is compared like an access code: after its attempt was recorded, outside the write lock.
        ok = len(resume_code) <= auth.MAX_CODE_CHARS and auth.verify_code(resume_code.strip(), code_hash)
        with self.db.transaction() as conn:
            auth.finish_attempt(conn, code_attempt, ok)
        if not ok:
            raise crowd.ResumeNeeded("That resume code is not right. Check it and try again, or contact the "
                                     "researcher.")
        return worker

    def _may_get_a_code(self, study: str, token: str, name: str, client: str) -> bool:
        """Whether `join` will likely create the worker `name` or give them their first resume code: then its scrypt
        hash is made before the write lock is taken. A read only, so a wrong token, a closed or full study or an
        address at its limit never costs a hash; `join` decides again in its transaction."""
        s = self.studies.get_study(study) if study else None
        row = None if s is None else self.db.execute(
            "SELECT join_token_hash, join_open, max_joined, joins_per_address FROM study_settings WHERE study_id = ?",
            (s["id"],)).fetchone()
        if row is None or not row[1] or not crowd.token_matches(str(token or ""), row[0]):
            return False
        known = self.annotators.named(name)
        if known is not None:
            return known["code_hash"] is None
        joined, from_here = self.db.execute(
            "SELECT (SELECT COUNT(*) FROM annotators WHERE study_id = ? AND joined = 1),"
            " (SELECT COUNT(*) FROM crowd_joins WHERE study_id = ? AND address = ?)",
            (s["id"], s["id"], crowd.address_key(s["id"], client))).fetchone()
        return (row[2] is None or joined < row[2]) and (not row[3] or from_here < row[3])

    def _join_checked(self, conn: sqlite3.Connection, s: dict[str, Any], row: tuple, name: str, client: str,
                      fresh: tuple[str, str] | None) -> dict[str, Any]:
        """`join` once the token matched, in its transaction (a refusal here rolls the attempt back too): the worker
        named `name` with their code hash, created when new and counted against the client's address. A worker
        without a resume code (new, or joined before there were any) gets `fresh`, returned as "resume_code"."""
        if not row[1]:
            raise crowd.JoinRefused("This study is closed to new and returning participants.")
        key = auth.name_key(name)
        same = [r for r in conn.execute("SELECT id, name, study_id, joined, code_hash FROM annotators")
                if auth.name_key(r[1]) == key]
        if same:
            aid, found, study_id, joined, code_hash = same[0]
            if study_id != s["id"] or not joined:
                raise crowd.JoinRefused("This worker ID cannot join this study. Contact the researcher.")
            worker = {"id": aid, "name": found, "study_id": study_id, "code_hash": code_hash}
            if code_hash is None:  # joined before resume codes existed: this visit binds the worker's browser
                code, worker["code_hash"] = fresh or _new_code()
                conn.execute("UPDATE annotators SET code_hash = ? WHERE id = ?", (worker["code_hash"], aid))
                worker["resume_code"] = code
            return worker
        n_joined = conn.execute("SELECT COUNT(*) FROM annotators WHERE study_id = ? AND joined = 1",
                                (s["id"],)).fetchone()[0]
        if row[2] is not None and n_joined >= row[2]:
            raise crowd.JoinRefused("This study is full: it has all the participants it needs. Thank you.")
        address = crowd.address_key(s["id"], client)
        if row[3] and conn.execute("SELECT COUNT(*) FROM crowd_joins WHERE study_id = ? AND address = ?",
                                   (s["id"], address)).fetchone()[0] >= row[3]:
            raise crowd.JoinRefused("This study has all the participants it takes from one network address. If you "
                                    "share a connection with other participants, contact the researcher.")
        code, code_hash = fresh or _new_code()
        ts = now_iso()
        aid = self.db["annotators"].insert({"study_id": s["id"], "name": name, "code_hash": code_hash,
                                            "created_at": ts, "joined": 1}).last_pk
        conn.execute("INSERT INTO crowd_joins (annotator_id, study_id, address, joined_at) VALUES (?, ?, ?, ?)",
                     (aid, s["id"], address, ts))
        self.queue.sync_assignments(conn, s["id"], aid)
        return {"id": aid, "name": name, "study_id": s["id"], "code_hash": code_hash, "resume_code": code}

    def finish(self, annotator_id: int) -> dict[str, Any] | None:
        """None while the annotator has something left to answer (this may reserve their next item). Else what the
        finished page tells them: `answered` (items, checks included), `code_min_answers`, `has_code` (the study
        has a completion code) and `completion_code` / `redirect_url`, the code only when they earned it: at least
        `code_min_answers` answers, or their whole quota (`max_per_annotator`) of regular items."""
        if self.queue.next_unanswered(annotator_id) is not None:
            return None
        row = self.db.execute(
            "SELECT t.completion_code, t.redirect_url, t.code_min_answers, t.max_per_annotator FROM study_settings t"
            " JOIN annotators a ON a.study_id = t.study_id WHERE a.id = ?", (annotator_id,)).fetchone()
        code, redirect, min_answers, quota = row or (None, None, crowd.DEFAULT_CODE_MIN_ANSWERS, None)
        answered = self.queue.answered_count(annotator_id)
        regular = self.db.execute(
            "SELECT COUNT(*) FROM assignments a JOIN items i ON i.id = a.item_id WHERE a.annotator_id = ?"
            " AND a.answered_at IS NOT NULL AND i.expected_rating IS NULL", (annotator_id,)).fetchone()[0] \
            if quota else 0
        earned = answered >= min_answers or bool(quota) and regular >= quota
        return {"answered": answered, "code_min_answers": min_answers, "has_code": code is not None,
                "completion_code": code if earned else None, "redirect_url": redirect if earned else None}

    def completion(self, annotator_id: int) -> dict[str, Any] | None:
        """The study's completion code and redirect URL once the annotator has nothing left to rate and has earned
        the code (`finish`), else None."""
        done = self.finish(annotator_id)
        if done is None or done["completion_code"] is None:
            return None
        return {"completion_code": done["completion_code"], "redirect_url": done["redirect_url"]}
