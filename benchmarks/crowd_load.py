"""A crowd at once: simulated crowd workers speaking the app's own websocket protocol to the real server.

    python benchmarks/crowd_load.py [--levels 1,50,100,200] [--servers 1] [--items 10] [--read 5,20] [--ramp 60]
                                    [--baseline-items 30] [--baseline-read 1,3] [--seed 0] [--no-assets]
                                    [--json OUT] [--smoke]

For each load level (a number of workers) and each number of server processes, on a fresh database:
1. a generated rating study imported as `nle-annotate import` does (k = 2, enough items for every worker's quota,
   one attention check that every worker also answers), set as `study set --max-per-annotator ITEMS
   --completion-code CODE` does, and opened for joining with the CLI's own `nle-annotate study open` (with
   `--joins-per-address 0` where that option exists: every simulated worker comes from 127.0.0.1);
2. `nle-annotate serve` (N processes on the one database when `--servers N`; each worker stays on one process,
   worker i on process i mod N, as a proxy with sticky sessions would place it: no proxy runs here);
3. the workers join over `--ramp` seconds through the link `/?study=NAME&join=TOKEN&pid=WORKER_ID`: each loads
   the page as a browser with an empty cache does (the HTML and what it links; `--no-assets` skips this), opens
   the websocket `/_stcore/stream` and sends Streamlit's BackMsg protobufs, reading the ForwardMsg replies. Each
   worker reads its item for a random `--read` MIN,MAX seconds, picks a rating (sometimes a tag), presses Submit,
   and goes on until the app shows the end of its queue.

No browser runs: widget ids come from the server's messages (the `id` of each widget element in the deltas), and
an answer is what Chromium sends for it (logged from a real Chromium, docs/benchmarks.md): a `rerun_script` with
every widget's state of the item form and a trigger for the form's Submit button. Widgets are found by their keys
and labels, never by position; a page the client does not understand (no item form and no end of queue, an
unknown widget, a refused join, an exception) stops the run with the page's texts.

Printed per level: Submit -> next item drawn p50/p95 as the worker sees it (sending the rerun to the end of the
run that draws the next item) and as the server logs it (NLE_TIMING_LOG: the Submit callback to the end of
drawing, with the run's CPU time and its wait for a CPU), join -> first item, server CPU (mean and peak one-second
share of one core, all processes together) and memory (resident set before the crowd and at its peak), the
answers acknowledged (the next page said "Saved." or showed the end of the queue) against those stored (read
from the database afterwards, rating by rating per worker), and the load average. The ratio is each level's p95
over the single worker's (level 1, which reads `--baseline-read` seconds for `--baseline-items` items: a lone
worker leaves the server idle between submits whatever it reads, and more items give its p95 more samples).
Exits 1 when an acknowledged answer is missing from the database or a worker failed. Linux (/proc) for the CPU
and memory figures. Run from the repository root with the project's virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import http.client
import io
import json
import math
import os
import random
import re
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import h11  # noqa: E402  (a dependency of uvicorn, Streamlit's server)
from streamlit import __version__ as streamlit_version  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402  (a dependency of Streamlit itself)

from annotate import cli as nle_annotate  # noqa: E402
from annotate.app.queue import ANSWER_KEY_PREFIX, ITEM_FORM  # noqa: E402
from annotate.core.crowd import WORKER_PREFIX  # noqa: E402
from annotate.core.scale import RATING_LABELS, Rules  # noqa: E402
from annotate.core.store import Store  # noqa: E402
from benchmarks.common import INPUTS, seconds_range  # noqa: E402

CLI = Path(sys.executable).with_name("nle-annotate")
STUDY = "crowd"
COMPLETION_CODE = "LOAD-TEST-DONE"
K = 2
ATTENTION_CHECKS = 1  # every worker answers every check, on top of their quota of regular items
REPLY_TIMEOUT_S = 120.0  # a run that has not finished by then counts as a failed worker
BROWSER_CONNECTIONS = 6  # Chromium's connections per host
LAG_PROBE_S = 0.05
SHOWN_ERRORS = 3  # distinct worker errors printed per level
RETRIES = 3  # a Submit the page did not save (e.g. "the server is busy") is pressed again, as a person would
SUBMIT_LABEL = "Submit"
ITEM_LINE = re.compile(r"^Item (\d+) in your queue")
DONE_TEXT = re.compile(r"All \d+ items answered")
LABEL_TO_RATING = {label: rating for rating, label in RATING_LABELS.items()}
SERVE_OPTIONS = ["--server.headless", "true", "--server.address", "127.0.0.1"]
# Widgets whose state the client sends, and the WidgetState field each uses (what the browser sends; buttons only
# ever send a trigger, when pressed).
VALUE_FIELDS = {"radio": "string_value", "selectbox": "string_value", "checkbox": "bool_value",
                "text_area": "string_value", "text_input": "string_value"}


class ProtocolError(RuntimeError):
    """The server sent a page this client does not understand (or nothing in time)."""


# ---------------------------------------------------------------------------------------------------- the page

def widget_key(widget_id: str) -> str:
    """The user key inside a widget id `$$ID-<hash>-<key>` (the id itself when it has no key part)."""
    if widget_id.startswith("$$ID-"):
        parts = widget_id.split("-", 2)
        if len(parts) == 3:
            return parts[2]
    return widget_id


@dataclass
class ItemForm:
    """The item on screen: its answer radio, the form's other widgets, and its Submit button."""

    radio_id: str
    options: list[str]
    tags: dict[str, str]  # tag label -> checkbox id
    submit_id: str
    line: str  # "Item 3 in your queue · Saved."


@dataclass
class Page:
    """What one finished script run drew: every element by its delta path."""

    elements: dict[tuple[int, ...], tuple[str, Any]]

    def ordered(self) -> list[tuple[str, Any]]:
        return [self.elements[path] for path in sorted(self.elements)]

    def texts(self) -> list[str]:
        """Every text a person would read on the page, in order (for error messages)."""
        out = []
        for kind, e in self.ordered():
            text = {"markdown": "body", "text": "body", "alert": "body", "progress": "text", "code": "code_text",
                    "exception": "message"}.get(kind)
            if text:
                out.append(f"{kind}: {getattr(e, text)}")
            elif hasattr(e, "label"):
                out.append(f"{kind} {e.label!r}")
        return out

    def describe(self) -> str:
        return "\n    ".join(["the page showed:", *self.texts()]) if self.elements else "the page was empty"

    def alerts(self, fmt: str) -> list[str]:
        from streamlit.proto.Alert_pb2 import Alert

        want = Alert.Format.Value(fmt)
        return [e.body for kind, e in self.ordered() if kind == "alert" and e.format == want]

    def widgets(self) -> list[tuple[str, Any]]:
        return [(kind, e) for kind, e in self.ordered() if "id" in e.DESCRIPTOR.fields_by_name and e.id]

    def exception(self) -> str | None:
        for kind, e in self.ordered():
            if kind == "exception":
                return f"{e.type}: {e.message}"
        return None

    def done(self) -> bool:
        """The end of the worker's queue: "All N items answered — thank you!"."""
        return any(DONE_TEXT.search(body) for body in self.alerts("SUCCESS"))

    def completion_code(self) -> str | None:
        """The code under the "Your completion code" heading (a new worker's resume code is a code block too)."""
        under_heading = False
        for kind, e in self.ordered():
            if kind == "heading":
                under_heading = "completion code" in e.body
            elif under_heading and kind == "code":
                return e.code_text
        return None

    def item_form(self) -> ItemForm | None:
        """The item form found by its keys and labels; None when the page has no answer radio. A page with the
        radio but without the rest is a ProtocolError naming what is missing."""
        in_form = [(kind, e) for kind, e in self.widgets() if getattr(e, "form_id", None) == ITEM_FORM]
        radios = [e for kind, e in in_form if kind == "radio" and widget_key(e.id).startswith(ANSWER_KEY_PREFIX)]
        if not radios:
            return None
        if len(radios) > 1:
            raise ProtocolError(f"{len(radios)} answer radios (keys {ANSWER_KEY_PREFIX}*) in form {ITEM_FORM!r}; "
                                f"expected one. {self.describe()}")
        submits = [e for kind, e in in_form if kind == "button" and e.is_form_submitter and e.label == SUBMIT_LABEL]
        if len(submits) != 1:
            raise ProtocolError(f"{len(submits)} {SUBMIT_LABEL!r} buttons in form {ITEM_FORM!r}; expected one. "
                                f"{self.describe()}")
        lines = [e.body for kind, e in self.ordered() if kind == "markdown" and ITEM_LINE.match(e.body)]
        if len(lines) != 1:
            raise ProtocolError(f"no line 'Item N in your queue' over the item. {self.describe()}")
        radio = radios[0]
        unknown = [label for label in radio.options if label not in LABEL_TO_RATING]
        if unknown:
            raise ProtocolError(f"answer options {unknown} are not ratings of the app's scale "
                                f"{sorted(LABEL_TO_RATING)}")
        tags = {e.label: e.id for kind, e in in_form if kind == "checkbox"}
        return ItemForm(radio.id, list(radio.options), tags, submits[0].id, lines[0])


# ------------------------------------------------------------------------------------------- the protocol client

class Tab:
    """One browser tab's websocket session with the app, speaking Streamlit's BackMsg/ForwardMsg protocol."""

    def __init__(self, ws: Any, query_string: str, url: str) -> None:
        self.ws = ws
        self.query_string = query_string
        self.url = url
        self.page_hash = ""  # the page the server last ran, sent back with each rerun as the browser does
        self.values: dict[str, Any] = {}  # widget id -> the value this "browser" holds
        self.page: Page | None = None
        self.first_reply: float | None = None  # when the run that the last rerun asked for started (new_session)

    async def rerun(self, trigger: str | None = None) -> Page:
        """Send a rerun with every widget's state (and a pressed button's trigger); the page the run drew."""
        # What Chromium sends about itself (a headless one in UTC, logged).
        context = ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US", url=self.url, is_embedded=False,
                              color_scheme="light")
        state = ClientState(query_string=self.query_string, page_script_hash=self.page_hash, context_info=context)
        state.widget_states.SetInParent()  # present even when empty, as Chromium sends it
        for widget in self._widget_states():
            state.widget_states.widgets.append(widget)
        if trigger is not None:
            state.widget_states.widgets.append(WidgetState(id=trigger, trigger_value=True))
        self.first_reply = None
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        self.page = await self._read_run()
        self._remember_values(self.page)
        return self.page

    def _widget_states(self) -> list[WidgetState]:
        if self.page is None:
            return []
        out = []
        for kind, e in self.page.widgets():
            if kind == "button":
                continue
            value = self.values.get(e.id)
            if value is not None:
                out.append(WidgetState(id=e.id, **{VALUE_FIELDS[kind]: value}))
        return out

    def _remember_values(self, page: Page) -> None:
        """Take each widget's value from the run, as the browser does: a value the server set (`set_value`), else
        the one held already, else the widget's default."""
        for kind, e in page.widgets():
            if kind == "button":
                continue
            if kind not in VALUE_FIELDS:
                raise ProtocolError(f"the page has a {kind} widget ({e.label!r}, key {widget_key(e.id)!r}) that this "
                                    "client cannot answer; teach benchmarks/crowd_load.py its value. "
                                    + page.describe())
            if kind in ("radio", "selectbox"):
                server = e.raw_value if e.HasField("raw_value") else None
                default = e.options[e.default] if e.HasField("default") and 0 <= e.default < len(e.options) else None
            elif kind == "checkbox":
                server, default = e.value, e.default
            else:
                server = e.value if e.HasField("value") else None
                default = e.default if e.HasField("default") else None
            if e.set_value:
                self.values[e.id] = server
            elif e.id not in self.values:
                self.values[e.id] = default

    async def _read_run(self) -> Page:
        """ForwardMsgs until a run finishes successfully; its elements. A new run (new_session) starts afresh."""
        elements: dict[tuple[int, ...], tuple[str, Any]] = {}
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                raise ProtocolError(f"no finished run within {REPLY_TIMEOUT_S:.0f} s") from None
            if isinstance(raw, str):
                raise ProtocolError(f"a text frame from the server: {raw[:200]!r}")
            msg = ForwardMsg.FromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "new_session":  # a run starts (the previous run's last status message may come before)
                if self.first_reply is None:
                    self.first_reply = time.perf_counter()
                elements = {}
                if msg.new_session.page_script_hash:
                    self.page_hash = msg.new_session.page_script_hash
            elif kind == "navigation" and msg.navigation.page_script_hash:
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                element_kind = element.WhichOneof("type")
                elements[tuple(msg.metadata.delta_path)] = (element_kind, getattr(element, element_kind))
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if status == "FINISHED_SUCCESSFULLY":
                    page = Page(elements)
                    if error := page.exception():
                        raise ProtocolError(f"the app raised {error}")
                    return page
                if status == "FINISHED_WITH_COMPILE_ERROR":
                    raise ProtocolError("the app's script did not compile")
                # FINISHED_EARLY_FOR_RERUN: the next run follows with its own new_session
            elif kind in ("ref_hash", "page_not_found", "auth_redirect"):
                raise ProtocolError(f"unexpected {kind} message: {getattr(msg, kind)}")


class HttpConnection:
    """One kept-alive HTTP/1.1 connection (h11, which Streamlit's server uvicorn itself depends on)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.h11 = h11.Connection(h11.CLIENT)

    async def get(self, path: str) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        elif self.h11.our_state is h11.DONE:
            self.h11.start_next_cycle()
        headers = [("Host", f"{self.host}:{self.port}"), ("Accept-Encoding", "gzip, deflate, br"),
                   ("User-Agent", "crowd_load")]
        self.writer.write(self.h11.send(h11.Request(method="GET", target=path, headers=headers)))
        self.writer.write(self.h11.send(h11.EndOfMessage()))
        await self.writer.drain()
        status, body = None, bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ProtocolError(f"GET {path}: the server closed the connection")
        if status != 200:
            raise ProtocolError(f"GET {path}: HTTP {status}")
        return bytes(body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def load_page(base: str, query: str) -> tuple[float, int]:
    """What a browser with an empty cache fetches before it opens the websocket: the HTML, then what it links
    (scripts and module preloads, the stylesheet, the font, the icon) over up to 6 kept-alive connections as
    Chromium does, then `/_stcore/health` and `/_stcore/host-config`. Chunks the page loads later (widgets' code,
    the icon font) are left out. (seconds, bytes)."""
    parts = urlsplit(base)
    conns = [HttpConnection(parts.hostname, parts.port) for _ in range(BROWSER_CONNECTIONS)]
    started, size = time.perf_counter(), 0
    try:
        html = await conns[0].get(f"/?{query}")
        links = list(dict.fromkeys(re.findall(r'(?:src|href)="\./((?:static/|favicon)[^"]+)"', html.decode())))

        async def fetch(conn: HttpConnection, paths: list[str]) -> int:
            return sum([len(await conn.get(f"/{path}")) for path in paths])

        n = len(conns)
        size = len(html) + sum(await asyncio.gather(*(fetch(c, links[i::n]) for i, c in enumerate(conns))))
        for path in ("/_stcore/health", "/_stcore/host-config"):
            size += len(await conns[0].get(path))
    finally:
        for conn in conns:
            await conn.close()
    return time.perf_counter() - started, size


# ------------------------------------------------------------------------------------------------ one worker

@dataclass
class Worker:
    """One simulated crowd worker and what happened to them."""

    pid: str
    server: int
    start_at: float
    read: tuple[float, float]
    rng: random.Random
    page_load_s: float | None = None
    page_bytes: int = 0
    join_ms: float | None = None
    submit_ms: list[float] = field(default_factory=list)
    submit_at: list[float] = field(default_factory=list)  # monotonic time of each timed Submit
    joined_at: float | None = None
    first_reply_ms: list[float] = field(default_factory=list)  # Submit -> the run started (new_session)
    acknowledged: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (rating, tags) confirmed
    revisions: int = 0  # confirmations of a revision 2+ ("Saved (revision 2).") — never expected
    retries: int = 0
    retry_messages: list[str] = field(default_factory=list)
    completion_code: str | None = None
    done: bool = False
    error: str | None = None


async def run_worker(w: Worker, base: str, token: str, assets: bool, max_submits: int) -> None:
    await asyncio.sleep(max(0.0, w.start_at - time.monotonic()))
    query = urlencode({"study": STUDY, "join": token, "pid": w.pid})
    try:
        if assets:
            w.page_load_s, w.page_bytes = await asyncio.wait_for(load_page(base, query), REPLY_TIMEOUT_S)
        started = time.perf_counter()
        ws_url = base.replace("http://", "ws://") + "/_stcore/stream"
        async with connect(ws_url, subprotocols=["streamlit"], origin=base, ping_interval=None, max_size=None,
                           open_timeout=REPLY_TIMEOUT_S, additional_headers={"User-Agent": "crowd_load"}) as ws:
            tab = Tab(ws, query, base + "/")
            page = await tab.rerun()
            w.join_ms = (time.perf_counter() - started) * 1000
            w.joined_at = time.monotonic()
            await answer_queue(w, tab, page, max_submits)
    except ProtocolError as e:
        w.error = str(e)
    except (OSError, asyncio.TimeoutError, ConnectionError) as e:
        w.error = f"connection: {type(e).__name__}: {e}"
    except Exception as e:  # a websockets close or anything else: reported per worker, the run goes on
        w.error = f"{type(e).__name__}: {e}"


def choose_tags(rng: random.Random, rating: str, tags: list[str]) -> tuple[str, ...]:
    """Tags for an answer as a worker who read the guidelines picks them: none for a clear yes, at least one for
    a no (the default rules of a study), sometimes one otherwise."""
    rules = Rules()
    plain = [t for t in tags if t not in rules.exclusive_tags]
    if rating in rules.no_tags_for or not plain:
        return ()
    if rating in rules.tags_required_for or rng.random() < 0.3:
        return (rng.choice(plain),)
    return ()


async def answer_queue(w: Worker, tab: Tab, page: Page, max_submits: int) -> None:
    """Read, answer, Submit, until the app shows the end of the queue."""
    while True:
        if page.done():
            w.done, w.completion_code = True, page.completion_code()
            return
        form = page.item_form()
        if form is None:
            errors = page.alerts("ERROR")
            raise ProtocolError(("the app refused: " + " / ".join(errors)) if errors else
                                "neither an item form nor the end of the queue. " + page.describe())
        if len(w.acknowledged) + w.retries >= max_submits:
            raise ProtocolError(f"still not at the end of the queue after {max_submits} submits")
        await asyncio.sleep(w.rng.uniform(*w.read))
        label = w.rng.choice(form.options)
        answer = (LABEL_TO_RATING[label], choose_tags(w.rng, LABEL_TO_RATING[label], list(form.tags)))
        tab.values[form.radio_id] = label
        for tag, widget_id in form.tags.items():
            tab.values[widget_id] = tag in answer[1]
        for attempt in range(RETRIES + 1):
            sent, sent_at = time.perf_counter(), time.monotonic()
            page = await tab.rerun(trigger=form.submit_id)
            elapsed = (time.perf_counter() - sent) * 1000
            w.first_reply_ms.append((tab.first_reply - sent) * 1000)
            if page.done():
                w.submit_ms.append(elapsed)
                w.submit_at.append(sent_at)
                w.acknowledged.append(answer)
                break
            after = page.item_form()
            if after is not None and after.radio_id != form.radio_id:
                notice = after.line.split(" · ")[1:]
                if not any(n.startswith("Saved") for n in notice):
                    raise ProtocolError(f"the next item came without 'Saved.' in its line {after.line!r}")
                w.revisions += any(n.startswith("Saved (revision") for n in notice)
                w.submit_ms.append(elapsed)
                w.submit_at.append(sent_at)
                w.acknowledged.append(answer)
                break
            errors = page.alerts("ERROR")
            if after is None or not errors:
                raise ProtocolError(f"after Submit, neither the next item, the end of the queue nor an error on the "
                                    f"same item. {page.describe()}")
            if any(e.startswith("Rule ") for e in errors):
                raise ProtocolError(f"the app refused {answer} by its rules, which this client follows as "
                                    f"annotate.core.scale.Rules() has them: {errors}")
            w.retries += 1
            w.retry_messages.extend(errors)
            if attempt == RETRIES:
                raise ProtocolError(f"Submit not saved after {RETRIES + 1} presses: {errors}")
            await asyncio.sleep(1.0)


# ---------------------------------------------------------------------------------------- servers and the study

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> str:
    result = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"nle-annotate {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def study_items(workers: int, items: int) -> int:
    """Regular items so that every worker can fill their quota at k ratings per item, with a margin (and never
    fewer than one worker's quota: nobody rates an item twice)."""
    return max(items, math.ceil(workers * items * 1.2 / K)) + 10


def write_study(db: Path, tmp: Path, workers: int, items: int, seed: int) -> dict[str, Any]:
    """A fresh database with the crowd study: the items (and attention checks), k, each worker's quota and the
    completion code, as `nle-annotate import` and `study set` would write them."""
    rng = random.Random(seed)
    n = study_items(workers, items)
    checks = ATTENTION_CHECKS
    lines = []
    for i in range(n + checks):
        dataset = rng.choice(list(INPUTS))
        config = "full_ft" if i % 2 else "att_q+layer_norm"
        line = {"dataset": dataset, "sample_id": f"s{i}", "config": config, "input": INPUTS[dataset],
                "predicted_label": "entailment", "explanation": f"Explanation {i}: playing on a stage is performing.",
                "gold_label": "entailment", "gold_explanations": [f"gold explanation {i}"]}
        if i >= n:
            line["expected_rating"] = "yes"
        lines.append(json.dumps(line))
    path = tmp / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with Store(db) as store:
        store.import_nles(path, STUDY)
        store.configure_study(STUDY, overlap=K, max_per_annotator=items, completion_code=COMPLETION_CODE)
    return {"items": n, "checks": checks}


def open_joining(db: Path) -> tuple[str, bool]:
    """`nle-annotate study open`, as the researcher runs it; (the join token, whether a per-address join limit
    was lifted). Every simulated worker joins from 127.0.0.1, so where this version of the app has a per-address
    join limit (`study open --help` lists --joins-per-address), it is set to 0, no limit."""
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
        nle_annotate.main(["study", "open", "--help"])
    per_address = "--joins-per-address" in help_text.getvalue()
    args = ["study", "open", STUDY, "--db", str(db), *(["--joins-per-address", "0"] if per_address else [])]
    match = re.search(r"join=([A-Za-z0-9_-]+)", cli(*args))
    if not match:
        raise SystemExit("`nle-annotate study open` printed no join link")
    return match.group(1), per_address


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    timing_log: Path
    log: Path


def launch_servers(db: Path, tmp: Path, n: int) -> list[Server]:
    servers = []
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NLE_", "STREAMLIT_"))}
    for i in range(n):
        port, timing, log = free_port(), tmp / f"timing-{i}.log", tmp / f"server-{i}.log"
        proc = subprocess.Popen([str(CLI), "serve", "--db", str(db), *SERVE_OPTIONS, "--server.port", str(port)],
                                stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True,
                                env={**clean, "NLE_TIMING_LOG": str(timing)})
        servers.append(Server(proc, f"http://127.0.0.1:{port}", timing, log))
    return servers


def wait_until_up(servers: list[Server]) -> None:
    deadline = time.monotonic() + 120
    for s in servers:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", urlsplit(s.url).port, timeout=2)
                conn.request("GET", "/_stcore/health")
                if conn.getresponse().read().strip() == b"ok":
                    break
            except OSError:
                pass
            if s.proc.poll() is not None or time.monotonic() > deadline:
                stop_servers(servers)
                raise SystemExit(f"the server did not start:\n{s.log.read_text()[-3000:]}")
            time.sleep(0.2)


def stop_servers(servers: list[Server]) -> None:
    for s in servers:
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, 15)
    for s in servers:
        try:
            s.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(s.proc.pid, 9)
            s.proc.wait()


class Sampler:
    """The servers' CPU time and resident memory, read from /proc once a second (Linux; else nothing)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.samples: list[tuple[float, float, int]] = []  # (monotonic, CPU seconds, RSS bytes), summed

    def read(self) -> tuple[float, int] | None:
        cpu, rss = 0.0, 0
        try:
            for pid in self.pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / self.tick
                status = Path(f"/proc/{pid}/status").read_text()
                rss += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
        except (OSError, AttributeError, IndexError, ValueError):
            return None
        return cpu, rss

    def sample(self) -> None:
        if (now := self.read()) is not None:
            self.samples.append((time.monotonic(), *now))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
        self.sample()

    def figures(self) -> dict[str, float | None]:
        s = self.samples
        if len(s) < 2:
            return {"cpu_mean_pct": None, "cpu_peak_pct": None, "rss_start_mb": None, "rss_peak_mb": None}
        steps = [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in zip(s, s[1:], strict=False) if b[0] > a[0]]
        return {"cpu_mean_pct": (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0]) * 100, "cpu_peak_pct": max(steps),
                "rss_start_mb": s[0][2] / 2**20, "rss_peak_mb": max(x[2] for x in s) / 2**20}


def stored_answers(db: Path) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Every worker's stored answers (rating and tags, current revision) by worker id, read straight from the
    database (where a worker's name is the id in the crowd namespace)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[str, list[tuple[str, tuple[str, ...]]]] = collections.defaultdict(list)
        for name, rating, tags in conn.execute("SELECT a.name, r.rating, r.tags FROM ratings r JOIN annotators a"
                                               " ON a.id = r.annotator_id WHERE a.joined = 1"):
            out[name.removeprefix(WORKER_PREFIX)].append((rating, tuple(sorted(t for t in (tags or "").split(";") if t))))
        return out
    finally:
        conn.close()


def server_timing(servers: list[Server]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "wait": []}
    for s in servers:
        lines = s.timing_log.read_text().splitlines() if s.timing_log.exists() else []
        for line in lines:
            fields = (line.split("\t") + ["", "", ""])[:4]
            for name, value in zip(out, fields[1:], strict=True):
                if value:
                    out[name].append(float(value))
    return out


def p50_p95(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[18]


# --------------------------------------------------------------------------------------------------- one level

async def watch_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late this generator's own event loop wakes up (ms): when it lags, the workers' timings carry it."""
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_S)
        lags.append((time.perf_counter() - asked - LAG_PROBE_S) * 1000)


async def crowd(workers: list[Worker], servers: list[Server], token: str, assets: bool,
                max_submits: int) -> tuple[Sampler, float, list[float]]:
    sampler = Sampler([s.proc.pid for s in servers])
    stop = asyncio.Event()
    lags: list[float] = []
    sampling = asyncio.gather(sampler.run(stop), watch_lag(stop, lags))
    started = time.monotonic()
    await asyncio.gather(*(run_worker(w, servers[w.server].url, token, assets, max_submits) for w in workers))
    wall = time.monotonic() - started
    stop.set()
    await sampling
    return sampler, wall, lags


def run_level(n_workers: int, n_servers: int, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    baseline = n_workers == 1
    items = args.baseline_items if baseline else args.items
    read = args.baseline_read if baseline else args.read
    with tempfile.TemporaryDirectory(prefix="crowd_load_") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "crowd.db"
        study = write_study(db, tmp, n_workers, items, seed)
        servers = launch_servers(db, tmp, n_servers)
        try:
            token, study["joins_per_address_lifted"] = open_joining(db)  # while the servers start
            wait_until_up(servers)
            rng = random.Random(seed)
            load_start = os.getloadavg()
            ramp = 0.0 if baseline else args.ramp
            t0 = time.monotonic() + 0.5
            workers = [Worker(f"load{seed}-{i:04d}", i % n_servers, t0 + rng.uniform(0, ramp), read,
                              random.Random(rng.random())) for i in range(n_workers)]
            ru = resource.getrusage(resource.RUSAGE_SELF)
            sampler, wall, lags = asyncio.run(crowd(workers, servers, token, args.assets, max_submits=items * 3 + 10))
            ru_after = resource.getrusage(resource.RUSAGE_SELF)
            load_end = os.getloadavg()
            stored = stored_answers(db)
            timing = server_timing(servers)
        finally:
            stop_servers(servers)
    acknowledged = sum(len(w.acknowledged) for w in workers)
    lost = sum(max(0, len(w.acknowledged) - len(stored.get(w.pid, []))) for w in workers)
    mismatched = [w.pid for w in workers
                  if collections.Counter((r, tuple(sorted(t))) for r, t in w.acknowledged)
                  != collections.Counter(stored.get(w.pid, []))]
    submit = p50_p95([x for w in workers for x in w.submit_ms])
    first = p50_p95([x for w in workers for x in w.first_reply_ms])
    # While workers are still joining (page loads and first runs) and after the last one has joined.
    last_join = max((w.joined_at for w in workers if w.joined_at is not None), default=0.0)
    timed = [(at, ms) for w in workers for at, ms in zip(w.submit_at, w.submit_ms, strict=True)]
    joining = p50_p95([ms for at, ms in timed if at <= last_join])
    settled = p50_p95([ms for at, ms in timed if at > last_join])
    join = p50_p95([w.join_ms for w in workers if w.join_ms is not None])
    page = p50_p95([w.page_load_s * 1000 for w in workers if w.page_load_s is not None])
    errors = collections.Counter(w.error for w in workers if w.error)
    return {
        "workers": n_workers, "servers": n_servers, "items_per_worker": items, "read_s": list(read),
        "ramp_s": ramp, "study": study, "wall_s": wall,
        "submits": sum(len(w.submit_ms) for w in workers),
        "submit_p50_ms": submit[0], "submit_p95_ms": submit[1],
        "joining_submits": sum(at <= last_join for at, _ in timed), "joining_p95_ms": joining[1],
        "settled_submits": sum(at > last_join for at, _ in timed), "settled_p95_ms": settled[1],
        "first_reply_p50_ms": first[0], "first_reply_p95_ms": first[1],
        "generator_lag_p95_ms": p50_p95(lags)[1], "generator_lag_max_ms": max(lags, default=None),
        "server_p50_ms": p50_p95(timing["wall"])[0], "server_p95_ms": p50_p95(timing["wall"])[1],
        "server_cpu_p95_ms": p50_p95(timing["cpu"])[1], "server_cpu_wait_p95_ms": p50_p95(timing["wait"])[1],
        "join_p50_ms": join[0], "join_p95_ms": join[1], "page_load_p50_ms": page[0], "page_load_p95_ms": page[1],
        "page_load_mb": sum(w.page_bytes for w in workers) / 2**20,
        **sampler.figures(),
        "generator_cpu_s": (ru_after.ru_utime + ru_after.ru_stime) - (ru.ru_utime + ru.ru_stime),
        "acknowledged": acknowledged, "stored": sum(len(stored.get(w.pid, [])) for w in workers),
        "stored_by_unknown_workers": sum(len(v) for k, v in stored.items() if k not in {w.pid for w in workers}),
        "lost": lost, "workers_whose_answers_differ": mismatched, "revisions": sum(w.revisions for w in workers),
        "retries": sum(w.retries for w in workers),
        "retry_messages": dict(collections.Counter(m for w in workers for m in w.retry_messages)),
        "finished": sum(w.done for w in workers),
        "completion_codes": sum(w.completion_code == COMPLETION_CODE for w in workers),
        "failed_workers": sum(1 for w in workers if w.error), "errors": dict(errors),
        "load_start": list(load_start), "load_end": list(load_end),
    }


# ----------------------------------------------------------------------------------------------------- output

def fmt(value: float | None, spec: str = ".0f") -> str:
    return "–" if value is None else format(value, spec)


def print_row(r: dict[str, Any], base_p95: float | None, base_server_p95: float | None) -> None:
    ratio = (f" (×{r['submit_p95_ms'] / base_p95:.2f} of one worker's)" if base_p95 and r["submit_p95_ms"]
             and r["workers"] > 1 else "")
    server_ratio = (f" (×{r['server_p95_ms'] / base_server_p95:.2f})" if base_server_p95 and r["server_p95_ms"]
                    and r["workers"] > 1 else "")
    print(f"\n{r['workers']} worker(s) on {r['servers']} server process(es): {r['items_per_worker']} items each, "
          f"reading {r['read_s'][0]:g}–{r['read_s'][1]:g} s, joining over {r['ramp_s']:g} s; {r['wall_s']:.0f} s; "
          f"load average {r['load_start'][0]:.2f} → {r['load_end'][0]:.2f} (1 min), "
          f"{r['load_start'][1]:.2f} → {r['load_end'][1]:.2f} (5 min)")
    print(f"  Submit → next item drawn, as the worker sees it: p50 {fmt(r['submit_p50_ms'])} ms, "
          f"p95 {fmt(r['submit_p95_ms'])} ms{ratio} over {r['submits']} submits")
    print(f"  p95 while workers were still joining {fmt(r['joining_p95_ms'])} ms ({r['joining_submits']} submits), after "
          f"the last had joined {fmt(r['settled_p95_ms'])} ms ({r['settled_submits']} submits)")
    print(f"  of which Submit → the server starts the run (new_session): p50 {fmt(r['first_reply_p50_ms'])} ms, "
          f"p95 {fmt(r['first_reply_p95_ms'])} ms; this generator's event loop woke late by p95 "
          f"{fmt(r['generator_lag_p95_ms'])} ms (worst {fmt(r['generator_lag_max_ms'])} ms)")
    print(f"  the same in the server (Submit callback → item drawn): p50 {fmt(r['server_p50_ms'])} ms, "
          f"p95 {fmt(r['server_p95_ms'])} ms{server_ratio}; the run's CPU p95 {fmt(r['server_cpu_p95_ms'])} ms, "
          f"its wait for a CPU p95 {fmt(r['server_cpu_wait_p95_ms'])} ms")
    print(f"  join (websocket opened → first item drawn): p50 {fmt(r['join_p50_ms'])} ms, p95 {fmt(r['join_p95_ms'])} "
          f"ms; page load before it (HTML and assets, {r['page_load_mb']:.0f} MB in all): "
          f"p50 {fmt(r['page_load_p50_ms'])} ms, p95 {fmt(r['page_load_p95_ms'])} ms")
    print(f"  server CPU (% of one core, all processes): mean {fmt(r['cpu_mean_pct'])} %, peak second "
          f"{fmt(r['cpu_peak_pct'])} %; resident memory {fmt(r['rss_start_mb'])} MB before the crowd, peak "
          f"{fmt(r['rss_peak_mb'])} MB; this generator's own CPU {r['generator_cpu_s']:.1f} s")
    print(f"  answers acknowledged {r['acknowledged']}, stored {r['stored']}, lost {r['lost']}"
          f"{', workers whose stored ratings differ: ' + str(r['workers_whose_answers_differ']) if r['workers_whose_answers_differ'] else ''}"
          f"; revisions {r['revisions']}; Submits pressed again {r['retries']}"
          f"{' ' + json.dumps(r['retry_messages']) if r['retry_messages'] else ''}")
    print(f"  workers at the end of their queue {r['finished']} of {r['workers']} (completion code shown to "
          f"{r['completion_codes']}); failed {r['failed_workers']}"
          + "".join(f"\n    {n}× {e}" for e, n in list(r["errors"].items())[:SHOWN_ERRORS])
          + (f"\n    … and {len(r['errors']) - SHOWN_ERRORS} other errors (all in --json)"
             if len(r["errors"]) > SHOWN_ERRORS else ""))


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def parse_counts(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as 1,50,100,200, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers of at least 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", type=parse_counts, default=[1, 50, 100, 200],
                   help="numbers of workers, one run each (1 = the single-worker baseline of the ratio)")
    p.add_argument("--servers", type=parse_counts, default=[1],
                   help="numbers of server processes on the one database, each level run with each")
    p.add_argument("--items", type=int, default=10, help="items per worker (the study's --max-per-annotator)")
    p.add_argument("--read", type=seconds_range, default=(5.0, 20.0), help="seconds reading each item: MIN,MAX")
    p.add_argument("--ramp", type=float, default=60.0, help="the workers join at random times over this many s")
    p.add_argument("--baseline-items", type=int, default=30, help="items of the single worker (level 1)")
    p.add_argument("--baseline-read", type=seconds_range, default=(1.0, 3.0), help="its reading time: MIN,MAX")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-assets", dest="assets", action="store_false",
                   help="open the websocket without loading the page's HTML and assets first")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--smoke", action="store_true",
                   help="a quick check of the whole path: 3 workers, 3 items, short reads (overrides the sizes)")
    args = p.parse_args(argv)
    if args.smoke:
        args.levels, args.servers, args.items, args.read, args.ramp = [3], [1], 3, (0.1, 0.4), 0.5
    if args.items < 1 or args.baseline_items < 1 or args.ramp < 0:
        p.error("--items and --baseline-items must be at least 1, --ramp at least 0")
    if not CLI.exists():
        raise SystemExit(f"{CLI} not found: run with the project's virtualenv (pip install -e .)")

    print(f"crowd_load: simulated crowd workers join study {STUDY!r} through its link and rate over Streamlit's "
          f"websocket protocol (no browser) against `nle-annotate serve`, a fresh database per run; k = {K}, "
          f"{ATTENTION_CHECKS} attention check(s) each worker also answers, completion code set; page assets "
          f"{'loaded at join' if args.assets else 'not loaded'}; seed {args.seed}; {os.cpu_count()} CPUs; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M %Z')}, "
          f"commit {commit()}, Streamlit {streamlit_version}", flush=True)
    runs = [(lvl, n) for n in args.servers for lvl in args.levels if not (lvl == 1 and n != args.servers[0])]
    results, base, base_server = [], None, None
    for i, (lvl, n) in enumerate(runs):
        r = run_level(lvl, n, args, args.seed + i)
        if lvl == 1 and n == args.servers[0]:
            base, base_server = r["submit_p95_ms"], r["server_p95_ms"]
        results.append(r)
        print_row(r, base, base_server)
        sys.stdout.flush()

    lost = sum(r["lost"] for r in results)
    differ = sum(len(r["workers_whose_answers_differ"]) for r in results)
    failed = sum(r["failed_workers"] for r in results)
    print("\nsummary (Submit → next item, p95 as the worker sees it / in the server; CPU mean, % of one core):")
    for r in results:
        ratio = f"×{r['submit_p95_ms'] / base:.2f}" if base and r["submit_p95_ms"] else "–"
        print(f"  {r['workers']:>4} workers, {r['servers']} server(s): {fmt(r['submit_p95_ms']):>6} ms / "
              f"{fmt(r['server_p95_ms']):>5} ms ({ratio} of one worker's, target ≤ ×2); CPU {fmt(r['cpu_mean_pct'])} %, "
              f"peak RSS {fmt(r['rss_peak_mb'])} MB; acknowledged {r['acknowledged']}, stored {r['stored']}, "
              f"lost {r['lost']}; failed workers {r['failed_workers']}; load average {r['load_start'][0]:.1f} → "
              f"{r['load_end'][0]:.1f}")
    print(f"answers lost: {lost}; workers whose stored answers differ from what the app acknowledged: {differ}; "
          f"failed workers: {failed}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: v if not isinstance(v, Path) else str(v)
                                                  for k, v in vars(args).items()}, "runs": results}, indent=1))
    return 1 if lost or differ or failed else 0


if __name__ == "__main__":
    sys.exit(main())
