"""Power from a pilot (analysis.power) against its oracles: statsmodels' t-test power on normal scores, a
brute-force simulation from the known generating distribution for the report's own tests (Wilcoxon signed-rank,
Mann–Whitney U), the level α when A and B come from one distribution, and hand-worked values."""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, norm, wilcoxon
from statsmodels.stats.power import TTestIndPower, TTestPower

from analysis import cli as report_cli
from analysis.compare import (
    MANNWHITNEY_OPTIONS,
    WILCOXON_OPTIONS,
    compare,
    paired_test,
    paired_tests,
    unpaired_test,
    unpaired_tests,
)
from analysis.data import prepare, split_export
from analysis.defaults import POWER_SIZES_DEFAULT
from analysis.power import (
    ANSWER_SCORES,
    PowerSettings,
    _onto_scale,
    _scale_shift,
    _scores,
    check_power_options,
    pilot_power,
    simulate_power,
)
from analysis.report import analyse_store
from analysis.report.power import power_html, power_table
from annotate.core.store import Store
from tests.analysis.analysis_helpers import fill_store, write_ratings_csv
from tests.helpers import nle

THIRDS = np.array([0.0, 1 / 3, 2 / 3, 1.0])  # no, weak no, weak yes, yes
ANSWERS = ["no", "weak_no", "weak_yes", "yes"]


def close(simulated, expected, se_expected=0.0, z: float = 3.5) -> None:
    """Within z combined Monte-Carlo standard errors (the simulation's own, and the oracle's when it has one):
    one comparison in about 2000 fails by chance; splitting pairs or a sample's ratings misses by ≫ 10."""
    for s, e, se, se_e in zip(simulated.power, expected, simulated.se, np.broadcast_to(se_expected, len(expected)),
                              strict=True):
        bound = z * math.sqrt(se**2 + se_e**2 + 1e-12)
        assert abs(s - e) <= bound, (simulated.power, expected, bound)


def quantiles(m: int) -> np.ndarray:
    """m standard normal scores at evenly spaced quantiles: a pilot whose resampling is the normal distribution
    up to a discretisation of 1/m."""
    return norm.ppf((np.arange(m) + 0.5) / m)


# -- the report's tests, batched ---------------------------------------------------------------------------------


def test_batched_tests_equal_scipy_row_by_row_as_the_report_calls_it() -> None:
    """paired_tests / unpaired_tests (what the simulation runs) give the report's p-values: SciPy on each row
    with the zeros dropped and the method chosen as analysis.compare chooses it."""
    rng = np.random.default_rng(5)
    for n in (3, 9, 30, 70):
        tied = np.round(rng.integers(-3, 4, (60, n)) / 3, 12)  # ties and zeros: normal approximation
        untied = rng.normal(size=(60, n))  # exact below 51 nonzero differences
        untied[:, :3] = np.where(rng.random((60, 3)) < 0.3, 0.0, untied[:, :3])
        for diff in (tied, untied):
            stat, p = paired_tests(diff)
            for row, s, pv in zip(diff, stat, p, strict=True):
                nonzero = row[row != 0]
                if not len(nonzero):
                    assert np.isnan(s) and np.isnan(pv) and paired_test(row)[1] is None
                    continue
                method = ("exact" if len(np.unique(np.abs(nonzero))) == len(nonzero) and len(nonzero) <= 50
                          else "asymptotic")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = wilcoxon(nonzero, method=method, **WILCOXON_OPTIONS)
                assert (s, pv) == (pytest.approx(res.statistic, rel=1e-12), pytest.approx(res.pvalue, rel=1e-12))
                assert paired_test(row)[:2] == (s, pv)
        x, y = rng.integers(0, 4, (2, 60, n)) / 3
        stat, p = unpaired_tests(x, y)
        for xr, yr, s, pv in zip(x, y, stat, p, strict=True):
            res = mannwhitneyu(xr, yr, **MANNWHITNEY_OPTIONS)
            assert (s, pv) == (pytest.approx(res.statistic, rel=1e-12), pytest.approx(res.pvalue, rel=1e-12))
    # A row of zero differences has no test: NaN, never p < α.
    assert np.isnan(paired_tests(np.zeros((2, 5)))[1]).all()
    with pytest.raises(ValueError, match=r"one row of differences per test, got an array of shape \(5,\)"):
        paired_tests(np.zeros(5))


# -- oracle 1: statsmodels' power of the t-tests on normal scores ------------------------------------------------


@pytest.mark.parametrize("d", [0.3, 0.6])
def test_paired_t_power_equals_statsmodels(d: float) -> None:
    z = quantiles(20_000)
    sim = simulate_power(z + d, np.zeros_like(z), test="t-paired", sizes=(10, 20, 40), n_sim=4000, seed=1)
    expected = [TTestPower().power(effect_size=d, nobs=n, alpha=0.05) for n in (10, 20, 40)]
    close(sim, expected)


def test_independent_t_power_equals_statsmodels() -> None:
    z = quantiles(20_000)
    sim = simulate_power(z + 0.5, z, test="t-independent", sizes=(10, 30, 60), n_sim=4000, seed=2)
    close(sim, [TTestIndPower().power(effect_size=0.5, nobs1=n, alpha=0.05) for n in (10, 30, 60)])


def test_a_chosen_effect_replaces_the_pilots() -> None:
    """A pilot with a large difference (0.9 SD) asked for 0.3 SD: the power of 0.3 SD, by statsmodels."""
    z = quantiles(20_000)
    sim = simulate_power(z + 0.9, np.zeros_like(z), test="t-paired", sizes=(20, 50), n_sim=4000, effect=0.3, seed=3)
    assert sim.pilot_effect == pytest.approx(0.9, abs=1e-9) and sim.effect == 0.3
    close(sim, [TTestPower().power(effect_size=0.3, nobs=n, alpha=0.05) for n in (20, 50)])
    # The shift moves B, so the sign is a − b: −0.3 gives the same two-sided power.
    neg = simulate_power(z + 0.9, np.zeros_like(z), test="t-paired", sizes=(20, 50), n_sim=4000, effect=-0.3, seed=3)
    close(neg, [TTestPower().power(effect_size=0.3, nobs=n, alpha=0.05) for n in (20, 50)])


# -- oracle 2: brute force from the generating distribution, for the report's rank tests ---------------------------

# Each sample is easy or hard (probability 1/2); its two annotators' answers are drawn independently given that, with
# these probabilities of no, weak no, weak yes, yes. The easiness is shared by a sample's ratings under A and B, so
# pairs are correlated and a sample's ratings too: a simulation that split them would get another power.
P = {("A", "easy"): (0.0, 0.1, 0.3, 0.6), ("A", "hard"): (0.3, 0.3, 0.3, 0.1),
     ("B", "easy"): (0.1, 0.2, 0.3, 0.4), ("B", "hard"): (0.4, 0.3, 0.2, 0.1),
     ("A0", "easy"): (0.1, 0.2, 0.3, 0.4), ("A0", "hard"): (0.4, 0.3, 0.2, 0.1)}  # A0: B's distribution
# B+: B's ratings moved up by 0.1 and rounded at random to a neighbouring answer keeping the expectation, i.e. up
# one answer with probability 0.3 (yes stays yes): the distribution a chosen difference simulates from B.
P.update({("B+", state): (0.7 * p[0], 0.3 * p[0] + 0.7 * p[1], 0.3 * p[1] + 0.7 * p[2], 0.3 * p[2] + p[3])
          for state in ("easy", "hard") for p in [P[("B", state)]]})


def exact_pilot(configs: tuple[str, ...], ratings: int = 2) -> np.ndarray:
    """Rows of ratings (configs × ratings columns) in exactly the generating distribution's proportions: every
    combination of answers repeated in proportion to its probability (20 000 rows for one configuration)."""
    rows = []
    for state in ("easy", "hard"):
        for combo in itertools.product(range(4), repeat=len(configs) * ratings):
            prob = 0.5 * math.prod(P[(configs[j // ratings], state)][c] for j, c in enumerate(combo))
            count = round(prob * 2 * 10 ** (len(configs) * ratings))
            assert count == pytest.approx(prob * 2 * 10 ** (len(configs) * ratings))
            rows += [THIRDS[list(combo)]] * count
    return np.array(rows)


def draw(rng: np.random.Generator, configs: tuple[str, ...], n: int, ratings: int) -> list[np.ndarray]:
    """Fresh per-sample mean scores of n samples under each configuration, from the generating distribution."""
    easy = rng.random(n) < 0.5
    out = []
    for config in configs:
        codes = np.where(easy[:, None], rng.choice(4, (n, ratings), p=P[(config, "easy")]),
                         rng.choice(4, (n, ratings), p=P[(config, "hard")]))
        out.append(THIRDS[codes].mean(axis=1))
    return out


def brute_force(configs: tuple[str, str], paired: bool, sizes: tuple[int, ...], n_sim: int, ratings: int = 2,
                seed: int = 0) -> np.ndarray:
    """Power by the report's one-row test functions on studies drawn afresh from the generating distribution."""
    rng = np.random.default_rng(seed)
    power = []
    for n in sizes:
        hits = 0
        for _ in range(n_sim):
            if paired:
                a, b = draw(rng, configs, n, ratings)
                p = paired_test(np.round(a - b, 12))[1]  # rounded as compare() rounds
            else:
                (a,), (b,) = draw(rng, configs[:1], n, ratings), draw(rng, configs[1:], n, ratings)
                p = unpaired_test(np.round(a, 12), np.round(b, 12))[1]
            hits += p is not None and p < 0.05
        power.append(hits / n_sim)
    return np.array(power)


def se_of(power: np.ndarray, n_sim: int) -> np.ndarray:
    return np.sqrt(power * (1 - power) / n_sim)


@pytest.mark.slow
def test_wilcoxon_power_equals_brute_force_from_the_generating_distribution() -> None:
    pilot = exact_pilot(("A", "B"))
    sizes, n_sim = (10, 25, 50), 2000
    sim = simulate_power(pilot[:, :2], pilot[:, 2:], test="wilcoxon", sizes=sizes, n_sim=n_sim, seed=4)
    expected = brute_force(("A", "B"), True, sizes, n_sim, seed=40)
    close(sim, expected, se_of(expected, n_sim))
    assert 0.1 < sim.power[0] < sim.power[-1] < 0.99  # a curve, not a floor or a ceiling


@pytest.mark.slow
def test_a_chosen_difference_moves_b_on_the_answer_scale_as_brute_force_from_the_moved_distribution() -> None:
    """effect = the difference that moving B up by 0.1 gives: the solved move is 0.1, and the power equals a
    brute-force simulation drawing B's answers from the moved distribution B+."""
    pilot = exact_pilot(("A", "B"))
    a, b = pilot[:, :2], pilot[:, 2:]
    effect = a.mean() - np.clip(b + 0.1, 0, 1).mean()
    assert _scale_shift(b, a.mean() - effect, ANSWER_SCORES) == pytest.approx(0.1, abs=1e-9)
    sizes, n_sim = (25, 60), 2000
    sim = simulate_power(a, b, test="wilcoxon", sizes=sizes, n_sim=n_sim, effect=effect, scale=ANSWER_SCORES,
                         seed=12)
    assert sim.effect == effect and sim.pilot_effect == pytest.approx(a.mean() - b.mean())
    expected = brute_force(("A", "B+"), True, sizes, n_sim, seed=120)
    close(sim, expected, se_of(expected, n_sim))


def test_power_grows_with_the_chosen_difference_on_the_answer_scale() -> None:
    """On answers, a plain shift of B's per-sample scores would move a rank test only when it crosses a step
    (a difference of 4 to 10 points gave one and the same power); moving the ratings on the scale does not."""
    a, b = exact_pilot(("A",)), exact_pilot(("B",))
    power = [simulate_power(a, b, test="mann-whitney", sizes=(100,), n_sim=400, effect=e / 100,
                            scale=ANSWER_SCORES, seed=13).power[0] for e in (2, 6, 10, 14)]
    assert all(x < y for x, y in itertools.pairwise(power)), power
    ratings = np.array([[0.0, 1 / 3], [2 / 3, 1.0], [1.0, 1.0]])
    moved = _onto_scale(np.tile(ratings + 0.2, (4000, 1, 1)), ANSWER_SCORES, np.random.default_rng(0))
    assert set(np.unique(moved[~np.isnan(moved)])) <= set(ANSWER_SCORES)
    assert np.nanmean(moved, axis=0) == pytest.approx(np.clip(ratings + 0.2, 0, 1), abs=0.02)
    with pytest.raises(ValueError, match=r"^that difference cannot be reached on the scale: b's mean score would "
                                         r"have to be 1\.\d+, outside 0–1$"):
        simulate_power(a, b, test="mann-whitney", effect=-0.6, scale=ANSWER_SCORES)
    with pytest.raises(ValueError, match=r"^ratings_b holds 0\.5, which is not one of the scale's scores$"):
        simulate_power(a, np.full((4, 2), 0.5), test="mann-whitney", effect=0.1, scale=ANSWER_SCORES)


@pytest.mark.slow
def test_mann_whitney_power_equals_brute_force_from_the_generating_distribution() -> None:
    a, b = exact_pilot(("A",)), exact_pilot(("B",))
    sizes, n_sim = (10, 30, 60), 2000
    sim = simulate_power(a, b, test="mann-whitney", sizes=sizes, n_sim=n_sim, seed=5)
    expected = brute_force(("A", "B"), False, sizes, n_sim, seed=50)
    close(sim, expected, se_of(expected, n_sim))
    assert 0.1 < sim.power[0] < sim.power[-1] < 0.99


@pytest.mark.slow
def test_one_rating_per_sample_drawn_from_two_equals_brute_force_with_one_annotator() -> None:
    pilot = exact_pilot(("A", "B"))
    sizes, n_sim = (20, 50), 2000
    sim = simulate_power(pilot[:, :2], pilot[:, 2:], test="wilcoxon", sizes=sizes, raters=1, n_sim=n_sim, seed=6)
    expected = brute_force(("A", "B"), True, sizes, n_sim, ratings=1, seed=60)
    close(sim, expected, se_of(expected, n_sim))


@pytest.mark.slow
def test_wilcoxon_exact_path_equals_brute_force_on_normal_differences() -> None:
    """Continuous differences (no ties, n ≤ 50): the exact signed-rank p, against fresh normal draws."""
    z = quantiles(100_000)
    sizes, n_sim = (8, 15), 2000
    sim = simulate_power(z + 0.5, np.zeros_like(z), test="wilcoxon", sizes=sizes, n_sim=n_sim, seed=7)
    rng = np.random.default_rng(70)
    expected = np.array([np.mean([paired_test(rng.normal(0.5, 1, n))[1] < 0.05 for _ in range(n_sim)])
                         for n in sizes])
    close(sim, expected, se_of(expected, n_sim))


# -- oracle 3: one distribution for A and B gives power α ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("test", ["wilcoxon", "mann-whitney", "t-paired", "t-independent"])
def test_same_distribution_gives_power_alpha(test: str) -> None:
    if test.startswith("t-"):
        z = quantiles(20_000)
        a, b = z, (np.zeros_like(z) if test == "t-paired" else z)
        if test == "t-paired":
            a, b = np.concatenate([z, -z]) / 2, np.concatenate([-z, z]) / 2  # differences symmetric about 0
    elif test == "wilcoxon":
        pilot = exact_pilot(("A0", "B"))  # one distribution, correlated pairs
        a, b = pilot[:, :2], pilot[:, 2:]
    else:
        a = b = exact_pilot(("B",))
    sim = simulate_power(a, b, test=test, sizes=(30, 100), n_sim=4000, alpha=0.05, seed=8)
    close(sim, [0.05, 0.05])


# -- hand-worked values ------------------------------------------------------------------------------------------


def test_hand_worked_all_tied_differences() -> None:
    """Every pair differs by the same amount: all |d| tie, W+ = k(k+1)/2, and the tie-corrected z is
    √(3k(k+1)/(2(2k+1)) − …): p = 0.157 at k = 2, 0.083 at k = 3, 0.0455 at k = 4 (z = 2). So power 0, 0, 1, 1."""
    sim = simulate_power(np.ones(10), np.zeros(10), test="wilcoxon", sizes=(2, 3, 4, 5), n_sim=50)
    assert list(sim.power) == [0, 0, 1, 1] and list(sim.se) == [0, 0, 0, 0] and sim.n_for() == 4


def test_hand_worked_half_zero_differences() -> None:
    """Half the pairs differ by +1, half not at all: zeros are dropped, so a study of 6 rejects exactly when at
    least 4 pairs differ (previous test): power = P(Bin(6, 1/2) ≥ 4) = 22/64 = 0.34375."""
    sim = simulate_power(np.array([1.0, 1.0] * 5), np.array([0.0, 1.0] * 5), test="wilcoxon", sizes=(6,),
                         n_sim=20_000, seed=9)
    close(sim, [22 / 64])
    assert sim.se[0] == pytest.approx(math.sqrt(sim.power[0] * (1 - sim.power[0]) / 20_000))


def test_small_pilot_equals_exact_enumeration_and_stays_pinned() -> None:
    """Six pilot pairs whose per-sample differences are 2/3, −1/6 (twice), 1/3 (twice) and 0: a study of n draws
    a multinomial count of each value, so the exact power is a finite sum over the counts (286 of them at n = 10)
    of their probability times [p < 0.05] (0.3486 at n = 10, 0.6971 at 20). The simulation agrees within its error; its numbers at seed 0 are
    pinned so that a change of the resampling shows up."""
    pilot = np.array([[1, 2 / 3], [1 / 3, 1 / 3], [1, 1], [2 / 3, 0], [0, 1 / 3], [1, 2 / 3]])
    other = np.array([[1 / 3, 0], [1 / 3, 2 / 3], [2 / 3, 2 / 3], [0, 0], [1 / 3, 1 / 3], [2 / 3, 1]])
    values, probs = np.array([2 / 3, -1 / 6, 1 / 3, 0.0]), np.array([1, 2, 2, 1]) / 6
    exact = []
    for n in (10, 20):
        total = 0.0
        for counts in itertools.product(range(n + 1), repeat=3):
            if sum(counts) > n:
                continue
            c = (*counts, n - sum(counts))
            p = paired_test(np.round(np.repeat(values, c), 12))[1]
            if p is not None and p < 0.05:
                total += math.factorial(n) / math.prod(map(math.factorial, c)) * math.prod(probs**c)
        exact.append(total)
    sim = simulate_power(pilot, other, test="wilcoxon", sizes=(10, 20), n_sim=4000, seed=0)
    assert sim.pilot_effect == pytest.approx(21 / 36 - 15 / 36)
    close(sim, exact)
    pinned = simulate_power(pilot, other, test="wilcoxon", sizes=(10, 30), n_sim=500, seed=0)
    assert list(pinned.power) == [0.362, 0.89] and pinned.n_for() == 30


# -- resampling -------------------------------------------------------------------------------------------------


def test_fewer_raters_are_drawn_without_replacement_and_never_more_than_a_sample_has() -> None:
    """A sample rated 0, 1/2 and 1 asked for 2 ratings: two different ones of its own (never one twice), each
    pair a third of the time; asked for 1: each of its own; a sample rated once gives its one rating whatever
    is asked."""
    ratings = np.array([[0.0, 0.5, 1.0], [0.25, np.nan, np.nan]])
    counts = np.array([3, 1])
    rng = np.random.default_rng(0)
    two = _scores(ratings, counts, np.nanmean(ratings, axis=1), np.zeros((3000, 1), dtype=np.int64), 2, rng)
    values, times = np.unique(two, return_counts=True)
    assert list(values) == [0.25, 0.5, 0.75] and np.allclose(times / 3000, 1 / 3, atol=0.03)
    one = _scores(ratings, counts, np.nanmean(ratings, axis=1), np.zeros((3000, 1), dtype=np.int64), 1, rng)
    assert set(one.ravel()) == {0.0, 0.5, 1.0}
    assert set(_scores(ratings, counts, np.nanmean(ratings, axis=1), np.ones((5, 2), dtype=np.int64), 3,
                       rng).ravel()) == {0.25}
    with pytest.raises(ValueError, match="^3 ratings per sample cannot be resampled from a pilot whose samples have "
                                         "at most 2$"):
        simulate_power(np.ones((4, 2)), np.zeros((4, 2)), test="wilcoxon", raters=3)


def test_deterministic_under_the_seed_and_each_size_its_own_stream() -> None:
    a, b = np.random.default_rng(1).integers(0, 4, (2, 40, 2)) / 3
    one = simulate_power(a, b, test="mann-whitney", sizes=(10, 20), n_sim=300, seed=11)
    again = simulate_power(a, b, test="mann-whitney", sizes=(20, 10, 40), n_sim=300, seed=11)
    assert list(one.power) == list(again.power[:2]) and one.sizes == (10, 20) and again.sizes == (10, 20, 40)
    other = simulate_power(a, b, test="mann-whitney", sizes=(10, 20), n_sim=300, seed=12)
    assert list(other.power) != list(one.power)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_sim": 0}, "the number of simulations must be a whole number from 1 to 100000, got 0"),
    ({"n_sim": 2.5}, "the number of simulations must be a whole number from 1 to 100000, got 2.5"),
    ({"alpha": 1.0}, "alpha must be between 0 and 1 (exclusive), got 1.0"),
    ({"alpha": float("nan")}, "alpha must be between 0 and 1 (exclusive), got nan"),
    ({"sizes": ()}, "give at least one sample size"),
    ({"sizes": (10, 1)}, "a sample size must be a whole number from 2 to 100000, got 1"),
    ({"sizes": (10**9,)}, "a sample size must be a whole number from 2 to 100000, got 1000000000"),
    ({"raters": 0}, "the number of ratings per sample must be a whole number from 1 to 100, got 0"),
    ({"effect": 1.5}, "effect must be a difference of mean scores between -1 and 1 (the 0–1 scale), got 1.5"),
    ({"effect": float("nan")}, "effect must be a difference of mean scores between -1 and 1 (the 0–1 scale), got nan"),
    ({"seed": -1}, "the seed must be a whole number from 0 to 9223372036854775807, got -1"),
    ({"test": "t"}, "unknown test 't'; expected one of wilcoxon, mann-whitney, t-paired, t-independent"),
])
def test_bad_options_are_errors_naming_the_option(kwargs: dict, message: str) -> None:
    args = {"test": "wilcoxon", **kwargs}
    with pytest.raises(ValueError) as err:
        simulate_power(np.ones(4), np.zeros(4), **args)
    assert str(err.value) == message


def test_bad_pilots_are_errors() -> None:
    with pytest.raises(ValueError, match=r"^the wilcoxon test takes pairs: one row of ratings_b per row of "
                                         r"ratings_a, got 4 and 3$"):
        simulate_power(np.ones(4), np.zeros(3), test="wilcoxon")
    with pytest.raises(ValueError, match=r"^ratings_a has 1 rated sample\(s\); resampling needs at least 2$"):
        simulate_power(np.ones(1), np.zeros(3), test="mann-whitney")
    with pytest.raises(ValueError, match=r"^ratings_b: sample 1 has no rating$"):
        simulate_power(np.ones(3), np.array([0.0, np.nan, 1.0]), test="mann-whitney")
    with pytest.raises(ValueError, match=r"^ratings_a holds an infinite rating$"):
        simulate_power(np.array([1.0, np.inf]), np.zeros(2), test="mann-whitney")
    assert check_power_options(n_sim=1, alpha=0.5, sizes=(30, 10, 30), raters=None, effect=None, seed=0) == (10, 30)


def test_power_settings_take_points_and_check_them() -> None:
    s = PowerSettings(effect_points=5, sizes=(30, 10, 30), raters=(None, 3, 3))
    assert s.effect == 0.05 and s.sizes == (10, 30) and s.raters == (None, 3)
    with pytest.raises(ValueError, match=r"^the difference to detect must be between -100 and 100 points \(the "
                                         r"0–100 scale\), got 150$"):
        PowerSettings(effect_points=150)
    with pytest.raises(ValueError, match="^give at least one number of ratings per sample$"):
        PowerSettings(raters=())
    with pytest.raises(ValueError, match="^the number of simulations must be"):
        PowerSettings(n_sim=-5)


# -- a study's pilot ----------------------------------------------------------------------------------------------


def study_frame(shared: bool, seed: int = 0) -> pd.DataFrame:
    """Two datasets; full_ft answers better than att_q+layer_norm. `shared`: both rated on the same samples."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, n in (("esnli", 24), ("ecqa", 18)):
        for config, p in (("full_ft", (0.1, 0.1, 0.3, 0.5)), ("att_q+layer_norm", (0.3, 0.3, 0.2, 0.2))):
            ids = [f"s{i}" for i in range(n)] if shared or config == "full_ft" else [f"t{i}" for i in range(n - 2)]
            for s in ids:
                for who in ("alice", "bob"):
                    rows.append({"dataset": dataset, "sample_id": s, "config": config, "annotator": who,
                                 "rating": ANSWERS[int(rng.choice(4, p=p))]})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shared, test", [(True, "wilcoxon"), (False, "mann-whitney")])
def test_pilot_power_runs_the_reports_test_per_dataset_and_overall(shared: bool, test: str) -> None:
    frame = study_frame(shared)
    p = prepare(*split_export(frame))
    settings = PowerSettings(n_sim=200, sizes=(10, 30, 60), raters=(None, 1, 3), seed=4)
    report = pilot_power(p, "full_ft", "att_q+layer_norm", settings)
    assert [(c.dataset, c.raters) for c in report.curves] == [
        ("esnli", None), ("ecqa", None), ("overall", None), ("esnli", 1), ("ecqa", 1), ("overall", 1),
        ("esnli", 3), ("ecqa", 3), ("overall", 3)]
    # Two ratings per sample in the pilot: three cannot be resampled.
    assert [c.reason for c in report.curves[6:]] == [
        "3 ratings per sample cannot be resampled from a pilot whose samples have at most 2 in esnli; what more "
        "annotators would add needs a pilot with that many", *[
            f"3 ratings per sample cannot be resampled from a pilot whose samples have at most 2{w}; what more "
            "annotators would add needs a pilot with that many" for w in (" in ecqa", "")]]
    assert report.curves[3].ratings_per_sample == 1.0
    assert compare(p, "full_ft", "att_q+layer_norm").test == test
    assert {c.test for c in report.curves} == {test}
    esnli = report.curves[0]
    n_b = 24 if shared else 22
    assert (esnli.n_pilot_a, esnli.n_pilot_b, esnli.ratings_per_sample) == (24, n_b, 2.0)
    assert (report.curves[2].n_pilot_a, report.curves[2].n_pilot_b) == (42, 38 + 4 * shared)
    # The overall curve is the simulation of the pooled samples, with its own seed stream.
    scores = frame.assign(score=frame["rating"].map(dict(zip(ANSWERS, THIRDS, strict=True))))
    per = scores.groupby(["config", "dataset", "sample_id"], sort=False)["score"].apply(list)
    a = np.array(per["full_ft"].tolist())
    b = np.array(per["att_q+layer_norm"].tolist())
    if shared:  # the pairs: same (dataset, sample) order under both
        b = np.array(per["att_q+layer_norm"].reindex(per["full_ft"].index).tolist())
    mean_diff = a.mean() - b.mean()
    assert report.curves[2].result.pilot_effect == pytest.approx(mean_diff)
    # Power grows with n; the JSON contract.
    overall = report.curves[2].contract()
    assert set(overall) == {"dataset", "a", "b", "test", "alpha", "raters", "n_pilot", "ratings_per_sample",
                            "pilot_effect", "effect", "curve", "n_for_80", "reason"}
    assert overall["n_pilot"] == {"a": 42, "b": 38 + 4 * shared} and overall["raters"] is None
    assert [set(pt) for pt in overall["curve"]] == [{"n", "power", "se"}] * 3
    powers = [pt["power"] for pt in overall["curve"]]
    assert powers[0] < powers[-1] and overall["n_for_80"] == next((pt["n"] for pt in overall["curve"]
                                                                  if pt["power"] >= 0.8), None)
    section = report.contract()
    assert section["a"] == "full_ft" and section["sizes"] == [10, 30, 60] and section["raters"] == [None, 1, 3]
    assert section["effect"] is None and section["target"] == 0.8 and len(section["curves"]) == 9


def test_pilot_power_says_why_a_curve_is_missing() -> None:
    frame = study_frame(True)
    frame = frame[~((frame["dataset"] == "ecqa") & (frame["config"] == "att_q+layer_norm")
                    & (frame["sample_id"] != "s0"))]
    p = prepare(*split_export(frame))
    report = pilot_power(p, "full_ft", "att_q+layer_norm", PowerSettings(n_sim=50, sizes=(10,)))
    ecqa = next(c for c in report.curves if c.dataset == "ecqa")
    assert ecqa.result is None and ecqa.contract()["curve"] == [] and ecqa.n_for_80 is None
    assert ecqa.reason == ("'att_q+layer_norm' has 1 rated sample(s) in ecqa; resampling a pilot needs at least 2 "
                           "per configuration")
    missing = pilot_power(p, "full_ft", "bias", PowerSettings(n_sim=50, sizes=(10,)))
    assert all(c.reason and c.reason.startswith("'bias' has 0 rated sample(s)") for c in missing.curves)


# -- nle-report --power ------------------------------------------------------------------------------------------


def run_report(db: Path, out: Path, *extra: str) -> int:
    return report_cli.main(["--db", str(db), "--out", str(out), *extra])


def test_nle_report_power_writes_the_section_the_curve_and_the_html(store: Store, write_jsonl, tmp_path: Path,
                                                                    db_path: Path) -> None:
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    opts = ["--seed", "3", "--power", "--power-sims", "300", "--power-sizes", "30", "10", "60", "--power-raters", "1",
            "2"]
    assert run_report(db_path, tmp_path / "o", *opts) == 0
    data = json.loads((tmp_path / "o" / "agreement.json").read_text())
    power = data["power"]
    assert {k: power[k] for k in ("a", "b", "alpha", "n_sim", "seed", "target", "effect", "sizes", "raters")} == {
        "a": "full_ft", "b": "att_q+layer_norm", "alpha": 0.05, "n_sim": 300, "seed": 3, "target": 0.8,
        "effect": None, "sizes": [10, 30, 60], "raters": [1, 2]}
    assert [(c["dataset"], c["raters"], c["test"]) for c in power["curves"]] == [
        ("esnli", 1, "mann-whitney"), ("ecqa", 1, "wilcoxon"), ("overall", 1, "mann-whitney"),
        ("esnli", 2, "mann-whitney"), ("ecqa", 2, "wilcoxon"), ("overall", 2, "mann-whitney")]
    # The same numbers as the functions give (deterministic under --seed), and the comparison's own test.
    a = analyse_store(store, "pilot")
    expected = pilot_power(a.prepared, "full_ft", "att_q+layer_norm",
                           PowerSettings(n_sim=300, sizes=(10, 30, 60), raters=(1, 2), seed=3)).contract()
    assert power == json.loads(json.dumps(expected))
    assert power["curves"][2]["n_pilot"] == {"a": 6, "b": 6} and data["comparison"]["test"] == "mann-whitney"
    page = (tmp_path / "o" / "report.html").read_text()
    assert "<h2 id='power'>Power from this pilot: full_ft vs att_q+layer_norm</h2>" in page
    assert 'id="fig-power"' in page and "n for 80%" in page
    # Again with the same seed: the same section; another seed: other numbers.
    assert run_report(db_path, tmp_path / "again", *opts) == 0
    assert json.loads((tmp_path / "again" / "agreement.json").read_text())["power"] == power
    assert run_report(db_path, tmp_path / "other", *[o if o != "3" else "4" for o in opts]) == 0
    other = json.loads((tmp_path / "other" / "agreement.json").read_text())["power"]
    assert [c["curve"] for c in other["curves"]] != [c["curve"] for c in power["curves"]]


def test_nle_report_power_effect_is_in_points(store: Store, write_jsonl, tmp_path: Path, db_path: Path) -> None:
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    assert run_report(db_path, tmp_path / "o", "--power", "--power-effect", "-5", "--power-sims", "50") == 0
    power = json.loads((tmp_path / "o" / "agreement.json").read_text())["power"]
    assert power["effect"] == -0.05 and {c["effect"] for c in power["curves"]} == {-0.05}
    assert power["sizes"] == list(POWER_SIZES_DEFAULT) and power["raters"] == [None] and power["n_sim"] == 50
    page = (tmp_path / "o" / "report.html").read_text()
    assert "a difference a − b of -5 points on the 0–100 scale" in page and "not within 500" in page
    # Without --power the report has no power section.
    assert run_report(db_path, tmp_path / "plain") == 0
    assert "power" not in json.loads((tmp_path / "plain" / "agreement.json").read_text())


@pytest.mark.parametrize("args, message", [
    (["--power-sims", "100"], "--power-sims needs --power"),
    (["--power-raters", "2"], "--power-raters needs --power"),
    (["--power", "--power-sims", "0"], "the number of simulations must be a whole number from 1 to 100000, got 0"),
    (["--power", "--power-alpha", "1.5"], "alpha must be between 0 and 1 (exclusive), got 1.5"),
    (["--power", "--power-effect", "150"],
     "the difference to detect must be between -100 and 100 points (the 0–100 scale), got 150.0"),
    (["--power", "--power-sizes", "10", "1"], "a sample size must be a whole number from 2 to 100000, got 1"),
    (["--power", "--power-raters", "0"],
     "the number of ratings per sample must be a whole number from 1 to 100, got 0"),
    (["--power", "--seed", "-1"], "the seed must be a whole number from 0 to 9223372036854775807, got -1"),
])
def test_nle_report_power_errors_are_one_line_and_write_nothing(args: list[str], message: str, store: Store,
                                                                 write_jsonl, tmp_path: Path, db_path: Path,
                                                                 capsys) -> None:
    fill_store(store, write_jsonl, write_ratings_csv(tmp_path / "r.csv"))
    assert run_report(db_path, tmp_path / "o", *args) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "o").exists()


def test_nle_report_power_refuses_a_pairwise_study(store: Store, write_jsonl, tmp_path: Path, db_path: Path,
                                                   capsys) -> None:
    lines = [nle("esnli", f"s{i}", c) for i in range(4) for c in ("full_ft", "att_q+ln")]
    store.import_pairwise(write_jsonl(lines), "full_ft", "att_q+ln", "pw")
    assert run_report(db_path, tmp_path / "o", "--power") == 2
    assert capsys.readouterr().err == ("error: --power estimates the power of a rating study's comparison; 'pw' is "
                                       "a pairwise study\n")
    assert not (tmp_path / "o").exists()


def test_samples_with_fewer_ratings_give_all_theirs_and_the_table_says_so() -> None:
    frame = study_frame(True)
    frame = frame[~((frame["annotator"] == "bob") & frame["sample_id"].isin(["s0", "s1", "s2"]))]
    p = prepare(*split_export(frame))
    report = pilot_power(p, "full_ft", "att_q+layer_norm", PowerSettings(n_sim=50, sizes=(10,), raters=(2, None)))
    esnli = report.curves[0]
    # esnli: 24 samples of each configuration, 3 of them rated once: (21 × 2 + 3) / 24 per sample.
    assert esnli.reason is None and esnli.ratings_per_sample == pytest.approx(45 / 24)
    table = power_table(report)
    assert table["ratings per sample"].tolist() == [
        "2 (1.9 on average)", "2 (1.8 on average)", "2 (1.9 on average)",
        "as rated (1.9 on average)", "as rated (1.8 on average)", "as rated (1.9 on average)"]


def test_power_section_shows_bidi_controls_as_visible_tags() -> None:
    """As everywhere in report.html: a U+202E in a configuration or dataset name is drawn as ⟦U+202E⟧ in the power
    section's heading, table and notes, never as the raw character that would reorder the text after it."""
    frame = study_frame(True).replace({"full_ft": "full\u202eft", "ecqa": "ec\u202eqa"})
    report = pilot_power(prepare(*split_export(frame)), "full\u202eft", "att_q+layer_norm",
                         PowerSettings(n_sim=20, sizes=(10,), raters=(None, 3)))
    section = power_html(report)
    assert "\u202e" not in section
    assert "Power from this pilot: full⟦U+202E⟧ft vs att_q+layer_norm</h2>" in section
    assert "<td>ec⟦U+202E⟧qa</td>" in section and "<p class='note'>ec⟦U+202E⟧qa: 3 ratings per sample" in section
