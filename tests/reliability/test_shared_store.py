"""One Store shared by the overlapping script runs of a Streamlit session (threads), as `session.get_store` does.

Before the fix every thread used the Store's one sqlite3 connection: a read on one thread ran inside another's
open transaction, and "cannot start a transaction within a transaction" / "database is locked" reached the user.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from annotate.core.store import Store
from tests.helpers import next_item

from .helpers import make_study

# Processes or threads racing on one database: never beside another such test (xdist, --dist loadgroup).
pytestmark = pytest.mark.xdist_group("timing")

N_THREADS, SECONDS = 8, 4.0
CODES = {f"ann-{i}": f"code-{i}-1234" for i in range(N_THREADS)}


@pytest.mark.timeout(120)
def test_eight_threads_on_one_store_submit_without_errors_and_nothing_lost(tmp_path: Path) -> None:
    db = make_study(tmp_path, 400, CODES)
    store = Store(db)  # one Store, shared like a session's, used from many threads at once
    ids = {a["name"]: a["id"] for a in store.annotators()}
    acks: dict[int, int] = {aid: 0 for aid in ids.values()}
    errors: list[str] = []
    stop = time.monotonic() + SECONDS

    def hammer(aid: int) -> None:
        while time.monotonic() < stop:
            try:
                pos = store.next_unanswered(aid)
                if pos is None:
                    return
                item = store.annotator_item(aid, pos)
                store.answered_count(aid)
                store.submit(aid, item["item_id"], "yes", [], "c", 1.0)
                acks[aid] += 1
            except Exception as e:  # noqa: BLE001 - every error is a failure of the test, reported below
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=hammer, args=(aid,)) for aid in ids.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], f"{len(errors)} errors, e.g. {errors[:3]}"
    with Store(db) as fresh:
        for aid, n in acks.items():
            history = fresh.conn.execute("SELECT COUNT(*) FROM rating_history WHERE annotator_id = ?",
                                         (aid,)).fetchone()[0]
            assert history == n == fresh.answered_count(aid)
        assert fresh.integrity_check() == "ok"
    assert sum(acks.values()) > N_THREADS  # they really ran
    store.close()


def test_a_run_never_sees_another_runs_uncommitted_write(tmp_path: Path) -> None:
    """A transaction open on one thread (a Submit mid-write) is invisible to a read on another until it commits."""
    db = make_study(tmp_path, 3, {"ann-a": "code-a-1234"})
    store = Store(db)
    aid = store.annotators()[0]["id"]
    item = next_item(store, aid)["item_id"]
    in_txn, release = threading.Event(), threading.Event()

    def slow_submit() -> None:
        with store._transaction() as conn:
            conn.execute("UPDATE assignments SET answered_at = 'x' WHERE annotator_id = ? AND item_id = ?",
                         (aid, item))
            in_txn.set()
            release.wait(10)
            raise RuntimeError("the run was interrupted")  # rolled back: the write never happened

    writer = threading.Thread(target=lambda: pytest.raises(RuntimeError, slow_submit))
    writer.start()
    assert in_txn.wait(10)
    seen = store.answered_count(aid)  # another script run of the same session reads the progress
    release.set()
    writer.join()
    assert seen == 0 == store.answered_count(aid)
    store.close()


def test_sessions_stores_on_one_file_queue_on_one_write_lock(tmp_path: Path) -> None:
    """Two Stores on one file (two Streamlit sessions) queue their writes on the process's write lock: a writer
    waits for the one before it, whatever the path's spelling, and gives up with "database is locked" after its
    own busy timeout, writing nothing."""
    db = make_study(tmp_path, 4, {"ann-0": "code-0-1234"})
    first = Store(db)
    other = Store(tmp_path / "." / db.name, busy_timeout_ms=300)  # the same file, spelled differently
    assert first._writer is other._writer
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with first._transaction() as conn:
            conn.execute("UPDATE studies SET question = question || ' [held]'")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        with other._transaction() as conn:
            conn.execute("UPDATE studies SET question = question || ' [refused]'")
    waiter = threading.Thread(target=lambda: (Store(db).add_annotator("late", "load", code="code-late-1"), done.set()))
    waiter.start()
    assert not done.wait(0.2)  # queued behind the open transaction
    release.set()
    holder.join(10)
    waiter.join(10)
    assert done.is_set()
    with Store(db) as check:
        (question,) = check.conn.execute("SELECT question FROM studies").fetchone()
    assert question.endswith(" [held]") and "[refused]" not in question
