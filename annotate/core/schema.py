"""The database schema as named migrations, applied in order at start-up and recorded in `migrations`.

Add a new function and append it to MIGRATIONS; never edit one that has been applied somewhere.
"""

from __future__ import annotations

import json
import math
import secrets
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



def _m0003_k_of_n_assignment(db: sqlite_utils.Database) -> None:
    """Per-study assignment settings (overlap k, cap, reservation lapse), crowd joining, attention checks.
    Studies that exist already keep today's behaviour (overlap NULL = every annotator)."""
    db.execute("""CREATE TABLE study_settings (
        study_id INTEGER PRIMARY KEY REFERENCES studies(id), overlap INTEGER, max_per_annotator INTEGER,
        lapse_seconds INTEGER NOT NULL DEFAULT 1800, attention_tolerance TEXT NOT NULL DEFAULT 'exact',
        join_token_hash TEXT, join_open INTEGER NOT NULL DEFAULT 0, max_joined INTEGER,
        completion_code TEXT, redirect_url TEXT)""")
    db.execute("INSERT INTO study_settings (study_id) SELECT id FROM studies")
    # When the item was handed to the annotator: an unanswered assignment is a live reservation until it lapses.
    db.execute("ALTER TABLE assignments ADD COLUMN reserved_at REAL")
    db.execute("CREATE INDEX assignments_item ON assignments(item_id)")
    # Open reservations only (k = all queues have reserved_at NULL): finding the live ones stays a short scan.
    db.execute("""CREATE INDEX assignments_reserved ON assignments(reserved_at)
        WHERE answered_at IS NULL AND reserved_at IS NOT NULL""")
    # JSON list of accepted answers; NULL for an ordinary item.
    db.execute("ALTER TABLE items ADD COLUMN expected_rating TEXT")
    # Kept by triggers so that the next item is an index seek, not a count over every item's ratings; shuffle_key
    # is the study's random order of fresh items, which each annotator enters at a different point.
    db.execute("ALTER TABLE items ADD COLUMN rating_count INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE items ADD COLUMN shuffle_key REAL")
    db.execute("UPDATE items SET rating_count = (SELECT COUNT(*) FROM ratings r WHERE r.item_id = items.id),"
               " shuffle_key = abs(random()) / 9223372036854775807.0")
    db.execute("""CREATE INDEX items_to_rate ON items(study_id, rating_count, shuffle_key)
        WHERE expected_rating IS NULL""")
    db.execute("CREATE INDEX items_checks ON items(study_id) WHERE expected_rating IS NOT NULL")
    db.execute("""CREATE TRIGGER items_shuffle_key AFTER INSERT ON items WHEN NEW.shuffle_key IS NULL
        BEGIN UPDATE items SET shuffle_key = abs(random()) / 9223372036854775807.0 WHERE id = NEW.id; END""")
    db.execute("""CREATE TRIGGER ratings_count_insert AFTER INSERT ON ratings
        BEGIN UPDATE items SET rating_count = rating_count + 1 WHERE id = NEW.item_id; END""")
    db.execute("""CREATE TRIGGER ratings_count_delete AFTER DELETE ON ratings
        BEGIN UPDATE items SET rating_count = rating_count - 1 WHERE id = OLD.item_id; END""")
    db.execute("ALTER TABLE annotators ADD COLUMN joined INTEGER NOT NULL DEFAULT 0")



def _m0004_pairwise(db: sqlite_utils.Database) -> None:
    # A pairwise study compares two configurations; its items are ordinary `items` rows (config "A vs B") so
    # they flow through assignments and the queue, with both explanations kept here.
    db.execute("""CREATE TABLE pairwise_studies (
        study_id INTEGER PRIMARY KEY REFERENCES studies(id), config_a TEXT NOT NULL, config_b TEXT NOT NULL,
        rate_sides INTEGER NOT NULL DEFAULT 0, CHECK (config_a <> config_b))""")
    db.execute("""CREATE TABLE pair_items (
        item_id INTEGER PRIMARY KEY REFERENCES items(id), explanation_a TEXT NOT NULL,
        explanation_b TEXT NOT NULL)""")
    # Which configuration an annotator sees as "Explanation 1": drawn once, stored, never sent to the browser.
    db.execute("""CREATE TABLE pair_sides (
        annotator_id INTEGER NOT NULL REFERENCES annotators(id), item_id INTEGER NOT NULL REFERENCES items(id),
        a_first INTEGER NOT NULL, PRIMARY KEY (annotator_id, item_id))""")
    cols = """item_id INTEGER NOT NULL, annotator_id INTEGER NOT NULL,
        preference TEXT NOT NULL CHECK (preference IN ('a', 'b', 'tie')), a_first INTEGER,
        tags_a TEXT NOT NULL DEFAULT '', tags_b TEXT NOT NULL DEFAULT '', rating_a TEXT, rating_b TEXT,
        comment TEXT NOT NULL DEFAULT '', seconds REAL, submitted_at TEXT NOT NULL, guidelines_version TEXT,
        revision INTEGER NOT NULL, source TEXT NOT NULL"""
    db.execute(f"""CREATE TABLE preferences (id INTEGER PRIMARY KEY, {cols}, UNIQUE (annotator_id, item_id))""")
    db.execute(f"CREATE TABLE preference_history (id INTEGER PRIMARY KEY, {cols})")
    for op in ("UPDATE", "DELETE"):
        db.execute(f"""CREATE TRIGGER preference_history_no_{op.lower()} BEFORE {op} ON preference_history
            BEGIN SELECT RAISE(ABORT, 'preference_history is append-only'); END""")


# Items a ratings import created without their text are never offered to an annotator: they would be blank.
_QUEUEABLE_SQL = ("(COALESCE(json_extract({m}, '$.created_by'), '') != 'import-ratings'"
                  " OR COALESCE(json_extract({m}, '$.queued'), 0) = 1)")
# An item's one rater when it has exactly one answer, rating or pairwise preference ({item}: the item's id).
_ONE_RATER = ("(SELECT annotator_id FROM ratings WHERE item_id = {item}"
              " UNION ALL SELECT annotator_id FROM preferences WHERE item_id = {item} LIMIT 1)")
# What the rating and preference triggers of 0005 do for a submitted answer (NEW) or a removed one (OLD).
_COUNT_UP = ("UPDATE items SET sole_rater = CASE WHEN rating_count = 0 THEN NEW.annotator_id END,"
             " rating_count = rating_count + 1 WHERE id = NEW.item_id;")
_COUNT_DOWN = (f"UPDATE items SET sole_rater = CASE WHEN rating_count = 2 THEN {_ONE_RATER.format(item='OLD.item_id')}"
               " END, rating_count = rating_count - 1 WHERE id = OLD.item_id;")


def _m0005_k_of_n_at_scale(db: sqlite_utils.Database) -> None:
    """k-of-N at lab scale. A pairwise answer counts towards k like a rating (the triggers of 0003 counted
    ratings only, so a k = 2 pairwise study gave every pair to every annotator). Each item stores who its one rater
    is while it has exactly one (`sole_rater`) and whether it may be offered at all (`queueable`, from its
    metadata), so that for k = 2 "an item someone else rated once" is an index seek, however many items the
    annotator asking has rated that nobody has rated a second time, and counts of items to give never read
    metadata (benchmarks/annotate_latency.py)."""
    db.execute("ALTER TABLE items ADD COLUMN sole_rater INTEGER")
    db.execute("ALTER TABLE items ADD COLUMN queueable INTEGER NOT NULL DEFAULT 1")
    db.execute(f"UPDATE items SET queueable = {_QUEUEABLE_SQL.format(m='metadata')}")
    for event in ("INSERT", "UPDATE OF metadata"):
        name = "items_queueable_" + event.split()[0].lower()
        value = _QUEUEABLE_SQL.format(m="NEW.metadata")
        db.execute(f"""CREATE TRIGGER {name} AFTER {event} ON items WHEN NEW.queueable != {value}
            BEGIN UPDATE items SET queueable = {value} WHERE id = NEW.id; END""")
    # Counting and finding an item's preferences by item: without it the recount below read every preference per item.
    db.execute("CREATE INDEX preferences_item ON preferences(item_id)")
    db.execute("UPDATE items SET rating_count = (SELECT COUNT(*) FROM ratings r WHERE r.item_id = items.id)"
               " + (SELECT COUNT(*) FROM preferences p WHERE p.item_id = items.id)")
    db.execute(f"UPDATE items SET sole_rater = {_ONE_RATER.format(item='items.id')} WHERE rating_count = 1")
    db.execute("DROP TRIGGER ratings_count_insert")
    db.execute("DROP TRIGGER ratings_count_delete")
    for table in ("ratings", "preferences"):
        db.execute(f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table} BEGIN {_COUNT_UP} END")
        db.execute(f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table} BEGIN {_COUNT_DOWN} END")
    db.execute("DROP INDEX items_to_rate")
    db.execute("""CREATE INDEX items_to_rate ON items(study_id, queueable, rating_count, sole_rater, shuffle_key)
        WHERE expected_rating IS NULL""")


def _m0006_crowd_reservations(db: sqlite_utils.Database) -> None:
    """Crowd studies that hold up: the fewest answers that earn the completion code, the queue positions a worker
    lost (so that the numbers shown to them close up), and the positions drawn for each worker's attention checks."""
    # The default 1: a worker the study had nothing left for gets no code unless the researcher sets 0.
    db.execute("ALTER TABLE study_settings ADD COLUMN code_min_answers INTEGER NOT NULL DEFAULT 1")
    # A reservation that leaves a queue (taken over after its lapse) leaves a gap; "Item N" counts past gaps.
    db.execute("""CREATE TABLE queue_gaps (annotator_id INTEGER NOT NULL, position INTEGER NOT NULL,
        PRIMARY KEY (annotator_id, position))""")
    db.execute("""CREATE TRIGGER assignments_gap AFTER DELETE ON assignments
        WHEN OLD.answered_at IS NULL AND OLD.reserved_at IS NOT NULL
        BEGIN INSERT OR IGNORE INTO queue_gaps VALUES (OLD.annotator_id, OLD.position); END""")
    db.execute("""CREATE TRIGGER assignments_gap_filled AFTER INSERT ON assignments
        BEGIN DELETE FROM queue_gaps WHERE annotator_id = NEW.annotator_id AND position = NEW.position; END""")
    # Queue positions at which a worker is given an attention check, drawn for that worker.
    db.execute("""CREATE TABLE check_slots (annotator_id INTEGER NOT NULL, position INTEGER NOT NULL,
        PRIMARY KEY (annotator_id, position))""")


def _m0007_crowd_workers(db: sqlite_utils.Database) -> None:
    """Crowd workers (annotate/core/crowd.py): a limit on new workers per client address and study, counted from
    `crowd_joins` (the address hashed with the study); workers in their own namespace of names. Every study, old or
    new, starts at 3 new workers per address (crowd.DEFAULT_JOINS_PER_ADDRESS when this was written; 0 = no limit).
    Resume codes use `annotators.code_hash`, which joined workers left empty."""
    db.execute("ALTER TABLE study_settings ADD COLUMN joins_per_address INTEGER NOT NULL DEFAULT 3")
    db.execute("""CREATE TABLE crowd_joins (
        annotator_id INTEGER PRIMARY KEY REFERENCES annotators(id), study_id INTEGER NOT NULL REFERENCES studies(id),
        address TEXT NOT NULL, joined_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX crowd_joins_address ON crowd_joins(study_id, address)")
    # Workers who joined before are renamed "crowd:<worker id>", longest names first so that a worker whose id
    # already began with "crowd:" moves out of the way of the one whose new name it held.
    taken = {r[0] for r in db.execute("SELECT name FROM annotators")}
    for aid, name in sorted(db.execute("SELECT id, name FROM annotators WHERE joined = 1").fetchall(),
                            key=lambda r: -len(r[1])):
        if "crowd:" + name not in taken:
            db.execute("UPDATE annotators SET name = ? WHERE id = ?", ("crowd:" + name, aid))
            taken.discard(name)
            taken.add("crowd:" + name)


def _m0008_resume_key(db: sqlite_utils.Database) -> None:
    """The key that signs resume tokens, made once here and read by every server process on this database, so that
    a reload reaching another process behind a proxy still resumes (annotate/app/session.py)."""
    db.execute("CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO secrets (name, value) VALUES ('resume_tokens', ?)", (secrets.token_hex(32),))


def _metric_scores(value: object) -> dict[str, float] | None:
    """An item's `metadata.metrics` as 0009 moves it: an object of names (printable, at most 100 characters, without
    surrounding spaces) to finite numbers; None for anything else, which stays in the metadata untouched. The
    reader's rule (formats._metrics) as it stood for this migration, copied: an applied migration never changes."""
    if not isinstance(value, dict):
        return None
    out: dict[str, float] = {}
    for name, number in value.items():
        if (not name.strip() or len(name) > 100 or not name.isprintable() or name != name.strip()
                or isinstance(number, bool) or not isinstance(number, (int, float))):
            return None
        try:
            out[name] = float(number)
        except OverflowError:
            return None
        if not math.isfinite(out[name]):
            return None
    return out


def _m0009_item_metrics(db: sqlite_utils.Database) -> None:
    """Automatic metric scores of items (an NLE line's `metrics` object) in their own table, never read by the
    annotator's view of an item. Items imported since the reader took `metrics` apart carried the object in their
    metadata: it moves here when valid, so that it lives in one place."""
    db.execute("""CREATE TABLE item_metrics (
        item_id INTEGER NOT NULL REFERENCES items(id), name TEXT NOT NULL, value REAL NOT NULL,
        PRIMARY KEY (item_id, name))""")
    rows = db.execute("SELECT id, metadata FROM items WHERE instr(metadata, '\"metrics\"') > 0"
                      " AND json_valid(metadata) AND json_type(metadata, '$.metrics') = 'object'").fetchall()
    for item_id, metadata in rows:
        scores = _metric_scores(json.loads(metadata)["metrics"])
        if scores is None:
            continue
        db.conn.executemany("INSERT INTO item_metrics (item_id, name, value) VALUES (?, ?, ?)",
                            [(item_id, name, value) for name, value in scores.items()])
        db.execute("UPDATE items SET metadata = json_remove(metadata, '$.metrics') WHERE id = ?", (item_id,))


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_initial", _m0001_initial),
    ("0002_sign_in_hardening", _m0002_sign_in_hardening),
    ("0003_k_of_n_assignment", _m0003_k_of_n_assignment),
    ("0004_pairwise", _m0004_pairwise),
    ("0005_k_of_n_at_scale", _m0005_k_of_n_at_scale),
    ("0006_crowd_reservations", _m0006_crowd_reservations),
    ("0007_crowd_workers", _m0007_crowd_workers),
    ("0008_resume_key", _m0008_resume_key),
    ("0009_item_metrics", _m0009_item_metrics),
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
