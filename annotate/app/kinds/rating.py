"""A rating study in the app: one explanation at a time with the answer (keys 1–4), shortcoming tags and a
comment; on the Side by side page, two configurations next to each other on the samples rated under both."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from analysis.compare import DEFAULT_COMPARE, compare, side_by_side_rows
from analysis.data import prepare
from analysis.formatting import fmt, x100
from annotate.app import queue as q
from annotate.app import render
from annotate.app.kinds.base import KindPage
from annotate.app.render import answer_line, config_choices, drawn_text, format_input, md_escape
from annotate.core.limits import MAX_COMMENT_CHARS
from annotate.core.scale import RATINGS
from annotate.core.store import Store

PAGE_SIZE = 10


class RatingPage(KindPage):
    name = "rating"
    item_noun = "item"
    shortcut_prefix = q.ANSWER_KEY_PREFIX

    def queue(self, store: Store, annotator: dict[str, Any]) -> q.Queue:
        return q.RatingQueue(store, annotator)

    def draw(self, queue: q.Queue, item: dict[str, Any], study: dict[str, Any]) -> DeltaGenerator:
        slot = item["position"]  # widget keys by queue position: the database id never reaches the browser
        render.show_item(item)
        form = st.form(q.ITEM_FORM, border=False, enter_to_submit=False)
        form.radio(render.md_escape(study["question"]) + " (keys 1–4)", RATINGS, format_func=render.rating_label,
                   key=q.answer_key(slot), index=None, horizontal=True)
        form.caption("Shortcoming tags")
        tag_guide = study["guidelines"].get("tags", {})
        tag_cols = form.columns(3)
        for i, tag in enumerate(study["tags"]):
            tag_cols[i % 3].checkbox(render.md_escape(tag), key=q.tag_key(tag), help=render.tag_help(tag_guide, tag))
        form.text_area("Comment (optional)", key=q.COMMENT_KEY, height=68, max_chars=MAX_COMMENT_CHARS)
        return form

    def side_by_side(self, store: Store, study: str) -> None:
        """Two configurations on the samples rated under both: the input, both explanations next to each other,
        and every annotator's answers and tags; filtered by dataset and by "annotators disagree"."""
        items, ratings = store.analysis_frames(study)
        if len(ratings) == 0:
            st.info("No ratings in this study yet.")
            return
        p = prepare(items, ratings, store.get_study(study)["tags"])
        configs = p.model_configs  # gold is the human ceiling, never one side of a comparison
        if len(configs) < 2:
            st.info("This study has ratings for one configuration only; nothing to compare.")
            return

        i, j = config_choices(configs, DEFAULT_COMPARE)
        left, right = st.columns(2)
        a = left.selectbox("Configuration A", configs, index=i, format_func=drawn_text, key="sbs_a")
        b = right.selectbox("Configuration B", configs, index=j, format_func=drawn_text, key="sbs_b")
        if a == b:
            st.warning("Choose two different configurations.")
            return
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
            return
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


PAGE = RatingPage()
