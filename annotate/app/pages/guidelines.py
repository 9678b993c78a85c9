"""Guidelines: the rating scale and every shortcoming tag, each with its meaning and one example."""

import streamlit as st

from annotate.app import queue as q
from annotate.app import render
from annotate.app.session import require_annotator

store, annotator = require_annotator()
st.title("Guidelines")
render.show_guidelines(q.Queue(store, annotator).study())
