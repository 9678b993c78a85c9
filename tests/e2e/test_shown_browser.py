"""What the browser is made to do by what it is shown: names and texts from workers and files never become links,
images or requests, and the app requests nothing from any host but its own server.

One server (module scope) on a study whose configurations, datasets, inputs and explanations hold markdown and
U+202E, joined by crowd workers whose ids are a markdown image and a markdown link. Every request Chromium makes
for the pages (documents, scripts, styles, fonts, images, the tab icon, websockets) is recorded per browser
context and compared with the server's own origin: scheme, host and port, so `http://127.0.0.1:9/…` on the same
machine counts as foreign.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

from playwright.sync_api import BrowserContext, Page, expect  # noqa: E402

from annotate.core.store import Store  # noqa: E402
from tests.helpers import nle, walk_queue  # noqa: E402

from .annotator_page import QUESTION, answer, settle, sign_in, submit_with_enter, wait_for_item  # noqa: E402
from .conftest import ADMIN_PASSWORD, App, serve  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

STUDY = "shown"
RTL = "\u202e"
IMAGE = "![x](http://127.0.0.1:9/t.png)"  # as a worker id, it made the researcher's browser request that URL
BONUS = "[Click to claim bonus](https://evil.example/x)"  # as a worker id, it became a live link
ADDED = "![a](http://127.0.0.1:9/added.png) [Claim](https://evil.example/added)"
CONFIGS = (f"full{RTL}ft", "[att](https://evil.example/c)")
PLAIN_ANNOTATOR, PLAIN_CODE = "dana", "dana-code-1"
RTL_ANNOTATOR, RTL_CODE = f"car{RTL}ol", "carol-code-1"

# Every URL a page refers to for something the browser loads or a reader follows.
_REFERENCED = """() => [...document.querySelectorAll(
    'a[href], img[src], image, iframe[src], link[href], script[src], source[src], video[src], audio[src], object[data]')]
  .map(e => e.href && e.href.baseVal !== undefined ? e.href.baseVal : (e.href || e.src || e.data || ''))"""


def origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


class Recorder:
    """Every request the browser contexts made, by URL (the tab icon and websockets included)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def watch(self, context: BrowserContext) -> BrowserContext:
        context.on("request", lambda r: self.urls.append(r.url))
        context.on("page", lambda page: page.on("websocket", lambda ws: self.urls.append(ws.url)))
        return context

    def foreign(self, own: str) -> list[str]:
        return sorted({u for u in self.urls if not u.startswith(("data:", "blob:")) and origin(u) != own})


def foreign_references(page: Page, own: str) -> list[str]:
    """Links, images, scripts, styles and icons on the page that point anywhere but the app's own server."""
    return sorted({u for u in page.evaluate(_REFERENCED)
                   if u and not u.startswith(("data:", "blob:", "#", "about:")) and origin(u) != own})


def tab_icon(page: Page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser) -> Iterator[tuple[App, str]]:
    """The server on study "shown" (k = all) with joining open; two crowd workers joined through the link in a
    browser, with ids IMAGE and BONUS, and rated everything (through the store) together with a researcher-added
    annotator whose name holds U+202E, so that every researcher page has their names to show."""
    tmp = tmp_path_factory.mktemp("shown")
    lines = [nle(d, f"s{i}{RTL}", c, input={"text": f"in{RTL}put ![i](http://127.0.0.1:9/input.png)"},
                 explanation=f"expl {i}{RTL} [more](https://evil.example/e) <img src=http://127.0.0.1:9/e.png>")
             for d in ("esnli", f"da{RTL}ta [d](https://evil.example/d)") for i in range(3) for c in CONFIGS]
    nles = tmp / "shown.jsonl"
    nles.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    for app in serve(tmp / "annotations.db", tmp / "server.log", env={"NLE_ADMIN_PASSWORD": ADMIN_PASSWORD}):
        app.cli("import", str(nles), "--study", STUDY, "--overlap", "all")
        token = re.search(r"join=([A-Za-z0-9_-]+)", app.cli("study", "open", STUDY)).group(1)
        with Store(app.db) as store:
            store.add_annotator(RTL_ANNOTATOR, STUDY, code=RTL_CODE)
            store.add_annotator(PLAIN_ANNOTATOR, STUDY, code=PLAIN_CODE)
        for pid in (IMAGE, BONUS):
            context = browser.new_context()
            context.new_page().goto(f"{app.url}/?{urlencode({'study': STUDY, 'join': token, 'pid': pid})}")
            expect(context.pages[0].get_by_text(QUESTION)).to_be_visible()
            context.close()
        with Store(app.db) as store:
            names = {a["name"]: a["id"] for a in store.annotators(STUDY)}
            workers = [names[n] for n in names if IMAGE in n or BONUS in n] + [names[RTL_ANNOTATOR]]
            assert len(workers) == 3, names
            for k, aid in enumerate(workers):
                for n, position in enumerate(walk_queue(store, aid)):
                    item = store.annotator_item(aid, position)
                    rating = ("yes", "weak_no", "no")[(n + k) % 3]
                    store.submit(aid, item["item_id"], rating, [] if rating == "yes" else ["hallucination"])
        yield app, token


def sign_in_as_researcher(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_text("Researcher", exact=True).click()
    page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in as researcher").click()
    expect(page.get_by_role("heading", name="Import explanations")).to_be_visible()
    settle(page)


def open_page(page: Page, title: str, ready: str) -> None:
    """Switch page in the sidebar and wait until `ready` (a heading, or a text) is on it and the run is over."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(page.get_by_text(ready).first).to_be_visible()
    settle(page)


def main_text(page: Page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def assert_nothing_live(page: Page, own: str, where: str) -> None:
    """No link or image from a name or a text, nothing pointing elsewhere, no U+202E drawn raw."""
    settle(page)
    assert foreign_references(page, own) == [], f"{where}: the page points elsewhere"
    main = page.locator('[data-testid="stMain"]')
    assert main.locator("a", has_text="Click to claim bonus").count() == 0, f"{where}: a live link from a name"
    assert main.locator("a", has_text="Claim").count() == 0, f"{where}: a live link from a name"
    assert RTL not in page.locator("body").inner_text(), f"{where}: U+202E drawn raw"
    expect(page.get_by_text("This app has encountered an error")).to_have_count(0)


def test_hostile_names_on_every_researcher_page_stay_text(site, browser, tmp_path: Path) -> None:
    app, _ = site
    own = origin(app.url)
    requests = Recorder()
    page = requests.watch(browser.new_context(viewport={"width": 1400, "height": 1600})).new_page()
    sign_in_as_researcher(page, app.url)
    assert_nothing_live(page, own, "Researcher")

    # An NLE file with NaN: a plain message naming file, line and field, and nothing imported.
    nan_file = tmp_path / "nan.jsonl"
    nan_file.write_text(json.dumps(nle("esnli", "ok")) + "\n"
                        + json.dumps(nle("esnli", "nan"))[:-1] + ', "scores": [0.5, NaN]}\n', encoding="utf-8")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(nan_file))
    expect(page.get_by_text("nan.jsonl", exact=True)).to_be_visible()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Nothing was imported. nan.jsonl, line 2, field 'scores[1]': NaN is not a finite "
                            "number")).to_be_visible()
    assert_nothing_live(page, own, "Researcher, after a file with NaN")

    # Adding an annotator named with a markdown image and link: the message names them literally.
    page.get_by_label("New annotator's name").fill(ADDED)
    page.get_by_role("button", name="Add annotator").click()
    expect(page.get_by_text("Their access code is shown only now", exact=False)).to_be_visible()
    assert_nothing_live(page, own, "Researcher, after adding an annotator")
    expect(page.get_by_text(f"Added {ADDED}. Their access code is shown only now", exact=False)).to_be_visible()

    # A new code for the worker whose id is a link: "New access code for [Click to claim bonus](…)", as text.
    page.get_by_label("Issue a new access code for").click()
    page.get_by_role("option", name=f"crowd:{BONUS}", exact=True).click()
    page.get_by_role("button", name="Issue new code (the old one stops working)").click()
    expect(page.get_by_text("shown only now:", exact=False)).to_be_visible()
    assert_nothing_live(page, own, "Researcher, after a new code")
    expect(page.get_by_text(f"New access code for crowd:{BONUS}, shown only now:")).to_be_visible()

    open_page(page, "Analysis", "Scores")
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    assert_nothing_live(page, own, "Analysis")

    open_page(page, "Side by side", "Samples rated under both")
    text = main_text(page)
    assert "full⟦U+202E⟧ft — predicted" in text and f"{IMAGE}: " in text and "car⟦U+202E⟧ol: " in text
    assert "[more](https://evil.example/e) <img src=http://127.0.0.1:9/e.png>" in text
    assert_nothing_live(page, own, "Side by side")

    open_page(page, "Disagreements", "Adjudications by kind of disagreement")
    page.get_by_role("button", name="Save adjudication").click()
    expect(page.get_by_text("Saved the adjudication of ")).to_be_visible()
    assert f"{BONUS}: " in main_text(page)
    assert_nothing_live(page, own, "Disagreements")

    assert requests.foreign(own) == [], "the researcher's browser requested another host"
    page.context.close()


def test_the_app_requests_nothing_from_another_host(site, browser) -> None:
    """Sign-in, an annotator rating with the keyboard and reading the guidelines, a crowd worker joining by the link,
    and the researcher on every page: every request goes to the app's own server, the tab icon included."""
    app, token = site
    own = origin(app.url)
    requests = Recorder()
    icons: list[str] = []

    annotator = requests.watch(browser.new_context()).new_page()
    sign_in(annotator, app.url, PLAIN_ANNOTATOR, PLAIN_CODE)
    wait_for_item(annotator, 0)
    icons += tab_icon(annotator)
    answer(annotator, "weak_yes", [])
    submit_with_enter(annotator, 1, 1, 12)
    annotator.get_by_role("button", name="Guidelines").click()
    expect(annotator.get_by_text("Shortcoming tags", exact=True).first).to_be_visible()
    settle(annotator)
    annotator.keyboard.press("Escape")
    expect(annotator.get_by_role("dialog")).to_have_count(0)
    annotator.locator('[data-testid="stSidebarNav"]').get_by_text("Guidelines", exact=True).click()
    expect(annotator.get_by_role("heading", name="Guidelines", exact=True)).to_be_visible()
    settle(annotator)
    assert foreign_references(annotator, own) == []
    annotator.get_by_role("button", name="Sign out").click()
    expect(annotator.get_by_label("Access code")).to_be_visible()

    worker = requests.watch(browser.new_context()).new_page()
    worker.goto(f"{app.url}/?{urlencode({'study': STUDY, 'join': token, 'pid': 'w-privacy-1'})}")
    expect(worker.get_by_text(QUESTION)).to_be_visible()
    settle(worker)
    icons += tab_icon(worker)
    assert foreign_references(worker, own) == []

    researcher = requests.watch(browser.new_context(viewport={"width": 1400, "height": 1600})).new_page()
    sign_in_as_researcher(researcher, app.url)
    for title, ready in (("Analysis", "Scores"), ("Side by side", "Samples rated under both"),
                         ("Disagreements", "Adjudications by kind of disagreement")):
        open_page(researcher, title, ready)
        icons += tab_icon(researcher)
        assert foreign_references(researcher, own) == [], title

    assert icons and all(i.startswith("data:") or origin(i) == own for i in icons), icons
    assert requests.urls, "nothing was recorded"
    assert requests.foreign(own) == [], "requests to another host"
    for page in (annotator, worker, researcher):
        page.context.close()
    # Nor the server: headless, Streamlit asked checkip.amazonaws.com for its public address at start.
    log = app.log.read_text()
    assert "External URL" not in log and "Did not auto detect external IP" not in log, log


def test_report_html_opens_without_any_request(site, browser, tmp_path: Path) -> None:
    """report.html, as the researcher downloads it, carries plotly's JavaScript itself and fetches nothing."""
    from analysis.report import analyse_store, outputs

    app, _ = site
    with Store(app.db) as store:
        report = tmp_path / "report.html"
        report.write_bytes(outputs(analyse_store(store, STUDY))["report.html"])
    requests = Recorder()
    page = requests.watch(browser.new_context()).new_page()
    page.goto(report.as_uri())
    expect(page.locator(".plotly svg").first).to_be_visible()
    assert [u for u in requests.urls if not u.startswith(("file:", "data:", "blob:"))] == []
    assert RTL not in page.locator("body").inner_text()
    page.context.close()
