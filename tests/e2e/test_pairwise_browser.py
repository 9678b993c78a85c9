"""The pairwise page in a real browser: keys 1 / 2 / 3 and Enter, a tie, tags per side with the mouse, and nothing
in the DOM or in any websocket frame that names a configuration or says which side is which."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

from playwright.sync_api import Page, expect  # noqa: E402

from annotate.core.store import Store  # noqa: E402
from tests.helpers import nle  # noqa: E402

from .annotator_page import settle  # noqa: E402
from .conftest import App, serve  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

A, B = "full_ft_CFGNAME_A", "attq_ln_CFGNAME_B"
MODEL = "t5-large-MODELNAME"
QUESTION = "Which explanation justifies the answer better?"
N_PAIRS = 6
CODE = "pairwise-code-1"
_CAPTION = re.compile(r"^Pair (\d+)\b")
CROWD_CODE = "PAIRWISE-CROWD-C0DE"
REDIRECT = "https://app.prolific.com/submissions/complete?cc=PAIRWISE-CROWD-C0DE"
pair_app_token: list[str] = []  # the join token of study "pw-crowd", set by the pair_app fixture


@pytest.fixture(scope="module")
def pair_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """`nle-annotate serve` on a database holding a pairwise study of A against B with annotator "pia"."""
    tmp = tmp_path_factory.mktemp("pairwise_app")
    db, log, nles = tmp / "annotations.db", tmp / "server.log", tmp / "nles.jsonl"
    nles.write_text("\n".join(json.dumps(nle("esnli", f"s{i}", cfg, model=MODEL, explanation=f"reason {i} by {who}"))
                              for i in range(N_PAIRS) for cfg, who in ((A, "writer one"), (B, "writer two"))))
    with Store(db) as store:
        store.import_pairwise(nles, A, B, "pw")
        store.add_annotator("pia", "pw", code=CODE)
        store.import_pairwise(nles, A, B, "pw-sides", rate_sides=True)  # each side rated on the 4-point scale too
        store.add_annotator("rita", "pw-sides", code=CODE)
        store.import_pairwise(nles, A, B, "pw-crowd")  # a crowd study: k = 1 here, so one worker takes every pair
        store.configure_study("pw-crowd", overlap=1, completion_code=CROWD_CODE, redirect_url=REDIRECT)
        pair_app_token.append(store.open_joining("pw-crowd"))
    yield from serve(db, log)


def on_screen(page: Page) -> tuple[int, str]:
    """(queue position, the text shown as Explanation 1)."""
    settle(page)
    m = _CAPTION.match(page.get_by_text(_CAPTION).inner_text())
    assert m
    texts = page.locator('[data-testid="stText"]').all_inner_texts()
    first = next(t for t in texts if t.startswith("reason "))
    return int(m.group(1)) - 1, first


def stored(db: Path, sample: str) -> dict:
    with Store(db) as store:
        df = store.preferences_frame("pw")
    return df[df["sample_id"] == sample].iloc[0].to_dict()


def test_keys_tie_tags_per_side_and_no_side_mapping_in_dom_or_websocket(pair_app: App, new_page) -> None:
    page = new_page()
    frames: list[bytes | str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    page.goto(pair_app.url)
    page.get_by_label("Name").fill("pia")
    page.get_by_label("Access code").fill(CODE)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(QUESTION)).to_be_visible()
    page.get_by_text(QUESTION).click()  # focus off the sign-in fields, as a person clicking on the page

    doms = []
    for step, (key, choice) in enumerate((("1", "Explanation 1"), ("3", "Tie"), ("2", "Explanation 2"))):
        pos, first = on_screen(page)
        assert pos == step
        sample = "s" + first.split()[1]
        a_first = first.endswith("writer one")
        if step == 0:  # a tag on Explanation 2, ticked with the mouse
            page.get_by_text("Shortcomings of explanation 2").click()
            page.get_by_text("hallucination", exact=True).last.click()
            expect(page.get_by_role("checkbox", name="hallucination").last).to_be_checked()
            settle(page)
        page.keyboard.press(key)
        expect(page.get_by_role("radio", name=choice, exact=True)).to_be_checked()
        settle(page)
        doms.append(page.content())
        page.keyboard.press("Enter")
        expect(page.locator('[data-testid="stProgress"]')).to_have_text(f"{step + 1} of {N_PAIRS}")
        row = stored(pair_app.db, sample)
        expected = {"Explanation 1": "a" if a_first else "b", "Explanation 2": "b" if a_first else "a",
                    "Tie": "tie"}[choice]
        assert (row["preference"], int(row["a_first"])) == (expected, int(a_first))
        if step == 0:
            assert (row["tags_b"] if a_first else row["tags_a"]) == "hallucination"
            assert (row["tags_a"] if a_first else row["tags_b"]) == ""
    settle(page)
    doms.append(page.content())

    # Blind: no configuration or model name, no side flag, in the DOM at any step or in any frame the server sent.
    assert frames, "no websocket frames were recorded"
    wire = b"".join(f if isinstance(f, bytes) else f.encode() for f in frames)
    for secret in (A, B, MODEL, "CFGNAME", "a_first", "shown_first", "explanation_a", "explanation_b"):
        assert secret.encode() not in wire, secret
        assert all(secret not in dom for dom in doms), secret
    # The explanations did reach the browser (the check above looked at the right frames).
    assert b"writer one" in wire and b"writer two" in wire


def test_with_side_ratings_keys_choose_the_preference_and_never_rate_a_side(pair_app: App, new_page) -> None:
    """Keys 1 / 2 / 3 answer the preference question only: the side-rating radios above it stay as the annotator
    set them with the mouse (a key used to tick the first radios on the page, i.e. explanation 1's rating)."""
    page = new_page()
    page.goto(pair_app.url)
    page.get_by_label("Name").fill("rita")
    page.get_by_label("Access code").fill(CODE)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(QUESTION)).to_be_visible()
    page.get_by_text(QUESTION).click()
    _, first = on_screen(page)
    side_1 = page.get_by_role("radiogroup", name="Does explanation 1 justify the answer?")
    side_2 = page.get_by_role("radiogroup", name="Does explanation 2 justify the answer?")
    page.keyboard.press("2")
    expect(page.get_by_role("radio", name="Explanation 2", exact=True)).to_be_checked()
    settle(page)
    for group in (side_1, side_2):
        expect(group.get_by_role("radio", checked=True)).to_have_count(0)
    side_1.get_by_text("Weak no", exact=True).click()
    side_2.get_by_text("Yes", exact=True).click()
    settle(page)
    page.get_by_text(QUESTION).click()
    page.keyboard.press("3")
    expect(page.get_by_role("radio", name="Tie", exact=True)).to_be_checked()
    settle(page)
    expect(side_1.get_by_role("radio", name="Weak no", exact=True)).to_be_checked()
    expect(side_2.get_by_role("radio", name="Yes", exact=True)).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator('[data-testid="stProgress"]')).to_have_text(f"1 of {N_PAIRS}")
    with Store(pair_app.db) as store:
        df = store.preferences_frame("pw-sides")
    row = df[df["sample_id"] == "s" + first.split()[1]].iloc[0]
    a_first = first.endswith("writer one")
    assert row["preference"] == "tie"
    assert (row["rating_a"], row["rating_b"]) == (("weak_no", "yes") if a_first else ("yes", "weak_no"))


def test_a_pairwise_crowd_worker_gets_the_completion_code_and_a_latecomer_none(pair_app: App, new_page) -> None:
    """Same completion rules as a rating study: the code and the return button once every pair is answered; a
    worker who comes when nothing is left is told so, with no code and nothing to revise."""
    link = f"{pair_app.url}/?study=pw-crowd&join={pair_app_token[-1]}"
    page = new_page()
    page.goto(f"{link}&PROLIFIC_PID=pw-worker")
    expect(page.get_by_text(QUESTION)).to_be_visible()
    page.get_by_text(QUESTION).click()
    for step in range(N_PAIRS):
        assert on_screen(page)[0] == step
        page.keyboard.press("3")
        expect(page.get_by_role("radio", name="Tie", exact=True)).to_be_checked()
        settle(page)
        page.keyboard.press("Enter")
        expect(page.locator('[data-testid="stProgress"]')).to_have_text(f"{step + 1} of {N_PAIRS}")
    expect(page.get_by_text(f"All {N_PAIRS} pairs answered — thank you!")).to_be_visible()
    expect(page.get_by_text(CROWD_CODE, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Return to the study platform to finish")).to_have_attribute("href", REDIRECT)

    late = new_page()
    late.goto(f"{link}&pid=pw-late")
    expect(late.get_by_text("This study has no pairs left for you")).to_be_visible()
    settle(late)
    assert CROWD_CODE not in late.content() and "All 0 pairs answered" not in late.content()
    expect(late.get_by_role("button", name="Revise from the first pair")).to_have_count(0)
