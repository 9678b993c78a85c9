"""Enter -> next item, in headless Chromium: the annotation app against a bare Streamlit page of the same shape.

    python benchmarks/browser_latency.py [--items 30] [--sessions 1,4,8,10] [--per-session 12] [--think 0,0]
                                         [--server-cpus 0] [--browser-priority idle]
    python benchmarks/browser_latency.py --smoke     # smallest size (3 items; 1 and 2 at once, 3 items each)

Starts `nle-annotate serve` (demo study plus `--sessions` extra annotators, on a temporary database, with
NLE_TIMING_LOG so the app logs its server-side time from the Submit callback to the end of drawing the next
item) and a minimal Streamlit page (progress bar, caption, three texts, a radio, 12 checkboxes, a text area, a
Submit button on Enter) with the same server options. Then prints, in milliseconds:
1. one annotator: p50/p95 of Enter -> next item shown and settled, app and minimal page (taking turns item by
   item, so that the machine's ups and downs fall on both), and their ratio (issue 12 §5: p50 <= 1.15);
2. for each load level of `--sessions` (default 1, 4, 8, 10) that many annotators at once (one browser, one page
   each), pressing Enter the moment the item has settled (`--think MIN,MAX`: a random pause first, as a person
   reading would): browser p50/p95 and the app's server-side p50/p95 and its ratio to the first level's p95 (issue
   10's table; issue 12 §5: <= 2 at 10 against 1), and the p95 of the runs' own CPU time and of their wait for a
   CPU (the app's timing log; Linux).
In a real study the browsers run on the annotators' machines. Here they share the machine, so for part 2 the
servers are moved to the CPUs of `--server-cpus` (default 0, the first) and everything else (Chromium, Playwright,
this script) to the others: ten pages' Chromium threads otherwise kept the server's thread waiting for a CPU for up
to 200 ms, even at SCHED_IDLE (docs/benchmarks.md). Part 1 leaves every CPU to everyone, as an annotator's own
machine would give their browser more than one core. Chromium runs at the lowest CPU priority
(`--browser-priority idle`, Linux SCHED_IDLE). `--server-cpus all` and `--browser-priority normal` give the earlier,
shared set-up. Run from the repository root; needs Chromium (NLE_CHROMIUM, default /usr/bin/chromium), and `chrt`
for `idle`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotate.core.demo import load_demo  # noqa: E402
from annotate.core.store import Store  # noqa: E402

CHROMIUM = os.environ.get("NLE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions"]
APP_OPTIONS = ["--server.headless", "true", "--server.address", "127.0.0.1"]
# The minimal page: the same settings as `nle-annotate serve` passes (annotate/cli.py SERVE_DEFAULTS).
OPTIONS = ["--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
           "--browser.gatherUsageStats", "false", "--client.showErrorDetails", "none", "--runner.fastReruns",
           "false", "--runner.postScriptGC", "false", *APP_OPTIONS]

MINIMAL = '''
import streamlit as st

st.session_state.setdefault("n", 0)


def submit():
    st.session_state.n += 1


n = st.session_state.n
st.progress(min(n / 100, 1.0), text=f"{n} of 100")
st.caption(f"Item {n + 1} in your queue")
st.text("A man in a red shirt is playing a guitar on a stage.")
st.text("A man is performing music.")
st.text(f"explanation {n}: playing a guitar on a stage is performing music.")
st.radio("Does the explanation justify the answer?", ["Yes", "Weak yes", "Weak no", "No"], index=None,
         key=f"r{n}", horizontal=True)
cols = st.columns(3)
for i in range(12):
    cols[i % 3].checkbox(f"tag {i}", key=f"t{n}_{i}")
st.text_area("Comment (optional)", key=f"c{n}", height=68)
st.button("Submit", on_click=submit, shortcut="Enter", type="primary")
'''

SETTLED = """(n) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  return [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(el => el.innerText.startsWith(`Item ${n} `));
}"""


DROP_S = 5.0
DROPPED = {"app": 0, "minimal": 0, "keys": 0}
APP_PORT: list[int] = []


def url_kind(url: str) -> str:
    return "app" if APP_PORT and f":{APP_PORT[0]}" in url else "minimal"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=env["PYTHONPATH"])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()[-2000:]}")


def browser_command(priority: str, tmp: Path) -> str:
    """Chromium at a lower CPU priority: in a real study the browsers run on the annotators' own machines, so here
    they must not take the server's cores while it is being timed. `idle` (Linux SCHED_IDLE, inherited by every
    Chromium process) runs them only when the servers leave a core free; `nice:N` lowers them by N, which ten
    pages' worth of renderer threads can still outweigh; `normal` leaves them level with the servers."""
    if priority == "normal":
        return CHROMIUM
    if priority == "idle":
        prefix = "chrt --idle 0"
    elif priority.startswith("nice:") and priority[5:].isdigit():
        prefix = f"nice -n {int(priority[5:])}"
    else:
        raise SystemExit(f"--browser-priority: expected idle, nice:N or normal, got {priority!r}")
    wrapper = tmp / "chromium-low.sh"
    wrapper.write_text(f'#!/bin/sh\nexec {prefix} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def split_cpus(spec: str) -> tuple[set[int] | None, set[int] | None]:
    """(the servers' CPUs, everything else's) from `--server-cpus`: a list such as 0 or 0,1, or all (no pinning)."""
    if spec == "all" or not hasattr(os, "sched_setaffinity"):
        return None, None
    mine = os.sched_getaffinity(0)
    if not all(c.strip().isdigit() for c in spec.split(",")):
        raise SystemExit(f"--server-cpus {spec!r}: expected CPU numbers such as 0 or 0,1, or all")
    server = {int(c) for c in spec.split(",")}
    if not server < mine:
        raise SystemExit(f"--server-cpus {spec}: needs a proper subset of this process's CPUs {sorted(mine)}, so that "
                         "the browsers keep at least one ('all' = no pinning)")
    return server, mine - server


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Move every thread of process `pid` and of all its descendants to `cpus` (threads started later inherit it
    from the thread that starts them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except OSError:
                pass


def p50_p95(ms: list[float]) -> tuple[float, float]:
    if len(ms) < 2:
        return float("nan"), float("nan")
    ms = sorted(ms)
    return statistics.median(ms), statistics.quantiles(ms, n=20, method="inclusive")[18]


def server_ms(path: Path, since_line: int) -> tuple[dict[str, list[float]], int]:
    """The app's timing log from `since_line` on: wall, CPU and CPU-wait milliseconds per submit (older app
    versions log the wall time only)."""
    lines = path.read_text().splitlines() if path.exists() else []
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "wait": []}
    for line in lines[since_line:]:
        fields = (line.split("\t") + ["", ""])[:4]
        for name, value in zip(out, fields[1:], strict=True):
            if value:
                out[name].append(float(value))
    return out, len(lines)


try:
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import expect
except ImportError:  # reported when the benchmark runs
    PlaywrightTimeout = TimeoutError  # noqa: N816


async def open_page(context, url: str, name: str | None, code: str | None):
    """Open the page (signing in when `name`) and wait for its first item."""
    page = await context.new_page()
    await page.goto(url)
    if name:
        await page.get_by_label("Name").fill(name)
        await page.get_by_label("Access code").fill(code)
        await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_function(SETTLED, arg=1, timeout=60_000)
    # Focus on plain text: a fresh page has the "Skip to main content" link focused (Enter would follow it).
    await page.get_by_text("Shortcoming tags" if name else "Item 1 in your queue", exact=True).click()
    return page


async def step(page, i: int, key: str | None, pause_s: float = 0.0) -> float | None:
    """On item i: press the answer key (if any), settle, pause, then time Enter -> item i + 1 settled (ms; None
    when an Enter had to be pressed again)."""
    if key:
        # Keys act on the answer radio on screen: right after sign-in the caption can settle a moment before it.
        await page.get_by_role("radio", name="Yes", exact=True).wait_for()
        for _ in range(5):
            await page.keyboard.press(key)
            try:
                await expect(page.get_by_role("radio", name="Yes", exact=True)).to_be_checked(timeout=DROP_S * 1000)
                break
            except AssertionError:  # a key press that changed nothing: counted, pressed again
                DROPPED["keys"] += 1
        await page.wait_for_function(SETTLED, arg=i)
    if pause_s:
        await asyncio.sleep(pause_s)
    t = time.perf_counter()
    await page.keyboard.press("Enter")
    for _ in range(5):
        try:
            await page.wait_for_function(SETTLED, arg=i + 1, polling="raf", timeout=DROP_S * 1000)
            break
        except PlaywrightTimeout:  # an Enter that changed nothing: counted, pressed again, not timed
            DROPPED[url_kind(page.url)] += 1
            t = None
            await page.keyboard.press("Enter")
    else:
        raise SystemExit(f"no next item after 5 presses of Enter on {page.url}")
    return None if t is None else (time.perf_counter() - t) * 1000


async def walk(context, url: str, name: str | None, code: str | None, n: int, key: str | None,
               think: tuple[float, float] | None = None) -> list[float]:
    """Open the page, then n times: press the answer key (if any), settle, pause a random `think` seconds (if
    given), time Enter."""
    rng = random.Random(f"{name}:{n}")  # the same pauses in every run of the benchmark
    page = await open_page(context, url, name, code)
    out = []
    for i in range(1, n + 1):
        ms = await step(page, i, key, rng.uniform(*think) if think else 0.0)
        if ms is not None:
            out.append(ms)
    await page.close()
    return out


async def measure(args: argparse.Namespace, app_url: str, minimal_url: str, timing: Path,
                  servers: list[subprocess.Popen]) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=browser_command(args.browser_priority, timing.parent),
                                          args=ARGS)

        async def one(url: str, name: str | None, code: str | None, n: int, key: str | None,
                      think: tuple[float, float] | None = None) -> list[float]:
            context = await browser.new_context(viewport={"width": 1200, "height": 1500})
            try:
                return await walk(context, url, name, code, n, key, think)
            finally:
                await context.close()

        await one(minimal_url, None, None, 2, None)  # warm both servers up
        await one(app_url, "alice", "demo-alice", 2, "1")
        # One annotator: the app and the minimal page take turns item by item, so that whatever else the machine
        # does meanwhile falls on both alike.
        pair = await browser.new_context(viewport={"width": 1200, "height": 1500})
        app_page = await open_page(pair, app_url, "bob", "demo-bob")
        minimal_page = await open_page(pair, minimal_url, None, None)
        app_ms, minimal_ms = [], []
        for i in range(1, args.items + 1):
            for page, key, out in ((app_page, "1", app_ms), (minimal_page, None, minimal_ms)):
                await page.bring_to_front()
                ms = await step(page, i, key)
                if ms is not None:
                    out.append(ms)
        await pair.close()
        server_cpus, other_cpus = args.cpus
        if server_cpus:
            pin_tree(os.getpid(), other_cpus)  # this script, Playwright's driver, Chromium
            for proc in servers:
                pin_tree(proc.pid, server_cpus)
        _, mark = server_ms(timing, 0)
        loads = []
        first = 0
        think = args.think if max(args.think) > 0 else None
        for n in args.sessions:
            items = args.items if n == 1 else args.per_session  # a p95 needs more than 12 samples
            crowd = await asyncio.gather(*(one(app_url, f"u{first + i}", f"code-u{first + i}-0000",
                                               items, "1", think) for i in range(n)))
            first += n
            crowd_server, mark = server_ms(timing, mark)
            loads.append((n, [x for run in crowd for x in run], crowd_server))
        await browser.close()

    a, m = p50_p95(app_ms), p50_p95(minimal_ms)
    print(f"one annotator, {args.items} items (browser, Enter -> next item settled):")
    print(f"  app      p50 {a[0]:7.1f} ms  p95 {a[1]:7.1f} ms")
    print(f"  minimal  p50 {m[0]:7.1f} ms  p95 {m[1]:7.1f} ms")
    print(f"  ratio    p50 {a[0] / m[0]:7.2f}x    p95 {a[1] / m[1]:7.2f}x   (goal p50 <= 1.15x)")
    base = p50_p95(loads[0][2]["wall"])[1]
    pause = f"a pause of {args.think[0]:g}-{args.think[1]:g} s before each Enter" if max(args.think) > 0 else \
        "no pause"
    server_cpus, other_cpus = args.cpus
    where = f"servers on CPUs {sorted(server_cpus)}, the rest on {sorted(other_cpus)}" if server_cpus else \
        "every CPU shared"
    print(f"annotators at once ({where}), {args.per_session} items each ({args.items} alone), {pause}; browser = Enter -> next item "
          "settled, server = the app's log (submit callback -> next item drawn), of which the run's own CPU time "
          "and its wait for a CPU:")
    print(f"  {'sessions':>8s} {'browser p50':>12s} {'browser p95':>12s} {'server p50':>11s} {'server p95':>11s} "
          f"{'p95 / first':>17s} {'CPU p95':>8s} {'wait p95':>9s}")
    for n, browser_ms, server in loads:
        c, sn = p50_p95(browser_ms), p50_p95(server["wall"])
        cpu, wait = p50_p95(server["cpu"])[1], p50_p95(server["wait"])[1]
        print(f"  {n:8d} {c[0]:12.1f} {c[1]:12.1f} {sn[0]:11.1f} {sn[1]:11.1f} {sn[1] / base:16.2f}x "
              f"{cpu:8.1f} {wait:9.1f}")
    print("  (goal, issue 12 §5: server p95 with 10 annotators at once <= 2x one annotator's: first level 1)")
    print(f"Enter presses that changed nothing within {DROP_S:.0f} s (pressed again, not timed): {DROPPED}")


def think_range(text: str) -> tuple[float, float]:
    """`--think MIN,MAX`: two seconds values, 0 <= MIN <= MAX."""
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX in seconds, e.g. 1,3; got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, got {text!r}")
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=30,
                        help="items for one annotator alone (part 1, and a load level of 1)")
    parser.add_argument("--sessions", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 8, 10],
                        help="comma-separated load levels: annotators at once; ratios are to the first")
    parser.add_argument("--per-session", type=int, default=12)
    parser.add_argument("--think", type=think_range, default=(0.0, 0.0),
                        metavar="MIN,MAX", help="seconds each annotator of --sessions pauses on an item before Enter "
                                                "(uniform; default 0,0: no pause)")
    parser.add_argument("--server-cpus", default="0",
                        help="CPUs for the servers, e.g. 0 or 0,1; the rest run everything else ('all' = shared)")
    parser.add_argument("--browser-priority", default="idle",
                        help="Chromium's CPU priority: idle (SCHED_IDLE, the default), nice:N, or normal")
    parser.add_argument("--repo", type=Path, default=ROOT,
                        help="checkout whose app is served (e.g. an older commit, for before/after figures)")
    parser.add_argument("--smoke", action="store_true",
                        help="smallest size: 3 items alone, then 1 and 2 annotators at once with 3 items each")
    args = parser.parse_args()
    if args.smoke:
        args.items, args.sessions, args.per_session = 3, [1, 2], 3
    args.cpus = split_cpus(args.server_cpus)  # a bad --server-cpus stops here, before anything starts
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        db, timing = tmp / "annotations.db", tmp / "timing.log"
        with Store(db) as store:
            load_demo(store)
            # Every annotator walks the whole demo queue, whatever the default overlap of new studies.
            store.configure_study("demo", overlap="all")
            for i in range(sum(args.sessions)):
                store.add_annotator(f"u{i}", "demo", code=f"code-u{i}-0000")
        (tmp / "minimal.py").write_text(MINIMAL)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NLE_", "STREAMLIT_"))}
        env |= {"NLE_DB": str(db), "NLE_TIMING_LOG": str(timing), "PYTHONPATH": str(args.repo)}
        app_port, minimal_port = free_port(), free_port()
        APP_PORT.append(app_port)
        cli = Path(sys.executable).with_name("nle-annotate")
        # The app gets only what any deployment adds; the rest is what that version's `serve` itself passes.
        app = start([str(cli), "serve", "--db", str(db), "--server.port", str(app_port), *APP_OPTIONS], app_port,
                    env, tmp / "app.log")
        minimal = start([sys.executable, "-m", "streamlit", "run", str(tmp / "minimal.py"), "--server.port",
                         str(minimal_port), *OPTIONS], minimal_port, env, tmp / "minimal.log")
        try:
            asyncio.run(measure(args, f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{minimal_port}", timing,
                                [app, minimal]))
        finally:
            for proc in (app, minimal):
                proc.terminate()
                proc.wait(timeout=20)


if __name__ == "__main__":
    main()
