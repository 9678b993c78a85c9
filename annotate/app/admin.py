"""What the researcher pages share: the study picker, ratings prepared for analysis, uploads and progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from analysis.data import Prepared, prepare
from annotate.core.importing import ImportResult
from annotate.core.store import Store


def choose_study(store: Store, key: str) -> str:
    """A study picker for researcher pages; stops the page with a note when the database has no study."""
    studies = [s["name"] for s in store.studies()]
    if not studies:
        st.info("No study yet. Import NLEs first.")
        st.stop()
    return st.selectbox("Study", studies, key=key)


def rated_study(store: Store, key: str) -> tuple[str, Prepared]:
    """Pick a study and load its ratings prepared for analysis; stops the page while nothing is rated."""
    study = choose_study(store, key)
    items, ratings = store.analysis_frames(study)
    if len(ratings) == 0:
        st.info("No ratings in this study yet.")
        st.stop()
    return study, prepare(items, ratings, store.get_study(study)["tags"])


def import_upload(store: Store, filename: str, data: bytes, study: str | None, with_gold: bool, *,
                  allow_mixed: bool = False) -> ImportResult:
    """Import an uploaded NLE file (all or nothing); errors name the uploaded file's own name."""
    return store.import_nles(Path(filename).name or "upload.jsonl", study, with_gold=with_gold, data=data,
                             allow_mixed=allow_mixed)


def progress_rows(store: Store, study: str) -> list[dict[str, Any]]:
    """One row per annotator of the study: answered, assigned, share done, last submission."""
    rows = []
    for a in store.annotators(study):
        assigned = a["assigned"] or 0
        rows.append({"annotator": a["name"], "answered": a["answered"], "assigned": assigned,
                     "done": (a["answered"] / assigned) if assigned else 0.0,
                     "last submitted": a["last_submitted_at"] or "", "can sign in": bool(a["can_sign_in"])})
    return rows
