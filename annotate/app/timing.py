"""Server-side latency of the annotator's main action: from the Submit callback (the start of the rerun that Enter
caused) to the end of drawing the next item. Logged to the `annotate.timing` logger, and appended to the file
named by NLE_TIMING_LOG (one `unix_time<TAB>ms` line per submit) for benchmarks/browser_latency.py."""

from __future__ import annotations

import logging
import os
import time

import streamlit as st

_KEY = "_t_submit_started"
log = logging.getLogger("annotate.timing")


def submit_received() -> None:
    """Start the clock (called first thing in the Submit callback)."""
    st.session_state[_KEY] = time.perf_counter()


def item_drawn() -> None:
    """Stop the clock after the page has drawn the item that follows a submit, and log the time."""
    started = st.session_state.get(_KEY)
    if started is None:
        return
    del st.session_state[_KEY]
    ms = (time.perf_counter() - started) * 1000
    log.info("enter_to_next_item_ms=%.1f", ms)
    path = os.environ.get("NLE_TIMING_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.time():.3f}\t{ms:.1f}\n")
