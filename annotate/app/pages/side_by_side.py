"""Researcher page: two configurations side by side on the samples rated under both — the input, both
explanations next to each other, and every annotator's answers and tags. Filter by dataset and by
"annotators disagree". Text from the NLE files is shown literally (st.text)."""

import streamlit as st

from analysis.compare import DEFAULT_COMPARE, compare, side_by_side_rows
from analysis.data import prepare
from analysis.formatting import fmt, x100
from annotate.app.admin import choose_study
from annotate.app.pairwise_view import show_pairwise
from annotate.app.render import answer_line, config_choices, drawn_text, format_input, md_escape
from annotate.app.session import require_admin

PAGE_SIZE = 10

store = require_admin()
st.title("Side by side")

study = choose_study(store, key="sbs_study")
if show_pairwise(store, study):  # a pairwise study has its own view
    st.stop()
items, ratings = store.analysis_frames(study)
if len(ratings) == 0:
    st.info("No ratings in this study yet.")
    st.stop()
p = prepare(items, ratings, store.get_study(study)["tags"])
configs = p.model_configs  # gold is the human ceiling, never one side of a comparison
if len(configs) < 2:
    st.info("This study has ratings for one configuration only; nothing to compare.")
    st.stop()

i, j = config_choices(configs, DEFAULT_COMPARE)
left, right = st.columns(2)
a = left.selectbox("Configuration A", configs, index=i, format_func=drawn_text, key="sbs_a")
b = right.selectbox("Configuration B", configs, index=j, format_func=drawn_text, key="sbs_b")
if a == b:
    st.warning("Choose two different configurations.")
    st.stop()
dataset = st.selectbox("Dataset", ["All datasets", *p.datasets], format_func=drawn_text, key="sbs_dataset")
disagree_only = st.checkbox("Only samples where annotators disagree", key="sbs_disagree")

c = compare(p, a, b)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Samples rated under both", c.n_pairs)
m2.metric("Mean score ×100, A (all its samples)", x100(c.mean_a))
m3.metric("Mean score ×100, B (all its samples)", x100(c.mean_b))
m4.metric(f"{c.test_name} p", fmt(c.p_value, 3, style="g"),
          help=f"primary test for this design; statistic {c.statistic}" if c.statistic is not None else None)
st.text(f"A better: {c.wins_a}   ties: {c.ties}   B better: {c.wins_b}")
if c.reason:
    st.caption(md_escape(c.reason))
if c.note:
    st.info(md_escape(c.note))

rows = side_by_side_rows(p, store.items_frame(study), a, b,
                         dataset=None if dataset == "All datasets" else dataset, disagree_only=disagree_only)
if rows.empty:
    st.info("No sample matches these filters.")
    st.stop()
pages = (len(rows) - 1) // PAGE_SIZE + 1
page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="sbs_page"))
st.caption(f"{len(rows)} samples")

for r in rows.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE].itertuples(index=False):
    with st.container(border=True):
        st.text(drawn_text(f"{r.dataset} · {r.sample_id}" + ("   (annotators disagree)" if r.disagree else "")))
        st.text(drawn_text(format_input(r.input)))
        col_a, col_b = st.columns(2)
        for col, name, label, expl, answers, score in (
                (col_a, a, r.predicted_label_a, r.explanation_a, r.answers_a, r.score_a),
                (col_b, b, r.predicted_label_b, r.explanation_b, r.answers_b, r.score_b)):
            with col:
                st.text(drawn_text(f"{name} — predicted: {label} — score ×100: {x100(score)}"))
                st.code(drawn_text(expl), language=None, wrap_lines=True)
                for ans in answers:
                    st.text(drawn_text(answer_line(ans)))
