"""The frame both study kinds' reports share (analysis.report.frame): agreement.json's encoding through one
`json_safe`, and one HTML page around each kind's sections."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.pairwise import analyse_preferences
from analysis.report import analyse_export, figures
from analysis.report import pairwise as pairwise_report
from analysis.report import rating as rating_report
from analysis.report.frame import STYLE, json_bytes, json_safe, page, table_html, write_files
from tests.analysis.analysis_helpers import write_ratings_csv


def test_json_safe_turns_numpy_numbers_into_python_ones() -> None:
    out = json_safe({"i": np.int64(3), "u": np.uint8(7), "f": np.float32(0.5), "d": np.float64(0.25),
                     "b": np.bool_(True), "plain": 2, "text": "x", "none": None, "flag": False})
    assert out == {"i": 3, "u": 7, "f": 0.5, "d": 0.25, "b": True, "plain": 2, "text": "x", "none": None,
                   "flag": False}
    assert [type(out[k]) for k in ("i", "u", "f", "d", "b", "plain", "flag")] == [int, int, float, float, bool, int,
                                                                                 bool]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf"),
                                 np.float64("-inf")])
def test_json_safe_makes_nan_and_infinity_null(bad: float) -> None:
    assert json_safe(bad) is None
    assert json_safe([1.0, bad]) == [1.0, None]


def test_json_safe_goes_through_nested_dicts_lists_and_tuples() -> None:
    nested = {"a": [{"b": (np.int32(1), math.nan)}, [np.float64("inf"), {"c": np.float16(1.5)}]],
              "d": {"e": {"f": [np.nan]}}}
    assert json_safe(nested) == {"a": [{"b": [1, None]}, [None, {"c": 1.5}]], "d": {"e": {"f": [None]}}}
    assert json.loads(json_bytes(nested)) == json_safe(nested)


def test_json_bytes_is_indented_utf8_and_refuses_what_json_safe_cannot_fix() -> None:
    assert json_bytes({"κ": np.float64(0.5), "name": "évaluation"}) == (
        '{\n  "κ": 0.5,\n  "name": "évaluation"\n}'.encode())
    with pytest.raises(TypeError):
        json_bytes({"when": pd.Timestamp("2026-01-01")})


def _pairwise():
    prefs = pd.DataFrame([{"item_id": i, "dataset": "esnli", "annotator": who, "preference": pref, "a_first": 1}
                          for i, (x, y) in enumerate([("a", "a"), ("b", "tie"), ("a", "b")])
                          for who, pref in (("x", x), ("y", y))])
    return analyse_preferences(prefs, "full_ft", "att_q", study="pw", n_boot=20)


def test_both_kinds_write_their_page_in_the_one_frame(tmp_path) -> None:
    rating = analyse_export(pd.read_csv(write_ratings_csv(tmp_path / "r.csv"), keep_default_na=False), n_boot=20)
    pairwise = _pairwise()
    pages = {"rating": rating_report.outputs(rating, figures(rating))["report.html"].decode(),
             "pairwise": pairwise_report.outputs(pairwise)["report.html"].decode()}
    assert pages["rating"] == page("Report — ratings", rating_report.sections(rating, figures(rating)))
    assert pages["pairwise"] == page("Pairwise — pw", pairwise_report.sections(pairwise))
    for text in pages.values():
        assert text.startswith("<!DOCTYPE html><html><head><meta charset='utf-8'><title>")
        assert f"<style>{STYLE}</style></head><body>" in text and text.endswith("</body></html>")
    # agreement.json: one encoder for both kinds.
    assert pairwise_report.outputs(pairwise)["agreement.json"] == json_bytes(pairwise.agreement_json())
    assert rating_report.outputs(rating)["agreement.json"] == json_bytes(rating.agreement_json())


def test_table_html_shows_missing_values_as_na_and_names_its_table() -> None:
    df = pd.DataFrame({"config": ["a\u202eb"], "κ": [np.nan]})
    out = table_html(df, table_id="t1")
    assert 'class="dataframe t" id="t1"' in out and "<td>n/a</td>" in out and "\u202e" not in out


def test_write_files_creates_the_folder_and_keeps_the_order(tmp_path) -> None:
    paths = write_files({"b.txt": b"2", "a.txt": b"1"}, tmp_path / "new" / "out")
    assert [p.name for p in paths] == ["b.txt", "a.txt"] and paths[1].read_bytes() == b"1"
