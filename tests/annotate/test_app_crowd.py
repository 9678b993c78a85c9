"""AppTests for issue 12: crowd join links, completion codes, and the researcher's progress view."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from annotate.core import auth
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


def test_sign_out_drops_the_join_link_so_the_worker_stays_signed_out(crowd: str) -> None:
    at = visit(study="s", join=crowd, pid="w1")
    assert "Signed in as crowd:w1" in [t.value for t in at.sidebar.text]
    at = at.sidebar.button[0].click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="sign_in_name") and "join" not in at.query_params
