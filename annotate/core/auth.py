"""Access codes and sign-in limits: salted scrypt hashes, and failed attempts counted per key in a time window."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time

from annotate.core.errors import TooManyAttempts

MAX_FAILURES, FAILURE_WINDOW_S = 5, 60.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_code(code: str, salt: bytes | None = None) -> str:
    """Salted scrypt hash of an access code, as `scrypt$n$r$p$salt$hash`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_code(code: str, stored: str) -> bool:
    """Whether `code` hashes to `stored` (constant-time comparison)."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    got = hashlib.scrypt(code.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got.hex(), digest)


def new_access_code() -> str:
    """A fresh code such as `k3fw-9tqa-mmx2`."""
    # No 0/O or 1/l/I: codes are read off a screen and typed by hand.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


# Hashed for unknown names too, so the response time does not reveal which names exist.
DUMMY_HASH = hash_code("not-a-real-code")


def name_key(name: str) -> str:
    """The one rule for annotator names everywhere: surrounding space ignored, case-insensitive."""
    return name.strip().lower()


# Sign-in limits (docs/deploying.md). Attempts are keyed by (name, client): a stranger who knows a name slows
# only their own client down, never the owner on another one. A client is also limited across all names.
MAX_NAME_CHARS, MAX_CODE_CHARS = 128, 128
CLIENT_MAX_FAILURES = 20  # per client and FAILURE_WINDOW_S, whatever the names tried
MAX_BACKOFF_S = 3600.0
RETENTION_S = 86_400.0  # login_attempts older than this are deleted
ADMIN_ATTEMPT_KEY = "admin:"  # its own namespace: no annotator name can map to it
# Crowd join links (annotate/core/crowd.py) are limited per (study, client) under their own namespace, and their
# failures count towards a client-wide limit of their own: wrong join links never slow down a sign-in.
JOIN_ATTEMPT_PREFIX = "join:"


def annotator_attempt_key(name: str) -> str:
    """The sign-in limit key of an annotator name (capped, so a 20 MB name stores 129 characters)."""
    return "annotator:" + name_key(name[: MAX_NAME_CHARS + 1])


def join_attempt_key(study: str) -> str:
    """The join-link limit key of a study name (capped like names; annotator keys start with "annotator:")."""
    return JOIN_ATTEMPT_PREFIX + study[: MAX_NAME_CHARS + 1]


def backoff_s(failures: int) -> float:
    """How long (name, client) waits after its last failure: nothing for the first MAX_FAILURES failures since its
    last success, then FAILURE_WINDOW_S doubling with each further failure, at most MAX_BACKOFF_S."""
    if failures < MAX_FAILURES:
        return 0.0
    return min(FAILURE_WINDOW_S * 2 ** (failures - MAX_FAILURES), MAX_BACKOFF_S)


def begin_attempt(conn: sqlite3.Connection, key: str, client: str) -> int:
    """Decide and record one sign-in (or join-link) attempt in the caller's write transaction, before any hashing
    or token compare; returns its row.

    The row is recorded as a failure until `finish_attempt` says otherwise, so parallel attempts count at once
    (deciding and recording in one BEGIN IMMEDIATE transaction leaves no gap to race through). Raises
    TooManyAttempts, recording nothing, while the client or the (name, client) pair must wait.
    """
    now = time.time()
    conn.execute("DELETE FROM login_attempts WHERE at < ?", (now - RETENTION_S,))
    # The client-wide limit counts sign-ins and join links apart (see JOIN_ATTEMPT_PREFIX).
    join = int(key.startswith(JOIN_ATTEMPT_PREFIX))
    by_client = [r[0] for r in conn.execute(
        "SELECT at FROM login_attempts WHERE client = ? AND ok = 0 AND at > ? AND (substr(name, 1, ?) = ?) = ?"
        " ORDER BY at", (client, now - FAILURE_WINDOW_S, len(JOIN_ATTEMPT_PREFIX), JOIN_ATTEMPT_PREFIX, join))]
    if len(by_client) >= CLIENT_MAX_FAILURES:
        raise TooManyAttempts(max(1.0, by_client[-CLIENT_MAX_FAILURES] + FAILURE_WINDOW_S - now))
    last_ok = conn.execute("SELECT COALESCE(MAX(at), 0) FROM login_attempts WHERE name = ? AND client = ? AND ok = 1",
                           (key, client)).fetchone()[0]
    failures = [r[0] for r in conn.execute(
        "SELECT at FROM login_attempts WHERE name = ? AND client = ? AND ok = 0 AND at > ? ORDER BY at",
        (key, client, last_ok))]
    wait = backoff_s(len(failures)) - (now - failures[-1]) if failures else 0.0
    if wait > 0:
        raise TooManyAttempts(max(1.0, wait))
    return conn.execute("INSERT INTO login_attempts (name, at, ok, client) VALUES (?, ?, 0, ?)",
                        (key, now, client)).lastrowid


def finish_attempt(conn: sqlite3.Connection, attempt_id: int, ok: bool) -> None:
    """Mark an attempt begun by `begin_attempt` as a success (it stays a failure otherwise)."""
    if ok:
        conn.execute("UPDATE login_attempts SET ok = 1 WHERE id = ?", (attempt_id,))
