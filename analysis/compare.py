"""Side by side of two configurations on the samples both were rated on: paired differences, Wilcoxon
signed-rank test, wins / ties / losses."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from analysis.agreement import BOOTSTRAP_DEFAULT, Interval, bootstrap_types
from analysis.data import Prepared
from analysis.defaults import DEFAULT_COMPARE


@dataclass
class Comparison:
    """Config `a` against config `b` over the samples (dataset, sample_id) rated under both."""

    a: str
    b: str
    n_pairs: int
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None
    mean_diff_ci: Interval
    wins_a: int
    ties: int
    wins_b: int
    p_value: float | None
    statistic: float | None
    reason: str | None
    only_a: int
    only_b: int
    differences: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # per pair, a − b

    @property
    def note(self) -> str | None:
        """Says when the two configurations were rated on different samples."""
        if not (self.only_a or self.only_b):
            return None
        return (f"{self.a} and {self.b} were rated on different samples: {self.only_a} rated only under {self.a}, "
                f"{self.only_b} only under {self.b}; the paired figures use the {self.n_pairs} samples rated under "
                "both (the paper's protocol takes each configuration's own first correct predictions).")

    def contract(self) -> dict[str, Any]:
        """The agreement.json "comparison" fields (key names are a contract)."""
        return {"a": self.a, "b": self.b, "n_pairs": self.n_pairs, "mean_a": self.mean_a, "mean_b": self.mean_b,
                "wins_a": self.wins_a, "ties": self.ties, "wins_b": self.wins_b, "p_value": self.p_value}


def sample_scores(p: Prepared, config: str) -> pd.DataFrame:
    """Per sample (dataset, sample_id) rated under `config`: the mean score over its annotators' ratings."""
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
    out["n_ratings"] = n[keep]
    return out.reset_index(drop=True)


def paired_scores(sa: pd.DataFrame, sb: pd.DataFrame) -> pd.DataFrame:
    """Samples (dataset, sample_id) present in both per-sample score frames, with score_a and score_b."""
    return sa.merge(sb.drop(columns="dataset"), on=["dataset_idx", "sample_id"], suffixes=("_a", "_b"))


def paired_test(diff: np.ndarray) -> tuple[float | None, float | None, str | None]:
    """Wilcoxon signed-rank test of paired differences (zeros dropped): (statistic, p-value, reason if none)."""
    diff = np.asarray(diff, dtype=float)
    if len(diff) == 0:
        return None, None, "no sample was rated under both configurations"
    if not np.any(diff != 0):
        return None, None, "every paired difference is zero, so the signed-rank test is undefined"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about ties and small samples; the p-value stands
        res = wilcoxon(diff, zero_method="wilcox")
    p = float(res.pvalue)
    if not np.isfinite(p):
        return None, None, "the signed-rank test returned no p-value"
    return float(res.statistic), p, None


def compare(p: Prepared, a: str = DEFAULT_COMPARE[0], b: str = DEFAULT_COMPARE[1], *,
            n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> Comparison:
    """Config `a` vs `b` on their common samples: mean scores, wins/ties/losses, Wilcoxon p, bootstrap CI."""
    if a == b:
        raise ValueError(f"choose two different configurations to compare (got {a!r} twice)")
    sa, sb = sample_scores(p, a), sample_scores(p, b)
    pairs = paired_scores(sa, sb)
    # Scores are fractions (thirds over a few ratings): round away float noise so equal differences tie
    # (for the signed ranks) and equal scores count as ties, not as wins by 1e-17.
    diff = np.round((pairs["score_a"] - pairs["score_b"]).to_numpy(), 12)
    stat, pval, reason = paired_test(diff)
    missing = [c for c in (a, b) if c not in p.configs]
    if missing:
        reason = f"configuration {missing[0]!r} has no ratings in this study"
    ci = Interval(None, None, n_boot, seed)
    if len(diff):
        # Differences take few distinct values (multiples of 1/(3·ratings)): bootstrap over them as types.
        values, counts = np.unique(diff, return_counts=True)
        ci = bootstrap_types(counts, lambda d: (d @ values) / d.sum(axis=1), n_boot=n_boot, seed=seed)
    return Comparison(
        a=a, b=b, n_pairs=len(pairs),
        mean_a=float(pairs["score_a"].mean()) if len(pairs) else None,
        mean_b=float(pairs["score_b"].mean()) if len(pairs) else None,
        mean_diff=float(diff.mean()) if len(diff) else None, mean_diff_ci=ci,
        wins_a=int((diff > 0).sum()), ties=int((diff == 0).sum()), wins_b=int((diff < 0).sum()),
        p_value=pval, statistic=stat, reason=reason,
        only_a=len(sa) - len(pairs), only_b=len(sb) - len(pairs), differences=diff,
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
