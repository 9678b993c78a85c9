"""benchmarks/crowd_load.py, the crowd load generator that speaks Streamlit's websocket protocol: at smoke size
against the real `nle-annotate serve` every answer the app acknowledged is in the database (so the protocol client
cannot rot unnoticed), and a page it does not understand stops it with an error that names what is missing."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.Button_pb2 import Button
from streamlit.proto.Markdown_pb2 import Markdown
from streamlit.proto.Radio_pb2 import Radio
from streamlit.proto.Slider_pb2 import Slider

from annotate.app.queue import ITEM_FORM, answer_key

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "crowd_load.py"
CLI = Path(sys.executable).with_name("nle-annotate")


@pytest.fixture(scope="module")
def crowd_load() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("crowd_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["crowd_load"] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("crowd_load", None)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.xdist_group("timing")
@pytest.mark.skipif(not CLI.exists(), reason=f"console script {CLI} not found (pip install -e .)")
def test_smoke_run_against_the_real_server_stores_every_acknowledged_answer(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=220)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (run,) = json.loads(out.read_text())["runs"]
    assert run["failed_workers"] == 0, run["errors"]
    assert run["finished"] == run["completion_codes"] == run["workers"] == 3
    # Each worker's quota plus the attention check every worker answers.
    assert run["acknowledged"] == run["workers"] * (run["items_per_worker"] + run["study"]["checks"])
    assert run["stored"] == run["acknowledged"] and run["lost"] == 0
    assert run["workers_whose_answers_differ"] == [] and run["stored_by_unknown_workers"] == 0
    assert run["submits"] == run["acknowledged"] and run["revisions"] == 0
    assert "answers lost: 0" in result.stdout


def radio(key: str, **over) -> tuple[str, Radio]:
    return "radio", Radio(id=f"$$ID-0123-{key}", label="Does the explanation justify the answer? (keys 1–4)",
                          form_id=ITEM_FORM, options=["Yes", "Weak yes", "Weak no", "No"], **over)


def submit(label: str = "Submit") -> tuple[str, Button]:
    return "button", Button(id=f"$$ID-4567-FormSubmitter:{ITEM_FORM}-{label}", label=label, form_id=ITEM_FORM,
                            is_form_submitter=True)


def line(text: str = "Item 1 in your queue") -> tuple[str, Markdown]:
    return "markdown", Markdown(body=text)


def test_the_item_form_is_found_by_keys_and_labels_not_by_position(crowd_load: ModuleType) -> None:
    page = crowd_load.Page({(0, 5): submit(), (0, 0): line(), (0, 1): submit("Skip"),
                            (0, 3): radio(answer_key(7)), (1, 0): submit("Back")})
    form = page.item_form()
    assert form.radio_id.endswith(answer_key(7)) and form.submit_id.endswith("-Submit")
    assert form.options == ["Yes", "Weak yes", "Weak no", "No"]


@pytest.mark.parametrize(("elements", "message"), [
    ({(0, 0): line(), (0, 1): radio(answer_key(0)), (0, 2): submit("Send")}, "0 'Submit' buttons"),
    ({(0, 0): line(), (0, 1): radio(answer_key(0)), (0, 2): radio(answer_key(1)), (0, 3): submit()},
     "2 answer radios"),
    ({(0, 0): line("Question 1"), (0, 1): radio(answer_key(0)), (0, 2): submit()}, "Item N in your queue"),
])
def test_an_item_form_missing_a_part_is_a_clear_error(crowd_load: ModuleType, elements, message: str) -> None:
    with pytest.raises(crowd_load.ProtocolError, match=message) as e:
        crowd_load.Page(elements).item_form()
    assert "the page showed" in str(e.value)


def test_an_unknown_widget_stops_the_client_with_its_name(crowd_load: ModuleType) -> None:
    page = crowd_load.Page({(0, 0): line(), (0, 1): radio(answer_key(0)), (0, 2): submit(),
                            (0, 3): ("slider", Slider(id="$$ID-89-_a_confidence", label="Confidence"))})
    with pytest.raises(crowd_load.ProtocolError, match="slider widget \\('Confidence', key '_a_confidence'\\)"):
        crowd_load.Tab(None, "", "")._remember_values(page)


def in_own_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a new event loop in its own thread: a browser test run before may have left Playwright's
    loop running in this one, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_page_with_neither_an_item_nor_the_end_of_the_queue_stops_the_worker(crowd_load: ModuleType) -> None:
    refused = crowd_load.Page({(0, 0): ("alert", Alert(body="This study is full.", format=Alert.ERROR))})
    worker = crowd_load.Worker("w1", 0, 0.0, (0.0, 0.0), random.Random(0))
    with pytest.raises(crowd_load.ProtocolError, match="the app refused: This study is full."):
        in_own_loop(crowd_load.answer_queue(worker, None, refused, max_submits=5))


@pytest.mark.parametrize("listed", [True, False])
def test_the_per_address_join_limit_is_lifted_only_where_study_open_lists_it(
        crowd_load: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, listed: bool) -> None:
    """Every simulated worker joins from 127.0.0.1: `--joins-per-address 0` is passed exactly when `nle-annotate
    study open --help` lists it (versions without it refuse unknown options)."""
    calls: list[tuple[str, ...]] = []

    def cli(*args: str) -> str:
        calls.append(args)
        return "  /?study=crowd&join=T0k-en_1&pid=WORKER_ID\n"

    def study_open_help(argv: list[str]) -> None:
        assert argv == ["study", "open", "--help"]
        print("usage: nle-annotate study open [-h] --db DB [--max-joined N]"
              + (" [--joins-per-address N]" if listed else ""))

    monkeypatch.setattr(crowd_load, "cli", cli)
    monkeypatch.setattr(crowd_load.nle_annotate, "main", study_open_help)
    token, lifted = crowd_load.open_joining(tmp_path / "crowd.db")
    assert (token, lifted) == ("T0k-en_1", listed)
    (args,) = calls
    assert args[:2] == ("study", "open") and (args[-2:] == ("--joins-per-address", "0")) == listed
    assert ("--joins-per-address" in args) == listed
