"""Agreement between annotators: Cohen's κ (plain, weighted, binary), FEB's free-marginal Fleiss κ, percent
agreement, Krippendorff's α, and seeded bootstrap intervals. Pure functions over arrays; an undefined statistic is a result with value None
and a reason, never an exception or a silent 0."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from analysis.defaults import BOOTSTRAP_DEFAULT
from annotate.core.scale import RATINGS, SCORES

Weights = Literal[None, "linear", "quadratic"]
AlphaMetric = Literal["nominal", "ordinal", "interval"]

K = len(RATINGS)
RATING_CODE: dict[str, int] = {r: i for i, r in enumerate(RATINGS)}
# Scores by code, as floats (yes 1, weak yes 2/3, weak no 1/3, no 0).
SCORE_BY_CODE = np.array([float(SCORES[r]) for r in RATINGS])
# {yes, weak_yes} -> 0 ("positive"), {weak_no, no} -> 1 ("negative").
BINARY_BY_CODE = np.array([0 if r in ("yes", "weak_yes") else 1 for r in RATINGS])

ONE_CATEGORY = "undefined: both annotators gave every item the same single answer ({}), so chance agreement is 1"
NO_ITEMS = "undefined: no items rated by both annotators"


@dataclass(frozen=True)
class Stat:
    """A statistic that may be undefined: `value` is None exactly when `reason` says why."""

    value: float | None
    reason: str | None = None
    n: int = 0

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            raise ValueError("Stat needs either a value or a reason, not both")


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval; bounds are None when the statistic was undefined in the data."""

    low: float | None
    high: float | None
    n_boot: int
    seed: int


def rating_codes(ratings: Sequence[str] | pd.Series | np.ndarray) -> np.ndarray:
    """Map rating names to 0..3 in the ordinal RATINGS order; ValueError naming the first unknown rating."""
    s = pd.Series(ratings, dtype="object") if not isinstance(ratings, pd.Series) else ratings
    codes = s.map(RATING_CODE)
    if codes.isna().any():
        bad = s[codes.isna()].iloc[0]
        raise ValueError(f"unknown rating {bad!r}; expected one of {', '.join(RATINGS)}")
    return codes.to_numpy(dtype=np.int8)


def _pair_codes(a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(f"the two annotators' answers differ in length ({len(a)} vs {len(b)})")
    ca = a if isinstance(a, np.ndarray) and a.dtype.kind in "iu" else rating_codes(a)
    cb = b if isinstance(b, np.ndarray) and b.dtype.kind in "iu" else rating_codes(b)
    return ca, cb


def weight_matrix(k: int, weights: Weights) -> np.ndarray:
    """Disagreement weights w[i, j] over k ordered categories, as scikit-learn uses them."""
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(float)
    if weights == "linear":
        return np.abs(i - j).astype(float)
    if weights == "quadratic":
        return ((i - j) ** 2).astype(float)
    raise ValueError(f"unknown weights {weights!r}; expected None, 'linear' or 'quadratic'")


def kappa_from_tables(tables: np.ndarray, weights: Weights = None) -> np.ndarray:
    """κ of each k×k confusion table in `tables` (shape (..., k, k)); NaN where chance disagreement is 0."""
    tables = np.asarray(tables, dtype=float)
    k = tables.shape[-1]
    w = weight_matrix(k, weights)
    n = tables.sum(axis=(-2, -1))
    expected = tables.sum(axis=-1)[..., :, None] * tables.sum(axis=-2)[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = expected / n[..., None, None]
        observed = (w * tables).sum(axis=(-2, -1))
        chance = (w * expected).sum(axis=(-2, -1))
        out = 1.0 - observed / chance
    # chance == 0 only when all mass sits on w == 0 cells: one and the same category for both annotators.
    return np.where(np.isclose(chance, 0.0) | (n == 0), np.nan, out)


def _undefined_reason(ca: np.ndarray, cb: np.ndarray, names: Sequence[str]) -> str | None:
    if len(ca) == 0:
        return NO_ITEMS
    values = np.unique(np.concatenate([ca, cb]))
    if len(values) == 1:
        return ONE_CATEGORY.format(names[int(values[0])])
    return None


def _weighted(ca: np.ndarray, cb: np.ndarray, sample_weight: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Drop zero-weight entries; the n reported is the number of items (sum of weights)."""
    if sample_weight is None:
        return ca, cb, None, len(ca)
    w = np.asarray(sample_weight)
    if len(w) != len(ca):
        raise ValueError(f"sample_weight has {len(w)} entries for {len(ca)} items")
    keep = w > 0
    return ca[keep], cb[keep], w[keep], int(w[keep].sum())


def _kappa(ca: np.ndarray, cb: np.ndarray, k: int, weights: Weights, w: np.ndarray | None) -> float:
    """κ through the one implementation, `kappa_from_tables` (vectorised for the bootstrap; the tests hold it
    to scikit-learn's cohen_kappa_score as the oracle)."""
    table = np.zeros((k, k))
    np.add.at(table, (ca.astype(np.intp), cb.astype(np.intp)), 1.0 if w is None else w)
    return float(kappa_from_tables(table, weights))


def cohen_kappa(a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray, weights: Weights = None,
                sample_weight: np.ndarray | None = None) -> Stat:
    """Cohen's κ of two annotators' answers to the same items, on the ordinal RATINGS scale.

    `a`, `b`: rating names or codes 0..3; `sample_weight`: how many items each (a, b) entry stands for.
    """
    weight_matrix(K, weights)  # rejects unknown weights with our own message
    ca, cb = _pair_codes(a, b)
    ca, cb, w, n = _weighted(ca, cb, sample_weight)
    reason = _undefined_reason(ca, cb, RATINGS)
    if reason:
        return Stat(None, reason, n)
    value = _kappa(ca, cb, K, weights, w)
    if not math.isfinite(value):  # defensive: the check above catches every 0/0 we know of
        return Stat(None, "undefined: chance agreement is 1", n)
    return Stat(value, None, n)


def binary_kappa(a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray,
                 sample_weight: np.ndarray | None = None) -> Stat:
    """Cohen's κ after merging {yes, weak_yes} into "positive" and {weak_no, no} into "negative"."""
    ca, cb = _pair_codes(a, b)
    ca, cb, w, n = _weighted(ca, cb, sample_weight)
    ba, bb = BINARY_BY_CODE[ca], BINARY_BY_CODE[cb]
    reason = _undefined_reason(ba, bb, ("positive (yes or weak yes)", "negative (weak no or no)"))
    if reason:
        return Stat(None, reason, n)
    return Stat(_kappa(ba, bb, 2, None, w), None, n)


def presence_kappa(a: Sequence[bool] | np.ndarray, b: Sequence[bool] | np.ndarray, what: str = "the tag",
                   sample_weight: np.ndarray | None = None) -> Stat:
    """Cohen's κ on presence/absence (e.g. of one shortcoming tag) between two annotators."""
    ba, bb = np.asarray(a, dtype=np.int8), np.asarray(b, dtype=np.int8)
    if len(ba) != len(bb):
        raise ValueError(f"the two annotators' answers differ in length ({len(ba)} vs {len(bb)})")
    ba, bb, w, n = _weighted(ba, bb, sample_weight)
    reason = _undefined_reason(ba, bb, (f"{what} absent", f"{what} present"))
    if reason:
        return Stat(None, reason, n)
    return Stat(_kappa(ba, bb, 2, None, w), None, n)


def percent_agreement(a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray,
                      sample_weight: np.ndarray | None = None) -> Stat:
    """Share of items on which the two annotators gave the same answer (0..1)."""
    ca, cb = _pair_codes(a, b)
    ca, cb, w, n = _weighted(ca, cb, sample_weight)
    if n == 0:
        return Stat(None, NO_ITEMS, 0)
    return Stat(float(np.average(ca == cb, weights=w)), None, n)


def disagreements(a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray,
                  sample_weight: np.ndarray | None = None) -> int:
    """Number of items on which the two annotators' answers differ."""
    ca, cb = _pair_codes(a, b)
    ca, cb, w, _ = _weighted(ca, cb, sample_weight)
    return int(np.count_nonzero(ca != cb) if w is None else w[ca != cb].sum())


def confusion(ca: np.ndarray, cb: np.ndarray, k: int = K) -> np.ndarray:
    """k×k table of answer pairs (rows: first annotator, columns: second)."""
    return np.bincount(ca.astype(np.int64) * k + cb, minlength=k * k).reshape(k, k)


# -- bootstrap ------------------------------------------------------------------------------------------------------


def bootstrap_types(
    type_counts: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = BOOTSTRAP_DEFAULT,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of `statistic` when items are resampled with replacement.

    Items are summarised by type (e.g. the pair of answers an item got): resampling n items with replacement
    draws the type counts from Multinomial(n, observed shares), so we draw those counts directly — the same
    distribution at O(n_boot × types) cost instead of O(n_boot × n). `statistic` maps a (n_boot, types) count
    matrix to n_boot values (NaN where undefined; such resamples are left out).
    """
    counts = np.asarray(type_counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return Interval(None, None, n_boot, seed)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_boot)
    values = np.asarray(statistic(draws), dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(None, None, n_boot, seed)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), n_boot, seed)


def kappa_interval(ca: np.ndarray, cb: np.ndarray, weights: Weights = None, *, binary: bool = False,
                   n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> Interval:
    """Bootstrap 95 % interval of (weighted or binary) κ over items rated by both annotators."""
    if binary:
        ca, cb, k = BINARY_BY_CODE[ca], BINARY_BY_CODE[cb], 2
    else:
        k = K
    table = confusion(ca, cb, k).ravel()
    return bootstrap_types(table, lambda d: kappa_from_tables(d.reshape(-1, k, k), weights),
                           n_boot=n_boot, seed=seed)


def mean_score_interval(item_sums: np.ndarray, item_counts: np.ndarray, *, n_boot: int = BOOTSTRAP_DEFAULT,
                        seed: int = 0) -> Interval:
    """Bootstrap 95 % interval of the mean score over ratings, resampling items (each with all its ratings).

    `item_sums` are each item's score sums in thirds (integers: yes 3, weak yes 2, weak no 1, no 0), so that
    items fall into few (sum, count) types.
    """
    sums = np.asarray(item_sums, dtype=np.int64)
    cnts = np.asarray(item_counts, dtype=np.int64)
    if len(sums) == 0:
        return Interval(None, None, n_boot, seed)
    types, counts = np.unique(np.stack([sums, cnts], axis=1), axis=0, return_counts=True)

    def stat(draws: np.ndarray) -> np.ndarray:
        return (draws @ types[:, 0]) / (draws @ types[:, 1]) / 3.0

    return bootstrap_types(counts, stat, n_boot=n_boot, seed=seed)


# -- FEB's convention ------------------------------------------------------------------------------------------------


def fleiss_kappa_uniform(table: np.ndarray, sample_weight: np.ndarray | None = None) -> Stat:
    """Fleiss' κ with uniform chance agreement 1/k (free-marginal, Randolph's κ) from an items × categories table
    of rating counts, every item with the same number m ≥ 2 of ratings; statsmodels'
    `fleiss_kappa(table, method="uniform")`. `sample_weight`: how many items each row stands for."""
    table = np.asarray(table, dtype=float)
    w = np.ones(len(table)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    n_items = int(w.sum())
    if n_items == 0:
        return Stat(None, "undefined: no item has two or more ratings", 0)
    m = table.sum(axis=1)
    if not np.all(m == m[0]) or m[0] < 2:
        raise ValueError("every item needs the same number (two or more) of ratings")
    k = table.shape[1]
    # Per item, the share of agreeing ordered pairs of ratings; chance agreement is 1/k whatever the marginals.
    per_item = ((table**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar = float(np.average(per_item, weights=w))
    return Stat((p_bar - 1 / k) / (1 - 1 / k), None, n_items)


def fleiss_kappa_free_binary(units: np.ndarray, weights: np.ndarray | None = None) -> Stat:
    """FEB's agreement figure (allenai/feb scripts/compute_kappa.py): free-marginal Fleiss κ on two classes,
    {yes, weak yes} vs {weak no, no}, over the items with exactly the most common number of ratings per item
    (the larger on a tie), when that number is ≥ 2. `units`: items × annotators codes 0..3, -1 for not rated;
    `weights`: how many items each row stands for. `n` of the result: the items used."""
    units = np.asarray(units)
    w = np.ones(len(units), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    present = units >= 0
    m = present.sum(axis=1)
    rated = m > 0
    if not rated.any():
        return Stat(None, "undefined: no rated item", 0)
    per_m = np.bincount(m[rated], weights=w[rated])
    mode = int(np.flatnonzero(per_m == per_m.max())[-1])
    if mode < 2:
        return Stat(None, "undefined: most items have a single rating", 0)
    keep = m == mode
    positive = (present & (BINARY_BY_CODE[np.maximum(units, 0)] == 0))[keep].sum(axis=1)
    table = np.stack([positive, mode - positive], axis=1)
    return fleiss_kappa_uniform(table, w[keep])


# -- more than two annotators ---------------------------------------------------------------------------------------


def coincidence_matrix(units: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Krippendorff's coincidence matrix o[c, k] from a (units × coders) array of codes 0..k-1, -1 for missing.

    Each unit with m ≥ 2 values adds every ordered pair of its values from different coders, weighted
    1/(m-1): o[c, k] = Σ_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1). `weights`: how many units each row stands for.
    """
    units = np.asarray(units)
    w = np.ones(len(units)) if weights is None else np.asarray(weights, dtype=float)
    present = units >= 0
    m = present.sum(axis=1)
    keep = m >= 2
    units, m, w = units[keep], m[keep], w[keep]
    per_unit = np.stack([(units == c).sum(axis=1) for c in range(k)], axis=1).astype(float)
    scaled = per_unit * (w / (m - 1))[:, None]
    return scaled.T @ per_unit - np.diag(scaled.sum(axis=0))


def krippendorff_alpha_from_coincidences(o: np.ndarray, metric: AlphaMetric = "ordinal",
                                         values: Sequence[float] | None = None) -> Stat:
    """Krippendorff's α from a coincidence matrix: 1 - (n - 1) Σ o·δ² / Σ n_c n_k δ².

    The ordinal metric is δ²(c, k) = (Σ_{g=c..k} n_g - (n_c + n_k) / 2)²; interval uses (v_c - v_k)² with
    `values` (default 0..k-1); nominal is 1 for c ≠ k.
    """
    o = np.asarray(o, dtype=float)
    k = o.shape[0]
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n == 0:
        return Stat(None, "undefined: no unit has two or more values", 0)
    c, kk = np.indices((k, k))
    if metric == "nominal":
        d2 = (c != kk).astype(float)
    elif metric == "interval":
        v = np.arange(k, dtype=float) if values is None else np.asarray(values, dtype=float)
        d2 = (v[c] - v[kk]) ** 2
    elif metric == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo, hi = np.minimum(c, kk), np.maximum(c, kk)
        d2 = (cum[hi + 1] - cum[lo] - (n_c[c] + n_c[kk]) / 2) ** 2
    else:
        raise ValueError(f"unknown metric {metric!r}; expected 'nominal', 'ordinal' or 'interval'")
    expected = (np.outer(n_c, n_c) * d2).sum()
    if expected == 0:
        return Stat(None, "undefined: every value is the same category, so expected disagreement is 0", int(n))
    return Stat(float(1.0 - (n - 1) * (o * d2).sum() / expected), None, int(n))


def krippendorff_alpha(units: np.ndarray, k: int = K, metric: AlphaMetric = "ordinal",
                       weights: np.ndarray | None = None) -> Stat:
    """Krippendorff's α over a (units × coders) array of codes 0..k-1 with -1 for missing values."""
    return krippendorff_alpha_from_coincidences(coincidence_matrix(units, k, weights), metric)
