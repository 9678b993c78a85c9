"""A pairwise study in the app: the input, the predicted answer, Explanation 1 and Explanation 2 (sides drawn per
annotator and pair, never shown), "Which explanation justifies the answer better?" 1 / 2 / Tie (keys 1, 2, 3),
tags per side, optional 4-point rating per side and a comment; on the Side by side page, the comparison's figures
overall and per dataset, the side ratings when the study rated each side, then each pair with both explanations
under their configuration names and every annotator's answer."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from analysis.formatting import fmt
from analysis.literal import literal_frame
from analysis.pairwise import analyse_pairwise_store
from analysis.pairwise_sides import SIDE_RATINGS_TEXT
from annotate.app import pair_queue as pq
from annotate.app import render
from annotate.app.kinds.base import KindPage
from annotate.app.render import drawn_text, format_input, md_escape, rating_label
from annotate.core.limits import MAX_COMMENT_CHARS
from annotate.core.pairwise import CHOICE_LABELS, CHOICES, PAIR_QUESTION
from annotate.core.scale import RATINGS
from annotate.core.store import Store

PAGE_SIZE = 10


class PairwisePage(KindPage):
    name = "pairwise"
    item_noun = "pair"
    shortcut_prefix = pq.CHOICE_KEY_PREFIX

    def queue(self, store: Store, annotator: dict[str, Any]) -> pq.PairQueue:
        return pq.PairQueue(store, annotator)

    def draw(self, queue: pq.PairQueue, item: dict[str, Any], study: dict[str, Any]) -> DeltaGenerator:  # type: ignore[override]
        pos = item["position"]  # widget keys by queue position and side: no database id, no configuration
        rate_sides = queue.setup()["rate_sides"]
        with st.container(border=True):
            for label, text in render.input_fields(item["dataset"], item["input"]):
                render.show_literal(label, text)
        render.show_literal("Predicted answer", item["predicted_label"])
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
                        st.checkbox(render.md_escape(tag), key=pq.tag_key(pos, side, i),
                                    help=render.tag_help(tag_guide, tag))

        form.radio(f"{PAIR_QUESTION} (keys 1, 2, 3)", CHOICES, format_func=CHOICE_LABELS.get, key=pq.choice_key(pos),
                   index=None, horizontal=True)
        form.text_area("Comment (optional)", key=pq.comment_key(pos), height=68, max_chars=MAX_COMMENT_CHARS)
        return form

    def side_by_side(self, store: Store, study: str) -> None:
        s = store.get_study(study)
        setup = store.pairwise_setup(s["id"])
        a, b = setup["a"], setup["b"]
        st.caption(md_escape(f"Pairwise study: {a} (A) against {b} (B), blind; sides drawn per annotator and pair."))
        prefs = store.preferences_frame(study)
        if prefs.empty:
            st.info("No pairwise answers in this study yet.")
            return
        p = analyse_pairwise_store(store, study)
        o = p.overall
        m = st.columns(4)
        m[0].metric("Pairs answered", o.n_items)
        m[1].metric("Win rate of A", fmt(o.win_rate_a),
                    help="(wins of A + ties / 2) / answers; 95 % bootstrap interval over pairs below")
        m[2].metric("Sign test p", fmt(o.sign_test_p.value, 3, style="g"),
                    help="exact two-sided binomial test over pairs by net preference, ties left out")
        m[3].metric("Cohen's κ", fmt(o.cohen_kappa.value),
                    help="agreement on A / B / tie (mean over annotator pairs with more than two annotators)")
        st.text(drawn_text(f"{a} wins: {o.wins_a}   ties: {o.ties}   {b} wins: {o.wins_b}   "
                           f"(answers; pairs A / tie / B: {o.items_a} / {o.items_tie} / {o.items_b})"))
        for note in p.notes:
            st.info(md_escape(note))
        st.dataframe(literal_frame(p.table()), hide_index=True)
        sides = p.side_table()
        if sides is not None or p.side_ratings_reason:
            st.subheader("Side ratings")
        if sides is not None:
            st.caption(SIDE_RATINGS_TEXT)
            st.dataframe(literal_frame(sides), hide_index=True)
        elif p.side_ratings_reason:
            st.info(md_escape(f"Side ratings: {p.side_ratings_reason}."))

        items = store.items_frame(study).set_index("item_id")
        pairs = store.pair_explanations(study)
        dataset = st.selectbox("Dataset", ["All datasets", *sorted(prefs["dataset"].unique())],
                               format_func=drawn_text, key="sbs_pw_dataset")
        shown = prefs if dataset == "All datasets" else prefs[prefs["dataset"] == dataset]
        ids = list(dict.fromkeys(shown["item_id"]))
        pages = (len(ids) - 1) // PAGE_SIZE + 1
        page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="sbs_pw_page"))
        names = {"a": a, "b": b, "tie": "tie"}
        for item_id in ids[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]:
            it = items.loc[item_id]
            with st.container(border=True):
                st.text(drawn_text(f"{it['dataset']} · {it['sample_id']} — predicted: {it['predicted_label']}"))
                st.text(drawn_text(format_input(it["input"])))
                for col, name, expl in zip(st.columns(2), (a, b), pairs.get(item_id, ("", "")), strict=True):
                    col.text(drawn_text(name))
                    col.code(drawn_text(expl), language=None, wrap_lines=True)
                for r in shown[shown["item_id"] == item_id].itertuples(index=False):
                    st.text(drawn_text(f"{r.annotator}: {names[r.preference]}"
                            + (f" — rated {a}: {rating_label(r.rating_a)}" if isinstance(r.rating_a, str) else "")
                            + (f" — rated {b}: {rating_label(r.rating_b)}" if isinstance(r.rating_b, str) else "")
                            + (f" — tags {a}: {r.tags_a}" if r.tags_a else "")
                            + (f" — tags {b}: {r.tags_b}" if r.tags_b else "")))


PAGE = PairwisePage()
