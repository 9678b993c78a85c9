"""Metric–human rank correlations: SciPy's spearmanr / kendalltau (τ-b) and bootstrap as oracles, hand-worked
values, exact errors, undefined results instead of warnings, and the per-dataset rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.metric_correlation import (
    MIN_ITEMS,
    OVERALL,
    Correlation,
    _RankPairs,
    metric_correlation_rows,
    rank_correlation,
    system_correlation,
    system_correlation_rows,
)


def _scipy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return stats.spearmanr(x, y).statistic, stats.kendalltau(x, y, variant="b").statistic


# Human means on a coarse grid (as 2-3 annotators' averages are) against metrics with and without ties.
def _data(rng: np.random.Generator, n: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 7, n) / 6 if kind != 2 else rng.normal(size=n)
    y = x + rng.normal(scale=0.5, size=n) if kind == 0 else rng.integers(0, 40, n).astype(float)
    return x, y


@pytest.mark.parametrize("n", [3, 5, 16, 17, 40, 257, 1000])
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_point_estimates_equal_scipy(n: int, kind: int) -> None:
    rng = np.random.default_rng(n * 10 + kind)
    x, y = _data(rng, n, kind)
    if np.all(x == x[0]) or np.all(y == y[0]):
        x[0], y[0] = x[0] + 1, y[0] + 1
    got = rank_correlation(x, y, n_resamples=0)
    rho, tau = _scipy(x, y)
    assert (got.n, got.undefined, got.spearman_ci, got.kendall_ci) == (n, None, None, None)
    assert got.spearman == pytest.approx(rho, abs=1e-12) and got.kendall == pytest.approx(tau, abs=1e-12)


@pytest.mark.parametrize("n", [4, 16, 31, 100, 1023, 4099, 40_000])  # 40,000: 64-bit counts
def test_each_resample_equals_scipy_on_the_resampled_arrays(n: int) -> None:
    rng = np.random.default_rng(n)
    for kind in range(3):
        x, y = _data(rng, n, kind)
        picks = rng.integers(0, n, (3, n))
        rho, tau = _RankPairs(x, y).resampled(picks)
        for b in range(3):
            xs, ys = x[picks[b]], y[picks[b]]
            if np.all(xs == xs[0]) or np.all(ys == ys[0]):
                assert math.isnan(rho[b]) and math.isnan(tau[b])
                continue
            expected = _scipy(xs, ys)
            assert (rho[b], tau[b]) == (pytest.approx(expected[0], abs=1e-12), pytest.approx(expected[1], abs=1e-12))


@pytest.mark.parametrize(("x", "y", "rho", "tau"), [
    # Σd² = 4: ρ = 1 - 6·4/(5·24) = 0.8; concordant 8, discordant 2 of 10 pairs: τ = 0.6
    ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8, 0.6),
    ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], -1.0, -1.0),
    # ties: mid-ranks x (1.5, 1.5, 3, 4), y (1, 2.5, 2.5, 4), centred on 2.5: Σxy 3.75, Σx² = Σy² = 4.5: ρ = 5/6;
    # 4 concordant, 0 discordant, 6 pairs with 1 tied in x and 1 in y: τ-b = 4/√(5·5) = 0.8
    ([1, 1, 2, 3], [1, 2, 2, 3], 5 / 6, 0.8),
    # one item out of order among three: ρ = 1 - 6·2/(3·8) = 0.5, τ = (2 - 1)/3
    ([0.0, 1 / 3, 2 / 3], [0.2, 0.9, 0.5], 0.5, 1 / 3),
])
def test_hand_worked_values(x: list[float], y: list[float], rho: float, tau: float) -> None:
    got = rank_correlation(x, y, n_resamples=0)
    assert got.spearman == pytest.approx(rho, abs=1e-15) and got.kendall == pytest.approx(tau, abs=1e-15)


@pytest.mark.parametrize(("x", "y", "why"), [
    ([0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4], "the human scores are constant"),
    ([0.0, 0.5, 1.0], [0.9, 0.9, 0.9], "the metric values are constant"),
    ([1, 1, 1], [2, 2, 2], "the human scores and the metric values are constant"),
])
def test_constant_input_is_undefined_not_a_warning(x: list[float], y: list[float], why: str) -> None:
    """SciPy returns NaN with a warning (an error under this suite's settings); here it is a result."""
    with pytest.warns(stats.ConstantInputWarning):
        assert math.isnan(stats.spearmanr(x, y).statistic)
    got = rank_correlation(x, y)
    assert got == Correlation(len(x), None, None, undefined=why, n_resamples=1000)
    assert system_correlation(x, y) == Correlation(len(x), None, None, undefined=why)


@pytest.mark.parametrize(("human", "metric", "kwargs", "message"), [
    ([1, 2, 3], [1, 2], {}, "human and metric differ in length: 3 and 2"),
    ([1, 2], [1, 2], {}, f"a rank correlation needs at least {MIN_ITEMS} items, got 2"),
    ([], [], {}, f"a rank correlation needs at least {MIN_ITEMS} items, got 0"),
    ([1, 2, float("nan")], [1, 2, 3], {}, "human[2] is nan, not a finite number"),
    ([1, 2, 3], [1, float("inf"), 3], {}, "metric[1] is inf, not a finite number"),
    ([True, False, True], [1, 2, 3], {}, "human must hold numbers, got dtype bool"),
    (["1", "2", "3"], [1, 2, 3], {}, "human must hold numbers, got dtype <U1"),
    ([[1, 2], [3, 4]], [1, 2], {}, "human must be one-dimensional, got shape (2, 2)"),
    ([1, 2, 3], [1, 2, 3], {"n_resamples": -1}, "n_resamples must be a non-negative integer, got -1"),
    ([1, 2, 3], [1, 2, 3], {"n_resamples": 10.0}, "n_resamples must be a non-negative integer, got 10.0"),
    ([1, 2, 3], [1, 2, 3], {"n_resamples": True}, "n_resamples must be a non-negative integer, got True"),
    ([1, 2, 3], [1, 2, 3], {"confidence_level": 1}, "confidence_level must be between 0 and 1 (exclusive), got 1"),
    ([1, 2, 3], [1, 2, 3], {"confidence_level": 95}, "confidence_level must be between 0 and 1 (exclusive), got 95"),
    ([1, 2, 3], [1, 2, 3], {"batch": 0}, "batch must be a positive integer or None, got 0"),
])
def test_bad_input_is_an_exact_error(human: object, metric: object, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        rank_correlation(human, metric, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("batch", [7, 64, 300])
def test_bootstrap_interval_equals_scipy_bootstrap(batch: int) -> None:
    """The same resamples as SciPy's paired percentile bootstrap given the same generator and batch."""
    rng = np.random.default_rng(3)
    x, y = _data(rng, 60, 0)
    got = rank_correlation(x, y, n_resamples=300, seed=11, batch=batch)
    assert (got.n_resamples, got.resamples_defined) == (300, 300)
    for name, index in (("spearman", 0), ("kendall", 1)):
        oracle = stats.bootstrap((x, y), lambda a, b, i=index: _scipy(a, b)[i], paired=True, vectorized=False,
                                 n_resamples=300, batch=batch, method="percentile", rng=np.random.default_rng(11))
        low, high = getattr(got, f"{name}_ci")
        assert low == pytest.approx(oracle.confidence_interval.low, abs=1e-12)
        assert high == pytest.approx(oracle.confidence_interval.high, abs=1e-12)


def test_bootstrap_is_deterministic_under_its_seed() -> None:
    rng = np.random.default_rng(0)
    x, y = _data(rng, 200, 0)
    first, again, other = (rank_correlation(x, y, n_resamples=500, seed=s) for s in (1, 1, 2))
    assert first == again
    assert first.spearman == other.spearman and first.spearman_ci != other.spearman_ci
    assert first.spearman_ci[0] < first.spearman < first.spearman_ci[1]
    assert first.kendall_ci[0] < first.kendall < first.kendall_ci[1]


def test_bootstrap_interval_covers_the_true_correlation() -> None:
    """Bivariate normal with r = 0.6: Spearman's ρ is (6/π) asin(r/2) and Kendall's τ (2/π) asin(r). Over 200
    samples of 150 items the 95 % intervals cover them about 95 % of the time (resampling items, pairs kept)."""
    r = 0.6
    true_rho, true_tau = 6 / math.pi * math.asin(r / 2), 2 / math.pi * math.asin(r)
    rng = np.random.default_rng(2024)
    covered = np.zeros(2)
    widths = []
    for k in range(200):
        x, y = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=150).T
        got = rank_correlation(x, y, n_resamples=400, seed=k)
        covered += [got.spearman_ci[0] <= true_rho <= got.spearman_ci[1],
                    got.kendall_ci[0] <= true_tau <= got.kendall_ci[1]]
        widths.append(got.spearman_ci[1] - got.spearman_ci[0])
    assert 0.89 <= covered[0] / 200 <= 0.99 and 0.89 <= covered[1] / 200 <= 0.99
    # the interval's width is the sampling spread of ρ (about 2·1.96·(1-ρ²)/√n here), not a resample artefact
    assert 0.15 < float(np.mean(widths)) < 0.35


def test_resamples_where_a_side_is_constant_are_left_out_of_the_interval() -> None:
    x = [0, 0, 0, 0, 0, 0, 1.0]  # most resamples of seven items miss the one that differs
    y = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9]
    got = rank_correlation(x, y, n_resamples=1000, seed=0)
    expected_defined = 1000 * (1 - (6 / 7) ** 7)  # ≈ 659
    assert abs(got.resamples_defined - expected_defined) < 50
    assert got.spearman_ci is not None and -1 <= got.spearman_ci[0] <= got.spearman_ci[1] <= 1


def test_system_correlation_over_configuration_means() -> None:
    got = system_correlation([0.9, 0.7, 0.6, 0.8], [0.88, 0.80, 0.81, 0.90])  # ranks (4,2,1,3) and (3,1,2,4)
    assert got == Correlation(4, pytest.approx(0.6), pytest.approx(1 / 3))  # Σd² 4; 4 concordant, 2 discordant
    assert system_correlation([0.9, 0.7], [0.88, 0.80]) == Correlation(
        2, None, None, undefined="fewer than 3 configurations (2)")
    with pytest.raises(ValueError, match=r"^human and metric differ in length: 3 and 4$"):
        system_correlation([1, 2, 3], [1, 2, 3, 4])


def _table() -> tuple[pd.DataFrame, pd.Series]:
    """Two datasets, three configurations, two metrics; a gold reference item, an attention check and an
    unrated item that must not count; `bleu` on esnli only for two items."""
    rng = np.random.default_rng(7)
    rows, human = [], {}
    item = 0
    for dataset in ("esnli", "comve"):
        for config in ("full_ft", "att_q+layer_norm", "lora"):
            for _ in range(12):
                item += 1
                human[item] = rng.integers(0, 7) / 6
                rows.append((item, dataset, config, False, False, "bertscore_f1", human[item] + rng.normal(0, 0.3)))
    for extra, gold, check in ((900, True, False), (901, False, True), (902, False, False)):
        rows.append((extra, "esnli", "gold" if gold else "full_ft", gold, check, "bertscore_f1", 5.0))
        if extra != 902:
            human[extra] = 1.0
    rows += [(1, "esnli", "full_ft", False, False, "bleu", 10.0), (2, "esnli", "full_ft", False, False, "bleu", 20.0)]
    table = pd.DataFrame(rows, columns=["item_id", "dataset", "config", "is_gold_reference", "is_attention_check",
                                        "metric", "value"])
    return table, pd.Series(human)


def test_rows_per_dataset_and_overall_equal_scipy_on_the_items_that_count() -> None:
    table, human = _table()
    rows = metric_correlation_rows(table, human, n_resamples=200, seed=5)
    assert [(r["metric"], r["dataset"], r["n"]) for r in rows] == [
        ("bertscore_f1", "comve", 36), ("bertscore_f1", "esnli", 36), ("bertscore_f1", OVERALL, 72),
        ("bleu", "esnli", 2), ("bleu", OVERALL, 2)]
    counted = table[(table.item_id < 900) & (table.metric == "bertscore_f1")]
    for row in rows[:3]:
        assert set(row) == {"metric", "dataset", "n", "spearman", "spearman_ci", "kendall", "kendall_ci", "undefined"}
        part = counted if row["dataset"] == OVERALL else counted[counted.dataset == row["dataset"]]
        rho, tau = _scipy(human[part.item_id].to_numpy(), part.value.to_numpy())
        assert row["spearman"] == pytest.approx(rho, abs=1e-12) and row["kendall"] == pytest.approx(tau, abs=1e-12)
        same = rank_correlation(human[part.item_id].to_numpy(), part.value.to_numpy(), n_resamples=200, seed=5)
        assert row["spearman_ci"] == list(same.spearman_ci) and row["kendall_ci"] == list(same.kendall_ci)
        assert row["undefined"] is None
    assert rows[3] == {"metric": "bleu", "dataset": "esnli", "n": 2, "spearman": None, "spearman_ci": None,
                       "kendall": None, "kendall_ci": None, "undefined": "fewer than 3 items (2)"}


def test_system_rows_over_configuration_means() -> None:
    table, human = _table()
    rows = system_correlation_rows(table, human)
    esnli = rows[1]
    assert (esnli["metric"], esnli["dataset"], esnli["n"]) == ("bertscore_f1", "esnli", 3)
    assert esnli["configurations"] == ["att_q+layer_norm", "full_ft", "lora"]
    part = table[(table.item_id < 900) & (table.metric == "bertscore_f1") & (table.dataset == "esnli")]
    means = part.assign(human=human[part.item_id].to_numpy()).groupby("config")[["human", "value"]].mean()
    rho, tau = _scipy(means.human.to_numpy(), means.value.to_numpy())
    assert esnli["spearman"] == pytest.approx(rho) and esnli["kendall"] == pytest.approx(tau)
    assert rows[3]["undefined"] == "fewer than 3 configurations (1)"


def test_configuration_means_equal_as_fractions_tie() -> None:
    """Item means 0, 0, 5/6 and 0, 1/6, 2/3 (two ratings each) both average 5/18, but 0.2777777777777778 and
    0.27777777777777773 in floating point: the two configurations are tied, and the ranks must say so as the exact
    means do."""
    sixths = {1: 0, 2: 0, 3: 5, 4: 0, 5: 1, 6: 4, 7: 6, 8: 6, 9: 6}
    human = pd.Series({i: k / 6 for i, k in sixths.items()})
    config = {1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "c", 8: "c", 9: "c"}
    metric = {"a": 0.1, "b": 0.2, "c": 0.3}
    table = pd.DataFrame([(i, "esnli", c, False, False, "bleu", metric[c]) for i, c in config.items()],
                         columns=["item_id", "dataset", "config", "is_gold_reference", "is_attention_check",
                                  "metric", "value"])
    means = human.groupby(pd.Series(config)).mean()
    assert means["a"] != means["b"]  # what floating point makes of them
    (row, _) = system_correlation_rows(table, human)
    rho, tau = _scipy(np.array([5 / 18, 5 / 18, 1.0]), np.array([0.1, 0.2, 0.3]))
    assert row["spearman"] == pytest.approx(rho) and row["kendall"] == pytest.approx(tau)
    assert row["spearman"] == pytest.approx(math.sqrt(3) / 2)


@pytest.mark.parametrize(("change", "message"), [
    (lambda t, h: (t.drop(columns="is_attention_check"), h), "metric table is missing column(s): is_attention_check"),
    (lambda t, h: (pd.concat([t, t.iloc[[0]]]), h), "metric table lists metric 'bertscore_f1' of item 1 twice"),
    (lambda t, h: (t.assign(value=t.value.where(t.item_id != 3, np.nan)), h),
     "metric 'bertscore_f1' of item 3 is nan, not a finite number"),
    (lambda t, h: (t.astype({"value": object}).assign(value=lambda d: d.value.where(d.item_id != 4, True)), h),
     "metric 'bertscore_f1' of item 4 is True, not a finite number"),
    (lambda t, h: (t.astype({"value": object}).assign(value=lambda d: d.value.where(d.item_id != 4, "0.5")), h),
     "metric 'bertscore_f1' of item 4 is '0.5', not a finite number"),
    (lambda t, h: (t.assign(metric=t.metric.where(t.item_id != 5, "  ")), h), "metric table: item 5 has no metric name"),
    (lambda t, h: (t.assign(config=t.config.where(t.item_id != 5, None)), h), "metric table: item 5 has no config name"),
    (lambda t, h: (t, h.where(h.index != 6, np.nan)), "human score of item 6 is nan, not a finite number"),
    (lambda t, h: (t, h.astype(object).where(h.index != 6, True)), "human score of item 6 is True, not a finite number"),
    (lambda t, h: (t, pd.concat([h, h.iloc[[0]]])), "human scores list item 1 twice"),
    (lambda t, h: (t, h.to_dict()), "human scores must be a pandas Series indexed by item_id, got dict"),
])
def test_bad_tables_are_exact_errors(change, message: str) -> None:
    table, human = change(*_table())
    with pytest.raises(ValueError) as info:
        metric_correlation_rows(table, human, n_resamples=10)
    assert str(info.value) == message
