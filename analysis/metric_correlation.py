"""How far an automatic metric tracks the human ratings: rank correlations with bootstrap intervals.

Item level: Spearman's ρ and Kendall's τ-b between each item's mean human score and the item's metric value, with
a percentile bootstrap interval that resamples items (pairs kept together). System level: the same two statistics
over configuration means. Definitions, choices and references (e-ViL, FEB): docs/analysis.md, "Automatic metrics
next to the ratings".

Pure functions over arrays and two over a tidy table (no store); `metric_report` puts them together for a
study's report from its rated items (analysis.data.Prepared) and the store's metric table. A resample is written
as how many times it holds each item (a row of counts), so every resample shares one sort of the data: ranks are
running sums of counts over the sorted order, and τ-b's S (concordant minus discordant pairs) is summed level by
level as in a merge sort, each level one vectorised pass over all resamples. Both equal SciPy's `spearmanr` /
`kendalltau` (variant b) on the resampled arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.data import Prepared

MIN_ITEMS = 3  # fewer points make a rank correlation of at most a few possible values
MIN_CONFIGURATIONS = 3
OVERALL = "overall"
TABLE_COLUMNS = ("item_id", "dataset", "config", "is_gold_reference", "is_attention_check", "metric", "value")
_BATCH_ELEMENTS = 1 << 21  # resamples x items per pass: work arrays of a few MB, whatever the size
_BASE = 16  # Kendall's pairs within blocks of this many sorted positions are summed directly


@dataclass(frozen=True)
class Correlation:
    """Spearman's ρ and Kendall's τ-b of `n` points, their percentile bootstrap intervals (None without
    resamples), or `undefined`: why there are no statistics (then every statistic and interval is None)."""

    n: int
    spearman: float | None
    kendall: float | None
    spearman_ci: tuple[float, float] | None = None
    kendall_ci: tuple[float, float] | None = None
    undefined: str | None = None
    n_resamples: int = 0  # resamples drawn
    resamples_defined: int = 0  # resamples in which both sides vary: the intervals are over these


def _vector(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":  # bool ('b'), text and objects are not scores
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {arr[bad[0]]}, not a finite number")
    return arr


def _pair(human: object, metric: object) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vector("human", human), _vector("metric", metric)
    if len(x) != len(y):
        raise ValueError(f"human and metric differ in length: {len(x)} and {len(y)}")
    return x, y


def _constant(x: np.ndarray, y: np.ndarray) -> str | None:
    """Why no rank correlation exists (a side without two different values), or None."""
    cx, cy = bool(np.all(x == x[0])), bool(np.all(y == y[0]))
    if cx and cy:
        return "the human scores and the metric values are constant"
    if cx:
        return "the human scores are constant"
    return "the metric values are constant" if cy else None


class _RankPairs:
    """Spearman's ρ and Kendall's τ-b of one data set under many resamples, each given as counts per item.

    Everything that depends only on the data (the sort, tie groups, the index arrays of each merge level) is built
    once; a batch of resamples then costs a few vectorised passes per level, over integer counts (exact, and fast
    to sum along a row)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        n = len(x)
        self.n = n
        self.order = np.lexsort((y, x))  # by x, ties by y
        self.position = np.empty(n, dtype=np.int64)  # each item's place in that order
        self.position[self.order] = np.arange(n)
        # Sums of count x (count + count) reach 2n^2: 32-bit integers hold them exactly up to n = 32,767.
        self.dtype = np.int32 if 2 * n * n < 2**31 else np.int64
        xs, ys = x[self.order], y[self.order]
        # Tie groups as bounds of runs (a group's count is a difference of running sums): of x and of (x, y)
        # in the sorted order, of y in the order by y.
        new_x = np.r_[True, xs[1:] != xs[:-1]]
        self.x_bounds = np.r_[np.flatnonzero(new_x), n]
        self.x_group = np.cumsum(new_x) - 1
        self.xy_bounds = np.r_[np.flatnonzero(new_x | np.r_[True, ys[1:] != ys[:-1]]), n]
        y_values, y_rank = np.unique(ys, return_inverse=True)
        y_rank = y_rank.ravel()
        self.y_group = y_rank  # per sorted position: index of its y value
        self.y_order = np.argsort(y_rank, kind="stable")
        self.y_bounds = np.r_[np.flatnonzero(np.r_[True, np.diff(y_rank[self.y_order]) != 0]), n]
        # Σ over pairs i < j (sorted order) of sign(y_j - y_i): pairs within a base block of _BASE positions
        # directly, from a sign matrix per block; the rest by merge levels, where at half-width h each block
        # of 2h positions is a left and a right half, and every other pair is split at exactly one level.
        blocks = -(-n // _BASE)
        padded = np.full(blocks * _BASE, -1)
        padded[:n] = y_rank
        yb = padded.reshape(blocks, _BASE)
        upper = np.triu(np.ones((_BASE, _BASE), dtype=bool), 1)
        real = (yb[:, :, None] >= 0) & (yb[:, None, :] >= 0)
        self.base_signs = (np.sign(yb[:, None, :] - yb[:, :, None]) * (upper & real)).astype(np.float64)
        n_y = len(y_values)
        self.levels: list[tuple[np.ndarray, ...]] = []
        pos = np.arange(n)
        h = _BASE
        while h < n:
            block, left = pos // (2 * h), (pos % (2 * h)) < h
            lpos, rpos = pos[left], pos[~left]
            lkey = block[lpos] * n_y + y_rank[lpos]
            by_key = np.argsort(lkey, kind="stable")
            keys = lkey[by_key]
            rkey = block[rpos] * n_y + y_rank[rpos]
            halves = np.unique(block[rpos])  # blocks with a right half
            # Per right item, where its y value's run starts and ends among the left halves' cumulative counts
            # (sorted by block, then y); per block, its right half's bounds and where its left half starts and
            # ends in those cumulative counts.
            self.levels.append((lpos[by_key], rpos, np.searchsorted(keys, rkey, "left"),
                                np.searchsorted(keys, rkey, "right"), halves * 2 * h + h,
                                np.minimum((halves + 1) * 2 * h, n), np.searchsorted(keys, halves * n_y, "left"),
                                np.searchsorted(keys, (halves + 1) * n_y, "left")))
            h *= 2

    def statistics(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ρ, τ-b) per row of `counts` (times each item is in a resample; rows sum to n); NaN where a side of
        the resample is constant."""
        return self._sorted_statistics(np.take(counts, self.order, axis=1).astype(self.dtype))

    def resampled(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ρ, τ-b) per row of `picks` (the items a resample draws, as indices)."""
        rows = len(picks)
        at = self.position[picks] + self.n * np.arange(rows)[:, None]
        counts = np.bincount(at.ravel(), minlength=self.n * rows).reshape(rows, self.n)
        return self._sorted_statistics(counts.astype(self.dtype))

    def _sorted_statistics(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`statistics` of counts laid out resamples x items in sorted order."""
        rows, total = len(c), float(self.n)
        prefix = np.zeros((rows, self.n + 1), dtype=c.dtype)
        np.cumsum(c, axis=1, out=prefix[:, 1:])
        by_y = np.zeros_like(prefix)
        np.cumsum(np.take(c, self.y_order, axis=1), axis=1, out=by_y[:, 1:])
        gx, gy, gxy = (np.diff(np.take(p, bounds, axis=1), axis=1).astype(np.float64)
                       for p, bounds in ((prefix, self.x_bounds), (by_y, self.y_bounds), (prefix, self.xy_bounds)))
        centre = (total + 1) / 2
        # Mid-ranks of the resample: items before the tie group, plus the group's mean rank; centred.
        mid_x = np.cumsum(gx, axis=1) - gx + (gx + 1) / 2 - centre
        mid_y = np.cumsum(gy, axis=1) - gy + (gy + 1) / 2 - centre
        sxy = np.einsum("bi,bi,bi->b", c, np.take(mid_x, self.x_group, axis=1), np.take(mid_y, self.y_group, axis=1))
        sxx, syy = np.einsum("bg,bg->b", gx, mid_x * mid_x), np.einsum("bg,bg->b", gy, mid_y * mid_y)
        # Kendall's S: Σ over pairs i < j of c_i c_j sign(y_j - y_i), base blocks first.
        by_block = np.zeros((rows, self.base_signs.shape[0] * _BASE))
        by_block[:, :self.n] = c
        by_block = by_block.reshape(rows, -1, _BASE).transpose(1, 0, 2)  # blocks x resamples x positions
        s = np.einsum("kbj,kbj->b", by_block @ self.base_signs, by_block)
        for lpos, rpos, run_start, run_end, right_start, block_end, left_start, left_end in self.levels:
            cum = np.zeros((rows, len(lpos) + 1), dtype=c.dtype)
            np.cumsum(np.take(c, lpos, axis=1), axis=1, out=cum[:, 1:])
            # Per right item, (left items with a smaller y) - (left items with a larger y), by their counts:
            # cum[run_start] + cum[run_end] - cum[left_start] - cum[left_end]; the last two are the block's.
            s += np.einsum("bi,bi->b", np.take(c, rpos, axis=1),
                           np.take(cum, run_start, axis=1) + np.take(cum, run_end, axis=1))
            right = np.take(prefix, block_end, axis=1) - np.take(prefix, right_start, axis=1)
            s -= np.einsum("bk,bk->b", right, np.take(cum, left_start, axis=1) + np.take(cum, left_end, axis=1))
        # Pairs tied in x but not in y were counted as concordant (ties are sorted by y): take them out.
        s -= (np.einsum("bg,bg->b", gx, gx) - np.einsum("bg,bg->b", gxy, gxy)) / 2
        pairs = total * (total - 1) / 2
        untied_x = pairs - np.einsum("bg,bg->b", gx, gx - 1) / 2
        untied_y = pairs - np.einsum("bg,bg->b", gy, gy - 1) / 2
        defined = (sxx > 0) & (syy > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(defined, sxy / np.sqrt(sxx * syy), np.nan)
            tau = np.where(defined, s / np.sqrt(untied_x * untied_y), np.nan)
        # Rounding can put a perfect correlation a hair outside [-1, 1]; SciPy clips likewise.
        return np.clip(rho, -1.0, 1.0), np.clip(tau, -1.0, 1.0)


def _resamples(n: int, n_resamples: int, rng: np.random.Generator, batch: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of n items as the indices they draw, `batch` at a time: SciPy `bootstrap`'s draws
    for the same `batch` (`rng.integers(0, n, (batch, n))`)."""
    for first in range(0, n_resamples, batch):
        yield rng.integers(0, n, (min(batch, n_resamples - first), n))


def _check_options(n_resamples: int, confidence_level: float, batch: int | None) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise ValueError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    if isinstance(confidence_level, bool) or not isinstance(confidence_level, (int, float, np.floating)) \
            or not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be between 0 and 1 (exclusive), got {confidence_level!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
        raise ValueError(f"batch must be a positive integer or None, got {batch!r}")


def rank_correlation(human: object, metric: object, *, n_resamples: int = 1000, confidence_level: float = 0.95,
                     seed: int = 0, batch: int | None = None) -> Correlation:
    """Spearman's ρ and Kendall's τ-b between per-item mean human scores and metric values (1-D arrays of
    finite numbers, one entry per item), each with a percentile bootstrap interval over `n_resamples`
    resamples of the items, drawn from `numpy.random.default_rng(seed)` (`batch` resamples at a time;
    None: as many as fit a few MB). `n_resamples=0`: no intervals.

    Raises ValueError for arrays of different lengths, fewer than MIN_ITEMS items, or a value that is not a
    finite number. A constant side (where SciPy returns NaN with a warning) is a result: `undefined` says which.
    The intervals are over the resamples in which both sides vary (`resamples_defined` of `n_resamples`)."""
    x, y = _pair(human, metric)
    _check_options(n_resamples, confidence_level, batch)
    n = len(x)
    if n < MIN_ITEMS:
        raise ValueError(f"a rank correlation needs at least {MIN_ITEMS} items, got {n}")
    why = _constant(x, y)
    if why is not None:
        return Correlation(n, None, None, undefined=why, n_resamples=n_resamples)
    pairs = _RankPairs(x, y)
    rho, tau = pairs.statistics(np.ones((1, n), dtype=np.int64))
    if n_resamples == 0:
        return Correlation(n, float(rho[0]), float(tau[0]))
    rng = np.random.default_rng(seed)
    batch = batch or max(1, _BATCH_ELEMENTS // n)
    draws = [pairs.resampled(picks) for picks in _resamples(n, n_resamples, rng, batch)]
    rhos, taus = np.concatenate([d[0] for d in draws]), np.concatenate([d[1] for d in draws])
    defined = ~np.isnan(rhos)
    alpha = (1 - confidence_level) / 2
    spearman_ci = kendall_ci = None
    if defined.any():
        lo, hi = np.quantile(rhos[defined], [alpha, 1 - alpha])
        spearman_ci = (float(lo), float(hi))
        lo, hi = np.quantile(taus[defined], [alpha, 1 - alpha])
        kendall_ci = (float(lo), float(hi))
    return Correlation(n, float(rho[0]), float(tau[0]), spearman_ci, kendall_ci, n_resamples=n_resamples,
                       resamples_defined=int(defined.sum()))


def system_correlation(human_means: object, metric_means: object) -> Correlation:
    """Spearman's ρ and Kendall's τ-b over configurations: each configuration's mean human score against its
    mean metric value (aligned 1-D arrays). No interval: a handful of points. Fewer than MIN_CONFIGURATIONS
    configurations, or a constant side, is `undefined` with the reason; unequal lengths and values that are not
    finite numbers raise ValueError."""
    x, y = _pair(human_means, metric_means)
    k = len(x)
    if k < MIN_CONFIGURATIONS:
        return Correlation(k, None, None, undefined=f"fewer than {MIN_CONFIGURATIONS} configurations ({k})")
    why = _constant(x, y)
    if why is not None:
        return Correlation(k, None, None, undefined=why)
    rho, tau = _RankPairs(x, y).statistics(np.ones((1, k), dtype=np.int64))
    return Correlation(k, float(rho[0]), float(tau[0]))


def _interval(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [ci[0], ci[1]]


def _plain(value: object) -> object:
    """A value as an error message shows it: NumPy scalars as the Python numbers they hold."""
    return value.item() if isinstance(value, np.generic) else value


def _numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(the values as floats, where they are not finite real numbers: NaN, infinite, text, booleans, None)."""
    if column.dtype.kind in "iuf":
        values = column.to_numpy(dtype=np.float64)
        return values, ~np.isfinite(values)
    real = column.map(lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
    values = np.where(real, pd.to_numeric(column.where(real), errors="coerce"), np.nan).astype(np.float64)
    return values, ~np.isfinite(values)


def _ratable(table: pd.DataFrame, human: pd.Series) -> pd.DataFrame:
    """The table's rows that count (not gold references, not attention checks, rated), with a `human` column;
    exact errors for a malformed table or scores."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"metric table is missing column(s): {', '.join(missing)}")
    if not isinstance(human, pd.Series):
        raise ValueError(f"human scores must be a pandas Series indexed by item_id, got {type(human).__name__}")
    if human.index.has_duplicates:
        raise ValueError(f"human scores list item {_plain(human.index[human.index.duplicated()][0])!r} twice")
    twice = table.duplicated(["item_id", "metric"])
    if twice.any():
        row = table[twice].iloc[0]
        raise ValueError(f"metric table lists metric {row['metric']!r} of item {_plain(row['item_id'])!r} twice")
    for name in ("metric", "dataset", "config"):
        # Checked per distinct name (a handful), not per row: a study has hundreds of thousands of rows.
        column = table[name].astype(object)
        bad = [v for v in pd.unique(column) if not isinstance(v, str) or not v.strip()]
        if bad:
            blank = column.isin(bad) | column.isna()
            raise ValueError(f"metric table: item {_plain(table[blank].iloc[0]['item_id'])!r} has no {name} name")
    value, bad = _numbers(table["value"])
    if bad.any():
        row = table[bad].iloc[0]
        raise ValueError(f"metric {row['metric']!r} of item {_plain(row['item_id'])!r} is {_plain(row['value'])!r}, "
                         "not a finite number")
    score, bad = _numbers(human)
    if bad.any():
        item = human.index[bad][0]
        raise ValueError(f"human score of item {_plain(item)!r} is {_plain(human[item])!r}, not a finite number")
    score = pd.Series(score, index=human.index)
    keep = ~(table["is_gold_reference"].to_numpy(dtype=bool) | table["is_attention_check"].to_numpy(dtype=bool))
    keep &= table["item_id"].isin(score.index).to_numpy()
    out = table.loc[keep, ["item_id", "dataset", "config", "metric"]].reset_index(drop=True)
    out["value"] = value[keep]
    out["human"] = score.reindex(out["item_id"]).to_numpy()
    return out


def _groups(rows: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(metric, dataset, its rows) per metric (sorted) and dataset (sorted), then the metric's `overall`."""
    for metric in sorted(rows["metric"].unique()):
        of_metric = rows[rows["metric"] == metric]
        for dataset in sorted(of_metric["dataset"].unique()):
            yield metric, dataset, of_metric[of_metric["dataset"] == dataset]
        yield metric, OVERALL, of_metric


def metric_correlation_rows(table: pd.DataFrame, human: pd.Series, *, n_resamples: int = 1000,
                            confidence_level: float = 0.95, seed: int = 0) -> list[dict]:
    """Item-level correlation of every metric with the human scores, per dataset and `overall`.

    `table`: one row per item and metric, columns TABLE_COLUMNS (`value` a finite number); `human`: each rated
    item's mean human score, indexed by item_id. Gold reference items, attention checks and items absent from
    `human` are left out. Returns, per metric (sorted) and dataset (sorted, then `overall`), `{"metric",
    "dataset", "n", "spearman", "spearman_ci", "kendall", "kendall_ci", "undefined"}` (intervals as [low, high];
    statistics None and `undefined` the reason when there are fewer than MIN_ITEMS items or a side is
    constant). Every row's resamples come from `seed`, so a row does not depend on which other rows exist."""
    _check_options(n_resamples, confidence_level, None)
    return _correlation_rows(_ratable(table, human), n_resamples, confidence_level, seed)


def _correlation_rows(counted: pd.DataFrame, n_resamples: int, confidence_level: float, seed: int) -> list[dict]:
    out = []
    for metric, dataset, rows in _groups(counted):
        n = len(rows)
        if n < MIN_ITEMS:
            r = Correlation(n, None, None, undefined=f"fewer than {MIN_ITEMS} items ({n})")
        else:
            r = rank_correlation(rows["human"].to_numpy(), rows["value"].to_numpy(), n_resamples=n_resamples,
                                 confidence_level=confidence_level, seed=seed)
        out.append({"metric": metric, "dataset": dataset, "n": r.n, "spearman": r.spearman,
                    "spearman_ci": _interval(r.spearman_ci), "kendall": r.kendall,
                    "kendall_ci": _interval(r.kendall_ci), "undefined": r.undefined})
    return out


def system_correlation_rows(table: pd.DataFrame, human: pd.Series) -> list[dict]:
    """System-level correlation of every metric, per dataset and `overall`: over configurations, the mean
    human score of a configuration's items against their mean metric value (the same items: those with both,
    gold references and attention checks left out). Returns `{"metric", "dataset", "configurations", "n",
    "spearman", "kendall", "undefined"}` in the order of `metric_correlation_rows`; `configurations` lists
    them (sorted) and `n` counts them. The means are ranked at 12 significant digits: averages that are equal as
    fractions (5/18 from 0, 0, 5/6 and from 0, 1/6, 2/3) differ in their last bits as floats, and must tie."""
    return _system_rows(_ratable(table, human))


def _system_rows(counted: pd.DataFrame) -> list[dict]:
    out = []
    for metric, dataset, rows in _groups(counted):
        means = rows.groupby("config", sort=True)[["human", "value"]].mean().map(lambda v: float(f"{v:.12g}"))
        r = system_correlation(means["human"].to_numpy(), means["value"].to_numpy())
        out.append({"metric": metric, "dataset": dataset, "configurations": [str(c) for c in means.index],
                    "n": r.n, "spearman": r.spearman, "kendall": r.kendall, "undefined": r.undefined})
    return out


# -- a study's metric scores against its ratings (the report's section) ------------------------------------------

MAX_SCATTER_POINTS = 5000  # per metric in the figure; more would bloat report.html and hide nothing new


def item_human_scores(p: Prepared) -> pd.Series:
    """Each rated item's mean human score by item_id: yes 1, weak yes 2/3, weak no 1/3, no 0, averaged over its
    ratings, as the sum of its scores in thirds over three times its number of ratings (one correctly rounded
    division, so equal means are equal floats and tie as they should)."""
    present = p.present
    thirds = np.where(present, 3 - p.codes.astype(np.int64), 0).sum(axis=1)
    n = present.sum(axis=1)
    rated = n > 0
    return pd.Series(thirds[rated] / (3 * n[rated]), index=p.items["item_id"].to_numpy()[rated], name="human")


@dataclass
class MetricReport:
    """How far each automatic metric of a study tracks its ratings: item-level rows (`metric_correlation_rows`),
    system-level rows (`system_correlation_rows`), the bootstrap used, and the points the scatter figure draws
    (item_id, dataset, config, metric, value, human; at most MAX_SCATTER_POINTS per metric, `n_points` of
    each metric's in all)."""

    rows: list[dict]
    system: list[dict]
    n_resamples: int
    confidence_level: float
    seed: int
    points: pd.DataFrame
    n_points: dict[str, int]

    def contract(self) -> dict[str, Any]:
        """agreement.json's sections: `metric_correlation` (item level) and `metric_correlation_system`."""
        return {"metric_correlation": self.rows, "metric_correlation_system": self.system}


def metric_report(p: Prepared, table: pd.DataFrame, *, n_resamples: int = 1000, confidence_level: float = 0.95,
                  seed: int = 0) -> MetricReport | None:
    """Every metric of `table` (one row per item and metric, TABLE_COLUMNS) against the mean human scores of the
    rated items of `p`, per dataset and overall; None when the table is empty (the study has no metric scores)."""
    if table.empty:
        return None
    _check_options(n_resamples, confidence_level, None)
    counted = _ratable(table, item_human_scores(p))
    rows = _correlation_rows(counted, n_resamples, confidence_level, seed)
    system = _system_rows(counted)
    n_points = {str(m): int(n) for m, n in counted.groupby("metric", sort=True).size().items()}
    rng = np.random.default_rng(seed)
    shown = []
    for metric, n in n_points.items():
        of_metric = counted[counted["metric"] == metric]
        if n > MAX_SCATTER_POINTS:
            of_metric = of_metric.iloc[np.sort(rng.choice(n, MAX_SCATTER_POINTS, replace=False))]
        shown.append(of_metric)
    points = pd.concat(shown, ignore_index=True) if shown else counted
    return MetricReport(rows, system, n_resamples, confidence_level, seed, points, n_points)
