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

