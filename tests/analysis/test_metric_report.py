"""The metric–human correlations wired into the report: agreement.json's `metric_correlation` and
`metric_correlation_system` equal SciPy's spearmanr / kendalltau on the same items, report.html's section and
figure, `nle-report --metric-resamples`, and nothing at all for a study without metric scores."""

from __future__ import annotations

import csv
import json
import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from analysis import cli as report_cli
from analysis import metric_correlation
from analysis.metric_correlation import rank_correlation
from analysis.report import build_report, figures
from annotate.core.scale import SCORES
from annotate.core.store import Store
from tests.helpers import nle

DATASETS = ("esnli", "ecqa")
CONFIGS = ("full_ft", "att_q+layer_norm", "bitfit")
ANSWERS = ("yes", "weak_yes", "weak_no", "no")


def build_study(store: Store, write_jsonl, tmp_path: Path, *, metrics: bool = True,
                configs: tuple[str, ...] = CONFIGS) -> dict[tuple[str, str, str], dict]:
    """2 datasets x configs x 9 samples; metrics with ties (bleu on a coarse grid); some items rated once, some
    never; rated gold items and a rated attention check with extreme scores that would move every figure if they
    counted. Returns each line by key with its ratings."""
    rng = random.Random(7)
    lines, ratings = [], {}
    for d in DATASETS:
        for c in configs:
            for s in range(9):
                score = {"bertscore_f1": round(rng.random(), 6), "bleu": float(rng.randrange(4) * 10)}
                lines.append(nle(d, f"{d}{s}", c, explanation=f"{d} {s} {c}", metrics=score if metrics else None))
                if s == 8:
                    continue  # never rated: not counted
                who = ("alice",) if s == 7 else ("alice", "bob")
                ratings[(d, f"{d}{s}", c)] = {a: rng.choice(ANSWERS) for a in who}
        lines.append(nle(d, f"{d}0", "gold", explanation="gold", metrics={"bertscore_f1": 99.0, "bleu": -50.0}
                         if metrics else None))
        ratings[(d, f"{d}0", "gold")] = {"alice": "yes", "bob": "yes"}
    lines.append(nle("esnli", "check", "full_ft", expected_rating="no", metrics={"bertscore_f1": -9.0, "bleu": 900.0}
                     if metrics else None))
    store.import_nles(write_jsonl(lines), "m")
    path = tmp_path / "ratings.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "sample_id", "config", "annotator", "rating"])
        for (d, s, c), by in [*ratings.items(), (("esnli", "check", "full_ft"), {"alice": "yes", "bob": "yes"})]:
            for a, r in by.items():
                w.writerow([d, s, c, a, r])
    store.import_ratings(path, "m")
    by_key = {(ln["dataset"], ln["sample_id"], ln["config"]): ln for ln in lines}
    return {k: {**by_key[k], "ratings": v} for k, v in ratings.items()}


def human_mean(answers: dict[str, str]) -> float:
    """The mean score by exact fractions: the oracle's own, not the report's arithmetic."""
    return float(sum(SCORES[a] for a in answers.values()) / Fraction(len(answers)))


def oracle_points(items: dict, metric: str, dataset: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    keys = sorted((k for k in items if k[2] != "gold" and (dataset == "overall" or k[0] == dataset)),
                  key=lambda k: list(items).index(k))
    return (np.array([human_mean(items[k]["ratings"]) for k in keys]),
            np.array([items[k]["metrics"][metric] for k in keys]), [k[2] for k in keys])


@pytest.fixture
def study(store: Store, write_jsonl, tmp_path: Path) -> tuple[Store, dict]:
    return store, build_study(store, write_jsonl, tmp_path)


def test_agreement_json_equals_scipy_on_the_same_items(study: tuple[Store, dict], tmp_path: Path) -> None:
    store, items = study
    build_report(store, "m", out_dir=tmp_path / "out", png=False, seed=4, metric_resamples=300)
    data = json.loads((tmp_path / "out" / "agreement.json").read_text())
    rows = data["metric_correlation"]
    assert [(r["metric"], r["dataset"]) for r in rows] == [
        (m, d) for m in ("bertscore_f1", "bleu") for d in ("ecqa", "esnli", "overall")]
    for r in rows:
        assert set(r) == {"metric", "dataset", "n", "spearman", "spearman_ci", "kendall", "kendall_ci", "undefined"}
        x, y, _ = oracle_points(items, r["metric"], r["dataset"])
        assert r["n"] == len(x) == (48 if r["dataset"] == "overall" else 24)  # no gold, no check, no unrated item
        assert r["spearman"] == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
        assert r["kendall"] == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
        assert r["undefined"] is None
        # The interval is the bootstrap of those very items in item order, from the report's seed.
        expected = rank_correlation(x, y, n_resamples=300, seed=4)
        assert r["spearman_ci"] == pytest.approx(list(expected.spearman_ci), abs=1e-12)
        assert r["kendall_ci"] == pytest.approx(list(expected.kendall_ci), abs=1e-12)
        assert -1 <= r["spearman_ci"][0] <= r["spearman"] <= r["spearman_ci"][1] <= 1
    system = data["metric_correlation_system"]
    assert [(r["metric"], r["dataset"]) for r in system] == [(r["metric"], r["dataset"]) for r in rows]
    for r in system:
        _, _, configs = oracle_points(items, r["metric"], r["dataset"])
        names = sorted(set(configs))
        keys = [k for k in items if k[2] != "gold" and r["dataset"] in ("overall", k[0])]
        # Exact means (fractions), so that configurations with equal means tie as they should.
        hx = [float(np.mean([sum(SCORES[a] for a in items[k]["ratings"].values())
                             / Fraction(len(items[k]["ratings"])) for k in keys if k[2] == n])) for n in names]
        my = [float(np.mean([Fraction(items[k]["metrics"][r["metric"]]) for k in keys if k[2] == n])) for n in names]
        assert (r["configurations"], r["n"], r["undefined"]) == (names, 3, None)
        assert r["spearman"] == pytest.approx(spearmanr(hx, my).statistic, abs=1e-12)
        assert r["kendall"] == pytest.approx(kendalltau(hx, my).statistic, abs=1e-12)


def test_report_html_has_the_section_tables_and_scatter(study: tuple[Store, dict], tmp_path: Path) -> None:
    store, _ = study
    result = build_report(store, "m", out_dir=tmp_path / "out", png=False, metric_resamples=50)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<h2 id='metric-correlation'>Automatic metrics and the ratings</h2>" in html
    assert "id=\"metric-table\"" in html and "id=\"metric-system-table\"" in html
    assert "Bootstrap: 50 resamples, 95 % percentile interval, seed 0." in html
    assert "id=\"fig-metric_correlation\"" in html
    assert html.index("metric-correlation") < html.index("Disagreements and adjudication")
    fig = figures(result.analysis)["metric_correlation"]
    # One panel per metric, one trace per dataset in each; every counted item drawn once per metric.
    assert [a.text for a in fig.layout.annotations] == ["bertscore_f1", "bleu"]
    assert sum(len(t.x) for t in fig.data) == 2 * 48
    assert sorted({t.name for t in fig.data}) == sorted(DATASETS)
    # A dataset has one colour in every panel, and one legend entry.
    assert {(t.name, t.marker.color) for t in fig.data} == {(d, fig.data[i].marker.color) for i, d in
                                                            enumerate(sorted(DATASETS))}
    assert len({t.marker.color for t in fig.data}) == 2 and sum(bool(t.showlegend) for t in fig.data) == 2


def test_two_configurations_give_no_system_figure_and_say_why(store: Store, write_jsonl, tmp_path: Path) -> None:
    build_study(store, write_jsonl, tmp_path, configs=CONFIGS[:2])
    build_report(store, "m", out_dir=tmp_path / "out", png=False, metric_resamples=0)
    data = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert all(r["undefined"] == "fewer than 3 configurations (2)" and r["spearman"] is None
               for r in data["metric_correlation_system"])
    # 0 resamples: point estimates without intervals.
    assert all(r["spearman"] is not None and r["spearman_ci"] is None and r["kendall_ci"] is None
               for r in data["metric_correlation"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Fewer than 3 configurations: no system-level correlation." in html
    assert "metric-system-table" not in html and "No intervals: 0 bootstrap resamples were asked for." in html


def test_a_study_without_metric_scores_has_no_section_key_or_figure(store: Store, write_jsonl,
                                                                    tmp_path: Path) -> None:
    build_study(store, write_jsonl, tmp_path, metrics=False)
    result = build_report(store, "m", out_dir=tmp_path / "out", png=False)
    assert result.analysis.metrics is None
    data = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert not {k for k in data if k.startswith("metric")}
    assert "metric-correlation" not in (tmp_path / "out" / "report.html").read_text()
    assert "metric_correlation" not in figures(result.analysis)


def test_scores_only_on_unrated_items_give_a_note_and_empty_lists(store: Store, write_jsonl,
                                                                   tmp_path: Path) -> None:
    build_study(store, write_jsonl, tmp_path, metrics=False)
    store.import_nles(write_jsonl([nle("esnli", "fresh", "full_ft", metrics={"bleu": 1.0})], "more.jsonl"), "m")
    result = build_report(store, "m", out_dir=tmp_path / "out", png=False)
    data = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert data["metric_correlation"] == [] and data["metric_correlation_system"] == []
    assert "No rated item has a metric score yet" in (tmp_path / "out" / "report.html").read_text()
    assert "metric_correlation" not in figures(result.analysis)


def test_the_scatter_draws_a_random_sample_of_a_large_study_and_says_so(study: tuple[Store, dict], tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = study
    monkeypatch.setattr(metric_correlation, "MAX_SCATTER_POINTS", 10)
    result = build_report(store, "m", out_dir=tmp_path / "out", png=False, metric_resamples=0)
    fig = figures(result.analysis)["metric_correlation"]
    assert [a.text for a in fig.layout.annotations] == [
        "bertscore_f1 (10 of 48 items, drawn at random)", "bleu (10 of 48 items, drawn at random)"]
    assert sum(len(t.x) for t in fig.data) == 20
    # The statistics still use every item.
    assert [r["n"] for r in result.analysis.metrics.rows if r["dataset"] == "overall"] == [48, 48]


def test_hostile_metric_names_show_literally(store: Store, write_jsonl, tmp_path: Path) -> None:
    name = "<img src=x onerror=alert(1)>"
    store.import_nles(write_jsonl([nle("esnli", str(s), "full_ft", metrics={name: float(s)}) for s in range(4)]),
                      "h")
    path = tmp_path / "r.csv"
    path.write_text("dataset,sample_id,config,annotator,rating\n"
                    + "".join(f"esnli,{s},full_ft,alice,{ANSWERS[s]}\n" for s in range(4)))
    store.import_ratings(path, "h")
    result = build_report(store, "h", out_dir=tmp_path / "out", png=False, metric_resamples=0)
    html = (tmp_path / "out" / "report.html").read_text()
    assert name not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    fig = figures(result.analysis)["metric_correlation"]
    assert fig.layout.annotations[0].text == "&lt;img src=x onerror=alert(1)&gt;"
    assert fig.layout.xaxis.title.text == "&lt;img src=x onerror=alert(1)&gt;"


def test_cli_metric_resamples(study: tuple[Store, dict], db_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert report_cli.main(["--db", str(db_path), "--out", str(out), "--metric-resamples", "0"]) == 0
    assert "metric scores against the ratings: bertscore_f1, bleu (0 bootstrap resamples)" in capsys.readouterr().out
    data = json.loads((out / "agreement.json").read_text())
    assert all(r["spearman_ci"] is None for r in data["metric_correlation"])
    bad = tmp_path / "bad"
    assert report_cli.main(["--db", str(db_path), "--out", str(bad), "--metric-resamples", "-1"]) == 2
    assert capsys.readouterr().err == "error: --metric-resamples must be 0 or more, got -1\n"
    assert not bad.exists()


def test_the_demo_study_shows_its_illustrative_scores_once_rated(demo_store: Store, tmp_path: Path) -> None:
    from annotate.core.demo import DEMO_STUDY, FEB_EXAMPLE_STUDY

    scores = demo_store.metrics_frame(DEMO_STUDY)
    assert len(scores) == 40 and set(scores["metric"]) == {"token_f1"} and not scores["is_gold_reference"].any()
    assert demo_store.metrics_frame(FEB_EXAMPLE_STUDY).empty  # FEB published ratings, not metric scores
    items = demo_store.items_frame(DEMO_STUDY)
    rng = random.Random(1)
    path = tmp_path / "demo_ratings.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "sample_id", "config", "annotator", "rating"])
        for r in items.itertuples():
            for who in ("alice", "bob"):
                w.writerow([r.dataset, r.sample_id, r.config, who, rng.choice(ANSWERS)])
    demo_store.import_ratings(path, DEMO_STUDY)
    result = build_report(demo_store, DEMO_STUDY, out_dir=tmp_path / "out", png=False, metric_resamples=100)
    rows = result.analysis.metrics.rows
    assert [(r["dataset"], r["n"]) for r in rows] == [
        ("comve", 10), ("ecqa", 10), ("esnli", 10), ("sbic", 10), ("overall", 40)]
    assert all(r["undefined"] == "fewer than 3 configurations (2)" for r in result.analysis.metrics.system)
