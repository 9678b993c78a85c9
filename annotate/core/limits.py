"""What one annotator may send, the same for every kind of study (rating and pairwise): how long a comment may be
and how fast answers may be submitted.

The comment cap is enforced by the app's text boxes, by the store's submit methods and by the CSV readers of
ratings and pairwise answers, so every export imports back. The submit rate is kept per browser session by the
Annotate page's queue walk (annotate/app/queue.py, the same for every kind of study).
"""

from __future__ import annotations

# An annotator's comment; far below formats.MAX_LINE_CHARS, so an export row always imports back.
MAX_COMMENT_CHARS = 10_000
# Submits per browser session: at most SUBMIT_BURST within SUBMIT_WINDOW_S (a person needs a second or more per
# item); a client that floods Submit is told to slow down, and the form keeps its answer.
SUBMIT_BURST, SUBMIT_WINDOW_S = 10, 5.0
SLOW_DOWN = "Slow down: your answer was not saved yet. It is still here; press Enter again in a moment."
# Skips are held to the same rate: each could otherwise reserve another item.
SKIP_SLOW_DOWN = "Slow down: wait a moment before skipping again."


def check_comment(comment: str | None) -> str:
    """The comment ('' for None); ValueError when it is longer than MAX_COMMENT_CHARS."""
    comment = comment or ""
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"comment is longer than {MAX_COMMENT_CHARS:,} characters")
    return comment


def allow_submit(times: list[float], now: float) -> bool:
    """Whether a submit at `now` keeps within SUBMIT_BURST per SUBMIT_WINDOW_S, given the times of the earlier
    ones (kept by the caller and updated in place: old times dropped, `now` added when allowed)."""
    times[:] = [t for t in times if now - t < SUBMIT_WINDOW_S]
    if len(times) >= SUBMIT_BURST:
        return False
    times.append(now)
    return True
