"""A crowd worker in a real browser: opens the join link, rates their quota with the keyboard, gets the code."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

from playwright.sync_api import expect  # noqa: E402

from annotate.core.store import Store  # noqa: E402
from tests.helpers import nle  # noqa: E402

from .annotator_page import QUESTION, answer, progress, settle, submit_with_enter, wait_for_item  # noqa: E402
from .conftest import App  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
CODE = "C1A2B3-DONE"
REDIRECT = "https://app.prolific.com/submissions/complete?cc=C1A2B3-DONE"


@pytest.fixture(scope="module")
def crowd_app(app: App, tmp_path_factory: pytest.TempPathFactory) -> tuple[App, str]:
    """Study "crowd" (6 items + 1 attention check, k = 2, 3 items per worker) with joining open."""
    path = tmp_path_factory.mktemp("crowd") / "crowd.jsonl"
    lines = [nle("esnli", f"c{i}", "full_ft", model="hidden-model") for i in range(6)]
    lines.append(nle("esnli", "check", "full_ft", expected_rating="yes"))
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    app.cli("import", str(path), "--study", "crowd", "--overlap", "2")
    app.cli("study", "set", "crowd", "--max-per-annotator", "3", "--completion-code", CODE, "--redirect-url", REDIRECT)
    out = app.cli("study", "open", "crowd", "--max-joined", "10")
    token = re.search(r"join=([A-Za-z0-9_-]+)", out).group(1)
    return app, token


def test_crowd_worker_joins_by_link_and_finishes_with_a_completion_code(crowd_app, new_page) -> None:
    app, token = crowd_app
    page = new_page()
    page.goto(f"{app.url}/?study=crowd&join={token}&PROLIFIC_PID=60f1b2c3d4e5")
    expect(page.get_by_text(QUESTION)).to_be_visible()
    wait_for_item(page)
    expect(page.get_by_text("Signed in as crowd:60f1b2c3d4e5")).to_be_visible()
    assert progress(page) == "0 of 4"
    for done in range(1, 4):
        answer(page, "yes", [])
        submit_with_enter(page, done, done, 4)
    answer(page, "yes", [])
    page.keyboard.press("Enter")
    expect(page.get_by_text(CODE, exact=True)).to_be_visible()
    link = page.get_by_role("link", name="Return to the study platform to finish")
    expect(link).to_have_attribute("href", REDIRECT)
    settle(page)
    assert "hidden-model" not in page.content()
    with Store(app.db) as store:
        (worker,) = [a for a in store.annotators("crowd") if a["name"] == "crowd:60f1b2c3d4e5"]
        assert worker["answered"] == 4
        assert store.attention_frame("crowd").set_index("annotator").loc["crowd:60f1b2c3d4e5", "pass_rate"] == 1.0


def test_a_forged_link_gets_a_plain_message(crowd_app, new_page) -> None:
    app, _ = crowd_app
    page = new_page()
    page.goto(f"{app.url}/?study=crowd&join=forged-token&pid=w-forged")
    expect(page.get_by_text("This join link is not valid. Check the link you were given.")).to_be_visible()
    expect(page.get_by_label("Access code")).to_be_visible()
    with Store(app.db) as store:
        assert "crowd:w-forged" not in [a["name"] for a in store.annotators()]



HOARD_CODE = "HOARD-C0DE"


@pytest.fixture(scope="module")
def hoard_study(crowd_app: tuple[App, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Study "hoard": 6 items, k = 1, a completion code; joining open. Returns the join token."""
    app, _ = crowd_app
    path = tmp_path_factory.mktemp("hoard") / "hoard.jsonl"
    path.write_text("".join(json.dumps(nle("esnli", f"h{i}", "full_ft")) + "\n" for i in range(6)))
    app.cli("import", str(path), "--study", "hoard", "--overlap", "1")
    app.cli("study", "set", "hoard", "--completion-code", HOARD_CODE)
    out = app.cli("study", "open", "hoard")
    return re.search(r"join=([A-Za-z0-9_-]+)", out).group(1)


def held(db, name: str) -> int:
    with Store(db) as store:
        return store.conn.execute("SELECT COUNT(*) FROM assignments a JOIN annotators n ON n.id = a.annotator_id"
                                  " WHERE n.name = ? AND a.answered_at IS NULL", (name,)).fetchone()[0]


def test_hoarding_with_skip_holds_three_items_and_nobody_is_paid_for_nothing(crowd_app, hoard_study,
                                                                             new_page) -> None:
    """A worker pressing Skip over and over holds at most 3 items; the next worker gets the other items and the
    code; a worker who comes when nothing is left is told so and gets no code."""
    app, _ = crowd_app
    hoarder = new_page()
    hoarder.goto(f"{app.url}/?study=hoard&join={hoard_study}&pid=hoarder")
    wait_for_item(hoarder)
    skip = hoarder.get_by_role("button", name="Skip")
    for _ in range(6):
        skip.click()
        settle(hoarder)
    expect(hoarder.get_by_text("You hold 3 unanswered items, the most at once")).to_be_visible()
    for _ in range(12):  # as fast as the browser lets a person click (the Slow-down limit: AppTest, test_app_crowd)
        skip.click()
    settle(hoarder)
    assert held(app.db, "crowd:hoarder") == 3

    honest = new_page()
    honest.goto(f"{app.url}/?study=hoard&join={hoard_study}&pid=honest")
    wait_for_item(honest)
    assert progress(honest) == "0 of 3"
    for done in range(1, 3):
        answer(honest, "yes", [])
        submit_with_enter(honest, done, done, 3)
    answer(honest, "yes", [])
    honest.keyboard.press("Enter")
    expect(honest.get_by_text("All 3 items answered — thank you!")).to_be_visible()
    expect(honest.get_by_text(HOARD_CODE, exact=True)).to_be_visible()

    late = new_page()
    late.goto(f"{app.url}/?study=hoard&join={hoard_study}&pid=late")
    expect(late.get_by_text("This study has no items left for you")).to_be_visible()
    expect(late.get_by_text("so there is no completion code for you", exact=False)).to_be_visible()
    settle(late)
    assert HOARD_CODE not in late.content() and "All 0 items answered" not in late.content()
    expect(late.get_by_role("button", name="Revise from the first item")).to_have_count(0)
    assert held(app.db, "crowd:late") == 0
