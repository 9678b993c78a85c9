"""Sign-in limits that hold under attack (issue 10): atomic under parallel tries, the researcher's own namespace,
a per-client limit and a per-(name, client) back-off that never locks the owner out, capped lengths, pruning."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from annotate.core import auth
from annotate.core.errors import AccessDenied, TooManyAttempts
from annotate.core.store import Store

from .helpers import make_study

CODES = {"alice": "alice-code-1", "bob": "bob-code-2"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_study(tmp_path, 3, CODES)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(auth.time, "time", lambda: now[0])
    return now


@pytest.mark.timeout(120)
def test_forty_parallel_guesses_get_at_most_five_codes_checked(db: Path) -> None:
    """Every thread is its own session (its own Store); they start together and all guess alice's code."""
    outcomes: list[str] = []
    stores = [Store(db) for _ in range(40)]
    go = threading.Barrier(40)

    def guess(store: Store, i: int) -> None:
        go.wait()
        try:
            store.authenticate("alice", f"guess-{i}", client="203.0.113.9")
        except AccessDenied:
            outcomes.append("checked")
        except TooManyAttempts:
            outcomes.append("refused")

    threads = [threading.Thread(target=guess, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(outcomes) == 40
    assert outcomes.count("checked") <= auth.MAX_FAILURES, outcomes.count("checked")


def test_annotator_named_like_the_admin_cannot_lock_the_researcher_out(db: Path, clock) -> None:
    with Store(db) as store:
        for name in ("__admin__", "admin", "admin:", "ADMIN:"):
            for _ in range(auth.MAX_FAILURES + 1):
                with pytest.raises((AccessDenied, TooManyAttempts)):
                    store.authenticate(name, "x", client="198.51.100.7")
                clock[0] += 1
        assert store.check_admin_password("pw", "pw", client="198.51.100.7")


def test_a_stranger_who_knows_the_name_slows_only_themselves(db: Path, clock) -> None:
    attacker, owner = "203.0.113.66", "192.0.2.10"
    with Store(db) as store:
        waits = []
        for _ in range(12):
            try:
                store.authenticate("alice", "guess", client=attacker)
            except AccessDenied:
                pass
            except TooManyAttempts as e:
                waits.append(e.wait_seconds)
            clock[0] += 1
        assert waits, "the attacker was never slowed down"
        assert store.authenticate("alice", CODES["alice"], client=owner)["name"] == "alice"  # never locked out
        # The attacker's own wait doubles with every further failure.
        clock[0] += auth.backoff_s(auth.MAX_FAILURES)
        with pytest.raises(AccessDenied):
            store.authenticate("alice", "guess", client=attacker)
        with pytest.raises(TooManyAttempts) as e:
            store.authenticate("alice", "guess", client=attacker)
        assert e.value.wait_seconds > auth.backoff_s(auth.MAX_FAILURES)


def test_one_client_trying_many_names_is_limited(db: Path, clock) -> None:
    with Store(db) as store:
        for i in range(auth.CLIENT_MAX_FAILURES):
            with pytest.raises(AccessDenied):
                store.authenticate(f"name-{i}", "guess", client="203.0.113.5")
        with pytest.raises(TooManyAttempts):
            store.authenticate("alice", CODES["alice"], client="203.0.113.5")
        assert store.authenticate("alice", CODES["alice"], client="192.0.2.1")["name"] == "alice"


def test_a_huge_name_is_refused_without_hashing_and_attempts_are_pruned(db: Path) -> None:
    with Store(db) as store:
        store.conn.execute("INSERT INTO login_attempts (name, at, ok, client) VALUES ('old', ?, 0, 'x')",
                           (time.time() - 2 * auth.RETENTION_S,))
        started = time.monotonic()
        with pytest.raises(AccessDenied):
            store.authenticate("n" * 20_000_000, "c" * 1000, client="203.0.113.1")
        assert time.monotonic() - started < 2.0
        keys = [r[0] for r in store.conn.execute("SELECT name FROM login_attempts")]
        assert "old" not in keys
        assert max(len(k) for k in keys) <= auth.MAX_NAME_CHARS + len("annotator:") + 1
