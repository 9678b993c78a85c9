"""The timing log's figures (annotate/app/timing.py): the run's CPU time and CPU wait never exceed its wall time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from annotate.app import timing


def test_a_preemption_after_the_wall_clock_read_is_in_neither_figure(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread is preempted for 10 ms right after the wall clock's second read. The wall-clock interval must
    enclose the CPU and CPU-wait intervals, so that wait time cannot land in the wait figure only."""
    log = tmp_path / "timing.log"
    monkeypatch.setenv("NLE_TIMING_LOG", str(log))
    monkeypatch.setattr(timing, "st", SimpleNamespace(session_state={}))
    clock = {"wall": 0.0, "cpu": 0.0, "wait_ns": 0, "wall_reads": 0}

    def perf_counter() -> float:
        clock["wall_reads"] += 1
        now = clock["wall"]
        if clock["wall_reads"] == 2:  # preempted for 10 ms just after this read
            clock["wall"] += 0.010
            clock["wait_ns"] += 10_000_000
        return now

    monkeypatch.setattr(timing.time, "perf_counter", perf_counter)
    monkeypatch.setattr(timing.time, "thread_time", lambda: clock["cpu"])
    monkeypatch.setattr(timing, "_cpu_wait_ns", lambda: clock["wait_ns"])
    timing.submit_received()
    clock["wall"] += 0.005  # 5 ms of drawing the next item
    clock["cpu"] += 0.005
    timing.item_drawn()
    _, wall, cpu, wait = log.read_text().split("\t")
    assert float(cpu) <= float(wall) and float(wait) <= float(wall), (wall, cpu, wait)
