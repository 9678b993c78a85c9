"""Browser fixtures: the real app started as the README does, and Debian's Chromium driven by Playwright.

Everything here skips (with the reason) when /usr/bin/chromium or the playwright package is missing; CI installs
Chromium with apt-get in .ci/run. Playwright never downloads a browser: it launches /usr/bin/chromium.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("NLE_CHROMIUM", "/usr/bin/chromium"))  # Debian's; another path for other systems
CLI = Path(sys.executable).with_name("nle-annotate")
REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run"]
ADMIN_PASSWORD = "e2e-admin-Pa55"
START_TIMEOUT_S = 90


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CLI.exists():
        return f"console script {CLI} not found (pip install -e .)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests cleanly, with the reason, where Chromium or Playwright is absent. Under xdist
    (`--dist loadgroup`) each file runs on one worker, so its module-scoped app server and browser are made once."""
    reason = _missing()
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.xdist_group(f"browser-{Path(item.path).stem}"))
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    """A running `nle-annotate serve` process."""

    url: str
    db: Path
    log: Path

    def cli(self, *args: str) -> str:
        """Run `nle-annotate ARGS --db DB` against the app's database (as a researcher would); its stdout."""
        result = subprocess.run([str(CLI), *args, "--db", str(self.db)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout


def serve(db: Path, log: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[App]:
    """`nle-annotate serve --db DB OPTIONS --server.port <free> --server.headless true` until it answers
    `/_stcore/health`; yields the App, then stops the server (for fixtures: `yield from serve(...)`)."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NLE_", "STREAMLIT_"))}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--db", str(db), *options, "--server.port", str(port), "--server.headless", "true",
             # The server under test must not pick up source edits made while it runs (a deployment would not).
             "--server.fileWatcherType", "none"],
            stdout=out, stderr=subprocess.STDOUT, env={**clean, **(env or {})}, cwd=REPO,
            start_new_session=True)  # as `make app`
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the app did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield App(url=url, db=db, log=log)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """`nle-annotate serve --db <tmp>/annotations.db --demo --server.port <free> --server.headless true`."""
    tmp = tmp_path_factory.mktemp("app")
    db, log = tmp / "annotations.db", tmp / "server.log"
    yield from serve(db, log, "--demo", env={"NLE_ADMIN_PASSWORD": ADMIN_PASSWORD})


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium under Playwright (one per test session)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a Streamlit rerun on a busy 2-core CI machine can take seconds

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """Pages, each in its own browser context (its own cookies and Streamlit session); dialogs are recorded."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1200, "height": 1500})
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        context.close()
