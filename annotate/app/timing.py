"""Server-side latency of the annotator's main action: from the Submit callback (the start of the rerun that Enter
caused) to the end of drawing the next item. Logged to the `annotate.timing` logger, and appended to the file
named by NLE_TIMING_LOG for benchmarks/browser_latency.py, one line per submit:
`unix_time<TAB>ms<TAB>cpu_ms<TAB>cpu_wait_ms` (cpu_ms: the run's own CPU time; cpu_wait_ms: the time it was ready to
run but waited for a CPU, from Linux's schedstat, empty elsewhere). The last two tell a slow server from a server
whose cores something else took (docs/benchmarks.md)."""

from __future__ import annotations

import logging
import os
import threading
import time

import streamlit as st

_KEY = "_t_submit_started"
log = logging.getLogger("annotate.timing")


def _cpu_wait_ns() -> int | None:
    """Nanoseconds this thread has spent ready to run but waiting for a CPU (Linux), else None."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def submit_received() -> None:
    """Start the clock (called first thing in the Submit callback)."""
    # The wall clock always; the CPU figures only for the benchmark's log (a /proc read each).
    detail = os.environ.get("NLE_TIMING_LOG")
    st.session_state[_KEY] = (time.perf_counter(), time.thread_time() if detail else None,
                              _cpu_wait_ns() if detail else None)


def item_drawn() -> None:
    """Stop the clock after the page has drawn the item that follows a submit, and log the time."""
    started = st.session_state.get(_KEY)
    if started is None:
        return
    del st.session_state[_KEY]
    wall, cpu, cpu_wait = started
    # Read in the reverse order of submit_received, so that the wall-clock interval encloses the CPU ones: a
    # preemption between two reads then counts in the wall time too, and neither figure can exceed it.
    now_wait = _cpu_wait_ns() if cpu_wait is not None else None
    now_cpu = time.thread_time() if cpu is not None else None
    ms = (time.perf_counter() - wall) * 1000
    log.info("enter_to_next_item_ms=%.1f", ms)
    path = os.environ.get("NLE_TIMING_LOG")
    if path:
        cpu_ms = f"{(now_cpu - cpu) * 1000:.1f}" if cpu is not None and now_cpu is not None else ""
        wait_ms = f"{(now_wait - cpu_wait) / 1e6:.1f}" if cpu_wait is not None and now_wait is not None else ""
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{time.time():.3f}\t{ms:.1f}\t{cpu_ms}\t{wait_ms}\n")
        except OSError as e:  # a benchmark's log must never stop an annotator's page
            log.warning("NLE_TIMING_LOG %s: %s", path, e)
