"""The app as annotators and researchers use it: a real server, real Chromium, keyboard and mouse.

One server (module scope) on a temporary database loaded with the demo study by its first visitor, exactly as
`nle-annotate serve --db DB --demo` does for a new team.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

from playwright.sync_api import Page, expect  # noqa: E402

from annotate.core.demo import DEMO_ANNOTATORS  # noqa: E402
from annotate.core.store import Store  # noqa: E402
from tests.helpers import overlap_all  # noqa: E402

from .annotator_page import (  # noqa: E402
    CONFIG_NAMES,
    Shown,
    answer,
    progress,
    settle,
    shown,
    sign_in,
    submit_with_enter,
    wait_for_item,
)
from .conftest import ADMIN_PASSWORD, App  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

OTHER = "carol"
OTHER_COMMENT = "CAROL-SECRET-COMMENT"
# The screenshot stays in tmp_path; NLE_SCREENSHOT=path also copies it there (to look at it after the run).
SCREENSHOT_COPY = os.environ.get("NLE_SCREENSHOT")


@pytest.fixture(scope="module")
def demo_app(app: App, browser) -> App:
    """The app after its first visitor (which loads the demo study), set to k = all, plus a third annotator who
    has already answered every item with a tag and a comment: alice and bob must never see any of it."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(app.url)
    expect(page.get_by_label("Access code")).to_be_visible(timeout=60_000)
    context.close()
    app.cli("annotators", "add", OTHER, "--study", "demo")
    with Store(app.db) as store:
        overlap_all(store, "demo")  # three annotators on every item, each in their own order
        aid = next(a["id"] for a in store.annotators("demo") if a["name"] == OTHER)
        for pos in range(store.queue_length(aid)):
            item = store.annotator_item(aid, pos)
            store.submit(aid, item["item_id"], "no", ["hallucination"], comment=OTHER_COMMENT)
    return app


def identify(store: Store, aid: int, s: Shown) -> int:
    """The item id behind what the page shows, found in the DB by its explanation (and input when ambiguous)."""
    queue = [store.annotator_item(aid, p) for p in range(store.queue_length(aid))]
    matches = [i for i in queue if i["explanation"] == s.explanation and i["predicted_label"] == s.predicted_label]
    if len(matches) > 1:
        matches = [i for i in matches if all(str(v) in " ".join(s.texts) for v in i["input"].values()
                                             if isinstance(v, str))]
    assert len(matches) == 1, f"cannot identify the item showing {s.explanation!r}"
    assert matches[0]["position"] == s.position, "the caption's position is not this item's place in the queue"
    return matches[0]["item_id"]


def page_text(page: Page) -> str:
    return page.inner_text("body") + "\n" + page.content()


# Each annotator's plan: (rating, tags ticked with the mouse, comment) per item, or an action.
PLANS = {
    "alice": [("yes", [], ""), ("weak_no", ["incomplete explanation"], "alice-note-1"), "skip",
              ("no", ["nonsensical", "hallucination"], ""), ("weak_yes", [], "alice-note-4")],
    "bob": [("no", ["irrelevant"], "bob-note-1"), ("weak_yes", ["repeats input"], ""), "reload",
            ("yes", [], ""), ("weak_no", ["inaccurate"], "bob-note-4"), ("revise", "no")],
}


def test_two_annotators_rate_at_once_with_the_keyboard_and_stay_blind(demo_app: App, new_page,
                                                                      tmp_path: Path) -> None:
    store = Store(demo_app.db)
    tags_all = store.get_study("demo")["tags"]
    ids = {a["name"]: a["id"] for a in store.annotators("demo")}
    given: dict[str, dict[int, tuple[str, list[str], str]]] = {name: {} for name in PLANS}
    revised: dict[str, list[int]] = {name: [] for name in PLANS}
    seen_text: dict[str, list[str]] = {name: [] for name in PLANS}
    pages: dict[str, Page] = {}

    def walk(name: str) -> Iterator[None]:
        """One annotator's session; yields after every step so the two sessions interleave."""
        aid, code = ids[name], DEMO_ANNOTATORS[name]
        page = pages[name] = new_page()
        sign_in(page, demo_app.url, name, code)
        wait_for_item(page, store.next_unanswered(aid))
        total = store.queue_length(aid)
        answered = 0
        seen_text[name].append(page_text(page))
        yield
        for step in PLANS[name]:
            s = shown(page, tags_all)
            item_id = identify(store, aid, s)
            if item_id not in given[name]:
                # A fresh item: nothing pre-filled, although the third annotator answered it with tags and a comment.
                assert (s.checked_rating, s.checked_tags, s.comment) == (None, [], "")
            if step == "skip":
                nxt = store.next_unanswered(aid, s.position)
                page.get_by_role("button", name="Skip").click()
                wait_for_item(page, nxt)
            elif step == "reload":
                page.reload()
                # A reload is a new Streamlit session; the signed resume token in the URL keeps the annotator
                # signed in, on the first unanswered item, which is where they were.
                wait_for_item(page, s.position)
                expect(page.get_by_label("Access code")).to_have_count(0)
                assert store.next_unanswered(aid) == s.position
                assert progress(page) == f"{answered} of {total}"
            elif isinstance(step, tuple) and step[0] == "revise":
                page.get_by_role("button", name="Back").click()
                wait_for_item(page, s.position - 1)
                before = shown(page, tags_all)
                prev = identify(store, aid, before)
                rating, tags, comment = given[name][prev]
                assert (before.checked_rating, before.checked_tags, before.comment) == (rating, tags, comment)
                answer(page, step[1], tags)
                submit_with_enter(page, store.next_unanswered(aid, before.position), answered, total)
                given[name][prev] = (step[1], tags, comment)
                revised[name].append(prev)
            else:
                rating, tags, comment = step
                nxt = store.next_unanswered(aid, s.position)
                answer(page, rating, tags, comment)
                answered += 1
                submit_with_enter(page, nxt, answered, total)
                given[name][item_id] = (rating, [t for t in tags_all if t in tags], comment)
                if name == "alice" and answered == 2:
                    shot = tmp_path / "annotation_page.png"
                    page.screenshot(path=str(shot), full_page=True)
                    if SCREENSHOT_COPY:
                        shutil.copy(shot, SCREENSHOT_COPY)
            seen_text[name].append(page_text(page))
            yield

    walkers = [walk(name) for name in PLANS]
    while walkers:  # round robin: both sessions are open and acting at the same time
        for w in list(walkers):
            if next(w, StopIteration) is StopIteration:
                walkers.remove(w)

    # The database holds exactly the answers given, no more, and the revision kept the earlier answer.
    for name, aid in ids.items():
        if name == OTHER:
            continue
        rows = store.conn.execute("SELECT item_id, rating, tags, comment, seconds FROM ratings WHERE annotator_id = ?",
                                  (aid,)).fetchall()
        assert {r[0]: (r[1], [t for t in r[2].split(";") if t], r[3]) for r in rows} == given[name]
        assert all(r[4] is not None and r[4] > 0 for r in rows), "seconds spent per item not recorded"
        for item_id in given[name]:
            history = [h["rating"] for h in store.history(aid, item_id)]
            assert len(history) == (2 if item_id in revised[name] else 1)
        assert len(seen_text[name]) == len(PLANS[name]) + 1
    bob_revised = revised["bob"][0]
    assert [h["rating"] for h in store.history(ids["bob"], bob_revised)] == ["weak_no", "no"]

    # Blind: no configuration name, no other annotator's comment or name, no developer toolbar, ever.
    for name, texts in seen_text.items():
        others = [n for n in PLANS if n != name]
        for text in texts:
            low = text.lower()
            assert not [c for c in CONFIG_NAMES if c in low], f"{name} saw a configuration name"
            assert OTHER_COMMENT not in text and "Deploy" not in text
            for other in others:
                assert f"{other}-note" not in text and f"Signed in as {other}" not in text
        assert f"Signed in as {name}" in texts[-1]
    assert all(not p.dialogs for p in pages.values())
    store.close()


HOSTILE_EXPLANATION = "<img src=x onerror=alert(1)> **not bold** [a link](javascript:alert(2)) <script>alert(4)</script>"
HOSTILE = [
    {"dataset": "esnli", "sample_id": "h1", "config": "full_ft",
     "input": {"premise": "# Big heading <b>bold input</b>", "hypothesis": "<script>alert(3)</script>"},
     "predicted_label": "**entailment**", "explanation": HOSTILE_EXPLANATION},
    {"dataset": "comve", "sample_id": "h2", "config": "att_q+layer_norm",
     "input": {"sent0": ":red[coloured] $x^2$", "sent1": "<iframe src=javascript:alert(5)></iframe>"},
     "predicted_label": "<i>choice1</i>", "explanation": "<svg onload=alert(6)></svg> __under__ `code` <h1>title</h1>"},
]


def test_hostile_text_shows_literally_and_runs_nothing(demo_app: App, new_page, tmp_path: Path) -> None:
    nles = tmp_path / "hostile.jsonl"
    nles.write_text("".join(json.dumps(d) + "\n" for d in HOSTILE), encoding="utf-8")
    demo_app.cli("import", str(nles), "--study", "hostile")
    out = demo_app.cli("annotators", "add", "mallory", "--study", "hostile")
    code = re.search(r"Access code .*: (\S+)\s*$", out).group(1)

    page = new_page()
    sign_in(page, demo_app.url, "mallory", code)
    with Store(demo_app.db) as store:
        aid = next(a["id"] for a in store.annotators("hostile") if a["name"] == "mallory")
    by_explanation = {d["explanation"]: d for d in HOSTILE}
    for n in range(2):
        s = shown(page, [])
        d = by_explanation[s.explanation]  # the exact string, character for character
        with Store(demo_app.db) as store:  # the item at that place in mallory's queue (k = 2: given one by one)
            assert store.annotator_item(aid, s.position)["explanation"] == s.explanation
        assert s.texts == [*d["input"].values(), d["predicted_label"], d["explanation"]]
        if d["explanation"] == HOSTILE_EXPLANATION:
            expect(page.get_by_text(HOSTILE_EXPLANATION, exact=True)).to_be_visible()
            page.screenshot(path=str(tmp_path / "hostile_item.png"), full_page=True)
        main = page.locator('[data-testid="stMain"]')
        for selector in ('img[src="x"]', "img[onerror]", "script:not([src])", "svg[onload]", "iframe",
                         'a[href^="javascript"]', "h1", "strong", "b", "i", "code"):
            # One read of the whole list: a redraw between counting elements and reading them cannot break it.
            found = main.locator(selector).evaluate_all("els => els.map(e => e.outerHTML)")
            assert not [f for f in found if re.search(r"alert|bold|heading|title|under|entailment|choice1|x\^2", f)], \
                f"{selector} rendered from the file: {found}"
        answer(page, "yes", [])
        if n == 0:
            submit_with_enter(page, 1 - s.position, 1, 2)
        else:
            page.keyboard.press("Enter")
            expect(page.get_by_text("All 2 items answered")).to_be_visible()
    assert page.dialogs == [], f"a script from the file ran: {page.dialogs}"
    assert page.evaluate("document.title") == "NLE rating"


def test_researcher_pages_need_the_admin_password(demo_app: App, new_page) -> None:
    page = new_page()
    sign_in(page, demo_app.url, "alice", DEMO_ANNOTATORS["alice"])
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav).to_contain_text("Annotate")
    assert "Guidelines" in nav.inner_text()
    for name in ("Researcher", "Analysis", "Side by side", "Disagreements"):
        assert name not in page.inner_text("body")
    settle(page)
    # One read of every link: a redraw between counting the links and reading them cannot break it.
    hrefs = page.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href') || '')")
    assert not [h for h in hrefs if re.search(r"researcher|analysis|side_by_side|disagreements", h)]
    # Typing the address does not get there either: it is not a page of an annotator (or anonymous) session.
    page.goto(f"{demo_app.url}/researcher")
    expect(page.get_by_role("dialog")).to_contain_text("Page not found")
    assert "Import explanations" not in page.inner_text("body")

    admin = new_page()
    admin.goto(demo_app.url)
    settle(admin)  # a run still going when Sign in is pressed can redraw the page without its message
    admin.get_by_text("Researcher", exact=True).click()
    admin.get_by_label("Admin password").fill("not-the-password")
    admin.get_by_role("button", name="Sign in as researcher").click()
    expect(admin.get_by_text("Password not recognised.")).to_be_visible()
    assert "Import explanations" not in admin.inner_text("body")
    admin.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Sign in as researcher").click()
    expect(admin.get_by_role("heading", name="Import explanations")).to_be_visible()
    expect(admin.locator('[data-testid="stSidebarNav"]')).to_contain_text("Disagreements")
    for p in (page, admin):
        assert "Deploy" not in p.inner_text("body")


def test_guidelines_popover_opens_over_the_item_and_keeps_the_choices_made(demo_app: App, new_page) -> None:
    """Its text is drawn only once it is opened (a run of its own): the answer and tag picked before stay."""
    with Store(demo_app.db) as store:
        store.add_annotator("gina", "demo", code="gina-code-1")
        aid = next(a["id"] for a in store.annotators("demo") if a["name"] == "gina")
    page = new_page()
    sign_in(page, demo_app.url, "gina", "gina-code-1")
    wait_for_item(page, 0)
    expect(page.get_by_text("Guidelines version")).to_have_count(0)
    answer(page, "weak_yes", ["hallucination"])
    page.get_by_role("button", name="Guidelines").click()
    expect(page.get_by_text("Guidelines version")).to_be_visible()
    expect(page.get_by_text("Shortcoming tags", exact=False).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("radio", name="Weak yes", exact=True)).to_be_checked()
    expect(page.get_by_role("checkbox", name="hallucination", exact=True)).to_be_checked()
    page.get_by_text("Shortcoming tags", exact=True).click()
    submit_with_enter(page, 1, 1, 60)
    with Store(demo_app.db) as store:
        assert store.conn.execute("SELECT rating, tags FROM ratings WHERE annotator_id = ?", (aid,)).fetchall() == [
            ("weak_yes", "hallucination")]
