"""Researcher: import NLE files, add annotators, follow their progress, download exports and a backup."""

import pandas as pd
import streamlit as st

from analysis.literal import literal_frame
from annotate.app import admin, render
from annotate.app.session import require_admin
from annotate.core.errors import InputFileError

store = require_admin()
st.title("Researcher")

studies = [s["name"] for s in store.studies()]
study = st.selectbox("Study", studies, format_func=render.drawn_text) if len(studies) > 1 else (studies[0] if studies else None)
if study and len(studies) == 1:
    st.caption(f"Study: {render.md_escape(study)}")

st.header("Import explanations")
with st.form("import_nles", clear_on_submit=True):
    upload = st.file_uploader("NLE file (JSONL, one explanation to rate per line)", type=["jsonl", "json", "txt"],
                              key="import_file")
    st.caption("Uploads up to 25 MB (`server.maxUploadSize`); import bigger files on the server with "
               "`nle-annotate import FILE --db DB`.")
    target = st.text_input("Into study", value=study or "default", key="import_study")
    with_gold = st.checkbox("Also add each sample's first gold explanation as a blind reference item (config 'gold')",
                            key="import_with_gold")
    allow_mixed = st.checkbox("Accept NLEs of another model or split seed than their configuration already holds",
                              key="import_allow_mixed")
    if st.form_submit_button("Import", type="primary", key="import_submit"):
        if upload is None:
            st.error("Choose a file first.")
        else:
            try:
                result = admin.import_upload(store, upload.name, upload.getvalue(), target.strip() or None, with_gold,
                                             allow_mixed=allow_mixed)
            except (InputFileError, ValueError) as e:
                st.error(render.md_escape(f"Nothing was imported. {e}"))
            else:
                st.success(render.md_escape(f"Imported {upload.name}: {result.summary()}"))
                for line in result.mixed_sources:
                    st.warning(render.md_escape(line))

if study is None:
    st.info("No study yet: import an NLE file to create one.")
    st.stop()

st.header("Annotators")
with st.form("add_annotator", clear_on_submit=True):
    name = st.text_input("New annotator's name", key="new_annotator")
    if st.form_submit_button("Add annotator", key="add_annotator"):
        try:
            code = store.add_annotator(name, study)
        except ValueError as e:
            st.error(render.md_escape(str(e)))
        else:
            st.success(render.md_escape(f"Added {name.strip()}. Their access code is shown only now; give it to them:"))
            st.code(code, language=None)

progress = store.progress(study)
k_text = "every annotator" if progress["k"] is None else f"k = {progress['k']}"
sets, eta = st.columns(2)
sets.metric(f"Complete sets ({k_text})", f"{progress['complete_sets']} of {progress['items']}")
eta.metric("ETA", admin.eta_text(progress["eta_seconds"]))
rows = admin.progress_rows(store, study)
if rows:
    st.dataframe(literal_frame(pd.DataFrame(rows)), hide_index=True, column_config={
        "share done": st.column_config.ProgressColumn("share done", min_value=0.0, max_value=1.0, format="percent"),
    })
    with st.form("reset_code"):
        who = st.selectbox("Issue a new access code for", [r["annotator"] for r in rows], format_func=render.drawn_text)
        if st.form_submit_button("Issue new code (the old one stops working)"):
            st.success(render.md_escape(f"New access code for {who}, shown only now:"))
            st.code(store.reset_code(who), language=None)
else:
    st.info("No annotators yet.")

admin.study_settings_form(store, study)

st.header("Downloads")
csv_col, jsonl_col, db_col = st.columns(3)
csv_col.download_button("Ratings CSV", lambda: store.export_bytes(study, "csv"), file_name=f"{study}-ratings.csv",
                        mime="text/csv", on_click="ignore", icon=":material/download:")
jsonl_col.download_button("Ratings JSONL", lambda: store.export_bytes(study, "jsonl"),
                          file_name=f"{study}-ratings.jsonl", mime="application/jsonl", on_click="ignore",
                          icon=":material/download:")
db_col.download_button("Database backup", store.backup_bytes, file_name="annotations-backup.db",
                       mime="application/vnd.sqlite3", on_click="ignore", icon=":material/backup:")
