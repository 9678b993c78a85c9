"""What the researcher pages share: the study picker, ratings prepared for analysis, uploads and progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from analysis.data import Prepared, prepare
from analysis.formatting import fmt
from annotate.app.render import drawn_text, md_escape
from annotate.core import crowd
from annotate.core.importing import ImportResult
from annotate.core.store import Store


def choose_study(store: Store, key: str) -> str:
    """A study picker for researcher pages; stops the page with a note when the database has no study."""
    studies = [s["name"] for s in store.studies()]
    if not studies:
        st.info("No study yet. Import NLEs first.")
        st.stop()
    return st.selectbox("Study", studies, format_func=drawn_text, key=key)


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
    """One row per annotator of the study: assigned (answered + live reservations), done, share done, median
    seconds per item, last activity, attention-check pass rate, and whether they sign in with a code or a link."""
    rows = []
    for a in store.progress(study)["annotators"]:
        assigned = a["assigned"] or 0
        median = a["median_seconds"]
        rate = a["attention_pass_rate"]
        rows.append({"annotator": a["name"], "assigned": assigned, "done": a["done"],
                     "share done": (a["done"] / assigned) if assigned else 0.0,
                     "median s/item": fmt(median, 1),
                     "last activity": a["last_activity"] or "",
                     "attention": "" if not a["attention_checks"] else f"{fmt(rate, 0, style='%')} of {a['attention_checks']}",
                     "joined via link": bool(a["joined"]), "can sign in": bool(a["can_sign_in"])})
    return rows


def eta_text(seconds: float | None) -> str:
    """An ETA in words: 'done', 'unknown yet', or hours and minutes at the last hour's pace."""
    if seconds is None:
        return "unknown yet (needs ratings in the last hour)"
    if seconds <= 0:
        return "done"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes} min at the last hour's pace" if hours else f"about {max(minutes, 1)} min"


def study_settings_form(store: Store, study: str) -> None:
    """Assignment (overlap k, cap, reservation lapse), attention tolerance, completion code and crowd joining."""
    st.header("Assignment and crowd")
    current = store.study_settings(study)
    with st.form("study_settings"):
        overlap = st.text_input("Ratings per item (k, or 'all' for every annotator)",
                                value="all" if current["overlap"] is None else str(current["overlap"]),
                                key="settings_overlap")
        cap = st.number_input("Most items per annotator (0 = no cap)", min_value=0, step=1,
                              value=current["max_per_annotator"] or 0, key="settings_cap")
        lapse = st.number_input("A reserved item goes back to the pool after (minutes)", min_value=1, step=1,
                                value=max(1, current["lapse_seconds"] // 60), key="settings_lapse")
        tolerance = st.radio("Attention check passes when the answer is", ["exact", "within_one"],
                             index=["exact", "within_one"].index(current["attention_tolerance"]), horizontal=True,
                             format_func={"exact": "exactly the expected one", "within_one": "within one step"}.get,
                             key="settings_tolerance")
        code = st.text_input("Completion code (shown when an annotator's work is done)",
                             value=current["completion_code"] or "", key="settings_code")
        redirect = st.text_input("Redirect URL after completion (optional)", value=current["redirect_url"] or "",
                                 key="settings_redirect")
        min_answers = st.number_input("Answers needed for the completion code when the study runs out (0 = also "
                                      "for a worker it had nothing left for)", min_value=0,
                                      max_value=crowd.MAX_CODE_MIN_ANSWERS, step=1,
                                      value=current["code_min_answers"], key="settings_code_min_answers")
        if st.form_submit_button("Save settings", key="settings_save"):
            try:
                store.configure_study(study, overlap=overlap, max_per_annotator=int(cap) or None,
                                      lapse_seconds=int(lapse) * 60, attention_tolerance=tolerance,
                                      completion_code=code, redirect_url=redirect,
                                      code_min_answers=int(min_answers))
            except ValueError as e:
                st.error(md_escape(f"Nothing was changed. {e}"))
            else:
                st.success("Settings saved.")
    state = "open" if current["join_open"] else "closed"
    cap_text = f", at most {current['max_joined']} participants" if current["max_joined"] else ""
    st.caption(md_escape(f"Joining by link is {state}{cap_text}. Links look like /?study={study}&join=TOKEN&pid="
                         "WORKER_ID (Prolific's PROLIFIC_PID and MTurk's workerId work too)."))
    per_address = st.number_input("New workers per client address (0 = no limit; applies when joining is opened)",
                                  min_value=0, step=1, value=current["joins_per_address"], key="join_per_address")
    open_col, close_col = st.columns(2)
    if open_col.button("Open joining (new link; earlier links stop working)", key="join_open"):
        token = store.open_joining(study, max_joined=current["max_joined"], joins_per_address=int(per_address))
        st.success("Joining is open. The link's secret is shown only now:")
        st.code("?" + urlencode({"study": study, "join": token, "pid": "WORKER_ID"}), language=None)
    if close_col.button("Close joining", key="join_close", disabled=not current["join_open"]):
        store.close_joining(study)
        st.success("Joining is closed.")
