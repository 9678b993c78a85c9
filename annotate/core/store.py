"""The annotation store: one class over `sqlite_utils.Database` that owns every query of the annotation database.

The schema lives in `schema.py` (named migrations), access codes and sign-in limits in `auth.py`, the export
format in `exporting.py`, and the steps of an import in `importing.py`; this class ties them to one connection.
Writes go through `Store._transaction()` (BEGIN IMMEDIATE ... COMMIT), so that writers queue on the busy
timeout instead of failing when a deferred transaction tries to upgrade. sqlite-utils (4.x) nests its own
writes inside that transaction as savepoints, so its table helpers are used for plain inserts; reads hand out
plain dicts and DataFrames.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlite_utils

from annotate.core import assignment, auth, crowd, importing, limits
from annotate.core.errors import AccessDenied, InputFileError, RuleViolation, TooManyAttempts
from annotate.core.exporting import EXPORT_COLUMNS, ratings_bytes
from annotate.core.formats import NLE, RatingRow, read_nle_file, read_ratings_csv
from annotate.core.importing import GOLD_CONFIG, ImportResult
from annotate.core.pairwise_store import PairwiseStoreMixin
from annotate.core.scale import DEFAULT_TAGS, QUESTION, RATINGS, Guidelines, Rules, score
from annotate.core.schema import migrate, now_iso

__all__ = ["DISAGREEMENT_KINDS", "EXPORT_COLUMNS", "GOLD_CONFIG", "ImportResult", "Store"]

DISAGREEMENT_KINDS = ("perception", "position", "expectation", "other")
# Items an annotator may be asked to rate: all but those a ratings import created without the row carrying
# input, predicted_label and explanation (they would show a blank item).


class _Holder:
    """One thread's connection; closed when the thread (and so its thread-local) goes away."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.db = conn, sqlite_utils.Database(conn)

    def __del__(self) -> None:
        self.conn.close()


class _NoLock:
    """A stand-in for the lock when every thread has its own connection (SQLite itself serialises writers)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _begin_immediate(conn: sqlite3.Connection, timeout_s: float) -> None:
    """BEGIN IMMEDIATE, retried while SQLite reports the database busy or locked, up to `timeout_s`.

    The busy handler already waits, but SQLite skips it in some cases (e.g. a WAL snapshot that must be reset),
    which surfaced as "database is locked" after 0.000 s; a writer must queue, never fail, while others write.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# One write lock per database file and process. Streamlit sessions each hold a Store, and their writers used to
# meet only in SQLite's busy handler, which sleeps with back-off (up to 100 ms a try) while the writer it waits
# for runs Python between statements; 10 threads measured p99 130 ms, worst 730 ms per transaction. Queued
# here, a writer starts the moment the one before commits (p99 31 ms, worst 52 ms). Other processes (the CLI)
# still meet in the busy handler and `_begin_immediate`'s retries.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
# Every submitted answer, rating or pairwise preference, for the researcher's progress figures.
_ANSWERS = ("(SELECT annotator_id, item_id, submitted_at, seconds FROM ratings"
            " UNION ALL SELECT annotator_id, item_id, submitted_at, seconds FROM preferences)")


def _write_lock(path: str) -> threading.RLock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(os.path.realpath(path), threading.RLock())


class Store(PairwiseStoreMixin):
    """All reads and writes of the annotation database (pairwise studies: pairwise_store.py)."""

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_ms: int = 30_000) -> None:
        self.path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        # One sqlite3 connection per thread: Streamlit runs overlapping script runs of one session on different
        # threads, and two threads on one connection share its transaction state ("cannot start a transaction
        # within a transaction", dirty reads of the other thread's uncommitted writes). An in-memory database
        # exists only inside its one connection, so it keeps a single connection (tests only).
        self._local = threading.local()
        # Weak: a connection closes when its thread ends (Streamlit starts a thread per burst of reruns).
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._shared: sqlite3.Connection | None = None
        if self.path == ":memory:":
            self._shared = self._connect()
        self._lock = threading.RLock() if self._shared is not None else _NoLock()
        # An in-memory database is private to this Store: its own lock is the write lock.
        self._writer = _write_lock(self.path) if self._shared is None else self._lock
        self.migrate()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves so writers queue on the busy timeout
        # instead of failing with "database is locked" when a deferred transaction tries to upgrade.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL loses no committed transaction on a process crash (only on power loss).
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._shared is not None:
            return self._shared
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = _Holder(self._connect())
            self._holders.add(holder)
        return holder.conn

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over this thread's connection."""
        if self._shared is not None:
            if not hasattr(self, "_shared_db"):
                self._shared_db = sqlite_utils.Database(self._shared)
            return self._shared_db
        self.conn  # noqa: B018 - opens this thread's connection and its Database
        return self._local.holder.db

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
        for holder in list(self._holders):
            holder.conn.close()
        self._holders = weakref.WeakSet()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- infrastructure ------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        timeout_s = self._busy_timeout_ms / 1000
        with self._lock:
            if not self._writer.acquire(timeout=timeout_s):
                raise sqlite3.OperationalError(f"database is locked (another writer for more than {timeout_s:g} s)")
            try:
                conn = self.conn
                _begin_immediate(conn, timeout_s)
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                else:
                    conn.execute("COMMIT")
            finally:
                self._writer.release()

    def migrate(self) -> list[str]:
        """Apply pending named migrations (schema.MIGRATIONS); returns the names applied."""
        return migrate(self.db, self.path, self._transaction)

    def _one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def backup(self, out: str | Path) -> Path:
        """Copy the database with SQLite's online backup API; safe while annotators are writing."""
        out = Path(out)
        if out.exists():
            raise FileExistsError(f"{out} already exists; choose a new file name")
        dest = sqlite3.connect(str(out))
        try:
            with self._lock:
                self.conn.backup(dest)
        finally:
            dest.close()
        return out

    def backup_bytes(self) -> bytes:
        """A consistent copy of the whole database as bytes (the researcher page's download)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self.backup(Path(tmp) / "backup.db").read_bytes()

    def counts(self) -> dict[str, int]:
        """Row count of every table (used to show that a rejected import changed nothing)."""
        return {t: self.db[t].count for t in self.db.table_names()}

    # -- studies -------------------------------------------------------------------------------------------------

    def create_study(
        self,
        name: str,
        *,
        question: str = QUESTION,
        tags: list[str] | tuple[str, ...] = DEFAULT_TAGS,
        rules: Rules | dict | None = None,
        guidelines: Guidelines | None = None,
    ) -> dict[str, Any]:
        """Create a rating study; ValueError when the name exists or the settings are inconsistent."""
        if not name or not name.strip():
            raise ValueError("study name must not be empty")
        rules = rules if isinstance(rules, Rules) else Rules.from_dict(rules)
        bad = [t for t in tags if ";" in t or not t.strip()]
        if bad:
            raise ValueError(f"shortcoming tags must be non-empty and contain no ';': {bad}")
        for tag in rules.exclusive_tags:
            if tag not in tags:
                raise ValueError(f"rules.exclusive_tags: {tag!r} is not one of the study's tags")
        if self.get_study(name) is not None:
            raise ValueError(f"study {name!r} already exists")
        with self._transaction():
            self._insert_study(name, question, tags, rules, guidelines or Guidelines())
        return self.get_study(name)  # type: ignore[return-value]

    def _insert_study(self, name: str, question: str = QUESTION, tags: list[str] | tuple[str, ...] = DEFAULT_TAGS,
                      rules: Rules | None = None, guidelines: Guidelines | None = None) -> int:
        """The one INSERT of a study (inside the caller's transaction); returns its id."""
        g = guidelines or Guidelines()
        study_id = self.db["studies"].insert({
            "name": name, "question": question, "scale": json.dumps(list(RATINGS)), "tags": json.dumps(list(tags)),
            "rules": json.dumps((rules or Rules()).to_dict()), "guidelines": json.dumps(g.__dict__),
            "guidelines_version": g.version, "created_at": now_iso(),
        }).last_pk
        # Every new study, however created (import, pairwise, import-ratings, the demo), starts at k = 2.
        self.conn.execute("INSERT INTO study_settings (study_id, overlap) VALUES (?, ?)",
                          (study_id, assignment.DEFAULT_OVERLAP))
        return study_id

    @staticmethod
    def _study_row(row: dict[str, Any]) -> dict[str, Any]:
        row = dict(row)
        for key in ("scale", "tags", "rules", "guidelines"):
            row[key] = json.loads(row[key])
        return row

    def get_study(self, name: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM studies WHERE name = ?", (name,))
        return self._study_row(row) if row else None

    def study_by_id(self, study_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM studies WHERE id = ?", (study_id,))
        if row is None:
            raise KeyError(f"no study with id {study_id}")
        return self._study_row(row)

    def studies(self) -> list[dict[str, Any]]:
        return [self._study_row(r) for r in self.db.query("SELECT * FROM studies ORDER BY id")]

    def resolve_study(self, name: str | None) -> dict[str, Any]:
        """The named study, or the only one when no name is given; ValueError otherwise."""
        if name is not None:
            study = self.get_study(name)
            if study is None:
                known = ", ".join(s["name"] for s in self.studies()) or "none"
                raise ValueError(f"unknown study {name!r} (studies in this database: {known})")
            return study
        return self.get_study(self.target_study(None))  # type: ignore[return-value]

    def target_study(self, name: str | None, *, create: bool = False) -> str:
        """The one rule for "which study": the name given, else the only study; with `create`, an empty database
        gets "default". ValueError when several studies exist and none is named, or none exists."""
        if name is not None:
            return name
        names = [s["name"] for s in self.studies()]
        if len(names) == 1:
            return names[0]
        if not names:
            if create:
                return "default"
            raise ValueError("this database has no study yet; import an NLE file first")
        raise ValueError("this database has several studies; name one with --study: " + ", ".join(names))

    def set_guidelines(self, study: str, guidelines: Guidelines) -> None:
        """Replace a study's guidelines; ratings made afterwards record the new version."""
        s = self.resolve_study(study)
        with self._transaction() as conn:
            conn.execute("UPDATE studies SET guidelines = ?, guidelines_version = ? WHERE id = ?",
                         (json.dumps(guidelines.__dict__), guidelines.version, s["id"]))

    # -- items ---------------------------------------------------------------------------------------------------

    def import_nles(self, path: str | Path, study: str | None = None, *, with_gold: bool = False,
                    data: bytes | None = None, allow_mixed: bool = False) -> ImportResult:
        """Import an NLE JSONL file (or `data`, an upload named `path`) into a study, all or nothing;
        re-importing the same file changes nothing. NLEs of another model or split_seed than a configuration
        already holds are refused (ValueError) unless `allow_mixed`; then they are listed in `mixed_sources`."""
        records = read_nle_file(path, data)
        study = self.target_study(study, create=True)
        importing.check_study_fields(path, records, study, {s["name"] for s in self.studies()})
        gold_skipped = 0
        if with_gold:
            records, gold_skipped = importing.with_gold_references(records)
        s = self.get_study(study)
        if s is not None and self.pairwise_setup(s["id"]) is not None:
            raise ValueError(f"study {study!r} is a pairwise study; import its NLE file with --pairwise A B")
        existing = self._item_contents(s["id"]) if s else {}
        result, new = importing.diff_items(path, records, existing, study)
        result.gold_skipped = gold_skipped
        result.mixed_sources = importing.mixed_sources(self._item_sources(s["id"]) if s else {}, new)
        if result.mixed_sources and not allow_mixed:
            raise ValueError(f"{path}: {result.mixed_sources[0]}; give them another config name, or pass "
                             "--allow-mixed to merge them (nothing was imported)")
        with self._transaction() as conn:
            study_id = s["id"] if s else self._insert_study(study)
            self.db["items"].insert_all(importing.item_rows(new, study_id, now_iso()))
            self._sync_assignments(conn, study_id)
        return result

    def _item_contents(self, study_id: int) -> dict[tuple[str, str, str], dict[str, Any]]:
        """(dataset, sample_id, config) -> the fields an import must not change, for a study's items."""
        return {(r["dataset"], r["sample_id"], r["config"]): r for r in self.db.query(
            "SELECT dataset, sample_id, config, explanation, predicted_label, input FROM items WHERE study_id = ?",
            (study_id,))}

    def _item_sources(self, study_id: int) -> dict[str, dict[tuple[str | None, int | None], int]]:
        """config -> (model, split_seed) -> number of items, for a study's items."""
        out: dict[str, dict[tuple[str | None, int | None], int]] = {}
        for config, model, seed, n in self.conn.execute(
                "SELECT config, model, split_seed, COUNT(*) FROM items WHERE study_id = ? GROUP BY 1, 2, 3",
                (study_id,)):
            out.setdefault(config, {})[(model, seed)] = n
        return out

    def _sync_assignments(self, conn: sqlite3.Connection, study_id: int, annotator_id: int | None = None) -> None:
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

    def items_frame(self, study: str | None = None) -> pd.DataFrame:
        """Every item of a study with its full (unblinded) content; for researchers only."""
        s = self.resolve_study(study)
        df = pd.read_sql_query(
            "SELECT id AS item_id, dataset, sample_id, config, input, predicted_label, explanation, model,"
            " split_seed, gold_label, gold_explanations, prompt, metadata FROM items WHERE study_id = ? ORDER BY id",
            self.conn, params=(s["id"],),
        )
        for col in ("input", "gold_explanations", "metadata"):
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        return df

    # -- annotators and access -----------------------------------------------------------------------------------

    def _annotator_named(self, name: str) -> dict[str, Any] | None:
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
        s = self.resolve_study(study)
        # Sign-in matches names case-insensitively, so "Bob" and "bob" would be indistinguishable there.
        if self._annotator_named(name) is not None:
            raise ValueError(f"annotator {name!r} already exists")
        code = code or auth.new_access_code()
        with self._transaction() as conn:
            aid = self.db["annotators"].insert({"study_id": s["id"], "name": name, "code_hash": auth.hash_code(code),
                                                "created_at": now_iso()}).last_pk
            self._sync_assignments(conn, s["id"], aid)
        return code

    def reset_code(self, name: str) -> str:
        """Give an annotator a new access code (the old one stops working); returns it. Names match as at sign-in."""
        row = self._annotator_named(name)
        if row is None:
            raise ValueError(f"unknown annotator {name!r}")
        code = auth.new_access_code()
        with self._transaction() as conn:
            conn.execute("UPDATE annotators SET code_hash = ?, session_generation = session_generation + 1"
                         " WHERE id = ?", (auth.hash_code(code), row["id"]))
        return code

    def end_sessions(self, annotator_id: int) -> None:
        """Sign an annotator out everywhere: every session and resume token issued so far stops working."""
        with self._transaction() as conn:
            conn.execute("UPDATE annotators SET session_generation = session_generation + 1 WHERE id = ?",
                         (annotator_id,))

    def session_generation(self, annotator_id: int) -> int | None:
        """The annotator's current session generation (None for an unknown id)."""
        row = self.conn.execute("SELECT session_generation FROM annotators WHERE id = ?", (annotator_id,)).fetchone()
        return row[0] if row else None

    def annotator_by_id(self, annotator_id: int) -> dict[str, Any] | None:
        """id, name, study_id, code hash, session generation, whether they joined by link and whether their study's
        joining is open (1, 0, or None without settings) of one annotator (for verifying session tokens)."""
        if not -(2**63) <= annotator_id < 2**63:  # SQLite's integer range; a bigger one raises OverflowError
            return None
        return self._one("SELECT id, name, study_id, code_hash, session_generation, joined,"
                         " (SELECT join_open FROM study_settings t WHERE t.study_id = annotators.study_id) AS join_open"
                         " FROM annotators WHERE id = ?", (annotator_id,))

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
        with self._transaction() as conn:
            attempt = auth.begin_attempt(conn, auth.annotator_attempt_key(name), client)
        ok = False
        if len(name) <= auth.MAX_NAME_CHARS and len(code) <= auth.MAX_CODE_CHARS:
            # Prefer an annotator with a code (one imported from ratings with the same name has none).
            row = self._annotator_named(name)
            ok = auth.verify_code(code.strip(), row["code_hash"] if row and row["code_hash"] else auth.DUMMY_HASH)
            # A crowd worker's code is a resume code, taken only with their join link (Store.join).
            ok = ok and row is not None and row["code_hash"] is not None and not row["joined"]
        with self._transaction() as conn:
            auth.finish_attempt(conn, attempt, ok)
        if not ok:
            raise AccessDenied("Name or access code not recognised.")
        return {"id": row["id"], "name": row["name"], "study_id": row["study_id"]}

    def check_admin_password(self, password: str, expected: str, client: str = "local") -> bool:
        """Whether `password` is the admin password, limited like annotator sign-ins under the admin's own key
        (no annotator name can lock the researcher out); raises TooManyAttempts."""
        with self._transaction() as conn:
            attempt = auth.begin_attempt(conn, auth.ADMIN_ATTEMPT_KEY, client)
        ok = hmac.compare_digest(password.encode()[:1024], expected.encode())
        with self._transaction() as conn:
            auth.finish_attempt(conn, attempt, ok)
        return ok

    # -- the annotator's queue (blind views) ---------------------------------------------------------------------

    def queue_length(self, annotator_id: int) -> int:
        """Items in the annotator's queue; in a k-of-N study, plus those they could still be given."""
        held = self.conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?",
                                 (annotator_id,)).fetchone()[0]
        return held + assignment.remaining(self.conn, annotator_id)

    def answered_count(self, annotator_id: int) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ? AND answered_at IS NOT NULL",
                                 (annotator_id,)).fetchone()[0]

    def next_unanswered(self, annotator_id: int, after: int = -1) -> int | None:
        """Position of the first unanswered item after `after` (wrapping round to the start), or None when done.

        In a k-of-N study this reserves the next item when the annotator holds none after `after`."""
        if assignment.read_settings(self.conn, assignment.study_of(self.conn, annotator_id)).overlap is not None:
            with self._transaction() as conn:
                pos = assignment.own_open(conn, annotator_id, after)
                if pos is None:
                    pos = assignment.claim(conn, annotator_id)
                if pos is None:
                    pos = assignment.own_open(conn, annotator_id, -1)
                return pos
        for sql, arg in (("position > ?", after), ("position <= ?", after)):
            row = self.conn.execute(
                f"SELECT position FROM assignments WHERE annotator_id = ? AND answered_at IS NULL AND {sql}"
                " ORDER BY position LIMIT 1", (annotator_id, arg)).fetchone()
            if row:
                return row[0]
        return None

    def queue_number(self, annotator_id: int, position: int) -> int:
        """The number the annotator sees for a queue position ("Item N"), counted past positions that left it."""
        return assignment.queue_number(self.conn, annotator_id, position)

    def neighbour(self, annotator_id: int, position: int | None, step: int) -> int | None:
        """The annotator's queue position before (step -1) or after (+1) `position` (None: from the end or the
        start), or None."""
        return assignment.neighbour(self.conn, annotator_id, position, -1 if step < 0 else 1)

    def holds_most_open(self, annotator_id: int) -> bool:
        """Whether the annotator holds as many unanswered items as a k-of-N study lets anyone hold at once."""
        if assignment.read_settings(self.conn, assignment.study_of(self.conn, annotator_id)).overlap is None:
            return False
        return assignment.open_count(self.conn, annotator_id) >= assignment.MAX_OPEN

    def annotator_item(self, annotator_id: int, position: int) -> dict[str, Any] | None:
        """What an annotator may see of the item at `position` in their own queue: no config, model or metadata."""
        row = self.conn.execute(
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
        with self._transaction() as conn:
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
            return self._write_rating(annotator_id, item_id, rating, tags, comment, seconds, now_iso(), ctx[2], "app",
                                      conn=conn)

    def _write_rating(self, annotator_id: int, item_id: int, rating: str, tags: list[str], comment: str,
                      seconds: float | None, submitted_at: str, guidelines_version: str | None, source: str,
                      conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        def write(c: sqlite3.Connection) -> dict[str, Any]:
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

        if conn is not None:
            return write(conn)
        with self._transaction() as c:
            return write(c)

    def history(self, annotator_id: int, item_id: int) -> list[dict[str, Any]]:
        """Every version of an annotator's answer to an item, oldest first."""
        return [dict(r, tags=[t for t in r["tags"].split(";") if t]) for r in self.db.query(
            "SELECT rating, score, tags, comment, seconds, submitted_at, guidelines_version, revision, source"
            " FROM rating_history WHERE annotator_id = ? AND item_id = ? ORDER BY id", (annotator_id, item_id))]

    # -- ratings out and in --------------------------------------------------------------------------------------

    def ratings_frame(self, study: str | None = None, *, extra: bool = False) -> pd.DataFrame:
        """One row per current rating with the export columns (plus ids and provenance when `extra`); attention
        checks are left out (see `attention_frame`)."""
        s = self.resolve_study(study)
        more = (", r.item_id, r.guidelines_version, r.revision, r.source" if extra else "")
        df = pd.read_sql_query(
            f"""SELECT i.dataset, i.sample_id, i.config, a.name AS annotator, r.rating, r.score, r.tags, r.comment,
                       r.seconds, r.submitted_at{more}
                FROM ratings r JOIN items i ON i.id = r.item_id JOIN annotators a ON a.id = r.annotator_id
                WHERE i.study_id = ? AND i.expected_rating IS NULL ORDER BY r.item_id, a.name""", self.conn,
            params=(s["id"],))
        return df

    def analysis_frames(self, study: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Lean read for analysis: (items: item_id, dataset, sample_id, config; ratings: item_id, annotator,
        rating, tags), attention checks left out. SQLite builds each column as one string (integers comma-separated, text as a JSON
        array), several times faster than a row-by-row fetch at a million ratings; text columns other than
        sample_id come back as categoricals."""
        def ints(text: str | None) -> np.ndarray:
            return np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64)

        s = self.resolve_study(study)
        row = self.conn.execute(
            "SELECT group_concat(id), json_group_array(dataset), json_group_array(sample_id),"
            " json_group_array(config) FROM items WHERE study_id = ? AND expected_rating IS NULL", (s["id"],)).fetchone()
        items = pd.DataFrame({"item_id": ints(row[0]), "dataset": pd.Categorical(json.loads(row[1])),
                              "sample_id": pd.Series(json.loads(row[2]), dtype=object),
                              "config": pd.Categorical(json.loads(row[3]))})
        names = dict(self.conn.execute("SELECT id, name FROM annotators WHERE study_id = ?", (s["id"],)).fetchall())
        cases = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(RATINGS))
        row = self.conn.execute(
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

    def export_bytes(self, study: str | None = None, fmt: str = "csv", *, raw: bool = False) -> bytes:
        """The ratings export (one row per rating, EXPORT_COLUMNS) as CSV or JSONL bytes; for a pairwise study,
        one row per pairwise answer (pairwise.EXPORT_PREFERENCE_COLUMNS). CSV cells are escaped for spreadsheets
        unless `raw`."""
        if self.pairwise_setup(self.resolve_study(study)["id"]) is not None:
            return self.export_preferences_bytes(study, fmt, raw=raw)
        return ratings_bytes(self.ratings_frame(study), fmt, raw=raw)

    def export(self, out: str | Path, fmt: str = "csv", study: str | None = None, *, raw: bool = False) -> int:
        """Write one row per rating as CSV or JSONL; returns the number of rows."""
        data = self.export_bytes(study, fmt, raw=raw)
        Path(out).write_bytes(data)
        if self.pairwise_setup(self.resolve_study(study)["id"]) is not None:
            return len(self.preferences_frame(study))
        return len(self.ratings_frame(study))

    def import_ratings(self, path: str | Path, study: str | None = None, *, data: bytes | None = None,
                       raw: bool = False) -> ImportResult:
        """Import ratings collected elsewhere (or `data`, an upload named `path`), all or nothing. Missing items and
        annotators are created (items queued for annotators only when the row carries input, predicted_label and
        explanation); answer/tag rules are not enforced, but violations are counted. `raw`: cells were written
        without the export's spreadsheet escaping."""
        target = self.target_study(study, create=True)
        s = self.get_study(target)
        if s is not None and self.pairwise_setup(s["id"]) is not None:
            raise ValueError(f"study {target!r} is a pairwise study; its answers need a `preference` column")
        rows = read_ratings_csv(path, s["tags"] if s else list(DEFAULT_TAGS), data, raw=raw)
        result = ImportResult(study=target)
        with self._transaction() as conn:
            study_id = s["id"] if s else self._insert_study(target)
            self._write_imported_ratings(conn, study_id, [(path, rows)], result)
            self._sync_assignments(conn, study_id)
        return result

    def import_rated_items(self, files: list[tuple[str | Path, list[NLE], list[RatingRow]]],
                           study: str | None = None, *, rules: Rules | None = None,
                           guidelines: Guidelines | None = None) -> ImportResult:
        """Items and their ratings that another reader parsed (e.g. `feb_mturk`), file by file, written in one
        transaction: all or nothing. Items are added as `import_nles` adds them (an existing one with other content
        is an error naming its file and line), ratings as `import_ratings` adds them, so re-importing the same
        files changes nothing. A study created here gets `rules` and `guidelines`."""
        target = self.target_study(study, create=True)
        s = self.get_study(target)
        if s is not None and self.pairwise_setup(s["id"]) is not None:
            raise ValueError(f"study {target!r} is a pairwise study; rated items cannot be imported into it")
        existing = self._item_contents(s["id"]) if s else {}
        result, new = ImportResult(study=target), []
        for path, records, _ in files:
            counts, added = importing.diff_items(path, records, existing, target)
            importing.add_counts(result, counts)
            new += added
        with self._transaction() as conn:
            study_id = s["id"] if s else self._insert_study(target, rules=rules, guidelines=guidelines)
            self.db["items"].insert_all(importing.item_rows(new, study_id, now_iso()))
            self._write_imported_ratings(conn, study_id, [(path, rows) for path, _, rows in files], result)
            self._sync_assignments(conn, study_id)
        return result

    def _write_imported_ratings(self, conn: sqlite3.Connection, study_id: int,
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
            aid = self._ensure_annotator(annotators, row, study_id, ts, result, path)
            importing.count_rule_violations(rules, row, result)
            old = current.get((aid, item_id))
            if old == (row.rating, ";".join(row.tags), row.comment or ""):
                result.ratings_unchanged += 1
                continue
            self._write_rating(aid, item_id, row.rating, row.tags, row.comment, row.seconds,
                               row.submitted_at or ts, gv, "import", conn=conn)
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

    def _ensure_annotator(self, annotators: dict[str, tuple[int, int]], row: RatingRow, study_id: int, ts: str,
                          result: ImportResult, path: str | Path) -> int:
        """The id of the rating's annotator (matched by auth.name_key), created without a code when new."""
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

    # -- k-of-N assignment, attention checks and crowd joining (issue 12 §1, §3, §4) ----------------------------

    def assignment_settings(self, study: str | None = None) -> assignment.AssignmentSettings:
        return assignment.read_settings(self.conn, self.resolve_study(study)["id"])

    def configure_study(self, study: str | None = None, **changes: Any) -> assignment.AssignmentSettings:
        """Change a study's assignment settings (overlap: int, None or 'all'; max_per_annotator; lapse_seconds;
        attention_tolerance), completion_code, redirect_url and code_min_answers (the fewest answers that earn the
        code); ValueError on an impossible value, nothing changed.

        Going from k = all to a number drops the unanswered queue entries (every annotator had every item);
        going back to all fills every queue again. Ratings are never touched."""
        s = self.resolve_study(study)
        known = {"overlap", "max_per_annotator", "lapse_seconds", "attention_tolerance", "completion_code",
                 "redirect_url", "code_min_answers"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown study settings: {sorted(unknown)}")
        old = assignment.read_settings(self.conn, s["id"])
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
        with self._transaction() as conn:
            # A study without a settings row predates them: it is k = all (NULL), not a new study's default.
            conn.execute("INSERT OR IGNORE INTO study_settings (study_id, overlap) VALUES (?, NULL)", (s["id"],))
            values = {**new.__dict__, **extra}
            conn.execute("UPDATE study_settings SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE study_id = ?",
                         (*values.values(), s["id"]))
            if old.overlap is None and new.overlap is not None:
                conn.execute("DELETE FROM assignments WHERE answered_at IS NULL AND annotator_id IN"
                             " (SELECT id FROM annotators WHERE study_id = ?)", (s["id"],))
            self._sync_assignments(conn, s["id"])
        return new

    def study_settings(self, study: str | None = None) -> dict[str, Any]:
        """Every setting of a study as a dict (never the join token itself, only whether joining is open)."""
        s = self.resolve_study(study)
        row = self._one("SELECT * FROM study_settings WHERE study_id = ?", (s["id"],)) or {}
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
        s = self.resolve_study(study)
        settings = assignment.read_settings(self.conn, s["id"])
        live_after = time.time() - settings.lapse_seconds
        per = pd.read_sql_query(
            f"""SELECT a.id, a.name, a.joined, a.code_hash IS NOT NULL AND a.joined = 0 AS can_sign_in, a.created_at,
                 (SELECT COUNT(*) FROM assignments x WHERE x.annotator_id = a.id AND (x.answered_at IS NOT NULL
                    OR x.reserved_at IS NULL OR x.reserved_at >= ?)) AS assigned,
                 (SELECT COUNT(*) FROM {_ANSWERS} r WHERE r.annotator_id = a.id) AS done,
                 (SELECT MAX(submitted_at) FROM {_ANSWERS} r WHERE r.annotator_id = a.id) AS last_activity
               FROM annotators a WHERE a.study_id = ? ORDER BY a.id""", self.conn, params=(live_after, s["id"]))
        seconds = pd.read_sql_query(
            f"SELECT r.annotator_id AS id, r.seconds FROM {_ANSWERS} r JOIN annotators a ON a.id = r.annotator_id"
            " WHERE a.study_id = ? AND r.seconds IS NOT NULL", self.conn, params=(s["id"],))
        medians = seconds.groupby("id")["seconds"].median()
        per["median_seconds"] = per["id"].map(medians)
        att = self.attention_frame(s["name"]).set_index("annotator")
        per["attention_checks"] = per["name"].map(att["checks"]).fillna(0).astype(int)
        per["attention_pass_rate"] = per["name"].map(att["pass_rate"])
        # Ratings and pairwise answers, as the triggers count them (migration 0005).
        counts = [r[0] for r in self.conn.execute(
            "SELECT rating_count FROM items WHERE study_id = ? AND expected_rating IS NULL", (s["id"],))]
        n_annotators = max(len(per), 1)
        k = settings.overlap if settings.overlap is not None else n_annotators
        complete = sum(c >= k for c in counts)
        needed = sum(max(k - c, 0) for c in counts)
        # ETA: ratings still needed over the pace of the last hour's ratings (None until there is a pace).
        recent = self.conn.execute(
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
        s = self.resolve_study(study)
        tolerance = assignment.read_settings(self.conn, s["id"]).attention_tolerance
        rows = self.conn.execute(
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

    def open_joining(self, study: str | None = None, *, max_joined: int | None = None,
                     joins_per_address: int | None = crowd.DEFAULT_JOINS_PER_ADDRESS) -> str:
        """Open crowd joining with a new secret token (returned once; earlier links stop working); at most
        `max_joined` workers, and at most `joins_per_address` new workers from one client address (0 or None: no
        limit)."""
        if max_joined is not None and max_joined < 1:
            raise ValueError(f"max_joined must be at least 1, got {max_joined}")
        per_address = crowd.check_joins_per_address(joins_per_address)
        s = self.resolve_study(study)
        token = crowd.new_token()
        with self._transaction() as conn:
            # As in configure_study: a study without a settings row keeps k = all.
            conn.execute("INSERT OR IGNORE INTO study_settings (study_id, overlap) VALUES (?, NULL)", (s["id"],))
            conn.execute("UPDATE study_settings SET join_token_hash = ?, join_open = 1, max_joined = ?,"
                         " joins_per_address = ? WHERE study_id = ?",
                         (crowd.hash_token(token), max_joined, per_address, s["id"]))
        return token

    def close_joining(self, study: str | None = None) -> None:
        """End joining: join links stop working, also for workers who joined earlier."""
        s = self.resolve_study(study)
        with self._transaction() as conn:
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
        fresh = self._new_code() if self._may_get_a_code(study, token, name, client) else None
        refused: str | None = None
        try:
            with self._transaction() as conn:
                attempt = auth.begin_attempt(conn, auth.join_attempt_key(str(study or "")), client)
                s = self.get_study(study) if study else None
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
        with self._transaction() as conn:
            auth.finish_attempt(conn, code_attempt, ok)
        if not ok:
            raise crowd.ResumeNeeded("That resume code is not right. Check it and try again, or contact the "
                                     "researcher.")
        return worker

    def _may_get_a_code(self, study: str, token: str, name: str, client: str) -> bool:
        """Whether `join` will likely create the worker `name` or give them their first resume code: then its scrypt
        hash is made before the write lock is taken. A read only, so a wrong token, a closed or full study or an
        address at its limit never costs a hash; `join` decides again in its transaction."""
        s = self.get_study(study) if study else None
        row = None if s is None else self.conn.execute(
            "SELECT join_token_hash, join_open, max_joined, joins_per_address FROM study_settings WHERE study_id = ?",
            (s["id"],)).fetchone()
        if row is None or not row[1] or not crowd.token_matches(str(token or ""), row[0]):
            return False
        known = self._annotator_named(name)
        if known is not None:
            return known["code_hash"] is None
        joined, from_here = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM annotators WHERE study_id = ? AND joined = 1),"
            " (SELECT COUNT(*) FROM crowd_joins WHERE study_id = ? AND address = ?)",
            (s["id"], s["id"], crowd.address_key(s["id"], client))).fetchone()
        return (row[2] is None or joined < row[2]) and (not row[3] or from_here < row[3])

    @staticmethod
    def _new_code() -> tuple[str, str]:
        """A new access (or resume) code and its hash."""
        code = auth.new_access_code()
        return code, auth.hash_code(code)

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
                code, worker["code_hash"] = fresh or self._new_code()
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
        code, code_hash = fresh or self._new_code()
        ts = now_iso()
        aid = self.db["annotators"].insert({"study_id": s["id"], "name": name, "code_hash": code_hash,
                                            "created_at": ts, "joined": 1}).last_pk
        conn.execute("INSERT INTO crowd_joins (annotator_id, study_id, address, joined_at) VALUES (?, ?, ?, ?)",
                     (aid, s["id"], address, ts))
        self._sync_assignments(conn, s["id"], aid)
        return {"id": aid, "name": name, "study_id": s["id"], "code_hash": code_hash, "resume_code": code}

    def finish(self, annotator_id: int) -> dict[str, Any] | None:
        """None while the annotator has something left to answer (this may reserve their next item). Else what the
        finished page tells them: `answered` (items, checks included), `code_min_answers`, `has_code` (the study
        has a completion code) and `completion_code` / `redirect_url`, the code only when they earned it: at least
        `code_min_answers` answers, or their whole quota (`max_per_annotator`) of regular items."""
        if self.next_unanswered(annotator_id) is not None:
            return None
        row = self.conn.execute(
            "SELECT t.completion_code, t.redirect_url, t.code_min_answers, t.max_per_annotator FROM study_settings t"
            " JOIN annotators a ON a.study_id = t.study_id WHERE a.id = ?", (annotator_id,)).fetchone()
        code, redirect, min_answers, quota = row or (None, None, crowd.DEFAULT_CODE_MIN_ANSWERS, None)
        answered = self.answered_count(annotator_id)
        regular = self.conn.execute(
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

    # -- adjudication --------------------------------------------------------------------------------------------

    def set_adjudication(self, item_id: int, final_rating: str, kind: str, note: str = "",
                         decided_by: str | None = None) -> None:
        """Record a researcher's final answer for an item where annotators disagree, and the kind of disagreement."""
        if final_rating not in RATINGS:
            raise ValueError(f"unknown rating {final_rating!r}; expected one of {', '.join(RATINGS)}")
        if kind not in DISAGREEMENT_KINDS:
            raise ValueError(f"unknown disagreement kind {kind!r}; expected one of {', '.join(DISAGREEMENT_KINDS)}")
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO adjudications (item_id, final_rating, kind, note, decided_by, decided_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET final_rating = excluded.final_rating,"
                " kind = excluded.kind, note = excluded.note, decided_by = excluded.decided_by,"
                " decided_at = excluded.decided_at",
                (item_id, final_rating, kind, note, decided_by, now_iso()))

    def adjudications_frame(self, study: str | None = None) -> pd.DataFrame:
        s = self.resolve_study(study)
        return pd.read_sql_query(
            """SELECT j.item_id, i.dataset, i.sample_id, i.config, j.final_rating, j.kind, j.note, j.decided_by,
                      j.decided_at
               FROM adjudications j JOIN items i ON i.id = j.item_id WHERE i.study_id = ? ORDER BY j.item_id""",
            self.conn, params=(s["id"],))
