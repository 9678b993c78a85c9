"""Side ratings of a pairwise study (`--rate-sides`): each explanation of a pair rated on the paper's 4-point scale
besides the preference. Per configuration, per dataset and overall: the mean score with its bootstrap interval and
Cohen's κ as the rating analysis computes them (analysis.tables), the design-aware paired comparison of A with B
(analysis.compare), and whether the preference agrees with the annotator's own ratings.

Definitions (docs/analysis.md, "Side ratings"):
- The ratings are laid out as a rating study with two configurations: each pair is one sample, rated under A
  (rating_a) and under B (rating_b); the stored side mapping has already turned "Explanation 1/2" into A/B.
- mean_score, its interval, cohen_kappa: `analysis.tables.group_stats` of that configuration's ratings (κ on the
  four answers over the pairs both annotators rated that side; Light's mean with more than two annotators).
- comparison: `analysis.compare.compare` of A with B (Wilcoxon signed-rank on per-pair mean scores when every
  rated pair has both sides rated, else Mann–Whitney U).
- consistency: of the answers that chose a side (not tie) and rated both sides, the share whose preferred side got
  a strictly lower rating from the same annotator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.agreement import RATING_CODE
from analysis.compare import Comparison, compare
from analysis.data import GOLD_CONFIG, Prepared, prepare
from analysis.defaults import BOOTSTRAP_DEFAULT
from analysis.formatting import NA, fmt, x100
from analysis.tables import GroupStats, level_stats

SIDES = ("a", "b")
SIDE_KEYS = ("side", "config", "n_items", "n", "mean_score", "mean_score_low", "mean_score_high", "cohen_kappa",
             "n_items_both")
CONSISTENCY_KEYS = ("n_answers", "inconsistent", "inconsistent_share")
CONTRACT_KEYS = ("a", "b", "sides", "comparison", "consistency")
NOT_RATED = "undefined: no pair has a rating of this side"

SIDE_RATINGS_TEXT = (
    "Each explanation rated on the 4-point scale (yes 1, weak yes 2/3, weak no 1/3, no 0), by configuration. Mean "
    "×100 over all side ratings with its 95 % bootstrap interval over pairs; Cohen's κ on the four answers over the "
    "pairs both annotators rated that side (mean over annotator pairs with more than two); the paired comparison is "
    "the rating studies' test (Wilcoxon signed-rank on per-pair mean scores when every pair has both sides rated, "
    "else Mann–Whitney U), with the mean difference and its bootstrap interval. Preferred side rated lower: answers "
    "that chose a side and rated both, whose chosen side got the strictly lower rating from the same annotator.")


@dataclass(frozen=True)
class Consistency:
    """Answers that chose a side and rated both sides, and how many of them rated the preferred side lower."""

    n_answers: int
    inconsistent: int

    @property
    def share(self) -> float | None:
        return self.inconsistent / self.n_answers if self.n_answers else None

    def contract(self) -> dict[str, Any]:
        return {"n_answers": self.n_answers, "inconsistent": self.inconsistent, "inconsistent_share": self.share}


@dataclass(frozen=True)
class SideStats:
    """One configuration's side ratings in one group; `stats` None when no pair has a rating of that side."""

    side: str
    config: str
    stats: GroupStats | None

    def contract(self) -> dict[str, Any]:
        s = self.stats
        if s is None:
            return {"side": self.side, "config": self.config, "n_items": 0, "n": 0, "mean_score": None,
                    "mean_score_low": None, "mean_score_high": None, "cohen_kappa": None, "n_items_both": 0}
        return {"side": self.side, "config": self.config, "n_items": s.n_items, "n": s.n, "mean_score": s.mean_score,
                "mean_score_low": s.mean_score_ci.low, "mean_score_high": s.mean_score_ci.high,
                "cohen_kappa": s.kappas["cohen_kappa"].value, "n_items_both": s.n_pairs}

    @property
    def kappa_reason(self) -> str | None:
        return NOT_RATED if self.stats is None else self.stats.kappas["cohen_kappa"].reason


@dataclass(frozen=True)
class SideRatingStats:
    """Every side-rating figure of one group (a dataset, or all of them)."""

    a: str
    b: str
    dataset: str | None
    sides: tuple[SideStats, SideStats]
    comparison: Comparison | None
    comparison_reason: str | None
    consistency: Consistency

    def contract(self) -> dict[str, Any]:
        """agreement.json's `pairwise_side_ratings` section (plus `dataset` per dataset)."""
        out = {"a": self.a, "b": self.b, "sides": [s.contract() for s in self.sides],
               "comparison": None if self.comparison is None else self.comparison.contract(),
               "consistency": self.consistency.contract()}
        return out if self.dataset is None else {"dataset": self.dataset, **out}


def has_side_ratings(prefs: pd.DataFrame) -> bool:
    """Whether any answer rated a side."""
    return any(col in prefs and prefs[col].notna().any() for col in ("rating_a", "rating_b"))


def side_ratings_prepared(prefs: pd.DataFrame, a: str, b: str) -> Prepared:
    """The side ratings as a rating study: per pair two items (item ids 2·id for A, 2·id + 1 for B) of the same
    sample, one per configuration, each rated by the annotators who rated that side."""
    items, ratings = [], []
    for offset, (side, config) in enumerate(zip(SIDES, (a, b), strict=True)):
        col = f"rating_{side}"
        ids = prefs["item_id"].to_numpy(dtype=np.int64) * 2 + offset
        # The pair item is the sample: A and B are paired on it (a pair's dataset and sample id are unique).
        items.append(pd.DataFrame({"item_id": ids, "dataset": prefs["dataset"].astype(str).to_numpy(),
                                   "sample_id": prefs["item_id"].astype(str).to_numpy(), "config": config}))
        rated = prefs[col].notna().to_numpy() if col in prefs else np.zeros(len(prefs), dtype=bool)
        ratings.append(pd.DataFrame({"item_id": ids[rated], "annotator": prefs["annotator"].astype(str).to_numpy()[rated],
                                     "rating": prefs.loc[rated, col].astype(str).to_numpy() if rated.any() else [],
                                     "tags": ""}))
    return prepare(pd.concat(items).drop_duplicates("item_id"), pd.concat(ratings, ignore_index=True))


def consistency(prefs: pd.DataFrame) -> Consistency:
    """Of the answers that chose a side and rated both sides: how many rated the preferred side strictly lower."""
    if "rating_a" not in prefs or "rating_b" not in prefs:
        return Consistency(0, 0)
    both = prefs[prefs["preference"].isin(SIDES) & prefs["rating_a"].notna() & prefs["rating_b"].notna()]
    # Codes run from yes (0) to no (3): a higher code is a lower rating.
    # As numbers even when no answer rated both sides (an empty text column cannot be compared with ">").
    ca = both["rating_a"].map(RATING_CODE).to_numpy(dtype=float)
    cb = both["rating_b"].map(RATING_CODE).to_numpy(dtype=float)
    lower = np.where(both["preference"] == "a", ca > cb, cb > ca)
    return Consistency(len(both), int(lower.sum()))


def group_side_stats(p: Prepared, prefs: pd.DataFrame, a: str, b: str, dataset: str | None = None, *,
                     n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> SideRatingStats:
    """The figures of one group: `p` its side ratings (side_ratings_prepared), `prefs` its answers."""
    stats = level_stats(p, "config", n_boot=n_boot, seed=seed) if len(p.items) else []
    by_config = {s.key["config"]: s for s in stats}
    sides = (SideStats("a", a, by_config.get(a)), SideStats("b", b, by_config.get(b)))
    comparison, reason = None, None
    if not len(p.items):
        reason = "no pair has a side rating"
    elif GOLD_CONFIG in (a, b):
        reason = f"{GOLD_CONFIG!r} is the human ceiling in rating studies; its side ratings are not tested"
    else:
        comparison = compare(p, a, b, n_boot=n_boot, seed=seed)
        reason = comparison.reason
    return SideRatingStats(a=a, b=b, dataset=dataset, sides=sides, comparison=comparison, comparison_reason=reason,
                           consistency=consistency(prefs))


def analyse_side_ratings(prefs: pd.DataFrame, a: str, b: str, *, n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0
                         ) -> tuple[SideRatingStats, list[SideRatingStats]]:
    """(overall, per dataset) side-rating figures from answers (item_id, dataset, annotator,
    preference, rating_a, rating_b)."""
    p = side_ratings_prepared(prefs, a, b)
    overall = group_side_stats(p, prefs, a, b, None, n_boot=n_boot, seed=seed)
    by_dataset = []
    for ds, group in prefs.groupby("dataset", sort=True):
        sub = p.subset(p.items["dataset"].to_numpy() == str(ds)) if len(p.items) else p
        by_dataset.append(group_side_stats(sub, group, a, b, str(ds), n_boot=n_boot, seed=seed))
    return overall, by_dataset


def side_rating_row(s: SideRatingStats) -> dict[str, str | int]:
    """One display row of a group (the report and the Side by side page)."""
    row: dict[str, str | int] = {"dataset": s.dataset or "all"}
    for side in s.sides:
        g = side.stats
        row[f"pairs rated {side.config}"] = 0 if g is None else g.n_items
        row[f"mean ×100 {side.config} [95 % CI]"] = (
            NA if g is None else f"{x100(g.mean_score)} [{x100(g.mean_score_ci.low)}, {x100(g.mean_score_ci.high)}]")
    for side in s.sides:
        k = None if side.stats is None else side.stats.kappas["cohen_kappa"].value
        row[f"Cohen's κ {side.config}"] = fmt(k, reason=side.kappa_reason)
    c = s.comparison
    row[f"mean {s.a} − {s.b} ×100 [95 % CI]"] = NA if c is None else (
        f"{x100(c.mean_diff)} [{x100(c.mean_diff_ci.low)}, {x100(c.mean_diff_ci.high)}]")
    if c is not None and c.p_value is not None:
        row["paired comparison"] = f"{c.test_name}: p = {fmt(c.p_value, 4)}"
    else:
        row["paired comparison"] = fmt(None, reason=s.comparison_reason)
    row[f"per pair {s.a} better / ties / {s.b} better"] = NA if c is None else f"{c.wins_a} / {c.ties} / {c.wins_b}"
    k = s.consistency
    row["preferred side rated lower"] = f"{k.inconsistent} of {k.n_answers}" + (
        f" ({fmt(k.share)})" if k.share is not None else "")
    return row
