"""Annotate: one item at a time in the annotator's queue, drawn with its answer widgets by the study's kind (a
rating study: the answer, keys 1–4, tags and a comment; a pairwise study: two explanations, 1 / 2 / Tie, keys 1,
2, 3), then Back, Skip and Submit (Enter)."""

import streamlit as st

from annotate.app import finished, kinds, render, timing
from annotate.app.session import require_annotator

store, annotator = require_annotator()
kind = kinds.for_annotator(store, annotator)
queue = kind.queue(store, annotator)
study = queue.study()
answered, total = queue.counts()

st.progress(answered / total if total else 1.0, text=render.progress_text(answered, total))
notice = queue.pop_notice()  # "Saved." and the like: shown beside the next item, not as a toast (docs/benchmarks.md)

item = queue.item()
if item is None:
    finished.show(queue, f"{kind.item_noun}s")
    timing.item_drawn()
    st.stop()

number = queue.number(item["position"])
render.item_head(f"{kind.item_noun.capitalize()} {number} in your queue", bool(item["answer"]), notice, study)

# One form holds the answer widgets and the buttons: keys (ticked in the browser), clicks and typing start no
# server run, so the only run per item is Submit's, and everything it saves arrives in that one message.
form = kind.draw(queue, item, study)

for message in queue.errors() or []:
    form.error(message)

actions = form.container(horizontal=True)
actions.form_submit_button("Back", on_click=queue.back, disabled=number == 1,
                           icon=":material/arrow_back:", width="stretch")
actions.form_submit_button("Skip", on_click=queue.skip, icon=":material/skip_next:", width="stretch")
actions.form_submit_button("Submit", on_click=queue.submit, shortcut="Enter", type="primary", width="stretch")
timing.item_drawn()
