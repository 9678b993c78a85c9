"""Researcher page: items where annotators gave different answers. Record a final answer and the kind of
disagreement (perception, position, expectation — the paper's three kinds — or other); the report counts them.
Text from the NLE files is shown literally (st.text)."""

import streamlit as st

from analysis.tables import adjudication_counts, disagreement_rows
from annotate.app.admin import rated_study
from annotate.app.render import drawn_text, format_input, md_escape
from annotate.app.session import require_admin
from annotate.core.scale import RATING_LABELS, RATINGS
from annotate.core.store import DISAGREEMENT_KINDS

store = require_admin()
st.title("Disagreements")

study, p = rated_study(store, key="dis_study")
adjudications = store.adjudications_frame(study)
rows = disagreement_rows(p, adjudications)

st.caption("Adjudications by kind of disagreement")
st.dataframe(adjudication_counts(adjudications, DISAGREEMENT_KINDS), hide_index=True, key="dis_counts")
done = int(rows["kind"].notna().sum())
st.text(f"{len(rows)} items where annotators disagree; {done} adjudicated, {len(rows) - done} open.")
if rows.empty:
    st.success("Annotators agree on every item rated by more than one annotator.")
    st.stop()

open_only = st.checkbox("Only items not yet adjudicated", key="dis_open_only")
shown = rows[rows["kind"].isna()] if open_only else rows
if shown.empty:
    st.success("Every disagreement is adjudicated.")
    st.stop()
labels = {int(r.item_id): drawn_text(f"{r.dataset} / {r.sample_id} / {r.config}") for r in shown.itertuples(index=False)}
item_id = st.selectbox("Item", list(labels), format_func=lambda k: labels[k], key="dis_item")
row = shown[shown["item_id"] == item_id].iloc[0]
text = store.items_frame(study).set_index("item_id").loc[item_id]

with st.container(border=True):
    st.text(drawn_text(f"{row['dataset']} · {row['sample_id']} · {row['config']}"))
    st.text(drawn_text(format_input(text["input"])))
    st.text(drawn_text(f"Predicted answer: {text['predicted_label']}"))
    st.code(drawn_text(text["explanation"]), language=None, wrap_lines=True)
    for name in p.annotators:
        if row[name]:
            st.text(drawn_text(f"{name}: {RATING_LABELS[row[name]]} — tags: "
                               f"{row[f'{name} tags'].replace(';', ', ') or 'none'}"))
if isinstance(row["kind"], str):
    st.text(f"Adjudicated: {RATING_LABELS[row['final_rating']]} ({row['kind']})")

with st.form(f"adjudicate_{item_id}"):
    current = RATINGS.index(row["final_rating"]) if isinstance(row["final_rating"], str) else 0
    final = st.radio("Final answer", RATINGS, index=current, format_func=RATING_LABELS.get, horizontal=True,
                     key=f"dis_final_{item_id}")
    kinds = list(DISAGREEMENT_KINDS)
    kind = st.selectbox("Kind of disagreement", kinds,
                        index=kinds.index(row["kind"]) if isinstance(row["kind"], str) else 0,
                        key=f"dis_kind_{item_id}")
    note = st.text_area("Note (optional)", value=row["note"] if isinstance(row["note"], str) else "",
                        key=f"dis_note_{item_id}")
    if st.form_submit_button("Save adjudication", key="dis_save"):
        store.set_adjudication(item_id, final, kind, note, decided_by="researcher")
        st.session_state["dis_saved"] = labels[item_id]
        st.rerun()
if st.session_state.get("dis_saved"):
    st.success(f"Saved the adjudication of {md_escape(st.session_state.pop('dis_saved'))}.")
