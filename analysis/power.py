"""Power of the report's comparison, estimated from a pilot by simulation (Card et al., EMNLP 2020): resample the
pilot's samples with replacement at a larger (or smaller) size, run the very test the report runs
(analysis.compare's batched Wilcoxon / Mann–Whitney), and count how often p < α.

`simulate_power` is the statistics, a pure function over arrays of per-sample ratings; `pilot_power` takes a
study's ratings and the pair of configurations the report compares, per dataset and overall."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.stats import ttest_ind, ttest_rel

from analysis.agreement import SCORE_BY_CODE
from analysis.compare import paired_scores, paired_tests, primary_test, sample_scores, unpaired_tests
from analysis.data import Prepared
from analysis.defaults import POWER_ALPHA_DEFAULT, POWER_SIMS_DEFAULT, POWER_SIZES_DEFAULT

PowerTest = Literal["wilcoxon", "mann-whitney", "t-paired", "t-independent"]
# Whether a test takes pairs (one row of B per row of A, resampled together) or two independent samples.
PAIRED: dict[str, bool] = {"wilcoxon": True, "mann-whitney": False, "t-paired": True, "t-independent": False}
TARGET_POWER = 0.8
MAX_SIMS = 100_000
MAX_SIZE = 100_000
MAX_RATERS = 100
# Simulated scores held in memory at once (rows × n × raters): about 32 MB of floats.
CHUNK_VALUES = 4_000_000
OVERALL = "overall"
# The answers' scores in increasing order (no, weak no, weak yes, yes): the scale a chosen difference moves B on.
ANSWER_SCORES = np.sort(SCORE_BY_CODE)


def _check_int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def check_power_options(*, n_sim: int, alpha: float, sizes: Sequence[int], raters: int | None,
                        effect: float | None, seed: int) -> tuple[int, ...]:
    """ValueError naming the first bad option; the sample sizes sorted, without repeats."""
    _check_int(n_sim, "the number of simulations", 1, MAX_SIMS)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}")
    if not len(sizes):
        raise ValueError("give at least one sample size")
    for n in sizes:
        _check_int(n, "a sample size", 2, MAX_SIZE)
    if raters is not None:
        _check_int(raters, "the number of ratings per sample", 1, MAX_RATERS)
    if effect is not None and (isinstance(effect, bool) or not isinstance(effect, (int, float))
                               or not -1 <= effect <= 1):
        raise ValueError(f"effect must be a difference of mean scores between -1 and 1 (the 0–1 scale), "
                         f"got {effect!r}")
    _check_int(seed, "the seed", 0, 2**63 - 1)
    return tuple(sorted({int(n) for n in sizes}))


def _as_ratings(values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(ratings with each row's ratings first and NaN after, ratings per row): one row per pilot sample."""
    r = np.asarray(values, dtype=float)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2:
        raise ValueError(f"{name} must hold one row of ratings per sample, got an array of shape {r.shape}")
    if np.isinf(r).any():
        raise ValueError(f"{name} holds an infinite rating")
    r = np.sort(r, axis=1)  # NaN (no rating) sorts last
    counts = (~np.isnan(r)).sum(axis=1)
    if len(r) < 2:
        raise ValueError(f"{name} has {len(r)} rated sample(s); resampling needs at least 2")
    if (counts == 0).any():
        raise ValueError(f"{name}: sample {int(np.argmax(counts == 0))} has no rating")
    return r[:, :max(1, int(counts.max()))], counts


def _onto_scale(values: np.ndarray, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each value clipped to the scale and rounded at random to one of its two neighbouring scale values, up with
    probability in proportion to how close it is (so its expected value is kept); NaN stays NaN."""
    v = np.clip(values, scale[0], scale[-1])
    j = np.clip(np.searchsorted(scale, v, side="right") - 1, 0, len(scale) - 2)
    low, high = scale[j], scale[j + 1]
    up = rng.random(v.shape) < (v - low) / (high - low)
    return np.where(np.isnan(values), np.nan, np.where(up, high, low))


def _scale_shift(ratings: np.ndarray, target: float, scale: np.ndarray) -> float:
    """The constant s such that ratings moved by s and put back on the scale (`_onto_scale`) have, in
    expectation, the mean of per-sample means `target` (bisection: that mean only grows with s)."""
    def mean(s: float) -> float:
        return float(np.nanmean(np.clip(ratings + s, scale[0], scale[-1]), axis=1).mean())
    width = float(scale[-1] - scale[0])
    low, high = -width, width
    if not mean(low) - 1e-12 <= target <= mean(high) + 1e-12:
        raise ValueError(f"that difference cannot be reached on the scale: b's mean score would have to be "
                         f"{target:.3f}, outside {scale[0]:g}–{scale[-1]:g}")
    for _ in range(60):  # halving a width of 2 sixty times reaches a float's resolution
        mid = (low + high) / 2
        low, high = (mid, high) if mean(mid) < target else (low, mid)
    return (low + high) / 2


def _check_scale(scale: Sequence[float], *pilots: np.ndarray) -> np.ndarray:
    grid = np.asarray(scale, dtype=float)
    if grid.ndim != 1 or len(grid) < 2 or not np.all(np.diff(grid) > 0):
        raise ValueError(f"the scale must be at least two increasing scores, got {list(scale)!r}")
    for name, r in zip(("ratings_a", "ratings_b"), pilots, strict=True):
        off = ~np.isnan(r) & ~np.isin(r, grid)
        if off.any():
            raise ValueError(f"{name} holds {float(r[off][0])!r}, which is not one of the scale's scores")
    return grid


def _scores(ratings: np.ndarray, counts: np.ndarray, means: np.ndarray, idx: np.ndarray, raters: int | None,
            rng: np.random.Generator, shift: float | None = None, scale: np.ndarray | None = None) -> np.ndarray:
    """Per-sample mean scores of the drawn samples `idx`: over all their ratings (`raters` None), or over
    `raters` of them drawn without replacement (all of them when a sample has fewer: more ratings than the pilot
    gave a sample cannot be resampled from it). `shift`: each drawn rating first moved by it and put back on
    `scale` (`_onto_scale`)."""
    if raters is None and shift is None:
        return means[idx]
    if raters is None:
        values = ratings[idx]
    else:
        k = ratings.shape[1]
        keys = rng.random((*idx.shape, k))
        keys[np.arange(k) >= counts[idx][..., None]] = 2.0  # a sample's missing ratings sort after its own
        take = np.argsort(keys, axis=-1)[..., :min(raters, k)]  # its own in random order, then NaN
        values = ratings[idx[..., None], take]
    if shift is not None and scale is not None:
        values = _onto_scale(values + shift, scale, rng)
    return np.nanmean(values, axis=-1)


def _p_values(test: PowerTest, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One p-value per row: the report's tests on scores rounded as analysis.compare rounds them."""
    if test == "wilcoxon":
        return paired_tests(np.round(a - b, 12))[1]
    if test == "mann-whitney":
        return unpaired_tests(np.round(a, 12), np.round(b, 12))[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        res = ttest_rel(a, b, axis=1) if test == "t-paired" else ttest_ind(a, b, axis=1)
    return np.asarray(res.pvalue, dtype=float)


@dataclass(frozen=True)
class Simulated:
    """Power (share of simulated studies with p < α) and its Monte-Carlo standard error at each sample size,
    for the difference of mean per-sample scores `effect` (a − b; the pilot's own is `pilot_effect`)."""

    sizes: tuple[int, ...]
    power: np.ndarray
    se: np.ndarray
    n_sim: int
    alpha: float
    effect: float
    pilot_effect: float

    def n_for(self, target: float = TARGET_POWER) -> int | None:
        """The smallest of `sizes` whose power reaches `target`; None when none does."""
        reached = [n for n, p in zip(self.sizes, self.power, strict=True) if p >= target]
        return reached[0] if reached else None


def simulate_power(ratings_a: np.ndarray, ratings_b: np.ndarray, *, test: PowerTest,
                   sizes: Sequence[int] = POWER_SIZES_DEFAULT, raters: int | None = None,
                   n_sim: int = POWER_SIMS_DEFAULT, alpha: float = POWER_ALPHA_DEFAULT,
                   effect: float | None = None, scale: Sequence[float] | None = None, seed: int = 0) -> Simulated:
    """Power of `test` at each of `sizes` samples per configuration, from a pilot.

    `ratings_a`, `ratings_b`: one row per pilot sample, its ratings as scores in [0, 1] (NaN where it has fewer;
    a 1-D array is one score per sample). Paired tests need the rows aligned (row i of both is one sample).
    Each simulated study draws `n` samples with replacement (pairs together), keeps each drawn sample's
    ratings together and scores it by their mean, or by the mean of `raters` of them (see `_scores`; at most as
    many as the pilot's best-rated sample has), then runs `test`.

    `effect`: the difference of mean per-sample scores a − b to simulate instead of the pilot's own (None). With
    `scale` (the answers' scores, e.g. 0, 1/3, 2/3, 1) every drawn rating of B moves by one constant and is
    rounded at random to a neighbouring answer keeping its expected value, so B's ratings stay answers and the
    difference grows smoothly with `effect` (a plain shift of discrete scores would change a rank test's result
    only when it crosses a step); the constant is solved for so that the expected difference is `effect`.
    Without `scale` (continuous scores), B's per-sample scores move by the constant. Deterministic for a `seed`."""
    if test not in PAIRED:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(PAIRED)}")
    sizes = check_power_options(n_sim=n_sim, alpha=alpha, sizes=sizes, raters=raters, effect=effect, seed=seed)
    ra, ca = _as_ratings(ratings_a, "ratings_a")
    rb, cb = _as_ratings(ratings_b, "ratings_b")
    grid = None if scale is None else _check_scale(scale, ra, rb)
    paired = PAIRED[test]
    most = max(ra.shape[1], rb.shape[1])
    if raters is not None and raters > most:
        raise ValueError(f"{raters} ratings per sample cannot be resampled from a pilot whose samples have at "
                         f"most {most}")
    if paired and len(ra) != len(rb):
        raise ValueError(f"the {test} test takes pairs: one row of ratings_b per row of ratings_a, got "
                         f"{len(ra)} and {len(rb)}")
    ma, mb = np.nanmean(ra, axis=1), np.nanmean(rb, axis=1)
    pilot_effect = float(ma.mean() - mb.mean())
    # B moves by a constant: added to its per-sample scores, or (on a scale) to its ratings before rounding.
    score_shift = 0.0 if effect is None or grid is not None else pilot_effect - effect
    rating_shift = None if effect is None or grid is None else _scale_shift(rb, float(ma.mean() - effect), grid)
    power = np.zeros(len(sizes))
    for i, n in enumerate(sizes):
        # One stream per sample size: adding a size to the grid leaves the others' numbers unchanged.
        rng = np.random.default_rng([seed, n])
        rejected, done = 0, 0
        chunk = max(1, CHUNK_VALUES // (n * most))
        while done < n_sim:
            rows = min(chunk, n_sim - done)
            ia = rng.integers(0, len(ra), (rows, n))
            ib = ia if paired else rng.integers(0, len(rb), (rows, n))
            a = _scores(ra, ca, ma, ia, raters, rng)
            b = _scores(rb, cb, mb, ib, raters, rng, rating_shift, grid) + score_shift
            p = _p_values(test, a, b)
            rejected += int((p < alpha).sum())  # NaN (test undefined) never rejects
            done += rows
        power[i] = rejected / n_sim
    se = np.sqrt(power * (1 - power) / n_sim)
    return Simulated(sizes=sizes, power=power, se=se, n_sim=n_sim, alpha=float(alpha),
                     effect=pilot_effect if effect is None else float(effect), pilot_effect=pilot_effect)


# -- a study's pilot ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerSettings:
    """What `nle-report --power` and the Analysis page ask for. `effect_points`: the difference a − b to
    simulate, in points of the 0–100 scale the report prints (None: the pilot's own); `raters`: ratings per
    sample to simulate, None for each sample's own ratings as in the pilot."""

    n_sim: int = POWER_SIMS_DEFAULT
    alpha: float = POWER_ALPHA_DEFAULT
    effect_points: float | None = None
    sizes: tuple[int, ...] = POWER_SIZES_DEFAULT
    raters: tuple[int | None, ...] = (None,)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.effect_points is not None and (isinstance(self.effect_points, bool)
                                               or not isinstance(self.effect_points, (int, float))
                                               or not -100 <= self.effect_points <= 100):
            raise ValueError(f"the difference to detect must be between -100 and 100 points (the 0–100 scale), "
                             f"got {self.effect_points!r}")
        if not len(self.raters):
            raise ValueError("give at least one number of ratings per sample")
        for r in self.raters:
            check_power_options(n_sim=self.n_sim, alpha=self.alpha, sizes=self.sizes, raters=r,
                                effect=self.effect, seed=self.seed)
        object.__setattr__(self, "sizes", tuple(sorted({int(n) for n in self.sizes})))
        object.__setattr__(self, "raters", tuple(dict.fromkeys(self.raters)))

    @property
    def effect(self) -> float | None:
        """The difference to simulate on the 0–1 scale of the scores (agreement.json's)."""
        return None if self.effect_points is None else self.effect_points / 100


@dataclass
class PowerCurve:
    """Power of the comparison `a` vs `b` in one dataset (or `overall`) at one number of ratings per sample."""

    dataset: str
    a: str
    b: str
    test: str
    raters: int | None
    n_pilot_a: int
    n_pilot_b: int
    ratings_per_sample: float | None
    settings: PowerSettings
    result: Simulated | None = None
    reason: str | None = None

    @property
    def n_for_80(self) -> int | None:
        return None if self.result is None else self.result.n_for(TARGET_POWER)

    def contract(self) -> dict[str, Any]:
        """One entry of agreement.json's power "curves" (key names are a contract); scores on the 0–1 scale."""
        r = self.result
        return {"dataset": self.dataset, "a": self.a, "b": self.b, "test": self.test, "alpha": self.settings.alpha,
                "raters": self.raters, "n_pilot": {"a": self.n_pilot_a, "b": self.n_pilot_b},
                "ratings_per_sample": self.ratings_per_sample,
                "pilot_effect": None if r is None else r.pilot_effect, "effect": None if r is None else r.effect,
                "curve": [] if r is None else [{"n": n, "power": float(p), "se": float(s)}
                                               for n, p, s in zip(r.sizes, r.power, r.se, strict=True)],
                "n_for_80": self.n_for_80, "reason": self.reason}


@dataclass
class PowerReport:
    """Every curve of one comparison: per dataset then overall, for each number of ratings per sample."""

    a: str
    b: str
    settings: PowerSettings
    curves: list[PowerCurve] = field(default_factory=list)

    def contract(self) -> dict[str, Any]:
        """agreement.json's "power" section."""
        s = self.settings
        return {"a": self.a, "b": self.b, "alpha": s.alpha, "n_sim": s.n_sim, "seed": s.seed, "target": TARGET_POWER,
                "effect": s.effect, "sizes": list(s.sizes), "raters": list(s.raters),
                "curves": [c.contract() for c in self.curves]}


def _rating_rows(p: Prepared, item_ids: np.ndarray) -> np.ndarray:
    """The ratings of items (by id) as scores in [0, 1], one row per item, NaN where not rated."""
    rows = np.searchsorted(p.items["item_id"].to_numpy(), item_ids)
    codes = p.codes[rows]
    return np.where(codes >= 0, SCORE_BY_CODE[np.maximum(codes, 0)], np.nan)


def _curve_seed(seed: int, dataset: str, raters: int | None) -> int:
    """A seed per curve from the user's: each curve's numbers do not depend on which other curves are drawn."""
    key = [seed, zlib.crc32(dataset.encode()), 0 if raters is None else raters]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0]) >> 1


def pilot_power(p: Prepared, a: str, b: str, settings: PowerSettings | None = None) -> PowerReport:
    """Power of the report's comparison of `a` and `b` from a study's ratings so far, per dataset and overall.
    The test is the one analysis.compare chooses for each: Wilcoxon signed-rank on per-sample score differences
    when every sample was rated under both configurations, Mann–Whitney U otherwise."""
    settings = settings or PowerSettings()
    sa, sb = sample_scores(p, a), sample_scores(p, b)
    pairs = paired_scores(sa, sb)
    report = PowerReport(a, b, settings)
    groups: list[tuple[str, int | None]] = [(d, i) for i, d in enumerate(p.datasets)] + [(OVERALL, None)]
    for raters in settings.raters:
        for name, idx in groups:
            ga, gb, gp = ((sa, sb, pairs) if idx is None else
                          (sa[sa["dataset_idx"] == idx], sb[sb["dataset_idx"] == idx], pairs[pairs["dataset_idx"] == idx]))
            test = primary_test(len(gp), len(ga) - len(gp), len(gb) - len(gp))
            ids_a, ids_b = ((gp["item_id_a"], gp["item_id_b"]) if test == "wilcoxon" else
                            (ga["item_id"], gb["item_id"]))
            per_sample = np.concatenate([ga["n_ratings"].to_numpy(), gb["n_ratings"].to_numpy()])
            most = int(per_sample.max()) if len(per_sample) else 0
            if raters is not None:
                per_sample = np.minimum(per_sample, raters)  # what is simulated: a sample gives at most its own
            curve = PowerCurve(dataset=name, a=a, b=b, test=test, raters=raters, n_pilot_a=len(ids_a),
                               n_pilot_b=len(ids_b), settings=settings,
                               ratings_per_sample=float(per_sample.mean()) if len(per_sample) else None)
            where = "" if idx is None else f" in {name}"
            if min(len(ids_a), len(ids_b)) < 2:
                few = a if len(ids_a) < 2 else b
                curve.reason = (f"{few!r} has {min(len(ids_a), len(ids_b))} rated sample(s){where}; resampling "
                                "a pilot needs at least 2 per configuration")
            elif raters is not None and raters > most:
                curve.reason = (f"{raters} ratings per sample cannot be resampled from a pilot whose samples have "
                                f"at most {most}{where}; what more annotators would add needs a pilot with that many")
            else:
                try:
                    curve.result = simulate_power(
                        _rating_rows(p, ids_a.to_numpy()), _rating_rows(p, ids_b.to_numpy()), test=test,
                        sizes=settings.sizes, raters=raters, n_sim=settings.n_sim, alpha=settings.alpha,
                        effect=settings.effect, scale=ANSWER_SCORES, seed=_curve_seed(settings.seed, name, raters))
                except ValueError as exc:  # the options were checked: what is left is this pilot's (a difference
                    curve.reason = f"{exc}{where}"  # beyond the scale from its mean)
            report.curves.append(curve)
    return report
