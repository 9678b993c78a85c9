"""The study kinds: a kind is one module per layer and one entry in each layer's table. A toy third kind ("is the
explanation fluent? yes / no"), registered here at runtime in `annotate.core.kinds.KINDS`,
`analysis.kinds.REPORTS` and `annotate.app.kinds.PAGES`, goes through `nle-annotate import`, the Store, the
Annotate page and the Side by side page (AppTest), `nle-annotate export` and `nle-report` with no other file
changed; each step is shown to call the toy. The built-in kinds each have their entry in every table."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from analysis.cli import main as report_main
from analysis.kinds import REPORTS
from analysis.kinds.base import KindReport, ReportRequest
from annotate.app import render
from annotate.app.kinds import PAGES
from annotate.app.kinds.base import KindPage
from annotate.app.queue import Queue
from annotate.cli import main as cli
from annotate.core.kinds import KINDS, StudyKind
from annotate.core.schema import now_iso
from annotate.core.store import Store
from tests.helpers import nle

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "streamlit_app.py"
ANSWERS = ("fluent", "not_fluent")
CALLS: list[str] = []  # every call the toy receives, in order, across its three layers


def toy_setup(store: Any, study_id: int) -> dict[str, Any] | None:
    if store.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'toy_studies'").fetchone() is None:
        return None
    return {} if store.conn.execute("SELECT 1 FROM toy_studies WHERE study_id = ?",
                                    (study_id,)).fetchone() else None


class Toy(StudyKind):
    """Ordinary NLE items; its own tables mark its studies and hold its answers."""

    name = "toy"
    answers_noun = "fluency answers"
    refusals = {"nle_file": "import its NLE file with --toy", "ratings": "its answers are fluency answers",
                "rated_items": "rated items cannot be imported into it"}

    def setup(self, store: Any, study_id: int) -> dict[str, Any] | None:
        CALLS.append("core.setup")
        return toy_setup(store, study_id)

    def add_import_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--toy", action="store_true", help="a fluency study")

    def chosen_by(self, args: argparse.Namespace) -> bool:
        return args.toy

    def import_file(self, store: Any, args: argparse.Namespace) -> tuple[str, list[str]]:
        CALLS.append("core.import_file")
        result = store.import_nles(args.file, args.study)
        with store.database.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS toy_studies (study_id INTEGER PRIMARY KEY)")
            conn.execute("CREATE TABLE IF NOT EXISTS toy_answers (annotator_id INTEGER, item_id INTEGER, answer TEXT,"
                         " revision INTEGER, PRIMARY KEY (annotator_id, item_id))")
            conn.execute("INSERT OR IGNORE INTO toy_studies SELECT id FROM studies WHERE name = ?", (result.study,))
        return result.study, [f"imported {args.file}: fluency study {result.study!r}, {result.added} items"]

    def export_frame(self, store: Any, study: str) -> tuple[pd.DataFrame, list[str]]:
        CALLS.append("core.export_frame")
        s = store.resolve_study(study)
        rows = pd.read_sql_query(
            "SELECT i.dataset, i.sample_id, i.config, n.name AS annotator, t.answer FROM toy_answers t"
            " JOIN items i ON i.id = t.item_id JOIN annotators n ON n.id = t.annotator_id WHERE i.study_id = ?"
            " ORDER BY i.id", store.conn, params=(s["id"],))
        return rows, ["dataset", "sample_id", "config", "annotator", "answer"]


class ToyReport(KindReport):
    name = "toy"

    def write(self, store: Any, study: str, request: ReportRequest) -> int:
        CALLS.append("analysis.write")
        rows, _ = store.study_kind(store.resolve_study(study)["id"]).export_frame(store, study)
        out = Path(request.out)
        out.mkdir(parents=True, exist_ok=True)
        rows["answer"].value_counts().reindex(ANSWERS, fill_value=0).to_csv(out / "fluency.csv")
        print(f"study {study!r} (fluency): wrote fluency.csv to {out}")
        return 0


def toy_key(pos: int) -> str:
    return f"_toy_answer_{pos}"


class ToyQueue(Queue):
    def _fetch(self, position: int) -> dict[str, Any] | None:
        CALLS.append("app.fetch")
        item = self.store.annotator_item(self.aid, position)
        if item is not None:
            row = self.store.conn.execute("SELECT answer, revision FROM toy_answers WHERE annotator_id = ? AND"
                                          " item_id = ?", (self.aid, item["item_id"])).fetchone()
            item["answer"] = {"answer": row[0], "revision": row[1]} if row else None
        return item

    def _prefill(self, item: dict[str, Any]) -> None:
        st.session_state.setdefault(toy_key(item["position"]), (item["answer"] or {}).get("answer"))

    def _read_answer(self, slot: int) -> tuple[dict[str, Any], list[str]]:
        answer = st.session_state.get(toy_key(slot))
        return {"answer": answer}, [] if answer in ANSWERS else ["Choose fluent or not fluent."]

    def _save(self, item_id: int, answer: dict[str, Any], seconds: float | None) -> dict[str, Any]:
        CALLS.append("app.save")
        with self.store.database.transaction() as conn:
            old = conn.execute("SELECT revision FROM toy_answers WHERE annotator_id = ? AND item_id = ?",
                               (self.aid, item_id)).fetchone()
            revision = old[0] + 1 if old else 1
            conn.execute("INSERT OR REPLACE INTO toy_answers VALUES (?, ?, ?, ?)",
                         (self.aid, item_id, answer["answer"], revision))
            conn.execute("UPDATE assignments SET answered_at = ? WHERE annotator_id = ? AND item_id = ?",
                         (now_iso(), self.aid, item_id))
        return {"revision": revision}

    def _forget(self, slot: int) -> None:
        st.session_state.pop(toy_key(slot), None)


class ToyPage(KindPage):
    name = "toy"
    item_noun = "statement"
    shortcut_prefix = "_toy_answer_"

    def queue(self, store: Store, annotator: dict[str, Any]) -> Queue:
        CALLS.append("app.queue")
        return ToyQueue(store, annotator)

    def draw(self, queue: Queue, item: dict[str, Any], study: dict[str, Any]) -> DeltaGenerator:
        CALLS.append("app.draw")
        render.show_literal("Explanation", item["explanation"])
        form = st.form("_toy_item", border=False, enter_to_submit=False)
        form.radio("Is the explanation fluent?", ANSWERS, key=toy_key(item["position"]), index=None)
        return form

    def side_by_side(self, store: Store, study: str) -> None:
        CALLS.append("app.side_by_side")
        st.metric("Fluency answers", len(store.export_bytes(study).splitlines()) - 1)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Path:
    """The toy kind in every layer's table (removed again after the test); the app on `db_path`."""
    monkeypatch.setitem(KINDS, "toy", Toy())
    monkeypatch.setitem(REPORTS, "toy", ToyReport())
    monkeypatch.setitem(PAGES, "toy", ToyPage())
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.delenv("NLE_DEMO", raising=False)
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", "pw-admin")
    CALLS.clear()
    return db_path


def test_a_toy_kind_goes_through_import_store_page_export_and_report(toy: Path, write_jsonl, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    nles = write_jsonl([nle("esnli", f"s{i}", "full_ft", explanation=f"toy explanation {i}") for i in range(3)])
    assert cli(["import", str(nles), "--db", str(toy), "--study", "flu", "--toy"]) == 0
    assert capsys.readouterr().out == f"imported {nles}: fluency study 'flu', 3 items\n"
    assert CALLS == ["core.import_file"]

    with Store(toy) as store:
        sid = store.resolve_study("flu")["id"]
        assert store.study_kind(sid).name == "toy" and "core.setup" in CALLS
        # The rating study's imports refuse the toy's study in the toy's words, and change nothing.
        with pytest.raises(ValueError, match="'flu' is a toy study; import its NLE file with --toy"):
            store.import_nles(nles, "flu")
        ratings = tmp_path / "r.csv"
        ratings.write_text("dataset,sample_id,config,annotator,rating\nesnli,s0,full_ft,zoe,yes\n")
        with pytest.raises(ValueError, match="'flu' is a toy study; its answers are fluency answers"):
            store.import_ratings(ratings, "flu")
        store.add_annotator("anna", "flu", code="code-anna-1")

    CALLS.clear()
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="sign_in_name").input("anna")
    at.text_input(key="sign_in_code").input("code-anna-1")
    at = at.button(key="sign_in").click().run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("Statement 1 in your queue") for c in at.caption)
    scripts = [el.proto.body for el in at.get("html") if "__nleAnswerRadio" in el.proto.body]
    assert scripts and 'window.__nleAnswerRadio = "_toy_answer_";' in scripts[0]
    sample = "s" + next(t.value for t in at.text if t.value.startswith("toy explanation")).rsplit(" ", 1)[1]
    at.radio(key=toy_key(0)).set_value("not_fluent")
    at = next(b for b in at.button if b.label == "Submit").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert any(c.value.startswith("Statement 2 in your queue") for c in at.caption)
    assert at.get("progress")[0].proto.text == "1 of 3"
    assert {"app.queue", "app.fetch", "app.draw", "app.save"} <= set(CALLS)
    assert CALLS.index("app.draw") < CALLS.index("app.save")

    CALLS.clear()
    out = tmp_path / "answers.csv"
    assert cli(["export", "--db", str(toy), "--study", "flu", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 1 fluency answers to {out}\n"
    assert list(csv.DictReader(io.StringIO(out.read_text()))) == [
        {"dataset": "esnli", "sample_id": sample, "config": "full_ft", "annotator": "anna", "answer": "not_fluent"}]
    assert "core.export_frame" in CALLS

    CALLS.clear()
    report = tmp_path / "report"
    assert report_main(["--db", str(toy), "--study", "flu", "--out", str(report)]) == 0
    assert capsys.readouterr().out == f"study 'flu' (fluency): wrote fluency.csv to {report}\n"
    assert pd.read_csv(report / "fluency.csv", index_col=0)["count"].to_dict() == {"fluent": 0, "not_fluent": 1}
    assert CALLS[0] == "core.setup"  # nle-report asks the study's kind, then the kind's report
    assert [c for c in CALLS if c != "core.setup"] == ["analysis.write", "core.export_frame"]

    CALLS.clear()
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="admin_password").input("pw-admin")
    at.button(key="admin_sign_in").click().run()
    at = at.switch_page("annotate/app/pages/side_by_side.py").run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric} == {"Fluency answers": "1"}
    assert "app.side_by_side" in CALLS


def test_every_built_in_kind_has_its_entry_in_every_layer() -> None:
    assert list(KINDS) == list(REPORTS) == list(PAGES) == ["rating", "pairwise"]
    for name in KINDS:
        assert KINDS[name].name == REPORTS[name].name == PAGES[name].name == name
