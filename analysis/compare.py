"""Two configurations compared on how their items were chosen: Wilcoxon signed-rank on per-sample scores when
every sample was rated under both, otherwise Mann–Whitney U on all per-sample scores of each (with the paired
test on the shared samples when there are enough of them); mean difference with a bootstrap interval;
wins / ties / losses on the shared samples."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu, wilcoxon

from analysis.agreement import BOOTSTRAP_DEFAULT, Interval, bootstrap_types
from analysis.data import GOLD_CONFIG, Prepared
from analysis.defaults import DEFAULT_COMPARE

Test = Literal["wilcoxon", "mann-whitney"]
TEST_NAMES: dict[str, str] = {"wilcoxon": "Wilcoxon signed-rank", "mann-whitney": "Mann–Whitney U"}
# The paired test on the shared samples is reported next to Mann–Whitney only from this many pairs on.
MIN_PAIRS = 10
# Every SciPy option that changes a p-value is spelled out, so that a SciPy upgrade cannot change the numbers
# (SciPy's "auto" methods differ between versions on tied data). Per-sample scores are fractions of a few
# ratings, so ties are the rule: the normal approximation with tie correction is the method that is right there.
MANNWHITNEY_OPTIONS: dict[str, Any] = {"alternative": "two-sided", "method": "asymptotic", "use_continuity": True}
WILCOXON_OPTIONS: dict[str, Any] = {"alternative": "two-sided", "zero_method": "wilcox", "correction": False}
# Exact signed-rank p-values are used only where the exact null distribution is right: no ties, no zeros.
WILCOXON_EXACT_MAX_N = 50


@dataclass(frozen=True)
class PairedResult:
    """The signed-rank test on the samples rated under both configurations, and those samples' mean scores."""

    n_pairs: int
    mean_a: float
    mean_b: float
    statistic: float | None
    p_value: float | None

    def contract(self) -> dict[str, Any]:
        return {"n_pairs": self.n_pairs, "mean_a": self.mean_a, "mean_b": self.mean_b,
                "statistic": self.statistic, "p_value": self.p_value}


@dataclass
class Comparison:
    """Config `a` against config `b`. `mean_a`/`mean_b`, `n_a`/`n_b` are over all samples each was rated on (the
    score table's means); `test`/`statistic`/`p_value` are the primary test's; wins/ties and `paired_mean_*` are
    over the `n_pairs` samples (dataset, sample_id) rated under both."""

    a: str
    b: str
    test: Test
    statistic: float | None
    p_value: float | None
    reason: str | None
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None
    mean_diff_ci: Interval
    n_pairs: int
    paired_mean_a: float | None
    paired_mean_b: float | None
    wins_a: int
    ties: int
    wins_b: int
    paired: PairedResult | None
    only_a: int
    only_b: int
    differences: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # per pair, a − b
    scores_a: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # per sample rated under a
    scores_b: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def test_name(self) -> str:
        return TEST_NAMES[self.test]

    @property
    def note(self) -> str | None:
        """Says when the two configurations were rated on different samples, and which test that implies."""
        if not (self.only_a or self.only_b):
            return None
        paired = (f"the signed-rank test on the {self.n_pairs} shared samples is shown as well" if self.paired
                  else f"only {self.n_pairs} samples are shared (fewer than {MIN_PAIRS}), so no paired test is shown")
        return (f"{self.a} and {self.b} were rated on different samples: {self.only_a} rated only under {self.a}, "
                f"{self.only_b} only under {self.b} (the paper's protocol takes each configuration's own first "
                f"correct predictions). The primary test is therefore Mann–Whitney U on all {self.n_a} vs "
                f"{self.n_b} per-sample scores; {paired}.")

    def contract(self) -> dict[str, Any]:
        """The agreement.json "comparison" fields (key names are a contract)."""
        return {"a": self.a, "b": self.b, "test": self.test, "statistic": self.statistic, "p_value": self.p_value,
                "n_a": self.n_a, "n_b": self.n_b, "mean_a": self.mean_a, "mean_b": self.mean_b,
                "n_pairs": self.n_pairs, "wins_a": self.wins_a, "ties": self.ties, "wins_b": self.wins_b,
                "paired": None if self.paired is None else self.paired.contract()}


def sample_scores(p: Prepared, config: str) -> pd.DataFrame:
    """Per sample (dataset, sample_id) rated under `config`: the mean score over its annotators' ratings, with the
    sum of its scores in thirds and its number of ratings."""
    present = p.present
    n = present.sum(axis=1)
    thirds = np.where(present, 3 - p.codes, 0).sum(axis=1)
    if config not in p.configs:
        keep = np.zeros(len(p.items), dtype=bool)
    else:
        keep = (p.config_idx == p.configs.index(config)) & (n > 0)
    # Dataset as its index in p.datasets: merging on integers is much cheaper than on strings.
    out = pd.DataFrame({"item_id": p.items["item_id"].to_numpy()[keep], "dataset_idx": p.dataset_idx[keep],
                        "sample_id": p.items["sample_id"].to_numpy()[keep]})
    out.insert(1, "dataset", np.array(p.datasets, dtype=object)[p.dataset_idx[keep]])
    out["score"] = thirds[keep] / (3 * n[keep])
    out["thirds"] = thirds[keep].astype(np.int64)
    out["n_ratings"] = n[keep].astype(np.int64)
    return out.reset_index(drop=True)


def paired_scores(sa: pd.DataFrame, sb: pd.DataFrame) -> pd.DataFrame:
    """Samples (dataset, sample_id) present in both per-sample score frames, with score_a and score_b."""
    return sa.merge(sb.drop(columns="dataset"), on=["dataset_idx", "sample_id"], suffixes=("_a", "_b"))


def paired_test(diff: np.ndarray) -> tuple[float | None, float | None, str | None]:
    """Two-sided Wilcoxon signed-rank test of paired differences, zeros dropped: (statistic, p-value, reason if
    none). Exact p without ties among |d| and n ≤ 50, else the normal approximation with tie correction."""
    diff = np.asarray(diff, dtype=float)
    if len(diff) == 0:
        return None, None, "no sample was rated under both configurations"
    if not (diff != 0).any():
        return None, None, "every paired difference is zero, so the signed-rank test is undefined"
    stat, p = paired_tests(diff[None, :])
    if not np.isfinite(p[0]):
        return None, None, "the signed-rank test returned no p-value"
    return float(stat[0]), float(p[0]), None


def paired_tests(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`paired_test` on each row of `diff` at once (the power simulation runs thousands): (statistics,
    p-values), NaN where a row has no nonzero difference. Each row chooses its own method as `paired_test`."""
    diff = np.asarray(diff, dtype=float)
    if diff.ndim != 2:
        raise ValueError(f"paired_tests takes one row of differences per test, got an array of shape {diff.shape}")
    stat, p = np.full(len(diff), np.nan), np.full(len(diff), np.nan)
    nonzero = diff != 0
    count = nonzero.sum(axis=1)
    # Ties among the nonzero |d| of a row: equal neighbours once sorted (NaN, standing for zeros, never equal).
    ordered = np.sort(np.where(nonzero, np.abs(diff), np.nan), axis=1)
    ties = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    exact = (count > 0) & ~ties & (count <= WILCOXON_EXACT_MAX_N)
    for rows, method in ((exact, "exact"), ((count > 0) & ~exact, "asymptotic")):
        if rows.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy warns about small samples; the method is our choice
                # zero_method "wilcox" drops each row's zeros, as dropping them before the test does.
                res = wilcoxon(diff[rows], axis=1, method=method, **WILCOXON_OPTIONS)
            stat[rows], p[rows] = res.statistic, res.pvalue
    return stat, p


def unpaired_test(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None, str | None]:
    """Two-sided Mann–Whitney U of `x` against `y` (normal approximation with tie and continuity correction):
    (U of x, p-value, reason if none)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return None, None, "one of the configurations has no rated sample"
    if len(np.unique(np.concatenate([x, y]))) == 1:
        return None, None, "every per-sample score is the same, so the rank-sum test is undefined"
    stat, p = unpaired_tests(x[None, :], y[None, :])
    if not np.isfinite(p[0]):
        return None, None, "the rank-sum test returned no p-value"
    return float(stat[0]), float(p[0]), None


def unpaired_tests(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`unpaired_test` on each row of `x` against the same row of `y` at once: (U of x, p-values); a row whose
    scores are all the same gets p = 1 (where `unpaired_test` reports no test)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"unpaired_tests takes as many rows of x as of y, got shapes {x.shape} and {y.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-equal rows: SciPy divides by a zero variance
        res = mannwhitneyu(x, y, axis=1, **MANNWHITNEY_OPTIONS)
    return np.asarray(res.statistic, dtype=float), np.asarray(res.pvalue, dtype=float)


def _pooled(thirds: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return thirds / (3.0 * n)


def _diff_interval(sa: pd.DataFrame, sb: pd.DataFrame, pairs: pd.DataFrame, paired: bool, *, n_boot: int,
                   seed: int) -> Interval:
    """Bootstrap interval of mean_a − mean_b (means over ratings): pairs resampled together for the paired
    design, each configuration's samples resampled on their own otherwise."""
    none = Interval(None, None, n_boot, seed)
    if paired:
        if not len(pairs):
            return none
        cols = pairs[["thirds_a", "n_ratings_a", "thirds_b", "n_ratings_b"]].to_numpy(dtype=np.int64)
        types, counts = np.unique(cols, axis=0, return_counts=True)
        return bootstrap_types(counts, lambda d: _pooled(d @ types[:, 0], d @ types[:, 1])
                               - _pooled(d @ types[:, 2], d @ types[:, 3]), n_boot=n_boot, seed=seed)
    if not len(sa) or not len(sb):
        return none
    rng = np.random.default_rng(seed)
    means = []
    for s in (sa, sb):
        types, counts = np.unique(s[["thirds", "n_ratings"]].to_numpy(dtype=np.int64), axis=0, return_counts=True)
        draws = rng.multinomial(int(counts.sum()), counts / counts.sum(), size=n_boot)
        means.append(_pooled(draws @ types[:, 0], draws @ types[:, 1]))
    low, high = np.percentile(means[0] - means[1], [2.5, 97.5])
    return Interval(float(low), float(high), n_boot, seed)


def primary_test(n_pairs: int, only_a: int, only_b: int) -> Test:
    """The design-aware test: Wilcoxon when every sample was rated under both configurations, else Mann–Whitney."""
    return "wilcoxon" if n_pairs > 0 and only_a == 0 and only_b == 0 else "mann-whitney"


def compare(p: Prepared, a: str = DEFAULT_COMPARE[0], b: str = DEFAULT_COMPARE[1], *,
            n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> Comparison:
    """Config `a` vs `b`: Wilcoxon when every sample was rated under both, else Mann–Whitney on all samples (plus
    Wilcoxon on ≥ MIN_PAIRS shared ones); means over all ratings; wins/ties/losses on shared samples."""
    if a == b:
        raise ValueError(f"choose two different configurations to compare (got {a!r} twice)")
    if GOLD_CONFIG in (a, b):
        raise ValueError(f"{GOLD_CONFIG!r} holds the gold explanations, the human ceiling, not a configuration; "
                         "compare two model configurations")
    sa, sb = sample_scores(p, a), sample_scores(p, b)
    pairs = paired_scores(sa, sb)
    # Scores are fractions (thirds over a few ratings): round away float noise so equal differences tie
    # (for the signed ranks) and equal scores count as ties, not as wins by 1e-17.
    diff = np.round((pairs["score_a"] - pairs["score_b"]).to_numpy(), 12)
    x, y = np.round(sa["score"].to_numpy(), 12), np.round(sb["score"].to_numpy(), 12)
    only_a, only_b = len(sa) - len(pairs), len(sb) - len(pairs)
    test = primary_test(len(pairs), only_a, only_b)
    full_overlap = test == "wilcoxon"
    w_stat, w_p, w_reason = paired_test(diff)
    if full_overlap:
        stat, pval, reason = w_stat, w_p, w_reason
    else:
        stat, pval, reason = unpaired_test(x, y)
    missing = [c for c in (a, b) if c not in p.configs]
    if missing:
        reason = f"configuration {missing[0]!r} has no ratings in this study"
    paired = (PairedResult(len(pairs), float(pairs["score_a"].mean()), float(pairs["score_b"].mean()), w_stat, w_p)
              if len(pairs) >= MIN_PAIRS else None)
    mean_a = float(_pooled(sa["thirds"].sum(), sa["n_ratings"].sum())) if len(sa) else None
    mean_b = float(_pooled(sb["thirds"].sum(), sb["n_ratings"].sum())) if len(sb) else None
    return Comparison(
        a=a, b=b, test=test, statistic=stat, p_value=pval, reason=reason, n_a=len(sa), n_b=len(sb),
        mean_a=mean_a, mean_b=mean_b,
        mean_diff=None if mean_a is None or mean_b is None else mean_a - mean_b,
        mean_diff_ci=_diff_interval(sa, sb, pairs, full_overlap, n_boot=n_boot, seed=seed),
        n_pairs=len(pairs),
        paired_mean_a=float(pairs["score_a"].mean()) if len(pairs) else None,
        paired_mean_b=float(pairs["score_b"].mean()) if len(pairs) else None,
        wins_a=int((diff > 0).sum()), ties=int((diff == 0).sum()), wins_b=int((diff < 0).sum()),
        paired=paired, only_a=only_a, only_b=only_b, differences=diff, scores_a=x, scores_b=y,
    )


def _answers(p: Prepared, row: int) -> list[dict[str, Any]]:
    from annotate.core.scale import RATINGS

    out = []
    for i, name in enumerate(p.annotators):
        code = int(p.codes[row, i])
        if code >= 0:
            tags = [t for t in p.tag_strings[int(p.tag_codes[row, i])].split(";") if t]
            out.append({"annotator": name, "rating": RATINGS[code], "tags": tags})
    return out


def side_by_side_rows(p: Prepared, texts: pd.DataFrame, a: str, b: str, *, dataset: str | None = None,
                      disagree_only: bool = False) -> pd.DataFrame:
    """One row per sample rated under both `a` and `b`: the input, both explanations and every annotator's
    answers and tags. `texts` is the store's items_frame (item_id, input, predicted_label, explanation).
    `disagree_only` keeps samples where the annotators' answers differ under `a` or under `b`."""
    pairs = paired_scores(sample_scores(p, a), sample_scores(p, b))
    if dataset is not None:
        pairs = pairs[pairs["dataset"] == dataset]
    row_of = pd.Series(np.arange(len(p.items)), index=p.items["item_id"].to_numpy())
    text = texts.set_index("item_id")
    rows = []
    for r in pairs.itertuples(index=False):
        ra, rb = int(row_of[r.item_id_a]), int(row_of[r.item_id_b])
        ans_a, ans_b = _answers(p, ra), _answers(p, rb)
        disagree = len({x["rating"] for x in ans_a}) > 1 or len({x["rating"] for x in ans_b}) > 1
        if disagree_only and not disagree:
            continue
        ta, tb = text.loc[r.item_id_a], text.loc[r.item_id_b]
        rows.append({"dataset": r.dataset, "sample_id": r.sample_id, "input": ta["input"],
                     "item_id_a": r.item_id_a, "predicted_label_a": ta["predicted_label"],
                     "explanation_a": ta["explanation"], "answers_a": ans_a, "score_a": r.score_a,
                     "item_id_b": r.item_id_b, "predicted_label_b": tb["predicted_label"],
                     "explanation_b": tb["explanation"], "answers_b": ans_b, "score_b": r.score_b,
                     "disagree": disagree})
    cols = ["dataset", "sample_id", "input", "item_id_a", "predicted_label_a", "explanation_a", "answers_a",
            "score_a", "item_id_b", "predicted_label_b", "explanation_b", "answers_b", "score_b", "disagree"]
    return pd.DataFrame(rows, columns=cols)
