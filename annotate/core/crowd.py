"""Crowd sign-up (issue 12 §3): join links with a per-study secret token, worker ids, completion codes.

The link `/?study=NAME&join=TOKEN&pid=WORKER_ID` is the secret: the token is random (128 bits), stored only as a
SHA-256 hash and shown once when joining is opened. The first visit creates an annotator named `crowd:WORKER_ID`
(marked `joined`): crowd workers have their own namespace of names, which the researcher's names never enter, so
neither can block or reach the other. That first visit also gives the worker a resume code (shown once, stored as a
hash like an access code) and binds the worker to that browser through the resume cookie; the same link in another
browser continues only with the resume code. Each study takes at most `joins_per_address` new workers from one
client address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from urllib.parse import urlparse

from annotate.core.errors import AccessDenied

MAX_PID_CHARS = 128
# Prolific appends PROLIFIC_PID, MTurk workerId; `pid` is ours.
PID_PARAMS = ("pid", "PROLIFIC_PID", "workerId")
# Every crowd worker's annotator name starts with this; `annotators add` refuses names that do.
WORKER_PREFIX = "crowd:"
# New workers a study takes from one client address (0: no limit). A household or a shared connection may hold a
# few honest workers; one browser minting worker ids is stopped after this many. (Migration 0007 gives it to every
# study as the column's default.)
DEFAULT_JOINS_PER_ADDRESS = 3


class JoinRefused(AccessDenied):
    """A join link that cannot be used (plain message for the worker); nothing was created."""


class ResumeNeeded(JoinRefused):
    """The worker id started in another browser: this one continues only with the worker's resume code."""


def worker_name(pid: str) -> str:
    """The annotator name of the crowd worker with this (checked) worker id."""
    return WORKER_PREFIX + pid


def is_worker_name(name: str) -> bool:
    """Whether `name` lies in the crowd workers' namespace (compared as annotator names are: auth.name_key)."""
    return name.strip().lower().startswith(WORKER_PREFIX)


def check_joins_per_address(value: int | None) -> int:
    """The per-address join limit to store: a whole number, 0 for no limit (also given as None)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"joins per address must be a whole number (0 = no limit), got {value!r}")
    return value


def address_key(study_id: int, client: str) -> str:
    """How a join's client address is kept: hashed with the study, so the database holds no address in clear.
    (Not anonymous: anyone with the database can hash every IPv4 address and compare.)"""
    return hashlib.sha256(f"join-address\x1f{study_id}\x1f{client}".encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(16)


def hash_token(token: str) -> str:
    # Unsalted SHA-256 is enough: the token is 128 random bits, not a password a person chose.
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(hash_token(token), stored)


# The fewest answers that earn the completion code when the study runs out of items for a worker: a worker it had
# nothing left for gets no code, unless the researcher sets 0 (e.g. to pay everyone who came).
DEFAULT_CODE_MIN_ANSWERS = 1


MAX_CODE_MIN_ANSWERS = 1_000_000


def check_code_min_answers(value: object) -> int:
    """A whole number of answers from 0 to MAX_CODE_MIN_ANSWERS; ValueError otherwise."""
    message = f"code_min_answers must be a whole number from 0 to {MAX_CODE_MIN_ANSWERS:,}, got {value!r}"
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ValueError(message) from None
    if not 0 <= n <= MAX_CODE_MIN_ANSWERS:
        raise ValueError(message)
    return n


def check_pid(pid: str | None) -> str:
    """The worker id, stripped; JoinRefused when missing, too long or holding control characters."""
    if pid is None or not str(pid).strip():
        raise JoinRefused("This link has no worker ID (pid). Open the link exactly as the study platform gave it.")
    pid = str(pid).strip()
    if len(pid) > MAX_PID_CHARS:
        raise JoinRefused(f"The worker ID is longer than {MAX_PID_CHARS} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in pid):
        raise JoinRefused("The worker ID contains control characters.")
    return pid


def check_redirect(url: str | None) -> str | None:
    """An http(s) URL or None; ValueError for anything else (a javascript: link would run in the worker's page)."""
    if url is None or not url.strip():
        return None
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"redirect URL must start with http:// or https://, got {url!r}")
    return url.strip()
