"""The Analysis page's *Automatic metrics* section through Streamlit's runtime (AppTest): the same tables and figure as
the report, and only when the study has metric scores."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.literal import literal_frame
from analysis.metric_correlation import metric_report
from analysis.report import analyse_store
from analysis.report import metrics as metrics_display
from analysis.report.metrics import correlation_table, system_table
from annotate.core.store import Store
from tests.analysis.test_analysis_pages import PASSWORD, frame_with, page, pilot  # noqa: F401 (a fixture)
from tests.analysis.test_metric_report import build_study


@pytest.fixture
def metric_study(monkeypatch: pytest.MonkeyPatch, store: Store, db_path: Path, write_jsonl, tmp_path: Path) -> Store:
    """The app's database holds a rated study with two metrics over three configurations."""
    monkeypatch.setenv("NLE_DB", str(db_path))
    monkeypatch.setenv("NLE_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("NLE_DEMO", raising=False)
    build_study(store, write_jsonl, tmp_path)
    return store


def test_analysis_page_shows_the_metric_tables_and_scatter(metric_study: Store) -> None:
    at = page("results")
    assert not at.exception
    assert "Automatic metrics" in [h.value for h in at.subheader]
    at.number_input(key="metric_resamples").set_value(200).run()
    assert not at.exception
    a = analyse_store(metric_study, "m")
    report = metric_report(a.prepared, metric_study.metrics_frame("m"), n_resamples=200, seed=0)
    shown = frame_with(at, "Spearman ρ [95 % CI]")
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), literal_frame(correlation_table(report)),
                                  check_column_type=False)
    assert shown["dataset"].tolist() == ["ecqa", "esnli", "overall"] * 2
    pd.testing.assert_frame_equal(frame_with(at, "configurations").reset_index(drop=True),
                                  literal_frame(system_table(report)), check_column_type=False)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    scatter = next(c for c in charts if c["layout"]["title"]["text"].startswith("Automatic metrics"))
    assert sorted({t["name"] for t in scatter["data"]}) == ["ecqa", "esnli"]
    assert [a["text"] for a in scatter["layout"]["annotations"]] == ["bertscore_f1", "bleu"]


def test_analysis_page_has_no_metric_section_without_metric_scores(pilot: Store) -> None:  # noqa: F811
    at = page("results")
    assert not at.exception
    assert "Automatic metrics" not in [h.value for h in at.subheader]
    assert not any("Spearman" in " ".join(map(str, d.value.columns)) for d in at.dataframe)


def test_a_large_study_starts_with_fewer_resamples_and_says_so(metric_study: Store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = page("results")
    assert at.number_input(key="metric_resamples").value == 1000
    # The threshold lowered so that this small study counts as large (the page reads it at run time).
    monkeypatch.setattr(metrics_display, "LARGE_STUDY_SCORES", 10)
    at = page("results")
    assert at.number_input(key="metric_resamples").value == 100
    assert any("100 resamples to start with" in c.value for c in at.caption)
