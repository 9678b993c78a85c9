"""Blind pairwise comparison of two configurations: wins / ties / losses, win rate with a bootstrap interval over
samples, the exact sign test, agreement on the preference and the position check; per dataset and overall.

Definitions (docs/analysis.md, "Pairwise study"):
- wins_a / ties / wins_b count answers (one per annotator and pair).
- win_rate_a = (wins_a + ties / 2) / answers (`ties="half"`, the default) or wins_a / (wins_a + wins_b)
  (`ties="exclude"`); its 95 % interval resamples pairs (samples) with all their answers.
- sign_test_p: two-sided exact binomial test (scipy.stats.binomtest, p = 1/2) over pairs, each pair counted once
  by its net preference (answers for A minus answers for B; 0 is a tie and left out): answers to the same pair
  are not independent, so they are not counted as separate trials.
- cohen_kappa: Cohen's κ (scikit-learn) on the three answers A / B / tie over pairs both annotators answered; with
  more than two annotators the mean over annotator pairs, and Krippendorff's α (nominal) besides.
- first_position_rate: share of "Explanation 1" among the answers that chose a side and whose sides are known,
  with its exact (Clopper-Pearson) 95 % interval; 0.5 means no position bias.
- side ratings (when the study rated each side on the 4-point scale): analysis/pairwise_sides.py.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from analysis.agreement import Interval, Stat, bootstrap_types, kappa_from_tables, krippendorff_alpha
from analysis.defaults import BOOTSTRAP_DEFAULT
from analysis.formatting import fmt
from analysis.pairwise_sides import SideRatingStats, analyse_side_ratings, has_side_ratings, side_rating_row

TieRule = Literal["half", "exclude"]
CODES = {"a": 0, "b": 1, "tie": 2}
CONTRACT_KEYS = ("a", "b", "n_items", "wins_a", "ties", "wins_b", "win_rate_a", "win_rate_a_low", "win_rate_a_high",
                 "sign_test_p", "cohen_kappa", "first_position_rate")


@dataclass(frozen=True)
class PairwiseStats:
    """Every pairwise figure of one group (a dataset, or all of them)."""

    a: str
    b: str
    dataset: str | None
    n_items: int
    n_answers: int
    wins_a: int
    ties: int
    wins_b: int
    win_rate_a: float | None
    win_rate_ci: Interval
    items_a: int
    items_tie: int
    items_b: int
    sign_test_p: Stat
    cohen_kappa: Stat
    alpha: Stat
    first_position_rate: float | None
    first_position_low: float | None
    first_position_high: float | None
    n_positioned: int

    def contract(self) -> dict[str, Any]:
        """agreement.json's `pairwise` section: exactly the keys of its contract in docs/analysis.md (plus
        `dataset` per dataset)."""
        out = {"a": self.a, "b": self.b, "n_items": self.n_items, "wins_a": self.wins_a, "ties": self.ties,
               "wins_b": self.wins_b, "win_rate_a": self.win_rate_a, "win_rate_a_low": self.win_rate_ci.low,
               "win_rate_a_high": self.win_rate_ci.high, "sign_test_p": self.sign_test_p.value,
               "cohen_kappa": self.cohen_kappa.value, "first_position_rate": self.first_position_rate}
        return out if self.dataset is None else {"dataset": self.dataset, **out}


def win_rate(wins_a: int, ties: int, wins_b: int, ties_rule: TieRule = "half") -> float | None:
    """A's win rate: ties count half (`half`) or are left out (`exclude`); None when nothing counts."""
    if ties_rule == "half":
        n = wins_a + ties + wins_b
        return (wins_a + ties / 2) / n if n else None
    if ties_rule == "exclude":
        return wins_a / (wins_a + wins_b) if wins_a + wins_b else None
    raise ValueError(f"unknown ties rule {ties_rule!r}; expected 'half' or 'exclude'")


def win_rate_interval(per_item: pd.DataFrame, ties_rule: TieRule = "half", *, n_boot: int = BOOTSTRAP_DEFAULT,
                      seed: int = 0) -> Interval:
    """Percentile bootstrap 95 % interval of the win rate, resampling pairs with all their answers.
    `per_item`: one row per pair with integer columns a, tie, b (answer counts)."""
    if len(per_item) == 0:
        return Interval(None, None, n_boot, seed)
    types, counts = np.unique(per_item[["a", "tie", "b"]].to_numpy(dtype=np.int64), axis=0, return_counts=True)

    def stat(draws: np.ndarray) -> np.ndarray:
        wa, t, wb = (draws @ types[:, 0]).astype(float), (draws @ types[:, 1]).astype(float), \
            (draws @ types[:, 2]).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if ties_rule == "half":
                return (wa + t / 2) / (wa + t + wb)
            return wa / (wa + wb)

    return bootstrap_types(counts, stat, n_boot=n_boot, seed=seed)


def sign_test(items_a: int, items_b: int) -> Stat:
    """Two-sided exact sign test (binomial, p = 1/2) on the pairs that were not ties."""
    n = items_a + items_b
    if n == 0:
        return Stat(None, "undefined: every pair is a tie", 0)
    return Stat(float(binomtest(items_a, n, 0.5, alternative="two-sided").pvalue), None, n)


def preference_kappa(x: np.ndarray, y: np.ndarray) -> Stat:
    """Cohen's κ of two annotators' preferences (codes 0 = A, 1 = B, 2 = tie) on the same pairs."""
    if len(x) == 0:
        return Stat(None, "undefined: no pair answered by both annotators", 0)
    if len(np.unique(np.concatenate([x, y]))) == 1:
        return Stat(None, "undefined: every answer is the same, so chance agreement is 1", len(x))
    # The project's one κ (scikit-learn's cohen_kappa_score is its test oracle), on the 3 answers A / B / tie.
    table = np.zeros((3, 3))
    np.add.at(table, (np.asarray(x, dtype=int), np.asarray(y, dtype=int)), 1)
    value = float(kappa_from_tables(table))
    if not math.isfinite(value):
        return Stat(None, "undefined: chance agreement is 1", len(x))
    return Stat(value, None, len(x))


def _agreement(prefs: pd.DataFrame) -> tuple[Stat, Stat]:
    """(Cohen's κ — the mean over annotator pairs when more than two —, Krippendorff's α nominal)."""
    wide = prefs.pivot(index="item_id", columns="annotator", values="code")
    annotators = list(wide.columns)
    if len(annotators) < 2:
        reason = "undefined: fewer than two annotators answered"
        return Stat(None, reason, 0), Stat(None, reason, 0)
    kappas = []
    for p, q in itertools.combinations(annotators, 2):
        both = wide[[p, q]].dropna()
        kappas.append(preference_kappa(both[p].to_numpy(int), both[q].to_numpy(int)))
    defined = [k.value for k in kappas if k.value is not None]
    if len(annotators) == 2:
        kappa = kappas[0]
    elif defined:
        kappa = Stat(float(np.mean(defined)), None, int(wide.notna().sum(axis=1).ge(2).sum()))
    else:
        kappa = Stat(None, kappas[0].reason, 0)
    units = wide.fillna(-1).to_numpy(dtype=int)
    alpha = krippendorff_alpha(units, k=3, metric="nominal")
    return kappa, alpha


def _first_position(prefs: pd.DataFrame) -> tuple[float | None, float | None, float | None, int]:
    sided = prefs[(prefs["preference"] != "tie") & prefs["a_first"].notna()]
    n = len(sided)
    if n == 0:
        return None, None, None, 0
    first = int(((sided["preference"] == "a") == (sided["a_first"].astype(int) == 1)).sum())
    ci = binomtest(first, n).proportion_ci(confidence_level=0.95, method="exact")
    return first / n, float(ci.low), float(ci.high), n


def group_stats(prefs: pd.DataFrame, a: str, b: str, dataset: str | None = None, *, ties_rule: TieRule = "half",
                n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> PairwiseStats:
    """The figures of one group of answers (columns item_id, annotator, preference "a"/"b"/"tie", a_first)."""
    prefs = prefs.assign(code=prefs["preference"].map(CODES))
    if prefs["code"].isna().any():
        bad = prefs.loc[prefs["code"].isna(), "preference"].iloc[0]
        raise ValueError(f"unknown preference {bad!r}; expected 'a', 'b' or 'tie'")
    per_item = (pd.crosstab(prefs["item_id"], prefs["preference"])
                .reindex(columns=["a", "tie", "b"], fill_value=0))
    net = per_item["a"] - per_item["b"]
    items_a, items_b = int((net > 0).sum()), int((net < 0).sum())
    wins_a, ties, wins_b = (int(per_item[c].sum()) for c in ("a", "tie", "b"))
    kappa, alpha = _agreement(prefs)
    rate, low, high, n_pos = _first_position(prefs)
    return PairwiseStats(
        a=a, b=b, dataset=dataset, n_items=len(per_item), n_answers=len(prefs), wins_a=wins_a, ties=ties,
        wins_b=wins_b, win_rate_a=win_rate(wins_a, ties, wins_b, ties_rule),
        win_rate_ci=win_rate_interval(per_item, ties_rule, n_boot=n_boot, seed=seed), items_a=items_a,
        items_tie=len(per_item) - items_a - items_b, items_b=items_b, sign_test_p=sign_test(items_a, items_b),
        cohen_kappa=kappa, alpha=alpha, first_position_rate=rate, first_position_low=low, first_position_high=high,
        n_positioned=n_pos)


@dataclass
class PairwiseAnalysis:
    """A pairwise study's figures overall and per dataset."""

    study: str
    a: str
    b: str
    annotators: list[str]
    overall: PairwiseStats
    by_dataset: list[PairwiseStats]
    n_boot: int
    seed: int
    notes: list[str] = field(default_factory=list)
    # Side ratings (analysis/pairwise_sides.py): None when no answer rated a side; then `side_ratings_reason`
    # says why when the study asks for them, and is None when it never did.
    side_ratings: SideRatingStats | None = None
    side_ratings_by_dataset: list[SideRatingStats] = field(default_factory=list)
    side_ratings_reason: str | None = None

    def agreement_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"study": self.study, "annotators": self.annotators, "pairwise": self.overall.contract(),
                               "pairwise_by_dataset": [s.contract() for s in self.by_dataset]}
        if self.side_ratings is not None:
            out["pairwise_side_ratings"] = self.side_ratings.contract()
            out["pairwise_side_ratings_by_dataset"] = [s.contract() for s in self.side_ratings_by_dataset]
        elif self.side_ratings_reason is not None:
            out.update(pairwise_side_ratings=None, pairwise_side_ratings_by_dataset=None,
                       pairwise_side_ratings_reason=self.side_ratings_reason)
        return out

    def table(self) -> pd.DataFrame:
        """One row per group, formatted for display (report.html, pairwise.csv and the Side by side page)."""
        return pd.DataFrame([pairwise_row(s) for s in (*self.by_dataset, self.overall)])

    def side_table(self) -> pd.DataFrame | None:
        """The side ratings, one row per group, formatted for display; None when no answer rated a side."""
        if self.side_ratings is None:
            return None
        return pd.DataFrame([side_rating_row(s) for s in (*self.side_ratings_by_dataset, self.side_ratings)])


def pairwise_row(s: PairwiseStats) -> dict[str, str | int]:
    """One display row of a group."""
    return {
        "dataset": s.dataset or "all", "pairs": s.n_items, "answers": s.n_answers,
        f"wins {s.a} / ties / wins {s.b}": f"{s.wins_a} / {s.ties} / {s.wins_b}",
        "win rate A [95 % CI]": f"{fmt(s.win_rate_a)} [{fmt(s.win_rate_ci.low)}, {fmt(s.win_rate_ci.high)}]",
        "pairs A / tie / B": f"{s.items_a} / {s.items_tie} / {s.items_b}",
        "sign test p": fmt(s.sign_test_p.value, 4, reason=s.sign_test_p.reason),
        "Cohen's κ": fmt(s.cohen_kappa.value, reason=s.cohen_kappa.reason),
        "Krippendorff's α": fmt(s.alpha.value),
        "Explanation 1 chosen [95 % CI]": f"{fmt(s.first_position_rate)} [{fmt(s.first_position_low)}, "
                                          f"{fmt(s.first_position_high)}]",
    }


def analyse_preferences(prefs: pd.DataFrame, a: str, b: str, *, study: str = "pairwise", ties_rule: TieRule = "half",
                        n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0, rate_sides: bool = False) -> PairwiseAnalysis:
    """Overall and per-dataset figures from answers (item_id, dataset, annotator, preference, a_first; rating_a and
    rating_b when sides were rated). `rate_sides`: the study asks for side ratings (says so when none came yet)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if len(prefs) == 0:
        raise ValueError(f"study {study!r} has no pairwise answers yet; nothing to report")
    kw = dict(ties_rule=ties_rule, n_boot=n_boot, seed=seed)
    by_dataset = [group_stats(g, a, b, str(ds), **kw) for ds, g in prefs.groupby("dataset", sort=True)]
    out = PairwiseAnalysis(study=study, a=a, b=b, annotators=sorted(prefs["annotator"].unique().tolist()),
                           overall=group_stats(prefs, a, b, None, **kw), by_dataset=by_dataset, n_boot=n_boot,
                           seed=seed)
    if len(out.annotators) < 2:
        out.notes.append("Only one annotator has answered, so no agreement figure is defined.")
    if has_side_ratings(prefs):
        out.side_ratings, out.side_ratings_by_dataset = analyse_side_ratings(prefs, a, b, n_boot=n_boot, seed=seed)
    elif rate_sides:
        out.side_ratings_reason = "the study asks for a rating of each side, but no answer has one yet"
    return out


def analyse_pairwise_store(store: Any, study: str | None = None, **kw: Any) -> PairwiseAnalysis:
    """`analyse_preferences` over a pairwise study in the store."""
    s = store.resolve_study(study)
    setup = store.pairwise_setup(s["id"])
    if setup is None:
        raise ValueError(f"study {s['name']!r} is not a pairwise study")
    return analyse_preferences(store.preferences_frame(s["name"]), setup["a"], setup["b"], study=s["name"],
                               rate_sides=setup["rate_sides"], **kw)
