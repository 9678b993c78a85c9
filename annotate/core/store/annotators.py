"""Annotators and sign-in: access codes, sessions, the admin password, and the key that signs resume tokens."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from annotate.core import auth, crowd
from annotate.core.errors import AccessDenied, InputFileError
from annotate.core.formats import RatingRow
from annotate.core.importing import ImportResult
from annotate.core.schema import now_iso
from annotate.core.store.database import Database
from annotate.core.store.queue import Queue
from annotate.core.store.studies import Studies


class Annotators:
    """The `annotators` table and the sign-in attempts recorded against it."""

    def __init__(self, db: Database, studies: Studies, queue: Queue) -> None:
        self.db, self.studies, self.queue = db, studies, queue
        self._resume_key: bytes | None = None

    def named(self, name: str) -> dict[str, Any] | None:
        """The annotator whose name matches under auth.name_key (preferring one who can sign in), or None."""
        # Compared in Python: SQLite's lower() folds ASCII only, so "Émile" could never sign in.
        key = auth.name_key(name)
        rows = [r for r in self.db.query("SELECT id, name, study_id, code_hash, joined FROM annotators ORDER BY"
                                         " code_hash IS NULL, id") if auth.name_key(r["name"]) == key]
        return rows[0] if rows else None

    def add_annotator(self, name: str, study: str | None = None, *, code: str | None = None) -> str:
        """Create an annotator (in a k = all study, with every item queued); returns the access code (shown once)."""
        name = name.strip()
        if not name:
            raise ValueError("annotator name must not be empty")
        if crowd.is_worker_name(name):
            raise ValueError(f"annotator names starting with {crowd.WORKER_PREFIX!r} are kept for crowd workers who "
                             f"join by link; choose another name than {name!r}")
        s = self.studies.resolve_study(study)
        # Sign-in matches names case-insensitively, so "Bob" and "bob" would be indistinguishable there.
        if self.named(name) is not None:
            raise ValueError(f"annotator {name!r} already exists")
        code = code or auth.new_access_code()
        with self.db.transaction() as conn:
            aid = self.db["annotators"].insert({"study_id": s["id"], "name": name, "code_hash": auth.hash_code(code),
                                                "created_at": now_iso()}).last_pk
            self.queue.sync_assignments(conn, s["id"], aid)
        return code

    def ensure(self, annotators: dict[str, tuple[int, int]], row: RatingRow, study_id: int, ts: str,
               result: ImportResult, path: str | Path) -> int:
        """An import's annotator (matched by auth.name_key in `annotators`, name key -> (id, study id)), created
        without a code when new, inside the caller's transaction; InputFileError when they belong to another
        study."""
        key = auth.name_key(row.annotator)
        if key not in annotators:
            aid = self.db["annotators"].insert({"study_id": study_id, "name": row.annotator, "code_hash": None,
                                                "created_at": ts}).last_pk
            annotators[key] = (aid, study_id)
            result.annotators_created += 1
        aid, a_study = annotators[key]
        if a_study != study_id:
            raise InputFileError(path, row.line, "annotator", f"annotator {row.annotator!r} belongs to another study")
        return aid

    def reset_code(self, name: str) -> str:
        """Give an annotator a new access code (the old one stops working); returns it. Names match as at sign-in."""
        row = self.named(name)
        if row is None:
            raise ValueError(f"unknown annotator {name!r}")
        code = auth.new_access_code()
        with self.db.transaction() as conn:
            conn.execute("UPDATE annotators SET code_hash = ?, session_generation = session_generation + 1"
                         " WHERE id = ?", (auth.hash_code(code), row["id"]))
        return code

    def end_sessions(self, annotator_id: int) -> None:
        """Sign an annotator out everywhere: every session and resume token issued so far stops working."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE annotators SET session_generation = session_generation + 1 WHERE id = ?",
                         (annotator_id,))

    def session_generation(self, annotator_id: int) -> int | None:
        """The annotator's current session generation (None for an unknown id)."""
        row = self.db.execute("SELECT session_generation FROM annotators WHERE id = ?", (annotator_id,)).fetchone()
        return row[0] if row else None

    def resume_key(self) -> bytes:
        """The key that signs resume tokens: made once with the database (migration 0008), the same in every
        process that opens it, so a reload that reaches another server process still resumes."""
        if self._resume_key is None:
            (value,) = self.db.execute("SELECT value FROM secrets WHERE name = 'resume_tokens'").fetchone()
            self._resume_key = bytes.fromhex(value)
        return self._resume_key

    def annotator_by_id(self, annotator_id: int) -> dict[str, Any] | None:
        """id, name, study_id, code hash, session generation, whether they joined by link and whether their study's
        joining is open (1, 0, or None without settings) of one annotator (for verifying session tokens)."""
        if not -(2**63) <= annotator_id < 2**63:  # SQLite's integer range; a bigger one raises OverflowError
            return None
        return self.db.one("SELECT id, name, study_id, code_hash, session_generation, joined,"
                           " (SELECT join_open FROM study_settings t WHERE t.study_id = annotators.study_id)"
                           " AS join_open FROM annotators WHERE id = ?", (annotator_id,))

    def annotators(self, study: str | None = None) -> list[dict[str, Any]]:
        """Annotators with their progress; never their access codes."""
        where, params = ("WHERE s.name = ?", (study,)) if study else ("", ())
        return list(self.db.query(
            f"""SELECT a.id, a.name, s.name AS study, a.created_at, a.joined,
                -- a crowd worker's code is a resume code, taken only with their join link
                a.code_hash IS NOT NULL AND a.joined = 0 AS can_sign_in,
                (SELECT COUNT(*) FROM assignments x WHERE x.annotator_id = a.id) AS assigned,
                (SELECT COUNT(*) FROM ratings r WHERE r.annotator_id = a.id) AS answered,
                (SELECT MAX(submitted_at) FROM ratings r WHERE r.annotator_id = a.id) AS last_submitted_at
            FROM annotators a JOIN studies s ON s.id = a.study_id {where} ORDER BY a.id""", params))

    def authenticate(self, name: str, code: str, client: str = "local") -> dict[str, Any]:
        """The annotator for (name, code) signing in from `client` (an address); AccessDenied ("not recognised")
        or TooManyAttempts otherwise. The attempt is decided and recorded before the slow hash (auth.begin_attempt).
        """
        with self.db.transaction() as conn:
            attempt = auth.begin_attempt(conn, auth.annotator_attempt_key(name), client)
        ok = False
        if len(name) <= auth.MAX_NAME_CHARS and len(code) <= auth.MAX_CODE_CHARS:
            # Prefer an annotator with a code (one imported from ratings with the same name has none).
            row = self.named(name)
            ok = auth.verify_code(code.strip(), row["code_hash"] if row and row["code_hash"] else auth.DUMMY_HASH)
            # A crowd worker's code is a resume code, taken only with their join link (Store.join).
            ok = ok and row is not None and row["code_hash"] is not None and not row["joined"]
        with self.db.transaction() as conn:
            auth.finish_attempt(conn, attempt, ok)
        if not ok:
            raise AccessDenied("Name or access code not recognised.")
        return {"id": row["id"], "name": row["name"], "study_id": row["study_id"]}

    def check_admin_password(self, password: str, expected: str, client: str = "local") -> bool:
        """Whether `password` is the admin password, limited like annotator sign-ins under the admin's own key
        (no annotator name can lock the researcher out); raises TooManyAttempts."""
        with self.db.transaction() as conn:
            attempt = auth.begin_attempt(conn, auth.ADMIN_ATTEMPT_KEY, client)
        ok = hmac.compare_digest(password.encode()[:1024], expected.encode())
        with self.db.transaction() as conn:
            auth.finish_attempt(conn, attempt, ok)
        return ok
