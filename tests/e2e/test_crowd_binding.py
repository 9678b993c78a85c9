"""Crowd workers in real browsers against the real server: a worker id belongs to the browser that joined with it
(another browser needs the resume code shown at the start), and a study takes a limited number of new workers
from one client address, as the server learns it from a reverse proxy's X-Forwarded-For."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[dev]')")

from playwright.sync_api import expect  # noqa: E402

from annotate.core import crowd  # noqa: E402
from annotate.core.store import Store  # noqa: E402
from tests.helpers import nle  # noqa: E402

from .annotator_page import QUESTION, answer, progress, settle, submit_with_enter, wait_for_item  # noqa: E402
from .conftest import App, serve  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ELSEWHERE = "This worker ID has already started in another browser"


@pytest.fixture(scope="module")
def bind_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, str]]:
    """The app as docs/deploying.md runs it behind a reverse proxy on the same machine (`--server.address
    127.0.0.1`, where the server believes X-Forwarded-For from its own machine), with study "bind" (6 items,
    k = 2) open for joining, at most 2 new workers per client address."""
    tmp = tmp_path_factory.mktemp("bind")
    for app in serve(tmp / "annotations.db", tmp / "server.log", "--server.address", "127.0.0.1"):
        yield app, _open_study(app, tmp)


def _open_study(app: App, tmp: Path) -> str:
    path = tmp / "bind.jsonl"
    path.write_text("".join(json.dumps(nle("esnli", f"b{i}", "full_ft")) + "\n" for i in range(6)))
    app.cli("import", str(path), "--study", "bind", "--overlap", "2")
    out = app.cli("study", "open", "bind", "--joins-per-address", "2")
    return re.search(r"join=([A-Za-z0-9_-]+)", out).group(1)


def test_a_second_browser_with_a_workers_id_gets_nothing_without_the_resume_code(bind_app, new_page) -> None:
    """Whoever knew a worker id opened the shared link as that worker, went Back and revised their answers."""
    app, token = bind_app
    link = f"{app.url}/?study=bind&join={token}&pid=w-victim"
    victim = new_page()
    victim.goto(link)
    expect(victim.get_by_text("Your resume code")).to_be_visible()
    code = victim.locator('[data-testid="stCode"] code').first.inner_text().strip()
    wait_for_item(victim)
    total = int(progress(victim).split(" of ")[1])
    answer(victim, "no", ["irrelevant"], comment="victim's own remark")
    submit_with_enter(victim, 1, 1, total)

    intruder = new_page()  # another browser: its own cookies
    intruder.goto(link)
    expect(intruder.get_by_text(ELSEWHERE)).to_be_visible()
    settle(intruder)
    expect(intruder.get_by_text(QUESTION)).to_have_count(0)
    expect(intruder.get_by_text("Signed in as")).to_have_count(0)
    assert "victim's own remark" not in intruder.content()
    intruder.get_by_label("Resume code").fill("abcd-efgh-jkmn")
    intruder.get_by_role("button", name="Continue").click()
    expect(intruder.get_by_text("That resume code is not right.")).to_be_visible()
    expect(intruder.get_by_text(QUESTION)).to_have_count(0)

    # The victim's own browser continues after a reload (its resume cookie), with no code asked.
    victim.reload()
    wait_for_item(victim)
    assert progress(victim) == f"1 of {total}"
    expect(victim.get_by_text(ELSEWHERE)).to_have_count(0)

    # The worker on a second device: the same link and the resume code.
    device = new_page()
    device.goto(link)
    device.get_by_label("Resume code").fill(code)
    device.get_by_role("button", name="Continue").click()
    wait_for_item(device)
    expect(device.get_by_text("Signed in as crowd:w-victim")).to_be_visible()
    assert progress(device) == f"1 of {total}"
    with Store(app.db) as store:
        (worker,) = [a for a in store.annotators("bind") if a["name"] == "crowd:w-victim"]
        assert worker["answered"] == 1
        assert store.history(worker["id"], store.annotator_item(worker["id"], 0)["item_id"])[0]["revision"] == 1


def test_joins_per_address_count_the_address_the_proxy_forwards(bind_app, browser) -> None:
    """The server takes the client address from X-Forwarded-For when the connection comes from its own machine
    (the reverse proxy); one address joins two workers, the third is refused, another address still joins."""
    app, token = bind_app
    contexts = []

    def visit(address: str, pid: str):
        context = browser.new_context(extra_http_headers={"X-Forwarded-For": address})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{app.url}/?study=bind&join={token}&pid={pid}")
        return page

    try:
        for pid in ("filler1", "filler2"):
            expect(visit("203.0.113.5", pid).get_by_text(f"Signed in as crowd:{pid}")).to_be_visible()
        refused = visit("203.0.113.5", "filler3")
        expect(refused.get_by_text("This study has all the participants it takes from one network address")
               ).to_be_visible()
        expect(refused.get_by_text(QUESTION)).to_have_count(0)
        expect(visit("198.51.100.9", "honest").get_by_text("Signed in as crowd:honest")).to_be_visible()
    finally:
        for context in contexts:
            context.close()
    with Store(app.db) as store:
        study_id = store.get_study("bind")["id"]
        addresses = [r[0] for r in store.conn.execute(
            "SELECT c.address FROM crowd_joins c JOIN annotators a ON a.id = c.annotator_id"
            " WHERE a.name IN ('crowd:filler1', 'crowd:filler2', 'crowd:honest') ORDER BY a.id")]
        assert addresses == [crowd.address_key(study_id, a) for a in ("203.0.113.5", "203.0.113.5", "198.51.100.9")]
        assert "crowd:filler3" not in [a["name"] for a in store.annotators("bind")]
