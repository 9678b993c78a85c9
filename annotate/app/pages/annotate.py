"""Annotate: one item at a time, the answer (keys 1–4), shortcoming tags, a comment, Submit (Enter)."""

import streamlit as st

from annotate.app import finished, render, timing
from annotate.app import queue as q
from annotate.app.session import require_annotator
from annotate.core.limits import MAX_COMMENT_CHARS
from annotate.core.scale import RATINGS

store, annotator = require_annotator()
queue = q.Queue(store, annotator)
study = queue.study()
answered, total = queue.counts()

st.progress(answered / total if total else 1.0, text=render.progress_text(answered, total))
notice = queue.pop_notice()  # "Saved." and the like: shown beside the next item, not as a toast (docs/benchmarks.md)

item = queue.item()
if item is None:
    finished.show(queue, "items")
    timing.item_drawn()
    st.stop()

slot = item["position"]  # widget keys by queue position: the database id never reaches the browser
number = queue.number(slot)
render.item_head(f"Item {number} in your queue", bool(item["answer"]), notice, study)

render.show_item(item)

# One form holds the answer, tags, comment and buttons: keys 1–4 (ticked in the browser), tag clicks and typing
# start no server run, so the only run per item is Submit's, and everything it saves arrives in that one message.
form = st.form(q.ITEM_FORM, border=False, enter_to_submit=False)
form.radio(render.md_escape(study["question"]) + " (keys 1–4)", RATINGS, format_func=render.rating_label,
           key=q.answer_key(slot), index=None, horizontal=True)
form.caption("Shortcoming tags")
tag_guide = study["guidelines"].get("tags", {})
tag_cols = form.columns(3)
for i, tag in enumerate(study["tags"]):
    tag_cols[i % 3].checkbox(render.md_escape(tag), key=q.tag_key(tag), help=render.tag_help(tag_guide, tag))
form.text_area("Comment (optional)", key=q.COMMENT_KEY, height=68, max_chars=MAX_COMMENT_CHARS)

for message in queue.errors() or []:
    form.error(message)

actions = form.container(horizontal=True)
actions.form_submit_button("Back", on_click=queue.back, disabled=number == 1,
                           icon=":material/arrow_back:", width="stretch")
actions.form_submit_button("Skip", on_click=queue.skip, icon=":material/skip_next:", width="stretch")
actions.form_submit_button("Submit", on_click=queue.submit, shortcut="Enter", type="primary", width="stretch")
timing.item_drawn()
