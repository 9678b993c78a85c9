"""k-of-N assignment (issue 12 §1): who gets which item next, inside the caller's write transaction.

A study's `overlap` k (table study_settings) bounds how many annotators rate an item: DEFAULT_OVERLAP = 2 for every
new study. NULL (`all`) means every annotator rates every item, the paper's set-up: chosen with `--overlap all`, and
kept by every study of a database made before the settings existed. In a k-of-N study an annotator's queue grows one
item at a time: the next item is reserved for them (an `assignments` row with `reserved_at` and no answer) only
while the item's submitted ratings (`items.rating_count`, kept by triggers) plus other annotators' live
reservations are fewer than k. A reservation lapses after `lapse_seconds`; the next annotator to claim the item then
takes it over and the lapsed row leaves the absent annotator's queue, so an item never collects more than k ratings.
Items that others already rated (or hold) come first, so complete k-sets accrue early; fresh items follow the
study's random order (`items.shuffle_key`), which each annotator enters at their own point. Attention checks (items
with an `expected_rating`) are outside k: every annotator gets each of them, at queue positions drawn for that
annotator over the share of the work they can expect (`check_slots`), so that a check is as likely at any point of
their queue.

Against hoarding: an annotator holds at most MAX_OPEN unanswered items at once (Skip keeps an item, so it counts
against that), and is given no new item once they have passed over SKIP_BUDGET in a row (held unanswered, or lost
after a lapse) until they answer one; a reservation runs from the moment the item was given and is not renewed by
coming back to it; and when a lapsed reservation is taken over, every lapsed reservation of its holder goes back
with it, checks included, so what an absent annotator keeps never depends on what kind of item it is.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

# A new study gets two ratings per item, as the paper's two annotators gave (with two annotators the same
# ratings as k = all, in another order). A study stored with NULL, or without a settings row, stays k = all.
DEFAULT_OVERLAP = 2
DEFAULT_LAPSE_SECONDS = 1800
# Unanswered items one annotator may hold at once in a k-of-N study: the one on screen and two skipped.
MAX_OPEN = 3
# Items an annotator may pass over in a row (hold unanswered, or lose after a lapse) before they get no new one
# until they answer: a worker who never answers can hold items only twice over, for one lapse each.
SKIP_BUDGET = 2 * MAX_OPEN
Tolerance = Literal["exact", "within_one"]
TOLERANCES: tuple[str, ...] = ("exact", "within_one")

# Items a ratings import created without their text are never offered to an annotator: they would be blank. The
# flag is kept from the item's metadata by triggers (migration 0005), so no query here reads metadata.
QUEUEABLE = "queueable = 1"


@dataclass(frozen=True)
class AssignmentSettings:
    """A study's assignment settings; `overlap` None means every annotator rates every item (k = `all`)."""

    overlap: int | None = DEFAULT_OVERLAP
    max_per_annotator: int | None = None
    lapse_seconds: int = DEFAULT_LAPSE_SECONDS
    attention_tolerance: Tolerance = "exact"

    def __post_init__(self) -> None:
        if self.overlap is not None and self.overlap < 1:
            raise ValueError(f"overlap must be a positive number of annotators or 'all', got {self.overlap}")
        if self.max_per_annotator is not None and self.max_per_annotator < 1:
            raise ValueError(f"max_per_annotator must be at least 1, got {self.max_per_annotator}")
        if self.lapse_seconds < 1:
            raise ValueError(f"lapse_seconds must be at least 1, got {self.lapse_seconds}")
        if self.attention_tolerance not in TOLERANCES:
            raise ValueError(f"attention_tolerance must be one of {', '.join(TOLERANCES)}, "
                             f"got {self.attention_tolerance!r}")


def parse_overlap(text: str | int | None) -> int | None:
    """'all' (or None) -> None; a positive integer (as text or int) -> itself; ValueError otherwise."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "all"):
        return None
    try:
        k = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"overlap must be a positive integer or 'all', got {text!r}") from None
    if k < 1:
        raise ValueError(f"overlap must be a positive integer or 'all', got {text!r}")
    return k


def read_settings(conn: sqlite3.Connection, study_id: int) -> AssignmentSettings:
    row = conn.execute("SELECT overlap, max_per_annotator, lapse_seconds, attention_tolerance FROM study_settings"
                       " WHERE study_id = ?", (study_id,)).fetchone()
    if row is None:  # a study created by code that predates the settings table: today's behaviour
        return AssignmentSettings(overlap=None)
    return AssignmentSettings(*row)


def study_of(conn: sqlite3.Connection, annotator_id: int) -> int:
    row = conn.execute("SELECT study_id FROM annotators WHERE id = ?", (annotator_id,)).fetchone()
    if row is None:
        raise KeyError(f"no annotator with id {annotator_id}")
    return row[0]


def _tie_break(item_id: int, annotator_id: int) -> int:
    # Orders equally taken items differently for each annotator (the old per-annotator shuffle).
    return (item_id * 2654435761 + annotator_id * 40503) % 4294967311


# Where a worker's attention checks go: unpredictable, so that no one can work them out from the code and an id.
_SLOT_RNG: random.Random = random.SystemRandom()


def _entry_point(annotator_id: int) -> float:
    """Where this annotator enters the study's random order of fresh items, so that two annotators starting at
    once do not reach for the same fresh item."""
    return random.Random(f"entry:{annotator_id}").random()


def _live_by_others(conn: sqlite3.Connection, study_id: int, annotator_id: int, live_after: float) -> dict[int, int]:
    """Regular items others hold under a live reservation, with how many hold each: few at any time."""
    return dict(conn.execute(
        # Start from the few open reservations (their partial index; the planner preferred a scan for GROUP BY).
        "SELECT a.item_id, COUNT(*) FROM assignments a INDEXED BY assignments_reserved"
        " CROSS JOIN items i ON i.id = a.item_id"
        " WHERE a.answered_at IS NULL AND a.reserved_at IS NOT NULL AND a.reserved_at >= ? AND a.annotator_id != ?"
        f" AND i.study_id = ? AND i.expected_rating IS NULL AND i.{QUEUEABLE} GROUP BY a.item_id",
        (live_after, annotator_id, study_id)).fetchall())


def _own(conn: sqlite3.Connection, annotator_id: int, items: list[int] | set[int] | dict[int, int]) -> set[int]:
    """Which of `items` are in the annotator's queue."""
    if not items:
        return set()
    marks = ",".join("?" * len(items))
    return {r[0] for r in conn.execute(f"SELECT item_id FROM assignments WHERE annotator_id = ? AND item_id IN"
                                       f" ({marks})", (annotator_id, *items))}


# k = 2: items rated once by someone else, from the items_to_rate index: `sole_rater != me` as two ranges, so
# that the annotator's own items rated once are never read (one far ahead of the others can hold thousands).
_RATED_ONCE = ("FROM items WHERE study_id = ? AND queueable = 1 AND rating_count = 1 AND sole_rater {op} ?"
               " AND expected_rating IS NULL")


def _rated_once(conn: sqlite3.Connection, study_id: int, annotator_id: int, limit: int) -> list[int]:
    """Up to `limit` items rated once by annotators below this one's id and as many above."""
    return [r[0] for op in ("<", ">") for r in conn.execute(
        f"SELECT id {_RATED_ONCE.format(op=op)} ORDER BY sole_rater, shuffle_key LIMIT ?",
        (study_id, annotator_id, limit))]


def _rated_once_count(conn: sqlite3.Connection, study_id: int, annotator_id: int) -> int:
    return sum(conn.execute(f"SELECT COUNT(*) {_RATED_ONCE.format(op=op)}", (study_id, annotator_id)).fetchone()[0]
               for op in ("<", ">"))


def _held_open(conn: sqlite3.Connection, annotator_id: int) -> list[int]:
    """The items the annotator holds unanswered (a handful in a k-of-N study)."""
    return [r[0] for r in conn.execute("SELECT item_id FROM assignments WHERE annotator_id = ? AND answered_at IS"
                                       " NULL", (annotator_id,))]


def _partial(conn: sqlite3.Connection, study_id: int, annotator_id: int, k: int, live_after: float, *,
             limit: int | None = None) -> list[int]:
    """Regular items already rated or held by others but still under k, that the annotator has not had: most taken
    first, items rated before items only held, then an order of the annotator's own. With `limit`, only the
    first `limit` of them: for k = 2 an index seek however many items are rated once."""
    live = _live_by_others(conn, study_id, annotator_id, live_after)
    if k == 2 and limit is not None:
        # Enough rows to step over the few that others hold live (taken = 2) or the annotator holds.
        n = limit + len(live) + len(_held_open(conn, annotator_id))
        rated = dict.fromkeys(_rated_once(conn, study_id, annotator_id, n), 1)
    else:
        # The annotator's own items are left out in SQL: one far ahead of the others holds many items under k.
        rated = dict(conn.execute(
            "SELECT id, rating_count FROM items WHERE study_id = ? AND queueable = 1 AND rating_count > 0"
            " AND rating_count < ? AND expected_rating IS NULL AND NOT EXISTS (SELECT 1 FROM assignments a"
            " WHERE a.item_id = items.id AND a.annotator_id = ?)", (study_id, k, annotator_id)).fetchall())
    if live:
        marks = ",".join("?" * len(live))
        rated.update(conn.execute(f"SELECT id, rating_count FROM items WHERE id IN ({marks})", tuple(live)).fetchall())
    taken = {i: n + live.get(i, 0) for i, n in rated.items()}
    taken = {i: t for i, t in taken.items() if t < k}
    own = _own(conn, annotator_id, taken)
    taken = {i: t for i, t in taken.items() if i not in own}
    # Most taken first; among equals, items already rated before items only held (a held item may yet lapse).
    out = sorted(taken, key=lambda i: (-taken[i], -rated[i], _tie_break(i, annotator_id)))
    return out if limit is None else out[:limit]


def _partial_count(conn: sqlite3.Connection, study_id: int, annotator_id: int, k: int, live_after: float) -> int:
    """How many items `_partial` would give, counted for k = 2 from the index (no item read)."""
    if k != 2:
        return len(_partial(conn, study_id, annotator_id, k, live_after))
    rated_once = _rated_once_count(conn, study_id, annotator_id)
    # Items rated once that are out of reach for now: held live by others (then taken = 2) or by the annotator;
    # items nobody rated that others hold come in.
    live = _live_by_others(conn, study_id, annotator_id, live_after)
    mine = _held_open(conn, annotator_id)
    near = set(live) | set(mine)
    counts: dict[int, tuple[int, int | None]] = {}
    if near:
        marks = ",".join("?" * len(near))
        counts = {i: (n, r) for i, n, r in conn.execute(
            f"SELECT id, rating_count, sole_rater FROM items WHERE id IN ({marks}) AND expected_rating IS NULL"
            f" AND {QUEUEABLE}", tuple(near))}
    out_of_reach = sum(1 for i in near if counts.get(i, (0, None))[0] == 1 and counts[i][1] != annotator_id)
    held_only = sum(1 for i in live if i not in mine and counts.get(i, (1, None))[0] == 0 and live[i] < 2)
    return rated_once - out_of_reach + held_only


_FRESH = ("SELECT id FROM items i WHERE study_id = ? AND queueable = 1 AND rating_count = 0 AND sole_rater IS NULL"
          " AND {cond} AND expected_rating IS NULL"
          " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND (a.annotator_id = ?"
          " OR (a.answered_at IS NULL AND a.reserved_at >= ?))) ORDER BY shuffle_key LIMIT ?")


def _fresh(conn: sqlite3.Connection, study_id: int, annotator_id: int, live_after: float, limit: int) -> list[int]:
    """Up to `limit` items nobody rated or holds, in the study's random order from this annotator's entry point."""
    entry = _entry_point(annotator_id)
    out = [r[0] for r in conn.execute(_FRESH.format(cond="shuffle_key >= ?"),
                                      (study_id, entry, annotator_id, live_after, limit))]
    if len(out) < limit:
        out += [r[0] for r in conn.execute(_FRESH.format(cond="shuffle_key < ?"),
                                           (study_id, entry, annotator_id, live_after, limit - len(out)))]
    return out


def _fresh_count(conn: sqlite3.Connection, study_id: int, annotator_id: int, live_after: float) -> int:
    """Items nobody rated or holds, counted from the index."""
    total = conn.execute("SELECT COUNT(*) FROM items WHERE study_id = ? AND queueable = 1 AND rating_count = 0"
                         " AND expected_rating IS NULL", (study_id,)).fetchone()[0]
    held = conn.execute(
        "SELECT COUNT(DISTINCT a.item_id) FROM assignments a CROSS JOIN items i ON i.id = a.item_id"
        " WHERE a.answered_at IS NULL AND a.reserved_at IS NOT NULL AND (a.annotator_id = ? OR a.reserved_at >= ?)"
        " AND i.study_id = ? AND i.expected_rating IS NULL AND i.rating_count = 0 AND i.queueable = 1",
        (annotator_id, live_after, study_id)).fetchone()[0]
    return total - held


def _checks(conn: sqlite3.Connection, study_id: int, annotator_id: int) -> list[int]:
    """The attention checks this annotator has not had, in an order random per annotator."""
    rows = [r[0] for r in conn.execute(
        "SELECT i.id FROM items i WHERE i.study_id = ? AND i.expected_rating IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator_id = ?)", (study_id, annotator_id))]
    return sorted(rows, key=lambda i: _tie_break(i, annotator_id))


def _regular_held(conn: sqlite3.Connection, annotator_id: int) -> int:
    """Regular items in the annotator's queue (answered or reserved): what the per-annotator cap counts."""
    return conn.execute("SELECT COUNT(*) FROM assignments a JOIN items i ON i.id = a.item_id"
                        " WHERE a.annotator_id = ? AND i.expected_rating IS NULL", (annotator_id,)).fetchone()[0]


def _has_regular(conn: sqlite3.Connection, annotator_id: int) -> bool:
    """Whether the annotator has any regular item in their queue (stops at the first)."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM assignments a JOIN items i ON i.id = a.item_id"
                             " WHERE a.annotator_id = ? AND i.expected_rating IS NULL)", (annotator_id,)).fetchone()[0])


def remaining(conn: sqlite3.Connection, annotator_id: int, now: float | None = None) -> int:
    """How many more items this annotator could be given now: regular ones under the cap, plus the attention
    checks they have not had (once they have or can get regular work)."""
    study_id = study_of(conn, annotator_id)
    s = read_settings(conn, study_id)
    if s.overlap is None:
        return 0
    if passed_over(conn, annotator_id) >= SKIP_BUDGET and not open_count(conn, annotator_id):
        return 0  # nothing held to answer, and no new item until they answer one: they are done
    live_after = (time.time() if now is None else now) - s.lapse_seconds
    regular = _partial_count(conn, study_id, annotator_id, s.overlap, live_after) \
        + _fresh_count(conn, study_id, annotator_id, live_after)
    if s.max_per_annotator is not None:
        regular = min(regular, max(0, s.max_per_annotator - _regular_held(conn, annotator_id)))
    takes_part = regular or _has_regular(conn, annotator_id)
    return regular + (len(_checks(conn, study_id, annotator_id)) if takes_part else 0)


def open_count(conn: sqlite3.Connection, annotator_id: int) -> int:
    """Unanswered items in the annotator's queue (from the partial index of unanswered rows)."""
    return conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ? AND answered_at IS NULL",
                        (annotator_id,)).fetchone()[0]


def passed_over(conn: sqlite3.Connection, annotator_id: int) -> int:
    """Items given to the annotator after their last answer that they have not answered: held now, or lost when
    a lapsed reservation was taken over (a gap in the queue). Reads only the queue's tail."""
    last = conn.execute("SELECT position FROM assignments WHERE annotator_id = ? AND answered_at IS NOT NULL"
                        " ORDER BY position DESC LIMIT 1", (annotator_id,)).fetchone()
    after = -1 if last is None else last[0]
    return conn.execute(
        "SELECT (SELECT COUNT(*) FROM assignments WHERE annotator_id = ? AND answered_at IS NULL AND position > ?)"
        " + (SELECT COUNT(*) FROM queue_gaps WHERE annotator_id = ? AND position > ?)",
        (annotator_id, after, annotator_id, after)).fetchone()[0]


def next_position(conn: sqlite3.Connection, annotator_id: int) -> int:
    """The position a new item takes: after every position the queue has had, so that none is used twice (a
    position reused for another item would carry the earlier item's answer widgets in an open page)."""
    return conn.execute(
        "SELECT MAX(COALESCE((SELECT MAX(position) FROM assignments WHERE annotator_id = ?), -1),"
        " COALESCE((SELECT MAX(position) FROM queue_gaps WHERE annotator_id = ?), -1)) + 1",
        (annotator_id, annotator_id)).fetchone()[0]


def _expected_share(conn: sqlite3.Connection, study_id: int, annotator_id: int, s: AssignmentSettings,
                    live_after: float, room: int | None) -> int:
    """How many more regular items this annotator can expect: their quota when the study has one, else their
    share of the study's k ratings among its expected annotators (`max_joined`, or those it has), and never
    more than what they could be given now."""
    available = _partial_count(conn, study_id, annotator_id, s.overlap, live_after) \
        + _fresh_count(conn, study_id, annotator_id, live_after)
    if room is not None:
        return min(available, room)
    n_items = conn.execute("SELECT COUNT(*) FROM items WHERE study_id = ? AND queueable = 1"
                           " AND expected_rating IS NULL", (study_id,)).fetchone()[0]
    max_joined = conn.execute("SELECT max_joined FROM study_settings WHERE study_id = ?", (study_id,)).fetchone()
    n_annotators = conn.execute("SELECT COUNT(*) FROM annotators WHERE study_id = ?", (study_id,)).fetchone()[0]
    workers = max(n_annotators, (max_joined[0] if max_joined else None) or 0, 1)
    share = -(-(s.overlap or 1) * n_items // workers) - _regular_held(conn, annotator_id)
    return max(0, min(available, share))


def _check_due(conn: sqlite3.Connection, annotator_id: int, position: int, n_checks: int,
               share: Callable[[], int]) -> bool:
    """Whether the item at `position` is one of the annotator's attention checks. Their positions are drawn
    uniformly over the queue ahead (the expected share plus the checks) whenever fewer positions lie ahead than
    checks are left to give: on their first item, and again when a check went back after a lapse."""
    ahead = {r[0] for r in conn.execute("SELECT position FROM check_slots WHERE annotator_id = ? AND position >= ?",
                                        (annotator_id, position))}
    if len(ahead) < n_checks:
        span = share() + n_checks  # holds at least n_checks free positions
        drawn: set[int] = set()
        while len(drawn) < n_checks - len(ahead):
            p = position + _SLOT_RNG.randrange(span)
            if p not in ahead:
                drawn.add(p)
        conn.executemany("INSERT INTO check_slots (annotator_id, position) VALUES (?, ?)",
                         [(annotator_id, p) for p in drawn])
        ahead |= drawn
    return position in ahead


def claim(conn: sqlite3.Connection, annotator_id: int, now: float | None = None) -> int | None:
    """Reserve the next item for the annotator (call inside BEGIN IMMEDIATE); returns its queue position, or None
    when nothing is left for them, they already hold MAX_OPEN unanswered items, or they have passed over
    SKIP_BUDGET items since their last answer."""
    study_id = study_of(conn, annotator_id)
    s = read_settings(conn, study_id)
    if s.overlap is None or open_count(conn, annotator_id) >= MAX_OPEN \
            or passed_over(conn, annotator_id) >= SKIP_BUDGET:
        return None
    now = time.time() if now is None else now
    live_after = now - s.lapse_seconds
    # Counting the annotator's whole queue is for the cap only: it grows with every item they rate.
    room = None if s.max_per_annotator is None else max(0, s.max_per_annotator - _regular_held(conn, annotator_id))
    regular: list[int] = []
    if room != 0:
        regular = _partial(conn, study_id, annotator_id, s.overlap, live_after, limit=1) \
            or _fresh(conn, study_id, annotator_id, live_after, 1)
    # Every annotator who takes part gets every attention check: those not given by the time their regular work
    # runs out come at the end. Someone who never got regular work (the study was already complete) gets none.
    checks = _checks(conn, study_id, annotator_id) if regular or _has_regular(conn, annotator_id) else []
    if not regular and not checks:
        return None
    position = next_position(conn, annotator_id)
    pick_check = not regular or bool(checks) and _check_due(
        conn, annotator_id, position, len(checks),
        lambda: _expected_share(conn, study_id, annotator_id, s, live_after, room))
    item_id = checks[0] if pick_check else regular[0]
    if not pick_check:
        # Take the item over from annotators whose reservation lapsed. Every lapsed reservation of theirs goes back
        # with it, attention checks too: keeping the checks alone would tell them which items those are. The
        # taken item never collects more than k ratings.
        holders = [r[0] for r in conn.execute("SELECT annotator_id FROM assignments WHERE item_id = ?"
                                              " AND answered_at IS NULL AND reserved_at < ?", (item_id, live_after))]
        for holder in holders:
            conn.execute("DELETE FROM assignments WHERE annotator_id = ? AND answered_at IS NULL"
                         " AND reserved_at < ?", (holder, live_after))
    conn.execute("INSERT INTO assignments (annotator_id, item_id, position, answered_at, reserved_at)"
                 " VALUES (?, ?, ?, NULL, ?)", (annotator_id, item_id, position, now))
    return position


def own_open(conn: sqlite3.Connection, annotator_id: int, after: int) -> int | None:
    """The annotator's first unanswered queue position after `after`, or None."""
    row = conn.execute("SELECT position FROM assignments WHERE annotator_id = ? AND answered_at IS NULL"
                       " AND position > ? ORDER BY position LIMIT 1", (annotator_id, after)).fetchone()
    return row[0] if row else None


def queue_number(conn: sqlite3.Connection, annotator_id: int, position: int) -> int:
    """The number shown for a queue position ("Item N"): counted past the gaps reservations taken over left, so
    that the numbers do not tell which items left the queue."""
    gaps = conn.execute("SELECT COUNT(*) FROM queue_gaps WHERE annotator_id = ? AND position < ?",
                        (annotator_id, position)).fetchone()[0]
    return position + 1 - gaps


def neighbour(conn: sqlite3.Connection, annotator_id: int, position: int | None, step: Literal[-1, 1]) -> int | None:
    """The queue position before (step -1) or after (+1) `position`, over gaps; from None, the last (-1) or the
    first (+1) position. None when there is none."""
    if position is None:
        position = 2**62 if step < 0 else -1
    sql = ("SELECT MAX(position) FROM assignments WHERE annotator_id = ? AND position < ?" if step < 0
           else "SELECT MIN(position) FROM assignments WHERE annotator_id = ? AND position > ?")
    return conn.execute(sql, (annotator_id, position)).fetchone()[0]
