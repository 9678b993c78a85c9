"""The annotator's walk through a pairwise study: the shared queue (position, progress, back, skip, submit) with
the answer "Explanation 1" / "Explanation 2" / Tie, tags and optional ratings per shown side.

Blind by construction: the store hands out the two explanations already in this annotator's order, answers are
given and kept here in on-screen terms ("1", "2", "tie"), and only the store maps them to configurations. Widget
keys carry the queue position and the shown side, never a database id, a configuration or the side mapping.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from annotate.app.queue import Queue
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

    def _fetch(self, position: int) -> dict[str, Any] | None:
        return self.store.annotator_pair(self.aid, position)

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

    def _read_answer(self, slot: int) -> tuple[dict[str, Any], list[str]]:
        choice = st.session_state.get(choice_key(slot))
        errors = []
        if choice not in CHOICES:
            errors.append("Choose Explanation 1, Explanation 2 or Tie (keys 1, 2, 3) before submitting.")
        tags = self.study()["tags"]
        picked = {side: [t for i, t in enumerate(tags) if st.session_state.get(tag_key(slot, side, i))]
                  for side in SIDES}
        ratings = {side: st.session_state.get(rating_key(slot, side)) for side in SIDES}
        rate_sides = self.setup()["rate_sides"]
        if rate_sides and any(ratings[side] not in RATINGS for side in SIDES):
            errors.append("Rate each explanation (yes, weak yes, weak no or no) before submitting.")
        return {"choice": choice, "tags_1": picked["1"], "tags_2": picked["2"],
                "rating_1": ratings["1"] if rate_sides else None, "rating_2": ratings["2"] if rate_sides else None,
                "comment": str(st.session_state.get(comment_key(slot)) or "").strip()}, errors

    def _save(self, item_id: int, answer: dict[str, Any], seconds: float | None) -> dict[str, Any]:
        return self.store.submit_preference(self.aid, item_id, seconds=seconds, **answer)

    def _forget(self, slot: int) -> None:
        for key in self._keys(slot):
            if key in st.session_state:
                del st.session_state[key]
