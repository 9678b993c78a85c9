"""What each study kind adds in the app, one module each, registered in one table: `PAGES` maps a kind's name
(`annotate.core.kinds.KINDS`) to its annotate page and Side by side view (docs/development.md)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from annotate.app.kinds import pairwise, rating
from annotate.app.kinds.base import KindPage
from annotate.core.store import Store

PAGES: dict[str, KindPage] = {k.name: k for k in (
    rating.PAGE,  # one explanation, keys 1–4
    pairwise.PAGE,  # two explanations side by side, keys 1, 2, 3
)}


def for_annotator(store: Store, annotator: dict[str, Any]) -> KindPage:
    """The kind of the annotator's study. A study's kind never changes, so this session asks the database once
    (the router and the page both ask on every rerun)."""
    key = f"_kind_{int(annotator['study_id'])}"
    if key not in st.session_state:
        st.session_state[key] = store.study_kind(int(annotator["study_id"])).name
    return PAGES[st.session_state[key]]


def for_study(store: Store, study: str) -> KindPage:
    """The kind of the study named `study` (the researcher's pages)."""
    return PAGES[store.study_kind(store.resolve_study(study)["id"]).name]
