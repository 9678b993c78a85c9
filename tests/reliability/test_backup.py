"""`nle-annotate backup` while an annotator process is writing: a consistent, sound copy that restores."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from annotate.core.store import Store

from .helpers import CODES, annotator_ids, make_study, parse_acks, start_writer

# Processes or threads racing on one database: never beside another such test (xdist, --dist loadgroup).
pytestmark = pytest.mark.xdist_group("timing")

CLI = Path(sys.executable).with_name("nle-annotate")
TABLE_KEYS = {"rating_history": "id", "ratings": "annotator_id, item_id", "assignments": "annotator_id, position"}


def rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {TABLE_KEYS[table]}").fetchall()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def writing_db(tmp_path: Path):
    """A study whose annotator 'ann-a' is submitting (and revising) ratings in another process."""
    db = make_study(tmp_path, 5_000)
    stop = tmp_path / "stop"
    # Paced (still far faster than a person) so the queue is not finished before the backups start.
    proc = start_writer(db, "ann-a", "--revise-every", "5", "--pause-ms", "4", "--stop", str(stop))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()

    def wait_acks(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(parse_acks(lines)) < n:
            assert proc.poll() is None, f"writer ended: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.01)

    yield db, wait_acks
    stop.touch()
    proc.wait(timeout=30)
    reader.join(timeout=10)
    assert proc.returncode == 0, proc.stderr.read()
    assert lines and lines[-1].startswith("done")


@pytest.mark.skipif(not CLI.exists(), reason=f"console script {CLI} not installed")
@pytest.mark.timeout(120)
def test_backup_while_writing_is_consistent_and_restores(writing_db, tmp_path: Path) -> None:
    db, wait_acks = writing_db
    copies = []
    for i, after in enumerate((300, 700)):
        wait_acks(after)
        out = tmp_path / f"backup-{i}.db"
        result = cli("backup", "--db", str(db), "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert "integrity_check: ok" in result.stdout
        copies.append(out)
    wait_acks(1_000)  # the writer carries on after the backups
    source_history = rows(db, "rating_history")
    source_ratings = {r[1:3]: r for r in rows(db, "ratings")}  # (item_id, annotator_id) -> row

    sizes = []
    for copy in copies:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        history = rows(copy, "rating_history")
        # A snapshot at one commit: the copy's history is exactly a prefix of the source's append-only history...
        assert 0 < len(history) < len(source_history)
        assert history == source_history[: len(history)]
        # ...and its current ratings are the latest version in that prefix, identical to the source's row then.
        by_version = {(h[1], h[2], h[10]): h for h in history}  # (item, annotator, revision)
        ratings = rows(copy, "ratings")
        latest: dict[tuple, int] = {}
        for h in history:
            latest[(h[1], h[2])] = max(latest.get((h[1], h[2]), 0), h[10])
        assert {r[1:3]: r[10] for r in ratings} == latest
        for r in ratings:
            assert r[3:] == by_version[(r[1], r[2], r[10])][3:] and r[1:3] in source_ratings
        answered = [a for a in rows(copy, "assignments") if a[3] is not None]
        assert len(answered) == len(ratings)
        sizes.append(len(history))
    assert sizes[0] < sizes[1], "the second backup should contain the writes made after the first"

    # Restore: the copy becomes the database again; annotators sign in, resume, and write; exports work.
    restored = tmp_path / "restored" / "annotations.db"
    restored.parent.mkdir()
    shutil.copy(copies[-1], restored)
    aid = annotator_ids(restored)["ann-a"]
    with Store(restored) as store:
        assert store.integrity_check() == "ok"
        who = store.authenticate("ann-a", CODES["ann-a"])
        assert who["id"] == aid
        answered_before = store.answered_count(aid)
        position = store.next_unanswered(aid)
        item = store.annotator_item(aid, position)
        assert item is not None and item["answer"] is None
        store.submit(aid, item["item_id"], "yes")
        assert store.answered_count(aid) == answered_before + 1
    export = tmp_path / "restored.csv"
    result = cli("export", "--db", str(restored), "--out", str(export))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(export)) == len(rows(copies[-1], "ratings")) + 1
    print(f"\n[backup] 2 online backups during writes: {sizes[0]} and {sizes[1]} history rows "
          f"(source reached {len(source_history)}); both integrity ok, prefix-consistent, restored")


@pytest.mark.skipif(not CLI.exists(), reason=f"console script {CLI} not installed")
def test_backup_never_overwrites(tmp_path: Path) -> None:
    db = make_study(tmp_path, 10)
    out = tmp_path / "existing.db"
    out.write_bytes(b"keep me")
    result = cli("backup", "--db", str(db), "--out", str(out))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_bytes() == b"keep me"
