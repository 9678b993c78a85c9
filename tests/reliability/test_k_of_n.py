"""k-of-N assignment under concurrency: 5 annotators, k = 2, 100 items, each submitter with its own Store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from annotate.core.store import Store
from tests.helpers import nle

# Processes or threads racing on one database: never beside another such test (xdist, --dist loadgroup).
pytestmark = pytest.mark.xdist_group("timing")

N_ITEMS, K, NAMES = 100, 2, ("ann1", "ann2", "ann3", "ann4", "ann5")


def make_study(tmp_path: Path, n_items: int = N_ITEMS, overlap: int | str = K, names=NAMES) -> Path:
    db = tmp_path / "k.db"
    path = tmp_path / "items.jsonl"
    import json

    path.write_text("".join(json.dumps(nle("esnli", f"s{i}", "full_ft")) + "\n" for i in range(n_items)))
    with Store(db) as store:
        store.import_nles(path, "study")
        store.configure_study("study", overlap=overlap)
        for name in names:
            store.add_annotator(name, "study", code=f"code-{name}")
    return db


def rate_until_done(db: str, name: str, limit: int | None = None, pause_s: float = 0.0, barrier=None) -> int:
    """What the app does for one annotator: next item, submit, until nothing is left (or `limit` submissions).
    `pause_s`: reading time per item (SQLite's busy handler is not fair: a writer that never pauses can keep the
    lock while others back off); `barrier`: wait on it once the store is open."""
    done = 0
    with Store(db) as store:
        aid = next(a["id"] for a in store.annotators() if a["name"] == name)
        if barrier is not None:
            barrier.wait(60)
        pos = store.next_unanswered(aid)
        while pos is not None and (limit is None or done < limit):
            item = store.annotator_item(aid, pos)
            time.sleep(pause_s)
            store.submit(aid, item["item_id"], "yes", [], "", 1.0)
            done += 1
            pos = store.next_unanswered(aid, after=pos)
    return done


def check_exactly_k(db: Path, n_items: int = N_ITEMS, k: int = K) -> None:
    conn = sqlite3.connect(db)
    per_item = Counter(r[0] for r in conn.execute("SELECT item_id FROM ratings"))
    assert len(per_item) == n_items, "some item was never rated"
    assert set(per_item.values()) == {k}, f"ratings per item: {Counter(per_item.values())}"
    # Nobody rated an item twice (the table's UNIQUE constraint, and the history agrees: one revision each).
    pairs = conn.execute("SELECT annotator_id, item_id, COUNT(*) FROM rating_history GROUP BY 1, 2").fetchall()
    assert all(c == 1 for *_, c in pairs) and len(pairs) == n_items * k
    assert conn.execute("SELECT COUNT(*) FROM assignments WHERE answered_at IS NULL").fetchone()[0] == 0
    conn.close()


@pytest.mark.timeout(120)
def test_five_threads_each_with_its_own_store_leave_exactly_k_ratings(tmp_path: Path) -> None:
    db = make_study(tmp_path)
    counts: dict[str, int] = {}
    barrier = threading.Barrier(len(NAMES))

    def work(name: str) -> None:
        counts[name] = rate_until_done(str(db), name, pause_s=0.002, barrier=barrier)

    threads = [threading.Thread(target=work, args=(n,)) for n in NAMES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert sum(counts.values()) == N_ITEMS * K
    assert min(counts.values()) > 0, f"an annotator got no work: {counts}"
    check_exactly_k(db)


# Each process imports the tests package from the repository root, opens its store, says "ready" and waits for
# "go" on its stdin, so that all five have opened their store before any submits. Plain subprocesses, not
# multiprocessing's spawn: spawn re-imports the parent's __main__, which under pytest (after AppTest has run
# scripts) is not importable.
_CHILD = """
import sys
from tests.reliability.test_k_of_n import rate_until_done
db, name = sys.argv[1:3]
class Go:
    def wait(self, timeout):
        print("ready", flush=True)
        sys.stdin.readline()
print(rate_until_done(db, name, pause_s=0.005, barrier=Go()))
"""


@pytest.mark.timeout(180)
def test_five_os_processes_leave_exactly_k_ratings(tmp_path: Path) -> None:
    db = make_study(tmp_path)
    root = Path(__file__).resolve().parents[2]
    procs = {n: subprocess.Popen([sys.executable, "-c", _CHILD, str(db), n], cwd=root, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in NAMES}
    for name, p in procs.items():  # each has opened its store
        if p.stdout.readline() != "ready\n":
            pytest.fail(f"{name} did not start:\n{p.communicate(timeout=60)[1]}")
    for p in procs.values():
        p.stdin.write("go\n")
        p.stdin.flush()
    counts = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=150)
        assert p.returncode == 0, err
        counts[name] = int(out.strip().splitlines()[-1])
    assert sum(counts.values()) == N_ITEMS * K
    print(f"submissions per process: {counts}")
    assert min(counts.values()) > 0, f"an annotator got no work: {counts}"
    check_exactly_k(db)


def complete_pair_share(db: Path) -> float:
    """Share of the submitted ratings that belong to an item with 2 ratings."""
    conn = sqlite3.connect(db)
    per_item = Counter(r[0] for r in conn.execute("SELECT item_id FROM ratings"))
    conn.close()
    total = sum(per_item.values())
    return sum(c for c in per_item.values() if c >= 2) / total


@pytest.mark.parametrize("interleaved", [True, False], ids=["side-by-side", "one-after-the-other"])
def test_two_annotators_who_stop_after_half_leave_complete_pairs(tmp_path: Path, interleaved: bool) -> None:
    db = make_study(tmp_path, overlap=2, names=("a", "b"))
    if interleaved:
        for _ in range(N_ITEMS // 2):
            rate_until_done(str(db), "a", limit=1)
            rate_until_done(str(db), "b", limit=1)
    else:
        rate_until_done(str(db), "a", limit=N_ITEMS // 2)
        rate_until_done(str(db), "b", limit=N_ITEMS // 2)
    share = complete_pair_share(db)
    print(f"k=2 complete-pair share ({'interleaved' if interleaved else 'sequential'}): {share:.1%}")
    assert share >= 0.9


def test_the_old_independent_queues_leave_far_fewer_pairs(tmp_path: Path) -> None:
    """The baseline the issue measured: with k = all each annotator walks an independent random order."""
    db = make_study(tmp_path, overlap="all", names=("a", "b"))
    rate_until_done(str(db), "a", limit=N_ITEMS // 2)
    rate_until_done(str(db), "b", limit=N_ITEMS // 2)
    share = complete_pair_share(db)
    print(f"k=all complete-pair share: {share:.1%}")
    assert share < 0.75


@pytest.mark.timeout(120)
def test_five_threads_answering_pairs_leave_exactly_k_answers_per_pair(tmp_path: Path) -> None:
    """A pairwise study under the same load: pairwise answers count towards k (migration 0005)."""
    import json

    db, n_pairs = tmp_path / "pw.db", 30
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(nle("esnli", f"s{i}", c)) + "\n" for i in range(n_pairs) for c in ("A", "B")))
    with Store(db) as store:
        store.import_pairwise(path, "A", "B", "pw")  # a new study: k = 2
        for name in NAMES:
            store.add_annotator(name, "pw", code=f"code-{name}")
    barrier, counts = threading.Barrier(len(NAMES)), {}

    def work(name: str) -> None:
        with Store(db) as store:
            aid = next(a["id"] for a in store.annotators() if a["name"] == name)
            barrier.wait(60)
            done, pos = 0, store.next_unanswered(aid)
            while pos is not None:
                pair = store.annotator_pair(aid, pos)
                time.sleep(0.002)
                store.submit_preference(aid, pair["item_id"], "tie")
                done, pos = done + 1, store.next_unanswered(aid, after=pos)
            counts[name] = done

    threads = [threading.Thread(target=work, args=(n,)) for n in NAMES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert sum(counts.values()) == n_pairs * K
    conn = sqlite3.connect(db)
    per_pair = Counter(r[0] for r in conn.execute("SELECT item_id FROM preferences"))
    assert len(per_pair) == n_pairs and set(per_pair.values()) == {K}, Counter(per_pair.values())
    conn.close()
