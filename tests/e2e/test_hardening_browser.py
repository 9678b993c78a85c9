"""Issue 10 in a real browser: nothing in the websocket or the DOM tells an annotator which configuration (or
which gold reference) they rate, and fast keys are never dropped (key then Enter at once; Enter after a click)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

from playwright.sync_api import Page, expect  # noqa: E402

from annotate.core.store import Store  # noqa: E402

from .annotator_page import RATING_KEY, settle, sign_in, wait_for_item  # noqa: E402
from .conftest import App  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# A widget id in a protobuf frame is a length-prefixed string "$$ID-<hash>-<key>"; frames are read as latin-1 so
# that character offsets are byte offsets. In the DOM a key becomes the class "st-key-<key>".
_FRAME_ID = re.compile(r"\$\$ID-[0-9a-f]{32}-")
_DOM_KEY = re.compile(r"st-key-_a_(?:answer|comment)_(\d+)(?!\d)")
_OUR_KEY = re.compile(r"_a_(?:answer|tag|comment)_(\d+)")


def widget_keys(frames: list[str], dom: str) -> set[int]:
    """The numbers in our answer widgets' keys, from every widget id in the frames and every key class in the DOM."""
    numbers = {int(n) for n in _DOM_KEY.findall(dom)}
    for frame in frames:
        for m in _FRAME_ID.finditer(frame):
            length = ord(frame[m.start() - 1])  # the string's length byte (ids are shorter than 128 bytes)
            key = frame[m.end():m.start() + length]
            if k := _OUR_KEY.match(key):
                numbers.add(int(k.group(1)))
    return numbers


@pytest.fixture(scope="module")
def demo(app: App, browser) -> App:
    """The app after its first visitor loaded the demo study (with gold reference items, as `serve --demo`)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(app.url)
    expect(page.get_by_label("Access code")).to_be_visible(timeout=60_000)
    context.close()
    return app


def record_frames(page: Page) -> list[str]:
    """Every websocket frame sent or received by the page, as text (protobuf strings are UTF-8)."""
    frames: list[str] = []

    def text(payload: str | bytes) -> str:
        return payload.decode("latin-1") if isinstance(payload, bytes) else payload

    page.on("websocket", lambda ws: (ws.on("framereceived", lambda p: frames.append(text(p))),
                                     ws.on("framesent", lambda p: frames.append(text(p)))))
    return frames


def queue_of(app: App, name: str) -> tuple[int, list[dict]]:
    """The annotator's id and the items given to them so far, in queue order (k = 2 gives one at a time)."""
    with Store(app.db) as store:
        aid = next(a["id"] for a in store.annotators("demo") if a["name"] == name)
        items = store.items_frame("demo").set_index("item_id")
        queue = []
        while (item := store.annotator_item(aid, len(queue))) is not None:
            queue.append(item)
        return aid, [dict(items.loc[i["item_id"]], item_id=i["item_id"], position=i["position"]) for i in queue]


def test_no_item_id_sample_configuration_model_or_gold_marker_reaches_the_browser(demo: App, new_page) -> None:
    page = new_page()
    frames = record_frames(page)
    sign_in(page, demo.url, "alice", "demo-alice")
    seen_positions = set()
    for position in range(4):
        wait_for_item(page, position)
        seen_positions.add(position)
        page.keyboard.press(RATING_KEY["yes"])
        page.keyboard.press("Enter")
    wait_for_item(page, 4)
    seen_positions.add(4)
    _, queue = queue_of(demo, "alice")
    shown = [q for q in queue if q["position"] in seen_positions]
    with Store(demo.db) as store:
        every = store.items_frame("demo").to_dict("records")  # every item alice may be given
    assert any(q["config"] == "gold" for q in every)
    dom = page.content()
    blob = "\n".join(f.encode("latin-1").decode("utf-8", errors="replace") for f in frames) + "\n" + dom
    keyed = widget_keys(frames, dom)
    assert keyed and keyed <= seen_positions, f"widget keys carry {keyed - seen_positions}, not queue positions"
    assert not keyed & {q["item_id"] for q in shown} - seen_positions
    for q in every:
        assert q["sample_id"] not in blob, q["sample_id"]
        assert not re.search(rf"\b{re.escape(q['config'])}\b", blob), q["config"]
        assert not isinstance(q["model"], str) or q["model"] not in blob, q["model"]
    assert "gold" not in blob.lower()


def rated(app: App, name: str) -> dict[int, tuple[str, str]]:
    aid, _ = queue_of(app, name)
    with Store(app.db) as store:
        return {i: (r, t) for i, r, t in store.conn.execute(
            "SELECT item_id, rating, tags FROM ratings WHERE annotator_id = ?", (aid,))}


def test_a_key_then_enter_at_once_submits_that_answer(demo: App, new_page) -> None:
    page = new_page()
    sign_in(page, demo.url, "bob", "demo-bob")
    for position in range(8):
        wait_for_item(page, position)
        page.keyboard.press(RATING_KEY["weak_yes"])
        page.keyboard.press("Enter")  # 0 ms later
    wait_for_item(page, 8)
    expect(page.get_by_text("Choose an answer")).to_have_count(0)
    _, queue = queue_of(demo, "bob")
    ratings = rated(demo, "bob")
    assert [ratings.get(q["item_id"], ("none", ""))[0] for q in queue[:8]] == ["weak_yes"] * 8


def test_enter_right_after_ticking_a_tag_submits(demo: App, new_page) -> None:
    with Store(demo.db) as store:
        store.add_annotator("dora", "demo", code="demo-dora-1")
    page = new_page()
    sign_in(page, demo.url, "dora", "demo-dora-1")
    for position in range(4):
        wait_for_item(page, position)
        page.keyboard.press(RATING_KEY["weak_no"])
        expect(page.get_by_role("radio", name="Weak no", exact=True)).to_be_checked()
        page.get_by_text("hallucination", exact=True).click()
        page.keyboard.press("Enter")  # right after the click, focus still on the checkbox
    wait_for_item(page, 4)
    settle(page)
    _, queue = queue_of(demo, "dora")
    ratings = rated(demo, "dora")
    assert [ratings.get(q["item_id"]) for q in queue[:4]] == [("weak_no", "hallucination")] * 4


def test_eight_sessions_hammering_submit_show_no_error_and_lose_nothing(demo: App, new_page) -> None:
    """8 annotators in 8 browser sessions press a key and Enter on every page without waiting, round after
    round; afterwards every item a page moved past is saved exactly once and no page ever showed an error."""
    names = [f"load{i}" for i in range(8)]
    with Store(demo.db) as store:
        for name in names:
            store.add_annotator(name, "demo", code=f"{name}-code-1")
    pages = []
    for name in names:
        page = new_page()
        sign_in(page, demo.url, name, f"{name}-code-1")
        pages.append(page)
    errors = []
    rounds = 5
    for position in range(rounds):
        for page in pages:  # all eight send before any is waited for
            page.keyboard.press(RATING_KEY["weak_yes"])
            page.keyboard.press("Enter")
        for page in pages:
            try:
                wait_for_item(page, position + 1)
            except AssertionError as e:
                alerts = page.locator('[data-testid="stAlert"]').all_inner_texts()
                radio = [r for r in ("Yes", "Weak yes") if page.get_by_role("radio", name=r, exact=True).is_checked()]
                raise AssertionError(f"page {pages.index(page)} stuck at {position}: alerts {alerts}, radio {radio}") from e
            errors += page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').all_inner_texts()
    assert errors == []
    for name in names:
        aid, queue = queue_of(demo, name)
        with Store(demo.db) as store:
            history = store.conn.execute("SELECT item_id, rating FROM rating_history WHERE annotator_id = ?",
                                         (aid,)).fetchall()
        assert sorted(history) == sorted((q["item_id"], "weak_yes") for q in queue[:rounds]), name
