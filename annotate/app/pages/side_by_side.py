"""Researcher page: a study's answers side by side, as its kind shows them (a rating study: two configurations
on the samples rated under both, with every annotator's answers and tags; a pairwise study: the comparison's
figures and each pair with both explanations). Text from the NLE files is shown literally (st.text)."""

import streamlit as st

from annotate.app import kinds
from annotate.app.admin import choose_study
from annotate.app.session import require_admin

store = require_admin()
st.title("Side by side")

study = choose_study(store, key="sbs_study")
kinds.for_study(store, study).side_by_side(store, study)
