"""Which pages this browser session may see; the app's entry scripts call `route()` on every run.

Nobody signed in: the sign-in page. An annotator: Annotate and Guidelines. The researcher (admin password):
the researcher pages. Each researcher page also calls `require_admin()` itself, so it stops even if reached.
"""

from __future__ import annotations

import base64
from pathlib import Path

import streamlit as st

from annotate.app import join, kinds, render, session

# Absolute paths: the same pages serve `streamlit run streamlit_app.py` in a checkout and the installed
# package's entry script (annotate/app/main.py) that `nle-annotate serve` runs.
PAGES = Path(__file__).resolve().parent / "pages"
# The browser-tab icon travels inside the page as a data: URL. A ":material/…:" icon here made every browser fetch
# it from fonts.gstatic.com, telling Google each annotator's address; the app requests nothing from another host.
PAGE_ICON = "data:image/svg+xml;base64," + base64.b64encode(
    (Path(__file__).resolve().parent / "page_icon.svg").read_bytes()).decode()


def route() -> None:
    """Set up the page, pick the pages for who is signed in, and run the chosen one."""
    st.set_page_config(page_title="NLE rating", page_icon=PAGE_ICON, layout="centered")
    join.handle_join_link()
    annotator = session.current_annotator()
    keys_for = None  # the answer radio that keys 1–4 tick, on an annotator's pages
    if session.is_admin():
        pages = [
            st.Page(PAGES / "researcher.py", title="Researcher", icon=":material/admin_panel_settings:", default=True),
            st.Page(PAGES / "results.py", title="Analysis", icon=":material/analytics:"),
            st.Page(PAGES / "side_by_side.py", title="Side by side", icon=":material/compare:"),
            st.Page(PAGES / "disagreements.py", title="Disagreements", icon=":material/gavel:"),
        ]
    elif annotator:
        # One Annotate page for every study kind; the kind draws its items and says which radio keys tick.
        keys_for = kinds.for_annotator(session.get_store(), annotator).shortcut_prefix
        pages = [
            st.Page(PAGES / "annotate.py", title="Annotate", icon=":material/edit_note:", default=True),
            st.Page(PAGES / "guidelines.py", title="Guidelines", icon=":material/menu_book:"),
        ]
    else:
        pages = [st.Page(PAGES / "sign_in.py", title="Sign in", icon=":material/login:", default=True)]

    if session.is_admin() or annotator:
        with st.sidebar:
            # st.text, never markdown: a name such as ![n](http://host/x.png) would load a remote image.
            st.text("Signed in as researcher" if session.is_admin()
                    else f"Signed in as {render.drawn_text(annotator['name'])}")
            st.button("Sign out", on_click=join.sign_out, icon=":material/logout:")
            # Last in the sidebar: an empty element there moves nothing the annotator looks at.
            session.sync_browser_cookie()
            if keys_for:
                # Keys 1–4 exist only in the browser (render.keep_shortcuts_after_clicks). Drawn in the sidebar,
                # which reaches the browser before the page, the script is running before the item is on screen;
                # at the end of the page, a key pressed as soon as the first item showed was lost on a busy machine.
                render.keep_shortcuts_after_clicks(keys_for)
        if annotator:
            join.show_resume_code()  # a new crowd worker's, above their first pages
        st.navigation(pages).run()
    else:
        # No sidebar for a signed-out session: the script (forgetting a cookie) goes after the page. The sign-in
        # page never stops early; when it reruns after a sign-in, the next run tells the browser instead.
        st.navigation(pages).run()
        session.sync_browser_cookie()
