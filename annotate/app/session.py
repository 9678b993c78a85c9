"""Who is signed in to this browser session, and the session's Store. Pages call these first.

The annotator identity lives in `st.session_state["annotator"]` and is only ever set by `sign_in_annotator`
after the access code was checked. Next to it sits an HMAC of that identity under a secret that exists only in
this server process, and `current_annotator()` believes the identity only when the HMAC matches: a session whose
state was edited to name another annotator (or to claim admin) is treated as signed out. Resume tokens, which
leave the process in a cookie, are signed with the database's key instead (`Store.resume_key`), so that every
server process on one database accepts them. Every store call an annotator page makes passes the verified id,
and the store refuses items outside that annotator's queue.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import streamlit as st

from annotate.app import settings
from annotate.core.demo import load_demo
from annotate.core.errors import AccessDenied
from annotate.core.store import Store

# A reload starts a new Streamlit session. So that the annotator continues where they were, sign-in leaves a
# signed, expiring token (bound to the annotator's current code hash and session generation) in a cookie, which the
# next session's websocket request carries (`st.context.cookies`). Streamlit cannot set cookies on its responses,
# so a one-line script that we write ourselves sets it; the token never stays in the address bar, where Back, the
# history and a copied URL would carry it. Links from before, `/?resume=TOKEN`, are consumed once and moved to the
# cookie. The cookie is per browser, not per tab: the last sign-in in a browser is the one a reload restores.
RESUME_COOKIE, RESUME_PARAM, RESUME_SECONDS = "nle_resume", "resume", 12 * 3600
# id.expires.mac, ASCII digits only (`\d` would accept other scripts' digits, which int() reads too).
TOKEN_SHAPE = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}\.[0-9a-f]{40}")
MAX_TOKEN_CHARS = 200
# Per process, for what stays in this process's session state; resume tokens use the database's key.
_SECRET = secrets.token_bytes(32)
_ANNOTATOR, _ANNOTATOR_TOKEN, _ADMIN, _ADMIN_TOKEN = "annotator", "_annotator_token", "is_admin", "_admin_token"
# The token this session asks the browser to keep; a pending "forget it"; whether the cookie was tried already
# (once per session: its value is the one the session's first request carried, and never changes).
_REMEMBER, _FORGET, _COOKIE_TRIED = "_resume_token", "_forget_resume", "_resume_cookie_tried"
_KEEP = ("_store", _COOKIE_TRIED)


def _sign(*parts: object, key: bytes = _SECRET) -> str:
    return hmac.new(key, "\x1f".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()


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


def resume_token(store: Store, annotator_id: int, code_hash: str, generation: int, expires: int) -> str:
    """The resume token `id.expires.mac`, signed with the database's key: any server process on it verifies it."""
    mac = _sign("resume", annotator_id, code_hash, generation, expires, key=store.resume_key())
    return f"{annotator_id}.{expires}.{mac[:40]}"


def cookie_script(token: str) -> str:
    """The script that makes the browser keep `token` (and nothing else) in the resume cookie."""
    if not TOKEN_SHAPE.fullmatch(token):  # only our own digits.digits.hex ever goes into a script
        raise ValueError("not a resume token")
    return (f'<script>document.cookie = "{RESUME_COOKIE}={token}; Path=/; Max-Age={RESUME_SECONDS}; '
            'SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");</script>')


FORGET_SCRIPT = f'<script>document.cookie = "{RESUME_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict";</script>'
_ID_PREFIX = re.compile(r"[0-9]{1,19}\.")


def forget_script(annotator_id: int | None = None) -> str:
    """The script that drops the resume cookie; with an id, only while it still names that annotator. The cookie
    belongs to the browser, not the tab: a tab that sees anna's session end must not drop ben's newer sign-in."""
    if annotator_id is None:
        return FORGET_SCRIPT
    prefix = f"{int(annotator_id)}."
    if not _ID_PREFIX.fullmatch(prefix):
        raise ValueError("not an annotator id")
    return (f'<script>if (document.cookie.split("; ").some((c) => c.startsWith("{RESUME_COOKIE}={prefix}"))) '
            + FORGET_SCRIPT.removeprefix("<script>"))


def _remember(annotator: dict[str, Any]) -> None:
    """Issue a fresh resume token for the browser's cookie (and take any old one out of the URL)."""
    st.query_params.pop(RESUME_PARAM, None)
    st.session_state.pop(_FORGET, None)
    store = get_store()
    row = store.annotator_by_id(annotator["id"])
    if row and row["code_hash"]:
        st.session_state[_REMEMBER] = resume_token(store, row["id"], row["code_hash"], row["session_generation"],
                                                   int(time.time()) + RESUME_SECONDS)


def _forget(annotator_id: int | None = None) -> None:
    """Have the browser drop the resume cookie (only while it names `annotator_id`, when given)."""
    st.session_state.pop(_REMEMBER, None)
    st.session_state[_FORGET] = forget_script(annotator_id)


def _browser_cookie() -> str | None:
    """The resume cookie of the request that opened this session, if any."""
    try:
        value = st.context.cookies.get(RESUME_COOKIE)
    except Exception:  # no request behind this session (bare mode, AppTest)
        return None
    return value if isinstance(value, str) else None


def _restore_from(token: str) -> dict[str, Any] | None:
    """The annotator named by a valid, unexpired, unrevoked resume token (signed in here), else None."""
    try:
        if len(token) > MAX_TOKEN_CHARS or not TOKEN_SHAPE.fullmatch(token):
            return None
        annotator_id, expires, _ = token.split(".")
        annotator_id, expires = int(annotator_id), int(expires)
        store = get_store()
        row = store.annotator_by_id(annotator_id)
    except (ValueError, OverflowError):  # OverflowError: an id beyond SQLite's 64-bit integers
        return None
    if not row or not row["code_hash"] or expires < time.time():
        return None
    if row["joined"] and not row["join_open"]:  # a crowd worker comes back only while the study takes them
        return None
    expected = resume_token(store, annotator_id, row["code_hash"], row["session_generation"], expires)
    if not hmac.compare_digest(token, expected):
        return None
    annotator = {"id": row["id"], "name": row["name"], "study_id": row["study_id"],
                 "generation": row["session_generation"]}
    _clear_identity()
    st.session_state[_ANNOTATOR] = annotator
    st.session_state[_ANNOTATOR_TOKEN] = _annotator_token(annotator)
    _remember(annotator)  # a new token with a new expiry: the cookie lasts while the annotator keeps coming back
    return annotator


def _restore() -> dict[str, Any] | None:
    """Sign in a session that has no identity yet from a `?resume=` link (consumed, valid or not) or, once per
    session, from the resume cookie; a cookie that no longer works is forgotten."""
    if RESUME_PARAM in st.query_params:
        token = str(st.query_params.get(RESUME_PARAM))
        st.query_params.pop(RESUME_PARAM, None)
        if annotator := _restore_from(token):
            return annotator
    if st.session_state.get(_COOKIE_TRIED):
        return None
    st.session_state[_COOKIE_TRIED] = True
    token = _browser_cookie()
    if token is None:
        return None
    annotator = _restore_from(token)
    if annotator is None:
        _forget()
    return annotator


def current_annotator() -> dict[str, Any] | None:
    """The signed-in annotator, or None; an identity without a valid server-side token counts as signed out."""
    annotator = st.session_state.get(_ANNOTATOR)
    token = st.session_state.get(_ANNOTATOR_TOKEN)
    if not isinstance(annotator, dict) or not isinstance(token, str):
        return _restore()
    try:
        expected = _annotator_token(annotator)
    except KeyError:
        return None
    if not hmac.compare_digest(token, expected):
        return None
    # Checked on every run: a sign-out elsewhere or a code reset ends this session too.
    if get_store().session_generation(annotator["id"]) != annotator["generation"]:
        _clear_identity()
        _forget(annotator["id"])
        return None
    return annotator


def browser_cookie_script() -> str | None:
    """What this run must tell the browser about the resume cookie: keep this session's token while an
    annotator is signed in, forget it once after sign-out, admin sign-in or a refused cookie; else None."""
    token = st.session_state.get(_REMEMBER)
    if isinstance(token, str) and isinstance(st.session_state.get(_ANNOTATOR), dict):
        return cookie_script(token)
    script = st.session_state.pop(_FORGET, None)
    return script if isinstance(script, str) else None


def sync_browser_cookie() -> None:
    """Emit `browser_cookie_script()` where it is called (the router: the sidebar, or the page's end)."""
    if script := browser_cookie_script():
        # Our own script, never user text: the token was checked against TOKEN_SHAPE. React runs it again only
        # when its text changes, so repeating it on every run costs nothing.
        st.html(script, unsafe_allow_javascript=True)


def is_admin() -> bool:
    """True when the admin password was entered in this session (checked against a server-side token)."""
    token = st.session_state.get(_ADMIN_TOKEN)
    return bool(st.session_state.get(_ADMIN)) and isinstance(token, str) and hmac.compare_digest(token, _sign("admin"))


def forget_identity() -> None:
    """Forget who is signed in in this session only: no sign-out on the server, and the browser keeps its cookie."""
    _clear_identity()


def _clear_identity() -> None:
    for key in list(st.session_state.keys()):
        if key not in _KEEP:
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
    _remember(annotator)
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
    _forget()  # a reload of this browser must not bring back an annotator who signed in here before
    st.session_state[_ADMIN] = True
    st.session_state[_ADMIN_TOKEN] = _sign("admin")


def sign_out() -> None:
    """End this annotator's sessions on the server (every tab, every resume token issued), forget who is signed
    in here and every page's state, and have the browser drop its resume cookie; the database connection stays."""
    annotator = current_annotator()
    if annotator:
        get_store().end_sessions(annotator["id"])
    _clear_identity()
    st.query_params.pop(RESUME_PARAM, None)
    _forget(annotator["id"] if annotator else None)


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
    _remember(annotator)
