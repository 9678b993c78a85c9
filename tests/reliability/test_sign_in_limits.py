"""Sign-in limits that hold under attack (issue 10): atomic under parallel tries, the researcher's own namespace,
a per-client limit and a per-(name, client) back-off that never locks the owner out, capped lengths, pruning;
and the same limits on crowd join links (issue 12), in a namespace of their own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annotate.core import auth
from annotate.core.crowd import JoinRefused
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


def race(db: Path, n: int, attempt: Callable[[Store, int], str]) -> list[str]:
    """n sessions (a Store each) start `attempt` at the same instant; their outcomes."""
    outcomes: list[str] = []
    stores = [Store(db) for _ in range(n)]
    go = threading.Barrier(n)

    def run(store: Store, i: int) -> None:
        go.wait()
        outcomes.append(attempt(store, i))

    threads = [threading.Thread(target=run, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(outcomes) == n
    return outcomes


@pytest.mark.timeout(120)
@pytest.mark.xdist_group("timing")
def test_forty_parallel_guesses_get_at_most_five_codes_checked(db: Path) -> None:
    """Every thread is its own session (its own Store); they start together and all guess alice's code."""
    def guess(store: Store, i: int) -> str:
        try:
            store.authenticate("alice", f"guess-{i}", client="203.0.113.9")
        except AccessDenied:
            return "checked"
        except TooManyAttempts:
            return "refused"
        return "signed in"

    outcomes = race(db, 40, guess)
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


@pytest.mark.xdist_group("timing")
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


# -- crowd join links ---------------------------------------------------------------------------------------------

ATTACKER, WORKER = "203.0.113.77", "192.0.2.44"


@pytest.fixture
def joinable(db: Path) -> tuple[Path, str]:
    """The study "load" open for joining, with its secret token."""
    with Store(db) as store:
        return db, store.open_joining("load")


def annotator_names(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT name FROM annotators ORDER BY id")]


def test_wrong_join_links_lock_out_only_that_client_and_create_nothing(joinable, clock) -> None:
    db, token = joinable
    with Store(db) as store:
        before = annotator_names(store)
        for i in range(auth.MAX_FAILURES):
            with pytest.raises(JoinRefused, match="This join link is not valid"):
                store.join("load", f"guess-{i}", f"w{i}", client=ATTACKER)
            clock[0] += 1
        # The back-off (60 s after the fifth failure, which was 1 s ago) holds even for the right token.
        with pytest.raises(JoinRefused) as e:
            store.join("load", token, "w-attacker", client=ATTACKER)
        assert str(e.value) == "Too many wrong join links from this address; try again in 59 s."
        assert annotator_names(store) == before  # no refused attempt created an annotator
        # Another client with the right token joins meanwhile.
        assert store.join("load", token, "w-worker", client=WORKER)["name"] == "crowd:w-worker"
        assert annotator_names(store) == [*before, "crowd:w-worker"]
        # The refusal recorded nothing: after the back-off the right token works from the attacker's address too.
        clock[0] += auth.backoff_s(auth.MAX_FAILURES)
        assert store.join("load", token, "w-attacker", client=ATTACKER)["name"] == "crowd:w-attacker"


@pytest.mark.timeout(120)
@pytest.mark.xdist_group("timing")
def test_parallel_wrong_join_links_get_at_most_five_token_checks(joinable) -> None:
    db, _ = joinable

    def guess(store: Store, i: int) -> str:
        try:
            store.join("load", f"guess-{i}", f"w{i}", client=ATTACKER)
        except JoinRefused as e:
            return "refused" if str(e).startswith("Too many") else "checked"
        return "joined"

    outcomes = race(db, 30, guess)
    assert outcomes.count("checked") <= auth.MAX_FAILURES, outcomes.count("checked")


def test_join_namespace_does_not_collide_with_an_annotator_named_like_it(tmp_path: Path, clock) -> None:
    """An annotator literally named "join:load" (the join key of study "load") and the admin are not locked out by
    wrong join links, even past the client-wide limit, and wrong sign-ins under that name leave the join link
    alone."""
    with Store(make_study(tmp_path, 3, {"join:load": "jl-code-1"})) as store:
        token = store.open_joining("load")
        for i in range(auth.CLIENT_MAX_FAILURES):  # the study's limit first, then other (unknown) studies
            with pytest.raises(JoinRefused, match="not valid|does not exist"):
                store.join("load" if i < auth.MAX_FAILURES else f"study-{i}", "guess", "w1", client=ATTACKER)
        for study in ("load", "study-99"):
            with pytest.raises(JoinRefused, match="Too many wrong join links"):
                store.join(study, token, "w1", client=ATTACKER)
        assert store.authenticate("join:load", "jl-code-1", client=ATTACKER)["name"] == "join:load"
        assert store.check_admin_password("pw", "pw", client=ATTACKER)

    (tmp_path / "second").mkdir()
    with Store(make_study(tmp_path / "second", 3, {"join:load": "jl-code-1"})) as store:
        token = store.open_joining("load")
        for _ in range(auth.MAX_FAILURES + 1):
            with pytest.raises((AccessDenied, TooManyAttempts)):
                store.authenticate("join:load", "wrong", client=ATTACKER)
        with pytest.raises(TooManyAttempts):
            store.authenticate("join:load", "jl-code-1", client=ATTACKER)
        assert store.join("load", token, "w1", client=ATTACKER)["name"] == "crowd:w1"
        keys = {r[0] for r in store.conn.execute("SELECT name FROM login_attempts")}
        assert keys == {"annotator:join:load", "join:load"}
