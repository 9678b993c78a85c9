"""The annotator's walk through a pairwise study: the same queue (position, progress, back, skip) as the rating
page, with the answer "Explanation 1" / "Explanation 2" / Tie, tags and optional ratings per shown side.

Blind by construction: the store hands out the two explanations already in this annotator's order, answers are
given and kept here in on-screen terms ("1", "2", "tie"), and only the store maps them to configurations. Widget
keys carry the queue position and the shown side, never a database id, a configuration or the side mapping.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from annotate.app.queue import Queue
from annotate.core.errors import AccessDenied
from annotate.core.pairwise import CHOICES
from annotate.core.scale import RATINGS

SIDES = ("1", "2")
CHOICE_KEY_PREFIX = "_p_choice_"  # keys 1, 2, 3 tick this radio in the browser, never a side's rating radio
PAIR_FORM = "_p_pair"


def choice_key(pos: int) -> str:
    return f"{CHOICE_KEY_PREFIX}{pos}"


def tag_key(pos: int, side: str, index: int) -> str:
    return f"_p_tag_{pos}_{side}_{index}"


def rating_key(pos: int, side: str) -> str:
    return f"_p_rating_{pos}_{side}"


def comment_key(pos: int) -> str:
    return f"_p_comment_{pos}"


class PairQueue(Queue):
    """One annotator's walk through their pairs, kept in this browser session's state."""

    def setup(self) -> dict[str, Any]:
        """{"rate_sides": bool} of the study (the configuration names stay in the server and are not used here)."""
        s = self._state()
        if "pair_setup" not in s:
            setup = self.store.pairwise_setup(int(self.annotator["study_id"])) or {}
            s["pair_setup"] = {"rate_sides": bool(setup.get("rate_sides"))}
        return s["pair_setup"]

    def item(self) -> dict[str, Any] | None:
        """The blind view of the pair on screen (None when finished), starting its clock on first show."""
        pos = self.position
        if pos is None:
            return None
        item = self.store.annotator_pair(self.aid, pos)
        if item is None:  # the queue changed under us: start over from the first open pair, once
            self._refresh_counts()
            nxt = self.store.next_unanswered(self.aid)
            self._go(nxt)
            item = self.store.annotator_pair(self.aid, nxt) if nxt is not None else None
            if item is None:
                self._go(None)
                return None
            pos = nxt
        s = self._state()
        if s["shown"] is None or s["shown"][0] != item["item_id"]:
            s["shown"] = (item["item_id"], time.monotonic(), pos)
        self._prefill(item)
        return item

    def _keys(self, pos: int) -> list[str]:
        tags = self.study()["tags"]
        return [choice_key(pos), comment_key(pos), *(rating_key(pos, side) for side in SIDES),
                *(tag_key(pos, side, i) for side in SIDES for i in range(len(tags)))]

    def _prefill(self, item: dict[str, Any]) -> None:
        pos = item["position"]
        if choice_key(pos) in st.session_state:
            return
        answer = item["answer"] or {"choice": None, "tags_1": [], "tags_2": [], "rating_1": None, "rating_2": None,
                                    "comment": ""}
        st.session_state[choice_key(pos)] = answer["choice"]
        for side in SIDES:
            st.session_state[rating_key(pos, side)] = answer[f"rating_{side}"]
            for i, tag in enumerate(self.study()["tags"]):
                st.session_state[tag_key(pos, side, i)] = tag in answer[f"tags_{side}"]
        st.session_state[comment_key(pos)] = answer["comment"] or ""

    def _shown_position(self) -> int | None:
        shown = self._state()["shown"]
        return shown[2] if shown else None

    def submit(self) -> None:
        """Save the answer to the pair on screen; keep the form and say why when something is missing."""
        s = self._state()
        item_id, pos = self._on_screen(), self._shown_position()
        if item_id is None or pos is None:
            return
        if self._session_ended():
            return
        choice = st.session_state.get(choice_key(pos))  # the pair's form: everything arrives with this submit
        errors = []
        if choice not in CHOICES:
            errors.append("Choose Explanation 1, Explanation 2 or Tie (keys 1, 2, 3) before submitting.")
        tags = self.study()["tags"]
        picked = {side: [t for i, t in enumerate(tags) if st.session_state.get(tag_key(pos, side, i))]
                  for side in SIDES}
        ratings = {side: st.session_state.get(rating_key(pos, side)) for side in SIDES}
        rate_sides = self.setup()["rate_sides"]
        if rate_sides and any(ratings[side] not in RATINGS for side in SIDES):
            errors.append("Rate each explanation (yes, weak yes, weak no or no) before submitting.")
        if errors:
            s["errors"] = errors
            return
        if self._flooded():
            return
        comment = str(st.session_state.get(comment_key(pos)) or "").strip()
        shown = s["shown"]
        seconds = round(time.monotonic() - shown[1], 3) if shown and shown[0] == item_id else None
        try:
            saved = self.store.submit_preference(
                self.aid, item_id, choice, tags_1=picked["1"], tags_2=picked["2"],
                rating_1=ratings["1"] if rate_sides else None, rating_2=ratings["2"] if rate_sides else None,
                comment=comment, seconds=seconds)
        except (AccessDenied, ValueError) as e:
            s["errors"] = [str(e)]
            return
        c = s["counts"]
        if c is not None and saved["revision"] == 1:
            c["answered"] += 1
        for key in self._keys(pos):
            if key in st.session_state:
                del st.session_state[key]
        s["notice"] = "Saved." if saved["revision"] == 1 else f"Saved (revision {saved['revision']})."
        self._go(self.store.next_unanswered(self.aid, after=pos))
        if s["pos"] is None:
            self._refresh_counts()
