"""Pairwise annotate page: the input, the predicted answer, Explanation 1 and Explanation 2 (sides drawn per
annotator and pair, never shown), "Which explanation justifies the answer better?" 1 / 2 / Tie (keys 1, 2, 3),
tags per side, optional 4-point rating per side, a comment, Submit (Enter)."""

import streamlit as st

from annotate.app import finished, render
from annotate.app import pair_queue as pq
from annotate.app.session import require_annotator
from annotate.core.limits import MAX_COMMENT_CHARS
from annotate.core.pairwise import CHOICE_LABELS, CHOICES, PAIR_QUESTION
from annotate.core.scale import RATINGS

store, annotator = require_annotator()
queue = pq.PairQueue(store, annotator)
study = queue.study()
rate_sides = queue.setup()["rate_sides"]
answered, total = queue.counts()

st.progress(answered / total if total else 1.0, text=render.progress_text(answered, total))
notice = queue.pop_notice()  # "Saved." and the like: shown beside the next item, not as a toast (docs/benchmarks.md)

item = queue.item()
if item is None:
    finished.show(queue, "pairs")
    st.stop()

pos = item["position"]
number = queue.number(pos)
render.item_head(f"Pair {number} in your queue", bool(item["answer"]), notice, study)

with st.container(border=True):
    for label, text in render.input_fields(item["dataset"], item["input"]):
        render.show_literal(label, text)
render.show_literal("Predicted answer", item["predicted_label"])

# One form, as on the rating page: keys 1, 2, 3 (ticked in the browser), ratings, tags and typing start no run.
form = st.form(pq.PAIR_FORM, border=False, enter_to_submit=False)
tag_guide = study["guidelines"].get("tags", {})
for side, col, text in zip(pq.SIDES, form.columns(2), item["explanations"], strict=True):
    with col, st.container(border=True):
        render.show_literal(f"Explanation {side}", text)
        if rate_sides:
            st.radio(f"Does explanation {side} justify the answer?", RATINGS, format_func=render.rating_label,
                     key=pq.rating_key(pos, side), index=None)
        with st.expander(f"Shortcomings of explanation {side}"):
            for i, tag in enumerate(study["tags"]):
                st.checkbox(render.md_escape(tag), key=pq.tag_key(pos, side, i), help=render.tag_help(tag_guide, tag))

form.radio(f"{PAIR_QUESTION} (keys 1, 2, 3)", CHOICES, format_func=CHOICE_LABELS.get, key=pq.choice_key(pos),
           index=None, horizontal=True)
form.text_area("Comment (optional)", key=pq.comment_key(pos), height=68, max_chars=MAX_COMMENT_CHARS)

for message in queue.errors() or []:
    form.error(message)

actions = form.container(horizontal=True)
actions.form_submit_button("Back", on_click=queue.back, disabled=number == 1, icon=":material/arrow_back:",
                           width="stretch")
actions.form_submit_button("Skip", on_click=queue.skip, icon=":material/skip_next:", width="stretch")
actions.form_submit_button("Submit", on_click=queue.submit, shortcut="Enter", type="primary", width="stretch")
