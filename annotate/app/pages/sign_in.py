"""Sign in: annotators with name and access code; researchers with the admin password."""

import streamlit as st

from annotate.app import join, session, settings
from annotate.core import auth
from annotate.core.demo import DEMO_ANNOTATORS, DEMO_STUDY
from annotate.core.errors import AccessDenied, TooManyAttempts

store = session.get_store()  # create (and, with --demo, fill) the database before anyone signs in

st.title("Rate explanations")
join.show_join_error()
with st.form("annotator_sign_in"):
    st.subheader("Annotator")
    name = st.text_input("Name", key="sign_in_name", max_chars=auth.MAX_NAME_CHARS)
    code = st.text_input("Access code", type="password", key="sign_in_code", max_chars=auth.MAX_CODE_CHARS)
    if st.form_submit_button("Sign in", type="primary", key="sign_in"):
        try:
            session.sign_in_annotator(name, code)
        except (AccessDenied, TooManyAttempts) as e:
            st.error(str(e))
        else:
            st.rerun()
if settings.load_demo_when_new() and store.get_study(DEMO_STUDY):
    st.caption("Demo study: sign in as " + " or ".join(f"`{n}` / `{c}`" for n, c in DEMO_ANNOTATORS.items()) + ".")

with st.expander("Researcher"):
    if settings.admin_password():
        with st.form("admin_sign_in"):
            password = st.text_input("Admin password", type="password", key="admin_password", max_chars=256)
            if st.form_submit_button("Sign in as researcher", key="admin_sign_in"):
                try:
                    session.sign_in_admin(password)
                except (AccessDenied, TooManyAttempts) as e:
                    st.error(str(e))
                else:
                    st.rerun()
    else:
        st.info("The researcher pages are switched off because no admin password is set. Set the environment "
                "variable `NLE_ADMIN_PASSWORD`, or `admin_password = \"...\"` in `.streamlit/secrets.toml`, "
                "and restart the app.")
