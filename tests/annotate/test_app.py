"""The Streamlit app through Streamlit's own runtime (AppTest): annotators' page, sign-in, access control."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from streamlit.testing.v1 import AppTest

from annotate.app import session
from annotate.app.render import GUIDELINES_KEY
from annotate.app.session import RESUME_COOKIE, RESUME_PARAM
from annotate.core.store import Store
from tests.helpers import next_item, nle, unescape

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
PAGES = ROOT / "annotate" / "app" / "pages"
MODEL = "secret-model-name-7b"
METRIC = "secret_metric_name"  # an automatic metric score every item carries; never shown
CODES = {"anna": "code-anna-1", "ben": "code-ben-2"}


# -- fixtures and helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Path:
    """The app points at a fresh temporary database; no demo, no admin password unless a test sets one."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.delenv("NLE_DEMO", raising=False)
    monkeypatch.delenv("NLE_ADMIN_PASSWORD", raising=False)
    return db_path


def make_study(store: Store, write_jsonl, lines: list[dict[str, Any]], *, with_gold: bool = False) -> dict[str, int]:
    """Import `lines` as study "s" and add annotators anna and ben; returns their ids."""
    store.import_nles(write_jsonl(lines), "s", with_gold=with_gold)
    for name, code in CODES.items():
        store.add_annotator(name, "s", code=code)
    return {a["name"]: a["id"] for a in store.annotators("s")}


@pytest.fixture
def study(app_env: Path, store: Store, write_jsonl) -> dict[str, int]:
    """Six samples over the four datasets, two configurations each, plus gold reference items."""
    lines = []
    for i, ds in enumerate(["esnli", "ecqa", "sbic", "comve", "esnli", "ecqa"]):
        for cfg in ("full_ft", "att_q+layer_norm"):
            variant = "one" if cfg == "full_ft" else "two"
            lines.append(nle(ds, f"{ds}-{i}", cfg, model=MODEL, explanation=f"because reason {i}, variant {variant}",
                             gold_explanations=[f"A person wrote reason {i}."],
                             metrics={METRIC: 0.81234 + i / 1000 + (cfg == "full_ft") / 10}))
    return make_study(store, write_jsonl, lines, with_gold=True)


def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=30)


def sign_in(at: AppTest, name: str, code: str) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_code").input(code)
    return at.button(key="sign_in").click().run()


def signed_in(name: str) -> AppTest:
    at = sign_in(app().run(), name, CODES[name])
    assert not at.exception, at.exception
    return at


def shown_explanation(at: AppTest) -> str:
    """The explanation on screen: the text element right after the "Explanation" caption."""
    elements = list(walk(at))
    for i, el in enumerate(elements):
        if el.type == "caption" and el.value == "Explanation":
            nxt = elements[i + 1]
            assert nxt.type == "text"
            return nxt.value
    raise AssertionError("no explanation on the page")


def walk(at: AppTest):
    """Every element of the page (main area and sidebar), depth first, in display order."""
    def rec(node):
        children = getattr(node, "children", None)
        if children is None:
            yield node
            return
        if node is not at._tree and node.type not in ("main", "sidebar", "event"):
            yield node  # a container: expander, popover, column, form...
        for child in children.values():
            yield from rec(child)
    yield from rec(at._tree)


def page_text(at: AppTest) -> str:
    """Everything the browser would receive for this page: every element's protobuf, as text."""
    return "\n".join(str(el.proto) for el in walk(at) if getattr(el, "proto", None) is not None)


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def answer(at: AppTest, rating: str, tags: tuple[str, ...] = (), comment: str = "", submit: bool = True) -> AppTest:
    """Pick the answer, tick tags, type a comment in the item's form (no run yet), then submit."""
    at.radio[0].set_value(rating)
    for tag in tags:
        next(c for c in at.checkbox if c.label == tag).check()
    if comment:
        at.text_area[0].input(comment)
    if submit:
        submit_button(at).click()
    return at.run()


def submit_button(at: AppTest):
    return next(b for b in at.button if b.label == "Submit")


def current_item_id(at: AppTest) -> int:
    """The database id of the item on screen, looked up from its queue position (the page never carries ids)."""
    position = int(at.radio[0].key.rsplit("_", 1)[1])
    with Store(at.session_state["_store"].path) as store:
        aid = at.session_state["annotator"]["id"]
        return store.annotator_item(aid, position)["item_id"]


# -- the annotator's page ---------------------------------------------------------------------------------------


def test_answer_three_sign_out_and_resume_on_item_four(study: dict[str, int], store: Store) -> None:
    aid = study["anna"]
    total = store.queue_length(aid)
    at = signed_in("anna")
    assert progress_text(at) == f"0 of {total}"
    assert shown_explanation(at) == store.annotator_item(aid, 0)["explanation"]
    for pos in range(3):
        assert current_item_id(at) == store.annotator_item(aid, pos)["item_id"]
        at = answer(at, "weak_no", tags=("incomplete explanation", "hallucination"), comment=f"note {pos}")
        assert not at.exception and not at.error
    assert progress_text(at) == f"3 of {total}"

    at.sidebar.button[0].click().run()  # Sign out
    assert at.text_input(key="sign_in_name") is not None and not at.get("progress")
    at = sign_in(at, "anna", CODES["anna"])
    assert progress_text(at) == f"3 of {total}"
    fourth = store.annotator_item(aid, 3)
    assert current_item_id(at) == fourth["item_id"]
    assert shown_explanation(at) == fourth["explanation"]

    saved = store.ratings_frame("s", extra=True)
    assert len(saved) == 3
    assert set(saved["tags"]) == {"incomplete explanation;hallucination"}
    assert sorted(saved["comment"]) == ["note 0", "note 1", "note 2"]
    assert (saved["seconds"] >= 0).all() and saved["guidelines_version"].notna().all()


def test_another_annotator_sees_no_configuration_nor_others_answers(study: dict[str, int], store: Store) -> None:
    a = signed_in("anna")
    for _ in range(4):
        a = answer(a, "no", tags=("irrelevant",), comment="anna-private-remark")
    assert store.answered_count(study["anna"]) == 4

    b = signed_in("ben")
    forbidden = ["full_ft", "att_q", "gold", MODEL, "anna-private-remark", "anna"]
    # Each score in full and to 4 decimals (0.91334, 0.9133): no other number on the page is like them.
    metric_values = store.metrics_frame("s")["value"].tolist()
    assert len(metric_values) == 12
    forbidden += [METRIC, *(repr(v) for v in metric_values), *(f"{v:.4f}" for v in metric_values)]
    pages_seen = 0
    for _ in range(store.queue_length(study["ben"])):  # every item in ben's queue, all of anna's among them
        text = page_text(b)
        for word in forbidden:
            assert word not in text, f"{word!r} shown to ben"
        assert b.radio[0].value is None and not any(c.value for c in b.checkbox) and b.text_area[0].value == ""
        next(x for x in b.button if x.label == "Skip").click().run()
        pages_seen += 1
    b.switch_page("annotate/app/pages/guidelines.py").run()
    assert not b.exception and "Guidelines version" in page_text(b)
    for word in forbidden:
        assert word not in page_text(b)
    assert pages_seen == store.queue_length(study["ben"])


@pytest.mark.parametrize("where", ["explanation", "predicted_label", "input"])
@pytest.mark.parametrize("hostile", ["<b>x</b> and **x**", "<img src=x onerror=alert(1)>", "# Title\n- item `code` [a](http://e)"])
def test_text_from_the_file_is_shown_literally(app_env: Path, store: Store, write_jsonl, where: str,
                                               hostile: str) -> None:
    line = nle("sbic", "h1", "full_ft")
    if where == "input":
        line["input"] = {"post": hostile}
    else:
        line[where] = hostile
    make_study(store, write_jsonl, [line])
    at = signed_in("anna")
    texts = [el.value for el in walk(at) if el.type == "text"]
    assert hostile in texts
    rendered_as_markdown = [el for el in walk(at) if el.type in ("markdown", "caption", "html")
                            and ("x</b>" in str(el.value) or "onerror" in str(el.value) or "# Title" in str(el.value))]
    assert rendered_as_markdown == []


@pytest.mark.parametrize(("dataset", "inputs", "expected"), [
    ("esnli", {"premise": "P text", "hypothesis": "H text"}, [("Premise", "P text"), ("Hypothesis", "H text")]),
    ("ecqa", {"question": "Q?", "choices": ["a1", "b2", "c3", "d4", "e5"]},
     [("Question", "Q?"), ("Choices", "(A) a1\n(B) b2\n(C) c3\n(D) d4\n(E) e5")]),
    ("sbic", {"post": "the post"}, [("Post", "the post")]),
    ("comve", {"sent0": "first", "sent1": "second"}, [("Statement 1", "first"), ("Statement 2", "second")]),
    ("newtask", {"claim": "C", "evidence_*": "E"}, [("claim", "C"), ("evidence\\_\\*", "E")]),
])
def test_input_is_laid_out_by_dataset(app_env: Path, store: Store, write_jsonl, dataset: str,
                                      inputs: dict[str, str], expected: list[tuple[str, str]]) -> None:
    make_study(store, write_jsonl, [nle(dataset, "1", "full_ft", input=inputs, predicted_label="LBL")])
    at = signed_in("anna")
    elements = list(walk(at))
    pairs = [(el.value, elements[i + 1].value) for i, el in enumerate(elements[:-1])
             if el.type == "caption" and elements[i + 1].type == "text" and el.value != "Guidelines version 1"]
    assert pairs[:len(expected)] == expected
    assert ("Predicted answer", "LBL") in pairs


def test_rule_violation_is_refused_and_nothing_saved(study: dict[str, int], store: Store, db_path: Path) -> None:
    at = signed_in("anna")
    item_id = current_item_id(at)
    at = answer(at, "yes", tags=("hallucination",), comment="keep me")
    assert [e.value for e in at.error] == [
        'Rule "no tags for Yes": an answer of "Yes" takes no shortcoming tag.']
    assert store.conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0
    with Store(db_path) as fresh:  # what another connection (another annotator's session) sees
        assert fresh.counts()["ratings"] == 0 and fresh.counts()["rating_history"] == 0
    # The form keeps what was entered, on the same item.
    assert current_item_id(at) == item_id and at.radio[0].value == "yes"
    assert next(c for c in at.checkbox if c.label == "hallucination").value
    assert at.text_area[0].value == "keep me"

    at = answer(at, "no", submit=True)  # "no" needs a tag, and one is still ticked: accepted
    assert not at.error
    assert store.history(study["anna"], item_id)[0]["rating"] == "no"
    assert current_item_id(at) != item_id


@pytest.mark.parametrize(("rating", "tags", "rule"), [
    ("weak_no", (), 'Rule "tags required for Weak no"'),
    ("no", (), 'Rule "tags required for No"'),
    ("weak_yes", ("empty", "one word"), 'Rule "empty is exclusive"'),
])
def test_each_rule_is_named(study: dict[str, int], store: Store, rating: str, tags: tuple[str, ...],
                            rule: str) -> None:
    at = answer(signed_in("anna"), rating, tags=tags)
    assert len(at.error) == 1 and at.error[0].value.startswith(rule)
    assert store.counts()["ratings"] == 0


def test_submit_without_an_answer_asks_for_one(study: dict[str, int], store: Store) -> None:
    at = signed_in("anna")
    submit_button(at).click()
    at.run()
    assert "Choose an answer" in at.error[0].value and store.counts()["ratings"] == 0


def test_back_shows_earlier_answer_and_revising_keeps_history(study: dict[str, int], store: Store) -> None:
    aid = study["anna"]
    at = signed_in("anna")
    first = current_item_id(at)
    at = answer(at, "no", tags=("nonsensical",), comment="first try")
    assert current_item_id(at) != first
    next(b for b in at.button if b.label == "Back").click().run()
    assert current_item_id(at) == first
    assert at.radio[0].value == "no"
    assert [c.label for c in at.checkbox if c.value] == ["nonsensical"]
    assert at.text_area[0].value == "first try"

    next(c for c in at.checkbox if c.label == "nonsensical").uncheck()
    at = answer(at, "weak_yes", comment="second thoughts")
    history = store.history(aid, first)
    assert [(h["rating"], h["tags"], h["comment"], h["revision"]) for h in history] == [
        ("no", ["nonsensical"], "first try", 1), ("weak_yes", [], "second thoughts", 2)]
    assert progress_text(at) == f"1 of {store.queue_length(aid)}"  # a revision is not a new answer


def test_the_item_form_carries_answer_tags_and_comment_and_submits_on_enter(study: dict[str, int],
                                                                            store: Store) -> None:
    """Keys 1–4 tick the radio in the browser (tests/e2e); here: everything the form holds is saved by Submit,
    which is the form's submit button on Enter, and picking answers or tags starts no run on its own."""
    at = signed_in("anna")
    item_id = current_item_id(at)
    form = next(el for el in walk(at) if el.type == "form")
    assert (len(form.radio), len(form.checkbox), len(form.text_area)) == (1, 12, 1)
    assert [b.label for b in form.button] == ["Back", "Skip", "Submit"]
    assert all(b.proto.is_form_submitter for b in at.button if b.label in ("Back", "Skip", "Submit"))
    assert submit_button(at).proto.shortcut == "enter"
    assert "(keys 1–4)" in at.radio[0].label
    # The script behind keys 1–4 is in the sidebar, which reaches the browser before the item does.
    assert [h for h in at.sidebar.get("html") if 'window.__nleAnswerRadio = "_a_answer_";' in h.proto.body]
    at.radio[0].set_value("no")
    next(c for c in at.checkbox if c.label == "irrelevant").check()
    at.text_area[0].input("short")
    submit_button(at).click()
    at.run()
    assert not at.error
    assert [(h["rating"], h["tags"], h["comment"]) for h in store.history(study["anna"], item_id)] == [
        ("no", ["irrelevant"], "short")]


def test_each_submit_logs_its_server_time_cpu_time_and_cpu_wait(study: dict[str, int], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/browser_latency.py reads NLE_TIMING_LOG: one line per submit that drew a next item, with the
    wall time, the run's own CPU time (never more than the wall time) and its wait for a CPU (Linux)."""
    log = tmp_path / "timing.log"
    monkeypatch.setenv("NLE_TIMING_LOG", str(log))
    at = signed_in("anna")
    assert not log.exists()  # signing in is not a submit
    answer(at, "yes")
    answer(at, "no")
    lines = [line.split("\t") for line in log.read_text().splitlines()]
    assert [len(fields) for fields in lines] == [4, 4]
    for unix_time, wall, cpu, wait in lines:
        assert abs(float(unix_time) - time.time()) < 60
        assert 0 < float(cpu) <= float(wall) + 0.1  # both rounded to 0.1 ms
        if Path("/proc/self/schedstat").exists():
            assert 0 <= float(wait) <= float(wall) + 0.1
        else:
            assert wait == ""


def test_a_timing_log_that_cannot_be_written_does_not_stop_the_page(study: dict[str, int], store: Store,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLE_TIMING_LOG", str(tmp_path))  # a folder: opening it to append fails
    at = signed_in("anna")
    first = current_item_id(at)
    answer(at, "yes")
    assert not at.exception and not at.error
    assert current_item_id(at) != first
    assert [h["rating"] for h in store.history(study["anna"], first)] == ["yes"]


def test_tags_and_comment_start_blank_on_the_next_item_and_come_back_on_revisit(study: dict[str, int]) -> None:
    """The tag boxes and the comment box are the same widgets from item to item: each item resets them."""
    at = answer(signed_in("anna"), "weak_no", tags=("hallucination", "one word"), comment="made up")
    assert at.radio[0].value is None and at.text_area[0].value == ""
    assert at.caption[0].value == "Item 2 in your queue · Saved."
    assert [c.label for c in at.checkbox if c.value] == []
    at = next(b for b in at.button if b.label == "Back").click().run()
    assert at.radio[0].value == "weak_no" and at.text_area[0].value == "made up"
    assert {c.label for c in at.checkbox if c.value} == {"hallucination", "one word"}
    at = next(b for b in at.button if b.label == "Skip").click().run()
    assert [c.label for c in at.checkbox if c.value] == [] and at.text_area[0].value == ""


def test_submit_without_an_answer_says_so_and_saves_nothing(study: dict[str, int], store: Store) -> None:
    at = signed_in("anna")
    item_id = current_item_id(at)
    next(c for c in at.checkbox if c.label == "irrelevant").check()
    submit_button(at).click().run()
    assert [e.value for e in at.error] == ["Choose an answer (keys 1–4) before submitting."]
    assert store.history(study["anna"], item_id) == [] and current_item_id(at) == item_id
    assert next(c for c in at.checkbox if c.label == "irrelevant").value  # the tick is still there


def test_skip_leaves_item_unanswered_and_it_comes_back(app_env: Path, store: Store, write_jsonl) -> None:
    ids = make_study(store, write_jsonl, [nle("sbic", str(i), "full_ft") for i in range(3)])
    at = signed_in("anna")
    skipped = current_item_id(at)
    next(b for b in at.button if b.label == "Skip").click().run()
    at = answer(at, "yes")
    at = answer(at, "yes")
    assert current_item_id(at) == skipped  # the queue wraps round to what was skipped
    assert store.answered_count(ids["anna"]) == 2
    next(b for b in at.button if b.label == "Skip").click().run()
    assert current_item_id(at) == skipped
    assert at.caption[0].value.endswith(" · This is the only unanswered item left.") and not at.toast
    at = answer(at, "yes")
    assert at.success[0].value == "All 3 items answered — thank you!"
    next(b for b in at.button if b.label == "Revise from the first item").click().run()
    assert at.radio[0].value == "yes" and current_item_id(at) == store.annotator_item(ids["anna"], 0)["item_id"]


def test_guidelines_page_shows_scale_tags_and_version(study: dict[str, int], store: Store) -> None:
    from annotate.core.scale import DEFAULT_TAGS, Guidelines

    store.set_guidelines("s", Guidelines(version="2024-06"))
    at = signed_in("anna")
    assert not [el for el in walk(at) if el.type == "markdown"]  # the closed popover draws no text
    at.session_state[GUIDELINES_KEY] = True  # the annotator opens the Guidelines popover
    on_annotate_page = [el.value for el in walk(at.run()) if el.type == "markdown"]
    at.switch_page("annotate/app/pages/guidelines.py").run()
    assert [c.value for c in at.caption] == ["Guidelines version 2024\\-06"]
    assert "Signed in as anna" in [t.value for t in at.sidebar.text]
    guide = at.markdown[0].value
    for label in ("Yes", "Weak yes", "Weak no", "No", *DEFAULT_TAGS):
        assert f"**{label}** — " in guide
    assert guide.count("*Example:*") == 4 + len(DEFAULT_TAGS)
    assert guide in on_annotate_page
    at.switch_page("annotate/app/pages/annotate.py").run()
    at = answer(at, "yes")
    assert store.ratings_frame("s", extra=True)["guidelines_version"].tolist() == ["2024-06"]


def test_guidelines_text_is_escaped(app_env: Path, store: Store) -> None:
    from annotate.app import render
    from annotate.core.scale import Guidelines

    g = Guidelines(version="1", intro="<b>bold</b> :smile: $x$",
                   tags={"one word": {"meaning": "**not bold**", "example": "[link](http://e)"}})
    study = store.create_study("g", tags=["one word", "empty"], guidelines=g)
    text = render.guidelines_markdown(study)
    assert "\\<b\\>bold\\<\\/b\\>" in text and "\\:smile\\:" in text and "\\$x\\$" in text
    # a URL is shown as inline code, which markdown never turns into a link
    assert "\\*\\*not bold\\*\\*" in text and "`[link](http://e)`" in text


# -- signing in -------------------------------------------------------------------------------------------------


def test_wrong_code_is_not_recognised_and_five_failures_delay(study: dict[str, int]) -> None:
    at = app().run()
    for _ in range(5):
        at = sign_in(at, "anna", "wrong")
        assert [e.value for e in at.error] == ["Name or access code not recognised."]
    at = sign_in(at, "anna", CODES["anna"])  # even the right code waits now
    assert at.error[0].value.startswith("Too many failed attempts. Try again in ")
    assert not at.get("progress")
    unknown = sign_in(app().run(), "nobody", "x")
    assert [e.value for e in unknown.error] == ["Name or access code not recognised."]


def test_researcher_form_says_how_to_enable_it_without_a_password(study: dict[str, int]) -> None:
    at = app().run()
    assert "NLE_ADMIN_PASSWORD" in at.info[0].value and "secrets.toml" in at.info[0].value
    assert "admin_password" not in [t.key for t in at.text_input]


# -- access control ---------------------------------------------------------------------------------------------

RESEARCHER_PAGES = ["researcher.py", "results.py", "side_by_side.py", "disagreements.py"]


@pytest.mark.parametrize("page", RESEARCHER_PAGES)
def test_researcher_pages_are_not_reachable_by_an_annotator(study: dict[str, int], page: str) -> None:
    at = signed_in("anna")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"annotate/app/pages/{page}")
    # Executing the page file itself in the annotator's (genuinely signed-in) session stops with an error.
    # (Run through runpy, as st.navigation runs it, so that the repository root stays first on sys.path.)
    direct = AppTest.from_string(f"import runpy\nrunpy.run_path({str(PAGES / page)!r})", default_timeout=30)
    for key in ("annotator", "_annotator_token", "is_admin"):
        direct.session_state[key] = at.session_state[key]
    direct.session_state["is_admin"] = True  # even a crafted admin flag without the server's token
    direct.run()
    assert [e.value for e in direct.error] == ["This page is for researchers. Sign in with the admin password."]
    assert len(list(walk(direct))) == 1 and "full_ft" not in page_text(direct)


def test_crafted_session_state_cannot_act_as_another_annotator(study: dict[str, int], store: Store) -> None:
    anna_item = next_item(store, study["anna"])
    # 1. A session whose state names anna but was never signed in is sent to sign in.
    forged = app()
    forged.session_state["annotator"] = {"id": study["anna"], "name": "anna", "study_id": 1}
    forged.session_state["_annotator_token"] = "0" * 64
    forged.run()
    assert forged.text_input(key="sign_in_name") is not None and not forged.get("progress")
    # 2. Ben, genuinely signed in, rewrites his identity to anna's: his token no longer matches.
    ben = signed_in("ben")
    ben.session_state["annotator"] = {"id": study["anna"], "name": "anna", "study_id": 1}
    ben.run()
    assert not ben.get("progress") and anna_item["explanation"] not in page_text(ben)
    assert ben.text_input(key="sign_in_name") is not None
    # 3. The store itself refuses an item outside the annotator's queue.
    from annotate.core.errors import AccessDenied

    other = store.conn.execute("SELECT id FROM items ORDER BY id DESC LIMIT 1").fetchone()[0]
    store.conn.execute("DELETE FROM assignments WHERE annotator_id = ? AND item_id = ?", (study["ben"], other))
    with pytest.raises(AccessDenied):
        store.submit(study["ben"], other, "yes")
    assert store.counts()["ratings"] == 0


# -- the researcher ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch, study: dict[str, int]) -> AppTest:
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "s3cret-pw")
    at = app().run()
    at.text_input(key="admin_password").input("s3cret-pw")
    at.button(key="admin_sign_in").click().run()
    assert not at.exception and at.title[0].value == "Researcher"
    return at


def test_admin_wrong_password_not_recognised(monkeypatch: pytest.MonkeyPatch, study: dict[str, int]) -> None:
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "s3cret-pw")
    at = app().run()
    at.text_input(key="admin_password").input("guess")
    at.button(key="admin_sign_in").click().run()
    assert [e.value for e in at.error] == ["Password not recognised."]
    with pytest.raises(ValueError):
        at.switch_page("annotate/app/pages/researcher.py")


def test_admin_imports_a_file_with_gold_and_adds_an_annotator(admin: AppTest, store: Store, write_jsonl) -> None:
    before = store.counts()["items"]
    path = write_jsonl([nle("esnli", "new-1", "full_ft"), nle("esnli", "new-1", "att_q+layer_norm")], "more.jsonl")
    admin.get("file_uploader")[0].set_value(("more.jsonl", path.read_bytes(), "application/jsonl"))
    admin.checkbox(key="import_with_gold").check()
    admin.button(key="import_submit").click().run()
    assert not admin.exception and not admin.error
    assert unescape(admin.success[0].value).startswith("Imported more.jsonl: study 's', added: 2, gold added: 1")
    assert store.counts()["items"] == before + 3

    admin.text_input(key="new_annotator").input("carol")
    admin.button(key="add_annotator").click().run()
    code = admin.code[0].value
    assert store.authenticate("carol", code)["name"] == "carol"
    assert store.queue_length(store.authenticate("carol", code)["id"]) == store.counts()["items"]
    admin.run()
    assert code not in page_text(admin)  # shown once
    progress = admin.dataframe[0].value
    assert list(progress["annotator"]) == ["anna", "ben", "carol"]


def test_admin_bad_file_names_the_line_and_changes_nothing(admin: AppTest, store: Store, write_jsonl) -> None:
    before = store.counts()
    path = write_jsonl([nle("esnli", "ok", "full_ft"), {"dataset": "esnli"}], "bad.jsonl")
    admin.get("file_uploader")[0].set_value(("bad.jsonl", path.read_bytes(), "application/jsonl"))
    admin.button(key="import_submit").click().run()
    assert unescape(admin.error[0].value).startswith("Nothing was imported. bad.jsonl, line 2, field ")
    assert store.counts() == before


@pytest.mark.parametrize("number", ["NaN", "-Infinity", "1e999"])
def test_admin_upload_with_nan_names_the_field_and_changes_nothing(admin: AppTest, store: Store, number: str) -> None:
    """Python's json reads NaN and Infinity; SQLite then refused the stored metadata ("This app has encountered an
    error" on the page)."""
    before = store.counts()
    data = (json.dumps(nle("esnli", "ok")) + "\n" + json.dumps(nle("esnli", "nan"))[:-1]
            + f', "scores": [0.5, {number}]}}\n').encode()
    admin.get("file_uploader")[0].set_value(("nan.jsonl", data, "application/jsonl"))
    admin.button(key="import_submit").click().run()
    assert not admin.exception, admin.exception
    assert [unescape(e.value) for e in admin.error] == [
        f"Nothing was imported. nan.jsonl, line 2, field 'scores[1]': {number} is not a finite number, and JSON has "
        "no NaN or Infinity: write a finite number, null or a string"]
    assert store.counts() == before


def test_admin_downloads_exports_and_backup(admin: AppTest, store: Store, study: dict[str, int],
                                             tmp_path: Path) -> None:
    store.submit(study["anna"], next_item(store, study["anna"])["item_id"], "yes")
    labels = [b.label for b in admin.get("download_button")]
    assert labels == ["Ratings CSV", "Ratings JSONL", "Database backup"]
    csv = store.export_bytes("s", "csv").decode()
    assert csv.splitlines()[0] == "dataset,sample_id,config,annotator,rating,score,tags,comment,seconds,submitted_at"
    assert len(csv.splitlines()) == 2
    copy = tmp_path / "copy.db"
    copy.write_bytes(store.backup_bytes())
    with Store(copy) as restored:
        assert restored.integrity_check() == "ok" and restored.counts()["ratings"] == 1


# -- a reload (a new Streamlit session) continues where the annotator was -------------------------------------


def reload(token: str | None = None, *, cookie: str | None = None) -> AppTest:
    """A fresh session, as a reload starts: `token` in the URL as `?resume=` (a link from before the cookie),
    `cookie` as the resume cookie the browser sends with the session's first request."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    if token is not None:
        at.query_params[RESUME_PARAM] = token
    # AppTest has no request behind a session; the cookie is read once, on the first run.
    with mock.patch.object(session, "_browser_cookie", lambda: cookie):
        return at.run()


def cookie_scripts(at: AppTest) -> list[str]:
    """The bodies of the scripts on the page that touch the resume cookie."""
    return [el.proto.body for el in walk(at)
            if el.type == "html" and "document.cookie" in el.proto.body and RESUME_COOKIE in el.proto.body]


def remembered(at: AppTest) -> str:
    """The token the page asks the browser to keep, checked to be the one script with that token and nothing
    else in it, in the sidebar."""
    scripts = cookie_scripts(at)
    assert len(scripts) == 1, scripts
    token = re.search(rf"{RESUME_COOKIE}=([^;\"]*)", scripts[0]).group(1)
    assert session.TOKEN_SHAPE.fullmatch(token), token
    assert scripts[0] == session.cookie_script(token)
    sidebar = [el.proto.body for el in at.sidebar if el.type == "html"]
    assert scripts[0] in sidebar and not [b for b in sidebar if b != scripts[0] and token in b]
    return token


def on_sign_in_page(at: AppTest) -> bool:
    return any(t.key == "sign_in_code" for t in at.text_input)


def test_reload_continues_at_the_first_unanswered_item(study, store: Store) -> None:
    at = signed_in("anna")
    answer(at, "yes")
    answer(at, "no", ("irrelevant",))
    token = remembered(at)
    again = reload(cookie=token)
    assert not again.exception, again.exception
    assert not on_sign_in_page(again)
    total = store.queue_length(study["anna"])
    assert progress_text(again).startswith(f"2 of {total}")
    # Still anna: answering from the reloaded page writes anna's rating.
    answer(again, "yes")
    assert store.answered_count(study["anna"]) == 3 and store.answered_count(study["ben"]) == 0
    # The restored session asks the browser to keep a token again (with a new expiry).
    assert remembered(again) and RESUME_PARAM not in again.query_params


def test_sign_in_keeps_the_token_out_of_the_url(study, store: Store) -> None:
    at = signed_in("anna")
    assert RESUME_PARAM not in at.query_params
    token = remembered(at)
    assert not {"anna", CODES["anna"]} & set(re.findall(r"[\w-]+", cookie_scripts(at)[0]))
    for page in ("guidelines.py", "annotate.py"):  # the old code put the token back after page switches
        at.switch_page(f"annotate/app/pages/{page}").run()
        assert RESUME_PARAM not in at.query_params
        assert remembered(at) == token  # the same script, so the browser does not run it again


def test_the_cookie_script_takes_nothing_but_a_token() -> None:
    token = "12." + "3" * 10 + "." + "0123456789abcdef" * 2 + "01234567"
    assert session.cookie_script(token) == (
        f'<script>document.cookie = "{RESUME_COOKIE}={token}; Path=/; Max-Age={session.RESUME_SECONDS}; '
        'SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");</script>')
    for bad in ('1.2.x"; alert(1); "', token + "\n", token + ";", token.upper(), "\u0661" + token[2:],
                "1.2." + "g" * 40, "9" * 21 + token[2:], "", "1..2"):
        with pytest.raises(ValueError):
            session.cookie_script(bad)


def test_an_old_resume_link_is_consumed_and_moved_to_the_cookie(study, store: Store) -> None:
    token = remembered(signed_in("anna"))
    at = reload(token)
    assert not at.exception and not on_sign_in_page(at)
    assert RESUME_PARAM not in at.query_params
    assert remembered(at).startswith(f"{study['anna']}.")
    # The link is consumed, valid or not: a bad one leaves the URL too and shows the sign-in page.
    at = reload("1.2.x")
    assert on_sign_in_page(at) and RESUME_PARAM not in at.query_params


def test_a_tampered_or_foreign_token_signs_nobody_in(study, store: Store) -> None:
    at = signed_in("anna")
    anna_id, expires, mac = remembered(at).split(".")
    for forged in (f"{study['ben']}.{expires}.{mac}", f"{anna_id}.{int(expires) + 999}.{mac}", "garbage", ""):
        assert on_sign_in_page(reload(forged)), forged
        refused = reload(cookie=forged)
        assert on_sign_in_page(refused), forged
        assert cookie_scripts(refused) == [session.FORGET_SCRIPT], forged  # the browser drops a refused cookie


def test_sign_out_and_code_reset_end_the_token(study, store: Store) -> None:
    at = signed_in("anna")
    token = remembered(at)
    store.reset_code("anna")
    assert on_sign_in_page(reload(cookie=token))
    assert on_sign_in_page(reload(token))

    at = signed_in("ben")
    token = remembered(at)
    at = next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert on_sign_in_page(at)
    assert RESUME_PARAM not in at.query_params
    # After the page (no sidebar when signed out); only while the cookie still names ben: another tab of this
    # browser may have signed in someone else since.
    assert cookie_scripts(at) == [session.forget_script(study["ben"])]
    assert cookie_scripts(at.run()) == []  # once
    assert on_sign_in_page(reload(cookie=token))


def test_a_submit_from_a_session_ended_elsewhere_saves_nothing(study, store: Store) -> None:
    """The Submit callback runs before the page checks the session: it must check for itself."""
    at = signed_in("anna")
    at.radio[0].set_value("yes")
    store.end_sessions(study["anna"])  # signed out in another tab
    submit_button(at).click()
    at.run()
    assert on_sign_in_page(at)
    assert store.answered_count(study["anna"]) == 0


@pytest.mark.parametrize("annotator_id", [None, 7, 12345])
def test_forget_script_drops_only_the_named_annotators_cookie(annotator_id: int | None) -> None:
    script = session.forget_script(annotator_id)
    assert script.startswith("<script>") and script.endswith("</script>") and "Max-Age=0" in script
    if annotator_id is None:
        assert script == session.FORGET_SCRIPT
    else:
        assert f'startsWith("{session.RESUME_COOKIE}={annotator_id}.")' in script


def test_researcher_sign_in_has_the_browser_forget_the_annotator(monkeypatch: pytest.MonkeyPatch, study) -> None:
    """A researcher signing in where an annotator was remembered: a reload must not bring the annotator back."""
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "s3cret-pw")
    at = app().run()
    at.text_input(key="admin_password").input("s3cret-pw")
    at = at.button(key="admin_sign_in").click().run()
    assert at.title[0].value == "Researcher"
    assert cookie_scripts(at) == [session.FORGET_SCRIPT]
    assert [el.proto.body for el in at.sidebar if el.type == "html"] == [session.FORGET_SCRIPT]


def test_the_pages_csv_download_imports_back_with_a_bare_carriage_return(
        admin: AppTest, store: Store, study: dict[str, int], tmp_path: Path) -> None:
    """The researcher page's download is the store's one export: a comment holding a bare \\r survives a round trip."""
    item = next_item(store, study["anna"])["item_id"]
    store.submit(study["anna"], item, "no", ["one word"], comment="first\rsecond")
    data = store.export_bytes("s", "csv")  # what the page's "Ratings CSV" button serves
    with Store(tmp_path / "other.db") as other:
        result = other.import_ratings("download.csv", "s", data=data)
        assert result.ratings_added == 1
        assert other.ratings_frame("s")["comment"].tolist() == ["first\rsecond"]


def test_the_pages_csv_download_is_safe_to_open_in_a_spreadsheet(
        admin: AppTest, store: Store, study: dict[str, int], tmp_path: Path) -> None:
    """The download escapes a comment a spreadsheet would run as a formula, and imports back to the original."""
    item = next_item(store, study["anna"])["item_id"]
    store.submit(study["anna"], item, "no", ["one word"], comment='=cmd|" /C calc"!A0')
    data = store.export_bytes("s", "csv")  # what the page's "Ratings CSV" button serves
    assert b"'=cmd|" in data and b',=cmd|' not in data and b',"=cmd|' not in data
    with Store(tmp_path / "other.db") as other:
        other.import_ratings("download.csv", "s", data=data)
        assert other.ratings_frame("s")["comment"].tolist() == ['=cmd|" /C calc"!A0']


def test_progress_rows_show_n_a_for_an_annotator_without_answers(store: Store, write_jsonl) -> None:
    from annotate.app.admin import progress_rows

    store.import_nles(write_jsonl([nle("esnli", str(i)) for i in range(3)]), "s")
    for name in ("ann", "bob"):
        store.add_annotator(name, "s", code=f"{name}-code")
    aid = store.authenticate("ann", "ann-code")["id"]
    store.submit(aid, next_item(store, aid)["item_id"], "yes", [], "", 4.0)
    rows = {r["annotator"]: r for r in progress_rows(store, "s")}
    assert rows["bob"]["median s/item"] == "n/a"  # never None
    assert rows["ann"]["median s/item"] == "4.0"
