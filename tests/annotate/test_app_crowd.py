"""AppTests for issue 12: crowd join links, completion codes, and the researcher's progress view."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from annotate.core import auth, limits
from annotate.core.store import Store
from tests.annotate.test_app import answer, app, page_text, progress_text
from tests.helpers import dump, nle

MODEL = "secret-model-name-7b"


@pytest.fixture
def crowd(monkeypatch: pytest.MonkeyPatch, db_path: Path, store: Store, write_jsonl) -> str:
    """Study "s": 6 items, k = 2, at most 3 items per worker, a completion code and a redirect; joining open."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.delenv("NLE_DEMO", raising=False)
    monkeypatch.delenv("NLE_ADMIN_PASSWORD", raising=False)
    lines = [nle("esnli", f"s{i}", "full_ft", model=MODEL) for i in range(5)]
    lines.append(nle("esnli", "check", "full_ft", model=MODEL, expected_rating="yes"))
    store.import_nles(write_jsonl(lines), "s")
    store.configure_study("s", overlap=2, max_per_annotator=3, completion_code="PROLIFIC-C0DE",
                          redirect_url="https://app.prolific.com/submissions/complete?cc=PROLIFIC-C0DE")
    return store.open_joining("s", max_joined=2)


def visit(**params: str) -> AppTest:
    at = app()
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def test_worker_joins_by_link_rates_their_quota_and_gets_the_completion_code(crowd: str, store: Store) -> None:
    at = visit(study="s", join=crowd, PROLIFIC_PID="5f0c1e2d3b")
    assert not at.exception, at.exception
    assert "Signed in as crowd:5f0c1e2d3b" in [t.value for t in at.sidebar.text]
    assert progress_text(at).endswith("of 4")  # 3 regular items (the cap) + 1 attention check
    for _ in range(4):
        at = answer(at, "yes")
    assert not at.exception, at.exception
    assert "PROLIFIC-C0DE" in [c.value for c in at.code]
    assert "https://app.prolific.com/submissions/complete?cc=PROLIFIC-C0DE" in page_text(at)
    assert MODEL not in page_text(at)
    # The same link again in this browser (a reload: its resume cookie, as `?resume=`) resumes the same
    # annotator, who is done.
    again = visit(study="s", join=crowd, PROLIFIC_PID="5f0c1e2d3b", resume=at.session_state["_resume_token"])
    assert "PROLIFIC-C0DE" in [c.value for c in again.code]
    assert [a["name"] for a in store.annotators("s")] == ["crowd:5f0c1e2d3b"]
    assert store.attention_frame("s").loc[0, "pass_rate"] == 1.0


@pytest.mark.parametrize(("params", "message"), [
    ({"study": "nope", "pid": "w1"}, "This study does not exist"),
    ({"study": "s", "pid": "w1", "join": "forged"}, "This join link is not valid"),
    ({"study": "s"}, "This link has no worker ID"),
    ({"study": "s", "workerId": "A" * 129}, "longer than 128 characters"),
    ({"study": "s", "pid": "bad\u200bid"}, "control characters"),
])
def test_a_bad_link_shows_a_plain_message_and_changes_nothing(crowd: str, store: Store, params, message) -> None:
    before = dump(store.path, without=("login_attempts",))  # a wrong study or token counts as a failed attempt
    at = visit(**{"join": crowd, **params})
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [next(e.value for e in at.error if message in e.value)]
    assert at.text_input(key="sign_in_name")  # still the sign-in page
    assert dump(store.path, without=("login_attempts",)) == before


def test_too_many_wrong_links_from_one_address_refuse_even_the_right_one(crowd: str, store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth.time, "time", lambda: 1_000_000.0)  # a still clock: the back-off never runs out
    for i in range(auth.MAX_FAILURES):
        at = visit(study="s", join=f"forged-{i}", pid="w1")
        assert "This join link is not valid" in at.error[0].value
    at = visit(study="s", join=crowd, pid="w1")
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        f"Too many wrong join links from this address; try again in {auth.backoff_s(auth.MAX_FAILURES):.0f} s."]
    assert at.text_input(key="sign_in_name")  # still the sign-in page, nobody signed in
    assert store.annotators("s") == []


def test_full_and_closed_studies(crowd: str, store: Store) -> None:
    visit(study="s", join=crowd, pid="w1")
    visit(study="s", join=crowd, pid="w2")
    at = visit(study="s", join=crowd, pid="w3")
    assert "This study is full" in at.error[0].value
    store.close_joining("s")
    at = visit(study="s", join=crowd, pid="w1")
    assert "closed" in at.error[0].value


def test_researcher_sees_progress_k_sets_attention_and_can_set_k(monkeypatch, crowd: str, store: Store) -> None:
    for pid in ("w1", "w2"):
        at = visit(study="s", join=crowd, pid=pid)
        at = answer(at, "yes")
        at = answer(at, "no", tags=("nonsensical",))
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "s3cret-pw")
    at = app().run()
    at.text_input(key="admin_password").input("s3cret-pw")
    at = at.button(key="admin_sign_in").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("annotator")
    assert list(table.index) == ["crowd:w1", "crowd:w2"]
    assert (table["done"] == 2).all() and (table["assigned"] >= 2).all()
    assert table["joined via link"].all() and table["last activity"].str.len().gt(0).all()
    labels = {m.label: m.value for m in at.metric}
    assert "Complete sets (k = 2)" in labels and labels["ETA"]
    # Setting k from the page; a bad value changes nothing and says why.
    at.text_input(key="settings_overlap").input("zero")
    at = at.button(key="settings_save").click().run()
    assert "Nothing was changed" in at.error[0].value and store.assignment_settings("s").overlap == 2
    at.text_input(key="settings_overlap").input("3")
    at = at.button(key="settings_save").click().run()
    assert store.assignment_settings("s").overlap == 3
    assert store.study_settings("s")["code_min_answers"] == 1
    at.number_input(key="settings_code_min_answers").set_value(0)
    at = at.button(key="settings_save").click().run()
    assert store.study_settings("s")["code_min_answers"] == 0


def test_sign_out_drops_the_join_link_so_the_worker_stays_signed_out(crowd: str) -> None:
    at = visit(study="s", join=crowd, pid="w1")
    assert "Signed in as crowd:w1" in [t.value for t in at.sidebar.text]
    at = at.sidebar.button[0].click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="sign_in_name") and "join" not in at.query_params


# -- crowd studies that hold up: skipping, the finished screen, queue numbers ----------------------------------


def skip(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Skip").click().run()


def heading(at: AppTest) -> str:
    """The caption over the item: "Item N in your queue" (or "Pair N ...")."""
    return next(c.value for c in at.caption if c.value.startswith(("Item ", "Pair ")))


def test_skips_are_rate_limited_like_submits(crowd: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from annotate.app import queue

    monkeypatch.setattr(limits, "SUBMIT_BURST", 2)
    store.configure_study("s", max_per_annotator=None)
    at = visit(study="s", join=crowd, pid="w1")
    at = skip(skip(at))
    assert not at.error
    at = skip(at)
    assert [e.value for e in at.error] == [queue.SKIP_SLOW_DOWN]


def test_skipping_holds_at_most_a_few_items_and_says_so(crowd: str, store: Store) -> None:
    from annotate.app import queue
    from annotate.core.assignment import MAX_OPEN

    store.configure_study("s", max_per_annotator=None)
    at = visit(study="s", join=crowd, pid="w1")
    for _ in range(MAX_OPEN - 1):
        at = skip(at)
    assert queue.HOLDING_MOST.format(n=MAX_OPEN) in page_text(at)
    for _ in range(3):
        at = skip(at)
    aid = next(a["id"] for a in store.annotators("s") if a["name"] == "crowd:w1")
    assert store.conn.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?", (aid,)).fetchone()[0] \
        == MAX_OPEN


def fill(store: Store, study: str = "s") -> None:
    """Someone answers everything the study has to give (k = 1), so a newcomer finds nothing left."""
    store.configure_study(study, overlap=1, max_per_annotator=None)
    store.add_annotator("lab-" + study, study, code="lab-code")
    aid = next(a["id"] for a in store.annotators(study) if a["name"] == "lab-" + study)
    pos = store.next_unanswered(aid)
    while pos is not None:
        item = store.annotator_item(aid, pos) or store.annotator_pair(aid, pos)
        if "explanations" in item:
            store.submit_preference(aid, item["item_id"], "tie")
        else:
            store.submit(aid, item["item_id"], "yes")
        pos = store.next_unanswered(aid, after=pos)


def completion_codes(at: AppTest) -> list[str]:
    """The codes on the page other than a new worker's own resume code (shown until they noted it)."""
    resume = at.session_state["_join_resume_code"] if "_join_resume_code" in at.session_state else None
    return [c.value for c in at.code if c.value != resume]


def test_a_worker_the_study_has_nothing_left_for_is_told_so_and_gets_no_code(crowd: str, store: Store) -> None:
    fill(store)
    at = visit(study="s", join=crowd, pid="late")
    assert not at.exception, at.exception
    text = page_text(at)
    assert "This study has no items left for you" in text and "so there is no completion code for you" in text
    assert "All 0 items answered" not in text and "PROLIFIC-C0DE" not in text and not completion_codes(at)
    assert not [b for b in at.button if b.label.startswith(("Revise", "Back to the last"))]
    # The researcher may choose to pay everyone who came: then the code is shown.
    store.configure_study("s", code_min_answers=0)
    at = at.run()
    assert "This study has no items left for you" in page_text(at) and completion_codes(at) == ["PROLIFIC-C0DE"]


def test_numbers_close_up_when_lapsed_items_leave_the_queue(crowd: str, store: Store,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """w1 answers two items, holds a third and the attention check, and walks away; another worker takes the
    regular item over. The check goes back too, and w1's next item is "Item 3", not "Item 4"."""
    from types import SimpleNamespace

    from annotate.core import assignment

    monkeypatch.setattr(assignment, "_SLOT_RNG", SimpleNamespace(randrange=lambda n: 3))  # the check 4th
    store.configure_study("s", overlap=1, max_per_annotator=3, lapse_seconds=60)
    at = visit(study="s", join=crowd, pid="w1")
    at = answer(answer(at, "yes"), "yes")
    at = skip(at)  # holds the third regular item and now the check
    assert heading(at).startswith("Item 4")
    w1 = next(a["id"] for a in store.annotators("s") if a["name"] == "crowd:w1")
    store.conn.execute("UPDATE assignments SET reserved_at = reserved_at - 120 WHERE annotator_id = ?", (w1,))
    w2 = store.join("s", crowd, "w2")["id"]
    pos = store.next_unanswered(w2)
    while not store.conn.execute("SELECT COUNT(*) FROM assignments a JOIN assignments b ON a.item_id = b.item_id"
                                 " WHERE a.annotator_id = ? AND b.annotator_id = ?", (w1, w2)).fetchone()[0] \
            and pos is not None:  # w2 works until it has taken over one of w1's items
        store.submit(w2, store.annotator_item(w2, pos)["item_id"], "yes")
        pos = store.next_unanswered(w2, after=pos)
    kept = store.conn.execute("SELECT COUNT(*) FROM assignments WHERE answered_at IS NULL AND annotator_id = ?",
                              (w1,)).fetchone()[0]
    assert kept == 0, "w1 still holds the lapsed check after the regular item was taken over"
    at = at.run()
    assert not at.exception, at.exception
    assert heading(at).startswith("Item 3")


@pytest.fixture
def pair_crowd(monkeypatch: pytest.MonkeyPatch, db_path: Path, store: Store, write_jsonl) -> str:
    """Pairwise study "pw": 3 pairs, k = 2, a completion code and a redirect; joining open."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.delenv("NLE_DEMO", raising=False)
    monkeypatch.delenv("NLE_ADMIN_PASSWORD", raising=False)
    lines = [nle("esnli", f"p{i}", cfg, model=MODEL, explanation=f"reason {i} of {cfg}")
             for i in range(3) for cfg in ("cfg_a", "cfg_b")]
    store.import_pairwise(write_jsonl(lines), "cfg_a", "cfg_b", "pw")
    store.configure_study("pw", completion_code="PAIR-C0DE",
                          redirect_url="https://app.prolific.com/submissions/complete?cc=PAIR-C0DE")
    return store.open_joining("pw")


def choose_and_submit(at: AppTest, choice: str) -> AppTest:
    next(r for r in at.radio if r.key.startswith("_p_choice_")).set_value(choice)
    return next(b for b in at.button if b.label == "Submit").click().run()


def test_a_pairwise_crowd_worker_who_answers_every_pair_gets_the_completion_code(pair_crowd: str) -> None:
    at = visit(study="pw", join=pair_crowd, PROLIFIC_PID="pw-worker")
    assert not at.exception, at.exception
    for choice in ("1", "2", "tie"):
        at = choose_and_submit(at, choice)
    assert not at.exception, at.exception
    assert at.success[0].value == "All 3 pairs answered — thank you!"
    assert completion_codes(at) == ["PAIR-C0DE"]
    assert "https://app.prolific.com/submissions/complete?cc=PAIR-C0DE" in page_text(at)
    assert "cfg_a" not in page_text(at) and MODEL not in page_text(at)


def test_a_pairwise_worker_the_study_has_nothing_left_for_is_told_so_and_gets_no_code(pair_crowd: str,
                                                                                      store: Store) -> None:
    fill(store, "pw")
    at = visit(study="pw", join=pair_crowd, pid="late")
    assert not at.exception, at.exception
    text = page_text(at)
    assert "This study has no pairs left for you" in text and "so there is no completion code for you" in text
    assert "All 0 pairs answered" not in text and not completion_codes(at)
    assert not [b for b in at.button if b.label.startswith(("Revise", "Back to the last"))]
