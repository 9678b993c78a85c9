"""Crowd join links and completion codes in the app (issue 12 §3).

A visit to `/?study=NAME&join=TOKEN&pid=WORKER_ID` (or PROLIFIC_PID / workerId instead of pid) signs the worker in
as the annotator named after their id, created on the first visit. A link that cannot be used shows one plain
message on the sign-in page and changes nothing.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from annotate.app import render, session
from annotate.core.crowd import PID_PARAMS, JoinRefused

JOIN_PARAM = "join"
_ERROR, _LINK = "_join_error", "_join_link"


def _pid() -> str | None:
    for name in PID_PARAMS:
        if name in st.query_params:
            return st.query_params[name]
    return None


def handle_join_link() -> None:
    """Sign in through the join link in the URL, unless this session already belongs to that worker."""
    if JOIN_PARAM not in st.query_params:
        return
    study, token, pid = st.query_params.get("study", ""), st.query_params[JOIN_PARAM], _pid()
    current = session.current_annotator()
    link = (study, token, pid)
    if current is not None and st.session_state.get(_LINK) == (link, current["id"]):
        return  # this session already joined through this link: no database write on every rerun
    store = session.get_store()
    try:
        annotator = store.join(study, token, pid, session.client_address())
    except JoinRefused as e:
        st.session_state[_ERROR] = str(e)
        return
    st.session_state.pop(_ERROR, None)
    if current is None or current["id"] != annotator["id"]:
        session.sign_in_joined(annotator)
    st.session_state[_LINK] = (link, annotator["id"])


def show_join_error() -> None:
    if message := st.session_state.get(_ERROR):
        st.error(message)


def show_completion(annotator: dict[str, Any]) -> None:
    """The study's completion code (and a link back to the crowd platform) once the annotator's work is done."""
    done = session.get_store().completion(annotator["id"])
    if done is None:
        return
    st.subheader("Your completion code")
    st.code(done["completion_code"], language=None)
    if done["redirect_url"]:
        st.link_button("Return to the study platform to finish", done["redirect_url"], type="primary",
                       icon=":material/open_in_new:")
    else:
        st.caption(f"Enter this code where the study platform asks for it: {render.md_escape(done['completion_code'])}")


def sign_out() -> None:
    """Sign out, and drop the join link from the URL so the next run does not sign the worker straight back in."""
    session.sign_out()
    for name in ("study", JOIN_PARAM, *PID_PARAMS):
        st.query_params.pop(name, None)
