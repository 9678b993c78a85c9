"""Attention checks in the analysis: never counted, and `nle-report --min-attention` drops careless annotators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from analysis import cli as report_cli
from analysis.report import analyse_store
from annotate.core.store import Store
from tests.helpers import nle, overlap_all

TAGS = {"yes": [], "weak_yes": [], "weak_no": ["nonsensical"], "no": ["nonsensical"]}
# Eight regular items; careful annotators a and b agree on six, careless c answers "yes" throughout.
A = ["yes", "no", "yes", "weak_yes", "no", "yes", "weak_no", "yes"]
B = ["yes", "no", "yes", "weak_yes", "no", "no", "weak_no", "weak_yes"]


@pytest.fixture
def checked(store: Store, write_jsonl) -> Store:
    lines = [nle("esnli", f"s{i}", "full_ft") for i in range(8)]
    lines += [nle("esnli", "check-1", "full_ft", expected_rating="no"),
              nle("esnli", "check-2", "full_ft", expected_rating=["no", "weak no"])]
    store.import_nles(write_jsonl(lines), "s")
    overlap_all(store, "s")  # a, b and c each rate every item
    for name in ("a", "b", "c"):
        store.add_annotator(name, "s", code=f"code-{name}")
    ids = {r["sample_id"]: r["item_id"] for r in store.items_frame("s").to_dict("records")}
    answers = {"a": A + ["no", "weak_no"], "b": B + ["no", "yes"], "c": ["yes"] * 10}
    for name, given in answers.items():
        aid = next(x["id"] for x in store.annotators("s") if x["name"] == name)
        for sample, rating in zip([f"s{i}" for i in range(8)] + ["check-1", "check-2"], given, strict=True):
            store.submit(aid, ids[sample], rating, TAGS[rating])
    return store


def test_attention_items_are_never_counted(checked: Store) -> None:
    a = analyse_store(checked, "s", n_boot=50)
    assert a.n_items == 8 and a.overall.n == 24
    assert a.attention["dropped"] == [] and a.attention["min_attention"] is None
    assert {r["annotator"]: r["pass_rate"] for r in a.attention["annotators"]} == {"a": 1.0, "b": 0.5, "c": 0.0}


def test_min_attention_drops_annotators_below_it_from_every_figure(checked: Store, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert report_cli.main(["--db", checked.path, "--out", str(out), "--min-attention", "0.5", "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out
    assert "dropped annotator c: attention-check pass rate 0% (0 of 2) is below --min-attention 0.5" in printed
    agreement = json.loads((out / "agreement.json").read_text())
    assert agreement["annotators"] == ["a", "b"]
    assert agreement["overall"]["n"] == 16
    # κ is that of a and b alone (sklearn as the oracle).
    assert agreement["overall"]["cohen_kappa"] == pytest.approx(cohen_kappa_score(A, B))
    dropped = agreement["attention"]["dropped"]
    assert [(d["annotator"], d["pass_rate"], d["checks"]) for d in dropped] == [("c", 0.0, 2)]
    assert agreement["attention"]["min_attention"] == 0.5
    html = (out / "report.html").read_text()
    assert "Dropped annotator c: attention-check pass rate 0% (0 of 2) is below --min-attention 0.5." in html


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_min_attention_outside_0_1_is_an_error(checked: Store, tmp_path: Path, capsys, value: str) -> None:
    assert report_cli.main(["--db", checked.path, "--out", str(tmp_path / "o"), "--min-attention", value]) == 2
    assert f"min_attention must be between 0 and 1, got {float(value)}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
