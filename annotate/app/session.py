"""Who is signed in to this browser session, and the session's Store. Pages call these first.

The annotator identity lives in `st.session_state["annotator"]` and is only ever set by `sign_in_annotator`
after the access code was checked. Next to it sits an HMAC of that identity under a secret that exists only in
this server process, and `current_annotator()` believes the identity only when the HMAC matches: a session whose
state was edited to name another annotator (or to claim admin) is treated as signed out. Every store call an
annotator page makes passes the verified id, and the store refuses items outside that annotator's queue.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import streamlit as st

from annotate.app import settings
from annotate.core.demo import load_demo
from annotate.core.errors import AccessDenied
from annotate.core.store import Store

# A reload starts a new Streamlit session; this URL parameter carries a signed, expiring token so the
# annotator continues where they were. It is bound to the annotator's current code hash: resetting the code
# ends every such token.
RESUME_PARAM, RESUME_SECONDS = "resume", 12 * 3600
# Per process: restarting the server signs everybody out, which is the safe direction.
_SECRET = secrets.token_bytes(32)
_ANNOTATOR, _ANNOTATOR_TOKEN, _ADMIN, _ADMIN_TOKEN = "annotator", "_annotator_token", "is_admin", "_admin_token"


def _sign(*parts: object) -> str:
    return hmac.new(_SECRET, "\x1f".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()


def _annotator_token(annotator: dict[str, Any]) -> str:
    return _sign("annotator", annotator["id"], annotator["name"], annotator["study_id"], annotator["generation"])


def client_address() -> str:
    """The browser's address as Streamlit sees it (behind a proxy: the proxy's; docs/deploying.md), for sign-in
    limits per client."""
    try:
        address = st.context.ip_address
    except Exception:  # no request behind this session (bare mode)
        return "local"
    return address if isinstance(address, str) and address else "local"  # AppTest hands out a mock


def get_store() -> Store:
    """This session's connection to the configured database (created, and demo-loaded when asked, on first use)."""
    path = str(settings.db_path())
    store = st.session_state.get("_store")
    if not isinstance(store, Store) or store.path != path:
        store = Store(path)
        if settings.load_demo_when_new():
            load_demo(store)
        st.session_state["_store"] = store
    return store


def _resume_token(annotator_id: int, code_hash: str, generation: int, expires: int) -> str:
    return f"{annotator_id}.{expires}.{_sign('resume', annotator_id, code_hash, generation, expires)[:40]}"


def _remember_in_url(annotator: dict[str, Any]) -> None:
    row = get_store().annotator_by_id(annotator["id"])
    if row and row["code_hash"]:
        st.query_params[RESUME_PARAM] = _resume_token(row["id"], row["code_hash"], row["session_generation"],
                                                      int(time.time()) + RESUME_SECONDS)


MAX_TOKEN_CHARS = 200


def _restore_from_url() -> dict[str, Any] | None:
    """The annotator named by a valid, unexpired, unrevoked resume token in the URL (after a reload), else None."""
    token = str(st.query_params.get(RESUME_PARAM))
    try:
        if len(token) > MAX_TOKEN_CHARS:
            return None
        annotator_id, expires, _ = token.split(".")
        annotator_id, expires = int(annotator_id), int(expires)
        row = get_store().annotator_by_id(annotator_id)
    except (ValueError, OverflowError):  # OverflowError: an id beyond SQLite's 64-bit integers
        return None
    if not row or not row["code_hash"] or expires < time.time():
        return None
    expected = _resume_token(annotator_id, row["code_hash"], row["session_generation"], expires)
    if not hmac.compare_digest(token, expected):
        return None
    annotator = {"id": row["id"], "name": row["name"], "study_id": row["study_id"],
                 "generation": row["session_generation"]}
    _clear_identity()
    st.session_state[_ANNOTATOR] = annotator
    st.session_state[_ANNOTATOR_TOKEN] = _annotator_token(annotator)
    return annotator


def current_annotator() -> dict[str, Any] | None:
    """The signed-in annotator, or None; an identity without a valid server-side token counts as signed out."""
    annotator = st.session_state.get(_ANNOTATOR)
    token = st.session_state.get(_ANNOTATOR_TOKEN)
    if not isinstance(annotator, dict) or not isinstance(token, str):
        return _restore_from_url() if RESUME_PARAM in st.query_params else None
    try:
        expected = _annotator_token(annotator)
    except KeyError:
        return None
    if not hmac.compare_digest(token, expected):
        return None
    # Checked on every run: a sign-out elsewhere or a code reset ends this session too.
    if get_store().session_generation(annotator["id"]) != annotator["generation"]:
        _clear_identity()
        st.query_params.pop(RESUME_PARAM, None)
        return None
    if RESUME_PARAM not in st.query_params:  # page switches drop query parameters
        _remember_in_url(annotator)
    return annotator


def is_admin() -> bool:
    """True when the admin password was entered in this session (checked against a server-side token)."""
    token = st.session_state.get(_ADMIN_TOKEN)
    return bool(st.session_state.get(_ADMIN)) and isinstance(token, str) and hmac.compare_digest(token, _sign("admin"))


def _clear_identity() -> None:
    for key in list(st.session_state.keys()):
        if key != "_store":
            del st.session_state[key]


def sign_in_annotator(name: str, code: str) -> dict[str, Any]:
    """Check name and code; raises AccessDenied or TooManyAttempts. Signs out any admin in this session."""
    store = get_store()
    annotator = store.authenticate(name, code, client_address())
    annotator = {**annotator, "generation": store.session_generation(annotator["id"])}
    _clear_identity()
    st.session_state[_ADMIN] = False
    st.session_state[_ANNOTATOR] = annotator
    st.session_state[_ANNOTATOR_TOKEN] = _annotator_token(annotator)
    _remember_in_url(annotator)
    return annotator


def sign_in_admin(password: str) -> None:
    """Check the admin password (rate limited like access codes); raises AccessDenied or TooManyAttempts."""
    expected = settings.admin_password()
    if not expected:
        raise AccessDenied("Researcher pages are disabled: set NLE_ADMIN_PASSWORD or admin_password in secrets.")
    if not get_store().check_admin_password(password, expected, client_address()):
        raise AccessDenied("Password not recognised.")
    _clear_identity()
    st.query_params.pop(RESUME_PARAM, None)
    st.session_state[_ADMIN] = True
    st.session_state[_ADMIN_TOKEN] = _sign("admin")


def sign_out() -> None:
    """End this annotator's sessions on the server (every tab, every resume URL), forget who is signed in here
    and every page's state; the database connection stays."""
    annotator = current_annotator()
    if annotator:
        get_store().end_sessions(annotator["id"])
    _clear_identity()
    st.query_params.pop(RESUME_PARAM, None)


def require_admin() -> Store:
    """The store, for researcher pages; stops the page unless the admin signed in to this session."""
    if not is_admin():
        st.error("This page is for researchers. Sign in with the admin password.")
        st.stop()
    return get_store()


def require_annotator() -> tuple[Store, dict[str, Any]]:
    """The store and the signed-in annotator; stops the page otherwise."""
    annotator = current_annotator()
    if not annotator:
        st.error("Sign in with your name and access code.")
        st.stop()
    return get_store(), annotator


def sign_in_joined(annotator: dict[str, Any]) -> None:
    """Sign in an annotator who came through a crowd join link (the store checked the link's token)."""
    # Bound to the current session generation like a code sign-in, so sign-out ends this session too.
    annotator = {**annotator, "generation": get_store().session_generation(annotator["id"])}
    _clear_identity()
    st.session_state[_ADMIN] = False
    st.session_state[_ANNOTATOR] = annotator
    st.session_state[_ANNOTATOR_TOKEN] = _annotator_token(annotator)
