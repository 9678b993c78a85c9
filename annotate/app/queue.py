"""The annotator's walk through their queue (`Queue`, the same for every study kind): position, progress, back,
skip, the submit rate and timing; and the rating study's answer widgets (`RatingQueue`).

A kind's queue adds what differs: how an item is fetched for the annotator, how its widgets are filled and read,
and how the answer is saved (pair_queue.PairQueue for a pairwise study). The state lives in session state under
one `_q_<annotator id>` key; every store call passes the verified annotator id, so nothing here can reach another
annotator's answers.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from annotate.app import timing
from annotate.core import assignment, limits
from annotate.core.errors import AccessDenied, RuleViolation
from annotate.core.limits import SKIP_SLOW_DOWN, SLOW_DOWN
from annotate.core.scale import RATINGS
from annotate.core.store import Store

HOLDING_MOST = ("You hold {n} unanswered items, the most at once: Skip now moves between them; answer one to get a "
                "new item.")
COUNTS_TTL_S = 60.0  # progress counts are refreshed from the database at least this often
STUDY_TTL_S = 60.0


# Widget keys reach the browser and the websocket, so they never carry an item's database id: ids follow the
# file's order (configurations alternate, gold reference items come last), so an id would tell a curious annotator
# which configuration they are rating. The answer radio's key names the item's place in this annotator's own queue
# (random per annotator): a new radio per item, so an answer (key press, click, a second Enter) that reaches the
# server after the next item was drawn belongs to the previous radio and is never taken for the next item's.
# The tags and the comment keep one widget each for the whole queue, reset for each item (`RatingQueue._prefill`):
# the browser rebuilding the checkboxes and the text area on every item was a large share of its time per item
# (docs/benchmarks.md).
ANSWER_KEY_PREFIX = "_a_answer_"  # keys 1–4 tick this radio in the browser (render.keep_shortcuts_after_clicks)
ITEM_FORM = "_a_item"
COMMENT_KEY = "_a_comment"


def answer_key(position: int) -> str:
    return f"{ANSWER_KEY_PREFIX}{position}"


def tag_key(tag: str) -> str:
    return f"_a_tag_{tag}"


@dataclass
class Queue:
    """One annotator's walk through their queue, kept in this browser session's state. A study kind's queue
    implements `_fetch`, `_prefill`, `_read_answer`, `_save` and `_forget`."""

    store: Store
    annotator: dict[str, Any]

    @property
    def aid(self) -> int:
        return int(self.annotator["id"])

    def _state(self) -> dict[str, Any]:
        # Everything lives under one key tied to the annotator id, so state left by anyone else is ignored.
        key = f"_q_{self.aid}"
        if key not in st.session_state:
            st.session_state[key] = {"pos": self.store.next_unanswered(self.aid), "shown": None, "counts": None,
                                     "errors": None, "notice": None, "study": None}
        return st.session_state[key]

    # -- the study (question, tags, guidelines), read once a minute rather than on every rerun
    def study(self) -> dict[str, Any]:
        s = self._state()
        cached = s["study"]
        if cached is None or time.monotonic() - cached[0] > STUDY_TTL_S:
            cached = (time.monotonic(), self.store.study_by_id(self.annotator["study_id"]))
            s["study"] = cached
        return cached[1]

    # -- progress
    def counts(self) -> tuple[int, int]:
        """(answered, total), counted in the database at most once a minute and kept current on submit."""
        s = self._state()
        c = s["counts"]
        if c is None or time.monotonic() - c["at"] > COUNTS_TTL_S:
            c = {"answered": self.store.answered_count(self.aid), "total": self.store.queue_length(self.aid),
                 "at": time.monotonic()}
            s["counts"] = c
        return c["answered"], c["total"]

    def _refresh_counts(self) -> None:
        self._state()["counts"] = None

    # -- position
    @property
    def position(self) -> int | None:
        """Position of the item on screen, or None when the queue is finished."""
        return self._state()["pos"]

    def _go(self, pos: int | None) -> None:
        s = self._state()
        s["pos"], s["shown"], s["errors"] = pos, None, None

    def item(self) -> dict[str, Any] | None:
        """The blind view of the item on screen (None when finished), starting its clock on first show."""
        pos = self.position
        if pos is None:
            return None
        item = self._fetch(pos)
        if item is None:  # the queue changed under us (should not happen): start over from the first open item, once
            self._refresh_counts()
            pos = self.store.next_unanswered(self.aid)
            self._go(pos)
            item = self._fetch(pos) if pos is not None else None
            if item is None:
                self._go(None)
                return None
        s = self._state()
        if s["shown"] is None or s["shown"][0] != item["item_id"]:
            s["shown"] = (item["item_id"], time.monotonic(), pos)
        self._prefill(item)
        return item

    # -- what a study kind's queue implements
    def _fetch(self, position: int) -> dict[str, Any] | None:
        """The blind view of the item at `position` in this annotator's queue, with their earlier `answer`."""
        raise NotImplementedError

    def _prefill(self, item: dict[str, Any]) -> None:
        """Put the saved answer (or a blank one) into the widgets' state the first time the item is drawn."""
        raise NotImplementedError

    def _read_answer(self, slot: int) -> tuple[dict[str, Any], list[str]]:
        """The answer in the widgets of the item at queue position `slot`, and what is missing from it."""
        raise NotImplementedError

    def _save(self, item_id: int, answer: dict[str, Any], seconds: float | None) -> dict[str, Any]:
        """Save the answer through the store; its saved row (with `revision`)."""
        raise NotImplementedError

    def _forget(self, slot: int) -> None:
        """Drop the saved item's widget state, so that it starts from the database next time it is shown."""
        raise NotImplementedError

    def errors(self) -> list[str] | None:
        return self._state()["errors"]

    def pop_notice(self) -> str | None:
        s = self._state()
        notice, s["notice"] = s["notice"], None
        return notice

    # -- actions (used as button callbacks: they run before the page is drawn again)
    def _on_screen(self) -> int | None:
        # Keys act on the item last put on screen, not on an id bound when the button was drawn: a key pressed
        # while the next item is still being drawn would otherwise carry the previous item's id.
        shown = self._state()["shown"]
        return shown[0] if shown else None

    def _session_ended(self) -> bool:
        """Ended elsewhere (sign-out in another tab, new code) since the page was drawn: a Submit callback runs
        before the page checks the session, so it asks itself, saves nothing, and the page then signs it out."""
        return self.store.session_generation(self.aid) != self.annotator["generation"]

    def _slot_on_screen(self) -> int:
        return self._state()["shown"][2]

    def _flooded(self) -> bool:
        """True (and "Slow down" on screen, the answer kept) when this submit would break the one submit rate of
        both kinds of study (annotate/core/limits.py)."""
        s = self._state()
        if limits.allow_submit(s.setdefault("submits", []), time.monotonic()):
            return False
        s["errors"] = [SLOW_DOWN]
        return True

    def number(self, position: int) -> int:
        """The item's number in the annotator's queue as shown ("Item N"): no gaps where items left it."""
        return self.store.queue_number(self.aid, position)

    def back(self) -> None:
        # Over gaps: a reservation taken over after its lapse leaves the queue, and its position with it.
        previous = self.store.neighbour(self.aid, self.position, -1)
        if previous is not None:
            self._go(previous)

    def skip(self) -> None:
        """Leave the item as it is and go to the next unanswered one (or simply the next one when all are done).
        A skipped item stays reserved and counts against the unanswered items one may hold at once."""
        pos = self.position
        if pos is None:
            return
        s = self._state()
        if not limits.allow_submit(s.setdefault("skips", []), time.monotonic()):
            s["errors"] = [SKIP_SLOW_DOWN]
            return
        nxt = self.store.next_unanswered(self.aid, after=pos)
        if nxt == pos:
            s["notice"] = "This is the only unanswered item left."
            return
        if nxt is None:  # everything answered: Skip just steps forward through the answers
            nxt = self.store.neighbour(self.aid, pos, 1)
        elif self.store.holds_most_open(self.aid):
            s["notice"] = HOLDING_MOST.format(n=assignment.MAX_OPEN)
        self._go(nxt)

    def restart(self) -> None:
        """From the finished screen, go to the first item to revise answers."""
        self._go(self.store.neighbour(self.aid, None, 1))

    def resume(self) -> None:
        """Go on with the first unanswered item (after the finished screen found that new work came free)."""
        self._refresh_counts()
        self._go(self.store.next_unanswered(self.aid))

    def submit(self) -> None:
        """Save the answer to the item on screen through the store; when something is missing or refused, keep
        the form and say why."""
        timing.submit_received()
        s = self._state()
        item_id = self._on_screen()
        if item_id is None:
            return
        if self._session_ended():
            return
        # The item's widgets sit in one form, so the whole answer arrives with this submit, and keys (ticked in the
        # browser) or clicks before it started no run of their own.
        slot = self._slot_on_screen()
        answer, missing = self._read_answer(slot)
        if missing:
            s["errors"] = missing
            return
        if self._flooded():
            return
        shown = s["shown"]
        seconds = round(time.monotonic() - shown[1], 3) if shown and shown[0] == item_id else None
        try:
            saved = self._save(item_id, answer, seconds)
        except RuleViolation as e:
            s["errors"] = list(e.messages)
            return
        except (AccessDenied, ValueError) as e:
            s["errors"] = [str(e)]
            return
        except sqlite3.OperationalError:  # busy beyond the store's own retries: say so, keep the answer
            s["errors"] = ["The server is busy and did not save this answer yet. Press Enter again."]
            return
        c = s["counts"]
        if c is not None and saved["revision"] == 1:
            c["answered"] += 1
        self._forget(slot)
        s["notice"] = "Saved." if saved["revision"] == 1 else f"Saved (revision {saved['revision']})."
        self._go(self.store.next_unanswered(self.aid, after=slot))
        if s["pos"] is None:
            self._refresh_counts()


class RatingQueue(Queue):
    """The walk through a rating study: the answer (keys 1–4), shortcoming tags and a comment per item."""

    def _fetch(self, position: int) -> dict[str, Any] | None:
        return self.store.annotator_item(self.aid, position)

    def _prefill(self, item: dict[str, Any]) -> None:
        pos, s = item["position"], self._state()
        if answer_key(pos) in st.session_state and s.get("filled") == pos:
            return  # drawn again (an error, a rerun): the annotator's own choices stay
        answer = item["answer"] or {"rating": None, "tags": [], "comment": ""}
        st.session_state[answer_key(pos)] = answer["rating"]
        for tag in self.study()["tags"]:
            st.session_state[tag_key(tag)] = tag in answer["tags"]
        st.session_state[COMMENT_KEY] = answer["comment"] or ""
        s["filled"] = pos

    def _read_answer(self, slot: int) -> tuple[dict[str, Any], list[str]]:
        rating = st.session_state.get(answer_key(slot))
        if rating not in RATINGS:
            return {}, ["Choose an answer (keys 1–4) before submitting."]
        return {"rating": rating, "tags": [t for t in self.study()["tags"] if st.session_state.get(tag_key(t))],
                "comment": str(st.session_state.get(COMMENT_KEY) or "").strip()}, []

    def _save(self, item_id: int, answer: dict[str, Any], seconds: float | None) -> dict[str, Any]:
        return self.store.submit(self.aid, item_id, answer["rating"], answer["tags"], answer["comment"], seconds)

    def _forget(self, slot: int) -> None:
        st.session_state.pop(answer_key(slot), None)
        self._state()["filled"] = None
