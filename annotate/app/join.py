"""Crowd join links, resume codes and completion codes in the app.

A visit to `/?study=NAME&join=TOKEN&pid=WORKER_ID` (or PROLIFIC_PID / workerId instead of pid) signs the worker in
as the annotator `crowd:WORKER_ID`, created on the first visit, which also shows the worker's resume code once and
binds the worker to this browser (its resume cookie). The same link in another browser asks for the resume code
on the sign-in page. A link that cannot be used shows one plain message on the sign-in page and changes nothing.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from annotate.app import render, session
from annotate.core import auth
from annotate.core.crowd import PID_PARAMS, JoinRefused, ResumeNeeded

JOIN_PARAM = "join"
_ERROR, _LINK, _NEEDS_CODE, _RESUME_CODE = "_join_error", "_join_link", "_join_needs_code", "_join_resume_code"


def _pid() -> str | None:
    for name in PID_PARAMS:
        if name in st.query_params:
            return st.query_params[name]
    return None


def _link() -> tuple[str, str, str | None]:
    return st.query_params.get("study", ""), st.query_params[JOIN_PARAM], _pid()


def handle_join_link() -> None:
    """Sign in through the join link in the URL, unless this session already belongs to that worker."""
    if JOIN_PARAM not in st.query_params:
        return
    link = _link()
    current = session.current_annotator()
    if current is not None and st.session_state.get(_LINK) == (link, current["id"]):
        return  # this session already joined through this link: no database write on every rerun
    _join(link, current)


def _join(link: tuple[str, str, str | None], current: dict[str, Any] | None, resume_code: str | None = None) -> bool:
    """Join (or resume) through `link`; False, with the message kept for the sign-in page, when refused."""
    try:
        annotator = session.get_store().join(*link, session.client_address(),
                                             browser_annotator=current["id"] if current else None,
                                             resume_code=resume_code)
    except JoinRefused as e:
        if current is not None:  # whoever this browser was signed in as stays signed in elsewhere, not here
            session.forget_identity()
        st.session_state[_ERROR] = str(e)
        st.session_state[_NEEDS_CODE] = isinstance(e, ResumeNeeded)
        return False
    st.session_state.pop(_ERROR, None)
    st.session_state.pop(_NEEDS_CODE, None)
    code = annotator.pop("resume_code", None)
    if current is None or current["id"] != annotator["id"]:
        session.sign_in_joined(annotator)  # binds this browser: the resume cookie
    if code is not None:
        st.session_state[_RESUME_CODE] = code
    st.session_state[_LINK] = (link, annotator["id"])
    return True


def show_join_error() -> None:
    """The refused link's message; for a worker id that started in another browser, the form for its resume code."""
    message = st.empty()
    if st.session_state.get(_NEEDS_CODE) and JOIN_PARAM in st.query_params:
        with st.form("join_resume"):
            code = st.text_input("Resume code", type="password", key="join_resume_code",
                                 max_chars=auth.MAX_CODE_CHARS)
            if st.form_submit_button("Continue", type="primary", key="join_resume") and _join(_link(), None, code):
                st.rerun()
    if text := st.session_state.get(_ERROR):
        message.error(text)


def _noted() -> None:
    st.session_state.pop(_RESUME_CODE, None)


def show_resume_code() -> None:
    """A new crowd worker's resume code, on top of the page in the session that created it, until they noted it."""
    code = st.session_state.get(_RESUME_CODE)
    if not isinstance(code, str):
        return
    with st.container(border=True):
        st.markdown("**Your resume code** (shown only now)")
        st.code(code, language=None)
        st.caption("This browser continues where you left off by itself. To continue in another browser or on "
                   "another device, open your study link there and enter this code. Keep it to yourself.")
        st.button("I have noted my resume code", key="join_resume_code_noted", on_click=_noted)


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
