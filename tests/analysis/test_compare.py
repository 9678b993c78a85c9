"""The comparison fits how the samples were chosen (Wilcoxon / Mann–Whitney), gold is a ceiling apart from every
other figure, and FEB's free-marginal Fleiss κ, each against hand-worked values or an independent oracle."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from analysis.agreement import fleiss_kappa_free_binary, fleiss_kappa_uniform, rating_codes
from analysis.compare import MIN_PAIRS, compare, paired_test
from analysis.report import analyse_export, comparison_table, outputs
from analysis.tables import GOLD_ROW

SCORE = {"yes": 1.0, "weak_yes": 2 / 3, "weak_no": 1 / 3, "no": 0.0}
ANSWERS = list(SCORE)
COMPARISON_KEYS = {"a", "b", "test", "statistic", "p_value", "n_a", "n_b", "mean_a", "mean_b", "n_pairs", "wins_a",
                   "ties", "wins_b", "paired"}


def study(samples: dict[str, list[str]], seed: int = 0, annotators: tuple[str, ...] = ("alice", "bob")) -> pd.DataFrame:
    """Export-shaped ratings: every annotator rates every sample listed for each configuration, at random."""
    rng = np.random.default_rng(seed)
    rows = [{"dataset": "esnli", "sample_id": s, "config": config, "annotator": who,
             "rating": ANSWERS[int(rng.integers(0, 4))], "tags": ""}
            for config, ids in samples.items() for s in ids for who in annotators]
    return pd.DataFrame(rows)


def per_sample(frame: pd.DataFrame, config: str) -> pd.Series:
    f = frame[frame["config"] == config]
    return f.assign(score=f["rating"].map(SCORE)).groupby("sample_id")["score"].mean()


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks and the sizes of the tie groups."""
    ranks = pd.Series(values).rank(method="average").to_numpy()
    ties = pd.Series(values).value_counts().to_numpy()
    return ranks, ties


def wilcoxon_by_formula(d: np.ndarray) -> tuple[float, float]:
    """Two-sided signed-rank test, zeros dropped, normal approximation with the tie term, no continuity
    correction — written out so that the expected p does not depend on any SciPy version."""
    d = np.round(d[np.round(d, 12) != 0], 12)
    n = len(d)
    r, ties = _ranks(np.abs(d))
    t = min(r[d > 0].sum(), r[d < 0].sum())
    var = n * (n + 1) * (2 * n + 1) / 24 - (ties**3 - ties).sum() / 48
    z = (t - n * (n + 1) / 4) / math.sqrt(var)
    return t, math.erfc(abs(z) / math.sqrt(2))


def mann_whitney_by_formula(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided U test, normal approximation with tie and continuity correction (U of x, p)."""
    n1, n2 = len(x), len(y)
    r, ties = _ranks(np.round(np.concatenate([x, y]), 12))
    u1 = r[:n1].sum() - n1 * (n1 + 1) / 2
    big_n = n1 + n2
    s = math.sqrt(n1 * n2 / 12 * ((big_n + 1) - (ties**3 - ties).sum() / (big_n * (big_n - 1))))
    z = (max(u1, n1 * n2 - u1) - n1 * n2 / 2 - 0.5) / s
    return u1, min(1.0, math.erfc(z / math.sqrt(2)))


# -- which test for which design -----------------------------------------------------------------------------------


def test_no_shared_samples_is_mann_whitney_on_all_samples() -> None:
    frame = study({"full_ft": [f"a{i}" for i in range(14)], "att_q+layer_norm": [f"b{i}" for i in range(12)]})
    a = analyse_export(frame, compare_configs=("full_ft", "att_q+layer_norm"))
    c = a.comparison
    x, y = per_sample(frame, "full_ft").to_numpy(), per_sample(frame, "att_q+layer_norm").to_numpy()
    expected = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert (c.test, c.n_a, c.n_b, c.n_pairs, c.paired) == ("mann-whitney", 14, 12, 0, None)
    assert c.p_value == pytest.approx(expected.pvalue, rel=1e-12) and c.statistic == pytest.approx(expected.statistic)
    u, p = mann_whitney_by_formula(x, y)
    assert c.statistic == pytest.approx(u) and c.p_value == pytest.approx(p, rel=1e-9)
    data = json.loads(outputs(a)["agreement.json"])["comparison"]
    assert set(data) == COMPARISON_KEYS and data["test"] == "mann-whitney" and data["paired"] is None
    assert data["p_value"] == pytest.approx(expected.pvalue) and (data["n_a"], data["n_b"]) == (14, 12)


def test_partial_overlap_reports_both_tests_and_names_the_primary() -> None:
    shared = [f"s{i}" for i in range(12)]
    frame = study({"full_ft": [*shared, "a1", "a2"], "att_q+layer_norm": [*shared, "b1", "b2", "b3"]}, seed=1)
    a = analyse_export(frame, compare_configs=("full_ft", "att_q+layer_norm"))
    c = a.comparison
    sa, sb = per_sample(frame, "full_ft"), per_sample(frame, "att_q+layer_norm")
    assert (c.test, c.n_a, c.n_b, c.n_pairs, c.only_a, c.only_b) == ("mann-whitney", 14, 15, 12, 2, 3)
    u, p = mann_whitney_by_formula(sa.to_numpy(), sb.to_numpy())
    assert c.statistic == pytest.approx(u) and c.p_value == pytest.approx(p, rel=1e-9)
    assert c.paired is not None and c.paired.n_pairs == 12 >= MIN_PAIRS
    d = (sa[shared] - sb[shared]).to_numpy()
    w, wp = wilcoxon_by_formula(d)
    assert c.paired.statistic == pytest.approx(w) and c.paired.p_value == pytest.approx(wp, rel=1e-9)
    assert c.paired.mean_a == pytest.approx(sa[shared].mean()) and c.paired.mean_b == pytest.approx(sb[shared].mean())
    # The means shown are each configuration's over all its ratings: the score table's.
    by_config = {s.key["config"]: s.mean_score for s in a.by_config}
    assert (c.mean_a, c.mean_b) == (pytest.approx(by_config["full_ft"]), pytest.approx(by_config["att_q+layer_norm"]))
    paired = json.loads(outputs(a)["agreement.json"])["comparison"]["paired"]
    assert set(paired) == {"n_pairs", "mean_a", "mean_b", "statistic", "p_value"}
    assert paired["p_value"] == pytest.approx(wp, rel=1e-9)
    table = dict(comparison_table(c).to_numpy())
    assert table["primary test, two-sided"] == f"Mann–Whitney U: U = {u:.1f}, p = {p:.4f}"
    assert table["paired subset: test, two-sided"] == f"Wilcoxon signed-rank: W = {w:.1f}, p = {wp:.4f}"
    page = outputs(a)["report.html"].decode()
    assert f"Mann–Whitney U: U = {u:.1f}, p = {p:.4f}" in page and "Wilcoxon signed-rank: W = " in page


def test_full_overlap_is_wilcoxon_on_per_sample_scores() -> None:
    ids = [f"s{i}" for i in range(15)]
    frame = study({"full_ft": ids, "att_q+layer_norm": ids}, seed=2)
    c = analyse_export(frame, compare_configs=("full_ft", "att_q+layer_norm")).comparison
    d = (per_sample(frame, "full_ft") - per_sample(frame, "att_q+layer_norm")).to_numpy()
    w, p = wilcoxon_by_formula(d)
    assert (c.test, c.n_pairs, c.only_a, c.only_b, c.note) == ("wilcoxon", 15, 0, 0, None)
    assert c.statistic == pytest.approx(w) and c.p_value == pytest.approx(p, rel=1e-9)
    assert c.paired.p_value == c.p_value and c.mean_diff == pytest.approx(d.mean())
    assert c.mean_diff_ci.low <= c.mean_diff <= c.mean_diff_ci.high


def test_tied_signed_ranks_use_the_normal_approximation_whatever_scipy_defaults_to() -> None:
    # |d| has ties, so the exact null distribution does not apply: the tie-corrected normal approximation.
    d = np.array([1, 1, 1, 2, 2, -1, 3, 3, 3, 3, -2, 1, 2, 2]) / 6
    stat, p, _ = paired_test(d)
    w, expected = wilcoxon_by_formula(d)
    # ranks of |d|: five 1s → 3, five 2s → 8, four 3s → 12.5; W− = 3 + 8 = 11, W+ = 105 − 11 = 94
    assert stat == w == 11 and p == pytest.approx(expected, rel=1e-12)


def test_unknown_or_gold_configuration_to_compare_is_an_error() -> None:
    frame = study({"full_ft": ["s1", "s2"], "att_q+layer_norm": ["s1", "s2"], "gold": ["s1"]})
    with pytest.raises(ValueError, match=r"unknown configuration 'full_tf' to compare; the study's configurations: "
                                         r"att_q\+layer_norm, full_ft$"):
        analyse_export(frame, compare_configs=("full_ft", "full_tf"))
    with pytest.raises(ValueError, match="human ceiling, not a configuration"):
        analyse_export(frame, compare_configs=("gold", "full_ft"))
    a = analyse_export(frame)
    with pytest.raises(ValueError, match="human ceiling"):
        compare(a.prepared, "full_ft", "gold")


# -- gold is a ceiling -----------------------------------------------------------------------------------------------


def test_gold_is_excluded_from_overall_and_reported_as_the_ceiling() -> None:
    rows = [("s1", "full_ft", "yes", "weak_no"), ("s2", "full_ft", "no", "weak_yes"),
            ("s1", "gold", "yes", "yes"), ("s2", "gold", "yes", "weak_yes")]
    frame = pd.DataFrame([{"dataset": "esnli", "sample_id": s, "config": c, "annotator": who, "rating": r, "tags": ""}
                          for s, c, ra, rb in rows for who, r in (("alice", ra), ("bob", rb))])
    a = analyse_export(frame)
    # full_ft only: (1 + 1/3 + 0 + 2/3) / 4 = 0.5; pooled with gold it would be (2 + 11/3) / 8 = 17/24.
    assert a.overall.mean_score == pytest.approx(0.5) and a.overall.n == 4
    assert [s.mean_score for s in a.by_dataset] == [pytest.approx(0.5)]
    assert [s.key["config"] for s in a.by_config] == ["full_ft"]
    assert all(s.key["config"] != "gold" for s in a.cells)
    # gold: (1 + 1 + 1 + 2/3) / 4 = 11/12
    assert a.gold_overall.mean_score == pytest.approx(11 / 12)
    assert [(s.key["dataset"], s.mean_score) for s in a.gold_by_dataset] == [("esnli", pytest.approx(11 / 12))]
    table = a.score_table()
    assert list(table.index) == ["full_ft", "all configurations", GOLD_ROW]
    assert table.loc["all configurations", "average"].startswith("50.0 (")
    assert table.loc[GOLD_ROW, "average"].startswith("91.7 (")
    files = outputs(a)
    data = json.loads(files["agreement.json"])
    assert data["overall"]["mean_score"] == pytest.approx(0.5)
    assert data["gold"]["overall"]["mean_score"] == pytest.approx(11 / 12)
    assert [d["dataset"] for d in data["gold"]["by_dataset"]] == ["esnli"]
    scores = pd.read_csv(pd.io.common.BytesIO(files["scores.csv"]), keep_default_na=False)
    assert scores[scores["level"] == "gold"]["config"].tolist() == ["gold", "gold"]
    assert "human ceiling" in files["report.html"].decode()


def test_no_gold_means_no_gold_block() -> None:
    a = analyse_export(study({"full_ft": ["s1", "s2"]}))
    assert a.gold_overall is None and json.loads(outputs(a)["agreement.json"])["gold"] is None
    assert GOLD_ROW not in a.score_table().index


# -- FEB's κ ---------------------------------------------------------------------------------------------------------

# Three raters, four items with three ratings, one with two and one with one (-1: not rated).
THREE = [["yes", "weak_yes", "yes"],  # binary P P P → 3 positive
         ["yes", "weak_no", "no"],  # P N N → 1 positive
         ["no", "no", "weak_no"],  # N N N → 0 positive
         ["weak_yes", "weak_no", "yes"],  # P N P → 2 positive
         ["yes", "no", None],  # two ratings: not the most common number, left out
         [None, "no", None]]  # one rating: left out


def _units(rows: list[list[str | None]]) -> np.ndarray:
    return np.array([[-1 if r is None else int(rating_codes([r])[0]) for r in row] for row in rows])


def test_feb_kappa_by_hand() -> None:
    # Most common number of ratings per item: 3 (four items). Per item, agreeing ordered pairs of ratings:
    #   (3 P, 0 N): (3·2 + 0) / (3·2) = 1;  (1, 2): (0 + 2·1) / 6 = 1/3;  (0, 3): 1;  (2, 1): (2·1 + 0) / 6 = 1/3
    # P̄ = (1 + 1/3 + 1 + 1/3) / 4 = 2/3; chance (uniform, two classes) = 1/2; κ = (2/3 − 1/2) / (1/2) = 1/3
    got = fleiss_kappa_free_binary(_units(THREE))
    assert got.value == pytest.approx(1 / 3) and got.n == 4 and got.reason is None
    assert fleiss_kappa_uniform(np.array([[3, 0], [1, 2], [0, 3], [2, 1]])).value == pytest.approx(1 / 3)


def test_feb_kappa_in_every_group_of_agreement_json() -> None:
    frame = pd.DataFrame([{"dataset": "esnli", "sample_id": str(i), "config": "full_ft", "annotator": who,
                           "rating": r, "tags": ""}
                          for i, row in enumerate(THREE) for who, r in zip("abc", row, strict=True) if r])
    a = analyse_export(frame)
    data = json.loads(outputs(a)["agreement.json"])
    for group in [data["overall"], *data["cells"], *data["by_dataset"], *data["by_config"]]:
        assert group["fleiss_kappa_free_binary"] == pytest.approx(1 / 3) and group["n_items_fleiss"] == 4
    scores = pd.read_csv(pd.io.common.BytesIO(outputs(a)["scores.csv"]))
    assert scores["fleiss_kappa_free_binary"].tolist() == pytest.approx([1 / 3] * 4)


@pytest.mark.parametrize("rows, n, reason", [
    ([["yes", "no", None], ["no", "no", "no"], ["yes", "yes", "no"], ["no", "yes", None]], 2, None),  # tie 2 vs 3: 3
    ([["yes", None], [None, "no"], ["yes", "no"]], 0, "undefined: most items have a single rating"),
    ([[None, None]], 0, "undefined: no rated item"),
])
def test_feb_kappa_item_selection(rows, n: int, reason: str | None) -> None:
    got = fleiss_kappa_free_binary(_units(rows))
    assert got.n == n and got.reason == reason


@pytest.mark.parametrize("seed, raters", [(0, 2), (1, 3), (2, 5)])
def test_feb_kappa_matches_statsmodels(seed: int, raters: int) -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    codes = np.random.default_rng(seed).integers(0, 4, (40, raters))
    positive = (codes <= 1).sum(axis=1)
    table = np.stack([positive, raters - positive], axis=1)
    expected = inter_rater.fleiss_kappa(table, method="uniform")
    assert fleiss_kappa_free_binary(codes).value == pytest.approx(expected, abs=1e-12)
