"""The screen after an annotator's last item, for rating and pairwise studies alike.

Someone the study had nothing left for is told so plainly (not "All 0 items answered"), with nothing to revise.
The completion code appears only when the store says it was earned (`Store.finish`); a crowd worker who did not
earn it is told why and what to do on their platform.
"""

from __future__ import annotations

import streamlit as st

from annotate.app import join
from annotate.app.queue import Queue

RETURN_ON_PLATFORM = ("Please return the study on your study platform (on Prolific: “Return submission”) so that "
                      "your place goes to someone else.")


def show(queue: Queue, noun: str) -> None:
    """The finished screen; `noun` is what the study's items are called ("items", "pairs")."""
    state = queue.store.finish(queue.aid)
    if state is None:  # new work came free since the last item (e.g. a lapsed reservation): go on with it
        queue.resume()
        st.rerun()
    if state["answered"] == 0:
        st.info(f"This study has no {noun} left for you: other participants have already taken all of them. "
                "Thank you for your interest.")
        if state["completion_code"] is not None:
            join.show_completion(queue.annotator)
        elif state["has_code"]:
            st.write(f"You answered no {noun}, so there is no completion code for you. {RETURN_ON_PLATFORM}")
        return
    _, total = queue.counts()
    st.success(f"All {total} {noun} answered — thank you!")
    if state["completion_code"] is not None:
        join.show_completion(queue.annotator)
    elif state["has_code"]:
        st.write(f"The study has no more {noun} for you. A completion code needs at least "
                 f"{state['code_min_answers']} answers and you gave {state['answered']}, so there is none for you. "
                 f"{RETURN_ON_PLATFORM}")
    st.write("You can still go back and revise any answer.")
    done = st.container(horizontal=True)
    singular = noun.removesuffix("s")
    done.button(f"Back to the last {singular}", on_click=queue.back, icon=":material/arrow_back:")
    done.button(f"Revise from the first {singular}", on_click=queue.restart, icon=":material/restart_alt:")
