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


def recent_failures(conn: sqlite3.Connection, key: str, now: float) -> list[float]:
    """Times of `key`'s failed attempts within the window, oldest first."""
    return [r[0] for r in conn.execute(
        "SELECT at FROM login_attempts WHERE name = ? AND ok = 0 AND at > ? ORDER BY at",
        (key, now - FAILURE_WINDOW_S))]


def check_rate_limit(conn: sqlite3.Connection, key: str) -> None:
    """Raise TooManyAttempts when `key` failed MAX_FAILURES times within the last minute."""
    now = time.time()
    failures = recent_failures(conn, key, now)
    if len(failures) >= MAX_FAILURES:
        raise TooManyAttempts(max(1.0, failures[-MAX_FAILURES] + FAILURE_WINDOW_S - now))


def record_attempt(conn: sqlite3.Connection, key: str, ok: bool) -> None:
    """Log one sign-in attempt (inside the caller's transaction)."""
    conn.execute("INSERT INTO login_attempts (name, at, ok) VALUES (?, ?, ?)", (key, time.time(), int(ok)))
