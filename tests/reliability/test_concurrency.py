"""Two OS processes, each with its own Store on the same database file, submit 5,000 ratings each at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from annotate.core.store import Store

from .helpers import annotator_ids, make_study, parse_acks, start_writer
from .writer import answer_for

# Processes or threads racing on one database: never beside another such test (xdist, --dist loadgroup).
pytestmark = pytest.mark.xdist_group("timing")

N_ITEMS = 5_000


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_processes_submit_5000_each_none_lost(tmp_path: Path) -> None:
    db = make_study(tmp_path, N_ITEMS)
    ids = annotator_ids(db)
    go = tmp_path / "go"
    procs = {name: start_writer(db, name, "--go", str(go), "--ready", str(tmp_path / f"ready-{name}"),
                                "--count", str(N_ITEMS)) for name in ids}
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{name}").exists() for name in ids):
        assert time.monotonic() < deadline, "writers did not start"
        assert all(p.poll() is None for p in procs.values()), "a writer died before the start"
        time.sleep(0.01)
    started = time.monotonic()
    go.touch()  # both writers are waiting on this file: they start within a millisecond of each other
    results = {name: p.communicate(timeout=200) for name, p in procs.items()}
    elapsed = time.monotonic() - started

    for name, (out, err) in results.items():
        assert procs[name].returncode == 0, f"writer {name} failed:\n{err}"
        assert err == "", f"writer {name} wrote to stderr:\n{err}"
        assert out.splitlines()[-1] == f"done {N_ITEMS}"

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 2 * N_ITEMS
    assert conn.execute("SELECT COUNT(*) FROM rating_history").fetchone()[0] == 2 * N_ITEMS
    items = [r[0] for r in conn.execute("SELECT id FROM items")]
    stored = {(a, i): (r, t, rev) for a, i, r, t, rev in conn.execute(
        "SELECT annotator_id, item_id, rating, tags, revision FROM ratings")}
    for name, aid in ids.items():
        acks = parse_acks(results[name][0].splitlines())
        assert sorted(a[0] for a in acks) == sorted(items), f"{name} did not acknowledge every item exactly once"
        for item in items:
            rating, tags = answer_for(item, 1)
            assert stored[(aid, item)] == (rating, ";".join(tags), 1)
    # Every assignment is marked answered, so neither annotator would be shown an item again.
    assert conn.execute("SELECT COUNT(*) FROM assignments WHERE answered_at IS NULL").fetchone()[0] == 0

    # How the two streams interleaved is the scheduler's business, not a guarantee: it is reported, not asserted.
    order = [r[0] for r in conn.execute("SELECT annotator_id FROM rating_history ORDER BY id")]
    switches = sum(1 for x, y in zip(order, order[1:], strict=False) if x != y)
    conn.close()

    with Store(db) as store:
        assert store.integrity_check() == "ok"
        for aid in ids.values():
            assert store.answered_count(aid) == N_ITEMS and store.next_unanswered(aid) is None
    print(f"\n[concurrency] 2 processes x {N_ITEMS} submissions in {elapsed:.1f} s "
          f"({2 * N_ITEMS / elapsed:.0f}/s), {2 * N_ITEMS} ratings and history rows found, "
          f"{switches} switches between writers in commit order")
