"""Processes killed with SIGKILL mid-write: no acknowledged submission lost, no half import, a sound database."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annotate.core.store import Store

from .helpers import annotator_ids, make_study, parse_acks, start_writer, write_nles
from .writer import answer_for

# Processes or threads racing on one database: never beside another such test (xdist, --dist loadgroup).
pytestmark = pytest.mark.xdist_group("timing")

IMPORTER = Path(__file__).with_name("importer.py")
KILLS = 5
N_ITEMS = 3_000


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One study of N_ITEMS items with one annotator, built once and copied per kill."""
    return make_study(tmp_path_factory.mktemp("crash-template"), N_ITEMS, {"ann-a": "code-a-1234"})


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill", range(1, KILLS + 1))
def test_sigkill_mid_stream_keeps_every_acknowledged_submission(kill: int, template_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "annotations.db"
    shutil.copy(template_db, db)
    rng = random.Random(kill)
    aid = annotator_ids(db)["ann-a"]
    # Every 5th submission revises an earlier answer, so the kill can also land in an UPDATE + history append.
    proc = start_writer(db, "ann-a", "--revise-every", "5")
    kill_after = rng.randint(200, 800)
    seen = []
    while len(seen) < kill_after:
        line = proc.stdout.readline()
        assert line, f"writer ended early: {proc.stderr.read()}"
        seen.append(line)
    time.sleep(rng.uniform(0, 0.02))  # a random moment, usually inside a later submission
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # Read through the same buffered reader as readline() above (communicate() would skip its buffer).
    rest, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, f"writer was not killed but exited {proc.returncode}: {err}"
    assert err == ""
    acks = parse_acks(seen + rest.splitlines(keepends=True))  # acks still in the pipe were printed before the kill
    assert "done" not in rest, "the stream finished before the kill"

    conn = sqlite3.connect(db)  # a fresh connection recovers from the WAL as the app would after a crash
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    history = {(i, rev): (r, t) for i, rev, r, t in conn.execute(
        "SELECT item_id, revision, rating, tags FROM rating_history WHERE annotator_id = ?", (aid,))}
    current = {i: (rev, r) for i, rev, r in conn.execute(
        "SELECT item_id, revision, rating FROM ratings WHERE annotator_id = ?", (aid,))}
    for item, rev, rating, tags in acks:
        assert history.get((item, rev)) == (rating, tags), f"acknowledged submission {item} rev {rev} lost"
        assert current[item][0] >= rev
        assert (rating, tags.split(";") if tags else []) == answer_for(item, rev)
    # At most the one submission that committed but whose ack was not yet written is beyond the acks.
    assert len(acks) <= len(history) <= len(acks) + 1
    assert conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ? AND answered_at IS NOT NULL",
                        (aid,)).fetchone()[0] == len(current)
    conn.close()

    # The app carries on: a restarted writer resumes at the first unanswered item and its writes land.
    with Store(db) as store:
        assert store.integrity_check() == "ok"
        before = store.answered_count(aid)
    restarted = start_writer(db, "ann-a", "--count", "50")
    out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    assert {a[0] for a in parse_acks(out.splitlines())}.isdisjoint(current)
    with Store(db) as store:
        assert store.answered_count(aid) == before + 50
    print(f"\n[crash] kill {kill}: SIGKILL after {len(acks)} acks; {len(history)} history rows, "
          f"{len(current)} ratings; integrity ok; resumed")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkill_inside_an_import_transaction_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = make_study(tmp_path, 10, {"ann-a": "code-a-1234"})
    nles = write_nles(tmp_path / "big.jsonl", 15_000)  # big enough that SQLite spills to the WAL before COMMIT
    with Store(db) as store:
        before = store.counts()
    # The importer stops itself on the first statement after its transaction spilled pages to the WAL (inside
    # BEGIN ... COMMIT, decided by SQLite, not by a clock) and waits there to be killed.
    proc = subprocess.Popen([sys.executable, str(IMPORTER), str(db), str(nles), "load"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "inside\n", f"the import never stopped inside its transaction: {proc.stderr.read()}"
    assert Path(f"{db}-wal").stat().st_size > 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with Store(db) as store:
        assert store.integrity_check() == "ok"
        assert store.counts() == before  # nothing of the interrupted import is visible
        assert store.queue_length(annotator_ids(db)["ann-a"]) == 10
        result = store.import_nles(nles, "load")  # and the same import then goes through whole
        assert (result.added, result.unchanged) == (14_990, 10)
        assert store.counts()["items"] == 15_000
