"""The annotation database: one file, a connection per thread, writes in BEGIN IMMEDIATE under a write lock.

The nouns of the store (studies.py, items.py, ...) each hold this object, as sqlite-utils' `Table` holds its
`Database`. Writes go through `Database.transaction()` (BEGIN IMMEDIATE ... COMMIT), so that writers queue on the
busy timeout instead of failing when a deferred transaction tries to upgrade. sqlite-utils (4.x) nests its own
writes inside that transaction as savepoints, so its table helpers (`db["items"].insert(...)`) serve plain
inserts; reads hand out plain dicts and DataFrames. The schema lives in schema.py (named migrations).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import Table

from annotate.core.schema import migrate


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
    which surfaced as "database is locked" at once; a writer must queue, never fail, while others write.
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


# One write lock per database file and process. Streamlit sessions each hold a Store; queued here, a writer starts
# the moment the one before commits, where SQLite's busy handler would sleep with back-off while the writer it waits
# for runs Python between statements (docs/benchmarks.md). Other processes (the CLI) still meet in the busy handler
# and `_begin_immediate`'s retries.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: str) -> threading.RLock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(os.path.realpath(path), threading.RLock())


class Database:
    """The connection(s), the write transaction and the migrations of one annotation database."""

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_ms: int = 30_000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        # One sqlite3 connection per thread: Streamlit runs overlapping script runs of one session on different
        # threads, and two threads on one connection share its transaction state ("cannot start a transaction
        # within a transaction", dirty reads of the other thread's uncommitted writes). An in-memory database
        # exists only inside its one connection, so it keeps a single connection (tests only).
        self._local = threading.local()
        # Weak: a connection closes when its thread ends (Streamlit starts a thread per burst of reruns).
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._shared: sqlite3.Connection | None = None
        self._shared_db: sqlite_utils.Database | None = None
        if self.path == ":memory:":
            self._shared = self._connect()
            self._shared_db = sqlite_utils.Database(self._shared)
        self.lock = threading.RLock() if self._shared is not None else _NoLock()
        # An in-memory database is private to this object: its own lock is the write lock.
        self.writer = _write_lock(self.path) if self._shared is None else self.lock

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves so writers queue on the busy timeout
        # instead of failing with "database is locked" when a deferred transaction tries to upgrade.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL loses no committed transaction on a process crash (only on power loss).
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _holder(self) -> _Holder:
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = _Holder(self._connect())
            self._holders.add(holder)
        return holder

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        return self._shared if self._shared is not None else self._holder().conn

    @property
    def utils(self) -> sqlite_utils.Database:
        """sqlite-utils over this thread's connection."""
        return self._shared_db if self._shared_db is not None else self._holder().db

    def __getitem__(self, table: str) -> Table:
        return self.utils.table(table)

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params: tuple | dict = ()) -> Iterator[dict[str, Any]]:
        return self.utils.query(sql, params)

    def one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = list(self.query(sql, params))
        return rows[0] if rows else None

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
        for holder in list(self._holders):
            holder.conn.close()
        self._holders = weakref.WeakSet()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection, under the file's write lock; ROLLBACK on error."""
        timeout_s = self.busy_timeout_ms / 1000
        with self.lock:
            if not self.writer.acquire(timeout=timeout_s):
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
                self.writer.release()

    def migrate(self) -> list[str]:
        """Apply pending named migrations (schema.MIGRATIONS); returns the names applied."""
        return migrate(self.utils, self.path, self.transaction)

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def backup(self, out: str | Path) -> Path:
        """Copy the database with SQLite's online backup API; safe while annotators are writing."""
        out = Path(out)
        if out.exists():
            raise FileExistsError(f"{out} already exists; choose a new file name")
        dest = sqlite3.connect(str(out))
        try:
            with self.lock:
                self.conn.backup(dest)
        finally:
            dest.close()
        return out

    def backup_bytes(self) -> bytes:
        """A consistent copy of the whole database as bytes (the researcher page's download)."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.backup(Path(tmp) / "backup.db").read_bytes()

    def counts(self) -> dict[str, int]:
        """Row count of every table (used to show that a rejected import changed nothing)."""
        return {t: self.utils[t].count for t in self.utils.table_names()}
