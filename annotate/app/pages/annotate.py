"""Annotate: one item at a time, the answer (keys 1–4), shortcoming tags, a comment, Submit (Enter)."""

import streamlit as st

from annotate.app import join, render, timing
from annotate.app import queue as q
from annotate.app.session import require_annotator
from annotate.core.formats import MAX_COMMENT_CHARS
from annotate.core.scale import RATINGS

store, annotator = require_annotator()
queue = q.Queue(store, annotator)
study = queue.study()
answered, total = queue.counts()

st.progress(answered / total if total else 1.0, text=render.progress_text(answered, total))
if notice := queue.pop_notice():
    st.toast(notice)

item = queue.item()
if item is None:
    st.success(f"All {total} items answered — thank you!")
    join.show_completion(annotator)
    st.write("You can still go back and revise any answer.")
    done = st.container(horizontal=True)
    done.button("Back to the last item", on_click=queue.back, icon=":material/arrow_back:")
    done.button("Revise from the first item", on_click=queue.restart, icon=":material/restart_alt:")
    timing.item_drawn()
    st.stop()

slot = item["position"]  # widget keys by queue position: the database id never reaches the browser
head = st.container(horizontal=True, horizontal_alignment="distribute", vertical_alignment="center")
head.caption(f"Item {item['position'] + 1} in your queue"
             + (" · answered earlier; you may revise it" if item["answer"] else ""))
with head.popover("Guidelines", icon=":material/menu_book:"):
    render.show_guidelines(study)

render.show_item(item)

st.radio(render.md_escape(study["question"]), RATINGS, format_func=render.rating_label, key=q.answer_key(slot),
         index=None, horizontal=True, on_change=queue.radio_changed, args=(slot,))
answer_keys = st.container(horizontal=True, horizontal_alignment="distribute")
for rating, key in zip(RATINGS, q.ANSWER_KEYS, strict=True):
    answer_keys.button(render.rating_label(rating), key=q.answer_button_key(rating), shortcut=key,
                       on_click=queue.choose, args=(rating,), width="stretch", type="tertiary")

st.caption("Shortcoming tags")
tag_guide = study["guidelines"].get("tags", {})
tag_cols = st.columns(3)
for i, tag in enumerate(study["tags"]):
    tag_cols[i % 3].checkbox(tag, key=q.tag_key(slot, tag), help=tag_guide.get(tag, {}).get("meaning"))
st.text_area("Comment (optional)", key=q.comment_key(slot), height=68, max_chars=MAX_COMMENT_CHARS)

for message in queue.errors() or []:
    st.error(message)

actions = st.container(horizontal=True)
actions.button("Back", on_click=queue.back, disabled=item["position"] == 0, icon=":material/arrow_back:",
               width="stretch")
actions.button("Skip", on_click=queue.skip, icon=":material/skip_next:", width="stretch")
actions.button("Submit", on_click=queue.submit, shortcut="Enter", type="primary", width="stretch")
render.keep_shortcuts_after_clicks(q.ANSWER_KEY_PREFIX)
timing.item_drawn()
