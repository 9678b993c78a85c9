"""Agreement statistics against hand-worked examples (the arithmetic is in the comments)."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from analysis.agreement import (
    Stat,
    binary_kappa,
    bootstrap_types,
    cohen_kappa,
    coincidence_matrix,
    disagreements,
    kappa_from_tables,
    kappa_interval,
    krippendorff_alpha,
    krippendorff_alpha_from_coincidences,
    mean_score_interval,
    percent_agreement,
    presence_kappa,
)

# Ten items, answers in the order yes, weak_yes, weak_no, no.
A = ["yes", "yes", "yes", "weak_yes", "weak_yes", "weak_no", "weak_no", "no", "no", "no"]
B = ["yes", "yes", "weak_yes", "weak_yes", "weak_no", "weak_no", "no", "no", "no", "yes"]
# Confusion table (rows A, columns B):
#            yes  wy  wn  no     row sums
#   yes       2   1   0   0      3
#   wy        0   1   1   0      2
#   wn        0   0   1   1      2
#   no        1   0   0   2      3
#   col sums  3   2   2   3      n = 10


def test_cohen_kappa_unweighted_by_hand() -> None:
    # p_o = (2 + 1 + 1 + 2) / 10 = 0.6
    # p_e = (3·3 + 2·2 + 2·2 + 3·3) / 10² = 26 / 100 = 0.26
    # κ = (0.6 − 0.26) / (1 − 0.26) = 0.34 / 0.74 = 17 / 37
    got = cohen_kappa(A, B)
    assert got.value == pytest.approx(17 / 37)
    assert got.reason is None and got.n == 10


def test_cohen_kappa_linear_by_hand() -> None:
    # κ_w = 1 − Σ w·o / Σ w·e with w = |i − j|, counts o and expected counts e = row_i · col_j / n.
    # Σ w·o: (yes,wy) 1·1 + (wy,wn) 1·1 + (wn,no) 1·1 + (no,yes) 3·1 = 6
    # Σ w·e · 10 = Σ_{i≠j} |i−j| r_i c_j with r = c = (3, 2, 2, 3):
    #   |i−j|=1: (0,1)+(1,0) 6+6, (1,2)+(2,1) 4+4, (2,3)+(3,2) 6+6  → 32 · 1 = 32
    #   |i−j|=2: (0,2)+(2,0) 6+6, (1,3)+(3,1) 6+6                 → 24 · 2 = 48
    #   |i−j|=3: (0,3)+(3,0) 9+9                                  → 18 · 3 = 54
    #   total 134, so Σ w·e = 13.4;  κ_lin = 1 − 6 / 13.4 = 7.4 / 13.4 = 37 / 67
    assert cohen_kappa(A, B, "linear").value == pytest.approx(37 / 67)


def test_cohen_kappa_quadratic_by_hand() -> None:
    # w = (i − j)²: Σ w·o = 1 + 1 + 1 + 9 = 12
    # Σ w·e · 10 = 32·1 + 24·4 + 18·9 = 32 + 96 + 162 = 290, so Σ w·e = 29;  κ_quad = 1 − 12/29 = 17/29
    assert cohen_kappa(A, B, "quadratic").value == pytest.approx(17 / 29)


def test_binary_kappa_by_hand() -> None:
    # Positive = {yes, weak_yes}. A: P P P P P N N N N N; B: P P P P N N N N N P
    # Table: PP 4, PN 1, NP 1, NN 4 → p_o = 0.8; marginals 5/5 and 5/5 → p_e = 0.5; κ = 0.3 / 0.5 = 0.6
    assert binary_kappa(A, B).value == pytest.approx(0.6)


def test_percent_agreement_and_disagreements() -> None:
    # Same answer on items 1, 2, 4, 6, 8, 9 → 6 of 10; the other 4 differ.
    assert percent_agreement(A, B).value == pytest.approx(0.6)
    assert disagreements(A, B) == 4


def test_agrees_with_sklearn_on_the_example() -> None:
    codes = {"yes": 0, "weak_yes": 1, "weak_no": 2, "no": 3}
    a, b = [codes[x] for x in A], [codes[x] for x in B]
    for w in (None, "linear", "quadratic"):
        assert cohen_kappa(A, B, w).value == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights=w))


@pytest.mark.parametrize("a, b, why", [
    (["yes"] * 5, ["yes"] * 5, "same single answer (yes)"),
    (["no", "no"], ["no", "no"], "same single answer (no)"),
    ([], [], "no items rated by both"),
])
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_undefined_kappa_is_none_with_reason(a: list[str], b: list[str], why: str, weights) -> None:
    # Both annotators use one and the same category: p_e = 1, so κ = (1 − 1) / (1 − 1) = 0/0.
    got = cohen_kappa(a, b, weights)
    assert got.value is None
    assert why in got.reason


def test_one_annotator_constant_is_a_real_zero() -> None:
    # A always yes, B half yes half no: p_o = 0.5, p_e = 1·0.5 = 0.5, κ = 0 / 0.5 = 0 — defined, not undefined.
    got = cohen_kappa(["yes"] * 4, ["yes", "yes", "no", "no"])
    assert got.value == 0.0 and got.reason is None


def test_binary_kappa_undefined_when_all_answers_are_positive() -> None:
    # Four categories: yes/wy vs wy/yes → p_o = 0, p_e = (1·1 + 1·1)/4 = 0.5, κ = −0.5/0.5 = −1.
    # Merged, every answer is "positive" for both → 0/0.
    assert cohen_kappa(["yes", "weak_yes"], ["weak_yes", "yes"]).value == pytest.approx(-1.0)
    got = binary_kappa(["yes", "weak_yes"], ["weak_yes", "yes"])
    assert got.value is None and "positive" in got.reason


def test_presence_kappa_by_hand() -> None:
    # Tag given by A on items 1, 2; by B on items 2, 3 (of 4). Table: both 1, A only 1, B only 1, neither 1.
    # p_o = 2/4 = 0.5; p_e = 0.5·0.5 + 0.5·0.5 = 0.5 → κ = 0.
    assert presence_kappa([1, 1, 0, 0], [0, 1, 1, 0]).value == pytest.approx(0.0)
    got = presence_kappa([0, 0, 0], [0, 0, 0], "the tag \"empty\"")
    assert got.value is None and "empty" in got.reason


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa(["yes"], ["yes", "no"])
    with pytest.raises(ValueError, match="unknown rating 'maybe'"):
        cohen_kappa(["maybe"], ["yes"])
    with pytest.raises(ValueError, match="unknown weights"):
        cohen_kappa(["yes", "no"], ["no", "yes"], "cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="either a value or a reason"):
        Stat(0.5, "both")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_weighted_sample_equals_expanded_and_tables_match_sklearn(seed: int, weights) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    expected = cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights=weights)
    # The same data as distinct (a, b) pairs with counts as sample weights.
    pairs, counts = np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)
    got = cohen_kappa(pairs[:, 0], pairs[:, 1], weights, sample_weight=counts)
    assert got.value == pytest.approx(expected) and got.n == 300
    table = np.bincount(a * 4 + b, minlength=16).reshape(4, 4)
    assert kappa_from_tables(table[None], weights)[0] == pytest.approx(expected)


pairs_of_answers = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 5)), min_size=1,
                            max_size=40)


@settings(max_examples=200, deadline=None)
@given(pairs_of_answers)
def test_every_kappa_matches_sklearn_as_the_oracle(rows: list[tuple[int, int, int]]) -> None:
    # The product computes κ one way (kappa_from_tables); scikit-learn's cohen_kappa_score is the oracle.
    a, b, w = (np.array(c) for c in zip(*rows, strict=True))

    def oracle(x: np.ndarray, y: np.ndarray, labels: list[int], weights=None) -> float | None:
        if len(np.unique(np.concatenate([x, y]))) == 1:
            return None  # 0/0: the product reports a reason, sklearn warns and returns nan
        return float(cohen_kappa_score(x, y, labels=labels, weights=weights, sample_weight=w))

    for weights in (None, "linear", "quadratic"):
        expected = oracle(a, b, [0, 1, 2, 3], weights)
        got = cohen_kappa(a, b, weights, sample_weight=w).value
        assert got == (None if expected is None else pytest.approx(expected, abs=1e-9))
    binary = np.array([0, 0, 1, 1])
    expected = oracle(binary[a], binary[b], [0, 1])
    got = binary_kappa(a, b, sample_weight=w).value
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-9))
    tag_a, tag_b = (a + b) % 2, b % 2
    expected = oracle(tag_a, tag_b, [0, 1])
    got = presence_kappa(tag_a, tag_b, sample_weight=w).value
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-9))


def test_kappa_from_tables_nan_when_undefined() -> None:
    only_yes = np.zeros((4, 4))
    only_yes[0, 0] = 7
    assert np.isnan(kappa_from_tables(only_yes[None])[0])


# -- Krippendorff's α ------------------------------------------------------------------------------------------------


def test_krippendorff_alpha_by_hand() -> None:
    # Units (two coders): (0,0), (0,1), (1,1), (2,2). Each unit has m = 2 values, weight 1/(m−1) = 1.
    # Coincidences: o00 = 2, o01 = o10 = 1, o11 = 2, o22 = 2 → n_c = (3, 3, 2), n = 8.
    units = np.array([[0, 0], [0, 1], [1, 1], [2, 2]])
    np.testing.assert_allclose(coincidence_matrix(units, 3), [[2, 1, 0], [1, 2, 0], [0, 0, 2]])
    # Nominal: Σ o·δ² = o01 + o10 = 2; Σ n_c n_k δ² = n² − Σ n_c² = 64 − 22 = 42; α = 1 − 7·2/42 = 2/3.
    assert krippendorff_alpha(units, 3, "nominal").value == pytest.approx(2 / 3)
    # Ordinal δ²(c,k) = (Σ_{g=c..k} n_g − (n_c + n_k)/2)²:
    #   δ²01 = (6 − 3)² = 9,  δ²02 = (8 − 2.5)² = 30.25,  δ²12 = (5 − 2.5)² = 6.25
    # Σ o·δ² = 2·9 = 18; Σ n_c n_k δ² = 2·(3·3·9 + 3·2·30.25 + 3·2·6.25) = 2·300 = 600
    # α = 1 − (n − 1)·18/600 = 1 − 126/600 = 0.79
    assert krippendorff_alpha(units, 3, "ordinal").value == pytest.approx(0.79)


@pytest.mark.parametrize("metric, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_published_example(metric: str, published: float) -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers × 12 units, values 1..5,
    # '.' missing; published α: nominal .743, ordinal .815, interval .849.
    m = -1
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, m, m, m],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, m, 3],
        [m, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, m],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, m],
    ]).T
    units = np.where(data > 0, data - 1, -1)  # codes 0..4
    assert round(krippendorff_alpha(units, 5, metric).value, 3) == published  # type: ignore[arg-type]


units_with_gaps = st.lists(st.lists(st.integers(-1, 3), min_size=3, max_size=3), min_size=2, max_size=30)


@settings(max_examples=200, deadline=None)
@given(units_with_gaps, st.sampled_from(["nominal", "ordinal", "interval"]))
def test_krippendorff_alpha_matches_the_krippendorff_package(rows: list[list[int]], metric: str) -> None:
    # The `krippendorff` package (Castro) as the oracle: coders × units, NaN for a missing value.
    units = np.array(rows)
    ours = krippendorff_alpha(units, 4, metric)  # type: ignore[arg-type]
    pairable = units[(units >= 0).sum(axis=1) >= 2]
    values = np.unique(pairable[pairable >= 0])
    if len(values) < 2:  # no pairable unit, or one value only: undefined, and the package cannot compute it
        assert ours.value is None and ours.reason
        return
    data = np.where(units >= 0, units, np.nan).T.astype(float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=metric, value_domain=[0, 1, 2, 3])
    assert ours.value == pytest.approx(expected, abs=1e-9)


def test_weighted_units_equal_repeated_units_for_alpha() -> None:
    rng = np.random.default_rng(3)
    units = rng.integers(0, 4, (20, 2))
    counts = rng.integers(1, 4, 20)
    expanded = np.repeat(units, counts, axis=0)
    expected = krippendorff.alpha(reliability_data=expanded.T.astype(float), level_of_measurement="ordinal",
                                  value_domain=[0, 1, 2, 3])
    assert krippendorff_alpha(units, 4, "ordinal", weights=counts).value == pytest.approx(expected)


def test_krippendorff_alpha_undefined() -> None:
    assert krippendorff_alpha(np.array([[0, -1], [1, -1]]), 4).reason.startswith("undefined: no unit")
    same = krippendorff_alpha_from_coincidences(np.diag([4.0, 0, 0, 0]))
    assert same.value is None and "same category" in same.reason


# -- bootstrap -------------------------------------------------------------------------------------------------------


def _codes(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    return a, np.where(rng.random(n) < 0.6, a, rng.integers(0, 4, n))


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    a, b = _codes(0)
    first, again = kappa_interval(a, b, seed=7), kappa_interval(a, b, seed=7)
    assert (first.low, first.high) == (again.low, again.high)
    other = kappa_interval(a, b, seed=8)
    assert (first.low, first.high) != (other.low, other.high)
    point = cohen_kappa(a, b).value
    assert first.low < point < first.high


def test_multinomial_bootstrap_matches_resampling_items() -> None:
    # Drawing type counts from a multinomial is the same distribution as resampling items with replacement;
    # compare against the slow way on the same data (both seeded, so this is deterministic).
    a, b = _codes(3)
    n, n_boot = len(a), 4000
    idx = np.random.default_rng(11).integers(0, n, (n_boot, n))
    tables = np.stack([np.bincount(a[i] * 4 + b[i], minlength=16) for i in idx]).reshape(-1, 4, 4)
    slow = kappa_from_tables(tables)
    fast = kappa_interval(a, b, n_boot=n_boot, seed=12)
    low, high = np.percentile(slow, [2.5, 97.5])
    assert fast.low == pytest.approx(low, abs=0.02) and fast.high == pytest.approx(high, abs=0.02)


def test_mean_score_interval_and_undefined_resamples() -> None:
    # Item sums in thirds: two items rated (yes, yes) = 6/2, two rated (no, weak_no) = 1/2 → mean 7/12.
    sums, counts = np.array([6, 6, 1, 1]), np.array([2, 2, 2, 2])
    ci = mean_score_interval(sums, counts, seed=0)
    assert 0 <= ci.low <= 7 / 12 <= ci.high <= 1
    # A statistic undefined in every resample gives no interval rather than a number.
    none = bootstrap_types(np.array([3, 1]), lambda d: np.full(len(d), np.nan), n_boot=50)
    assert none.low is None and none.high is None
