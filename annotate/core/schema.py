"""The database schema as named migrations, applied in order at start-up and recorded in `migrations`.

Add a new function and append it to MIGRATIONS; never edit one that has been applied somewhere.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds (every timestamp the store writes)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _m0001_initial(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE studies (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, question TEXT NOT NULL, scale TEXT NOT NULL,
        tags TEXT NOT NULL, rules TEXT NOT NULL, guidelines TEXT NOT NULL, guidelines_version TEXT NOT NULL,
        created_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE items (
        id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id), dataset TEXT NOT NULL,
        sample_id TEXT NOT NULL, config TEXT NOT NULL, input TEXT NOT NULL, predicted_label TEXT NOT NULL,
        explanation TEXT NOT NULL, model TEXT, split_seed INTEGER, gold_label TEXT, gold_explanations TEXT,
        prompt TEXT, metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
        UNIQUE (study_id, dataset, sample_id, config))""")
    db.execute("""CREATE TABLE annotators (
        id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id), name TEXT NOT NULL UNIQUE,
        code_hash TEXT, created_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE assignments (
        annotator_id INTEGER NOT NULL REFERENCES annotators(id), item_id INTEGER NOT NULL REFERENCES items(id),
        position INTEGER NOT NULL, answered_at TEXT, PRIMARY KEY (annotator_id, item_id),
        UNIQUE (annotator_id, position))""")
    # Partial index: "next unanswered item" is a B-tree seek however many items are already answered.
    db.execute("""CREATE INDEX assignments_unanswered ON assignments(annotator_id, position)
        WHERE answered_at IS NULL""")
    db.execute("""CREATE TABLE ratings (
        id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id),
        annotator_id INTEGER NOT NULL REFERENCES annotators(id), rating TEXT NOT NULL, score REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '', comment TEXT NOT NULL DEFAULT '', seconds REAL, submitted_at TEXT NOT NULL,
        guidelines_version TEXT, revision INTEGER NOT NULL, source TEXT NOT NULL,
        UNIQUE (annotator_id, item_id))""")
    db.execute("CREATE INDEX ratings_item ON ratings(item_id)")
    db.execute("""CREATE TABLE rating_history (
        id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, annotator_id INTEGER NOT NULL, rating TEXT NOT NULL,
        score REAL NOT NULL, tags TEXT NOT NULL, comment TEXT NOT NULL, seconds REAL, submitted_at TEXT NOT NULL,
        guidelines_version TEXT, revision INTEGER NOT NULL, source TEXT NOT NULL)""")
    db.execute("CREATE INDEX rating_history_item ON rating_history(annotator_id, item_id)")
    # The history is append-only: the database itself refuses edits and deletions.
    for op in ("UPDATE", "DELETE"):
        db.execute(f"""CREATE TRIGGER rating_history_no_{op.lower()} BEFORE {op} ON rating_history
            BEGIN SELECT RAISE(ABORT, 'rating_history is append-only'); END""")
    db.execute("""CREATE TABLE adjudications (
        item_id INTEGER PRIMARY KEY REFERENCES items(id), final_rating TEXT NOT NULL, kind TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '', decided_by TEXT, decided_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE login_attempts (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL, ok INTEGER NOT NULL)""")
    db.execute("CREATE INDEX login_attempts_name ON login_attempts(name, at)")


def _m0002_sign_in_hardening(db: sqlite_utils.Database) -> None:
    # Bumped by sign-out and code reset; a session or resume token carrying an older generation is refused.
    db.execute("ALTER TABLE annotators ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0")
    # Sign-in attempts are limited per client address and per (name, client); see auth.begin_attempt.
    db.execute("ALTER TABLE login_attempts ADD COLUMN client TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX login_attempts_client ON login_attempts(client, at)")
    db.execute("CREATE INDEX login_attempts_at ON login_attempts(at)")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_initial", _m0001_initial),
    ("0002_sign_in_hardening", _m0002_sign_in_hardening),
]



_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def migrations_recorded(conn: sqlite3.Connection) -> bool:
    """Whether every migration is recorded in this database (read, not cached: the file may be new)."""
    try:
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError:
        return False
    return all(name in done for name, _ in MIGRATIONS)


def migrate(db: sqlite_utils.Database, path: str, transaction: Callable) -> list[str]:
    """Apply pending migrations inside `transaction()`; returns the names applied."""
    key = str(Path(path).resolve()) if path != ":memory:" else None
    if key and key in _migrated and migrations_recorded(db.conn):
        return []
    with _migrate_lock:
        applied: list[str] = []
        with transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(db)
                    conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, now_iso()))
                    applied.append(name)
        if key:
            _migrated.add(key)
        return applied
