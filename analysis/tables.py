"""Scores, agreement and shortcomings per cell (dataset × configuration), per dataset, per configuration and
overall, and the tables built from them. Everything is computed from `Prepared` ratings."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.agreement import (
    BINARY_BY_CODE,
    BOOTSTRAP_DEFAULT,
    NO_ITEMS,
    Interval,
    Stat,
    Weights,
    binary_kappa,
    bootstrap_types,
    cohen_kappa,
    fleiss_kappa_free_binary,
    kappa_from_tables,
    krippendorff_alpha,
    percent_agreement,
    presence_kappa,
)
from analysis.data import Prepared
from analysis.formatting import fmt, x100
from annotate.core.scale import RATING_LABELS, RATINGS

Level = Literal["cell", "dataset", "config", "overall"]
LEVELS: tuple[Level, ...] = ("cell", "dataset", "config", "overall")
KAPPAS: dict[str, Weights | Literal["binary"]] = {
    "cohen_kappa": None, "cohen_kappa_linear": "linear", "cohen_kappa_quadratic": "quadratic",
    "cohen_kappa_binary": "binary",
}
CONTRACT_KEYS = ("n", "mean_score", *KAPPAS, "fleiss_kappa_free_binary", "n_items_fleiss", "percent_agreement",
                 "disagreements")
AVERAGE = "average"
ALL_CONFIGS = "all configurations"
GOLD_ROW = "gold (human ceiling)"


@dataclass
class GroupStats:
    """Every number for one group of items (a cell, a dataset, a configuration or all)."""

    n: int  # ratings
    n_items: int
    n_pairs: int  # items rated by two or more annotators
    mean_score: float | None
    mean_score_ci: Interval
    kappas: dict[str, Stat]
    kappa_cis: dict[str, Interval]
    percent_agreement: Stat
    disagreements: int
    alpha: Stat
    fleiss: Stat
    key: dict[str, str] = field(default_factory=dict)

    def contract(self) -> dict[str, Any]:
        """The agreement.json fields (key names are a contract)."""
        out: dict[str, Any] = dict(self.key)
        out.update(n=self.n, mean_score=self.mean_score)
        out.update({k: s.value for k, s in self.kappas.items()})
        out.update(fleiss_kappa_free_binary=self.fleiss.value, n_items_fleiss=self.fleiss.n)
        out.update(percent_agreement=self.percent_agreement.value, disagreements=self.disagreements)
        return out

    def flat(self) -> dict[str, Any]:
        """Every field, with intervals and the reason for each undefined value (one scores.csv row)."""
        out: dict[str, Any] = dict(self.key)
        out.update(n=self.n, n_items=self.n_items, n_items_multiply_rated=self.n_pairs, mean_score=self.mean_score,
                   mean_score_low=self.mean_score_ci.low, mean_score_high=self.mean_score_ci.high)
        for k, s in self.kappas.items():
            out.update({k: s.value, f"{k}_low": self.kappa_cis[k].low, f"{k}_high": self.kappa_cis[k].high,
                        f"{k}_reason": s.reason})
        out.update(fleiss_kappa_free_binary=self.fleiss.value, n_items_fleiss=self.fleiss.n,
                   fleiss_kappa_free_binary_reason=self.fleiss.reason)
        out.update(percent_agreement=self.percent_agreement.value, disagreements=self.disagreements,
                   krippendorff_alpha_ordinal=self.alpha.value, krippendorff_alpha_reason=self.alpha.reason)
        return out


def _pair_mask(types: np.ndarray, x: int, y: int) -> np.ndarray:
    return (types[:, x] >= 0) & (types[:, y] >= 0)


def _light(stats: list[Stat], n: int) -> Stat:
    """One pair: its statistic. More: the mean over the annotator pairs where it is defined: Light's κ for κ; for
    % agreement, every pair with an item rated by both (a pair whose κ is undefined still has its agreement)."""
    if len(stats) == 1:
        return stats[0]
    values = [s.value for s in stats if s.value is not None]
    if not values:
        reason = next((s.reason for s in stats if s.reason), NO_ITEMS)
        return Stat(None, f"{reason} (for every pair of annotators)", n)
    return Stat(float(np.mean(values)), None, n)


def group_stats(types: np.ndarray, counts: np.ndarray, *, n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> GroupStats:
    """All numbers for a group given its item types: distinct rows of rating codes (items × annotators, -1 for
    not rated) and how many items have each row. Intervals resample items (see bootstrap_types)."""
    types = np.asarray(types, dtype=np.int8)
    if types.ndim != 2:
        types = types.reshape(len(counts), -1)
    counts = np.asarray(counts, dtype=np.int64)
    n_ann = types.shape[1]
    present = types >= 0
    per_type_n = present.sum(axis=1)
    per_type_thirds = np.where(present, 3 - types, 0).sum(axis=1)  # yes 3/3, weak yes 2/3, weak no 1/3, no 0
    n = int(counts @ per_type_n)
    n_items = int(counts[per_type_n > 0].sum())
    multi = per_type_n >= 2
    n_pairs = int(counts[multi].sum())
    hi = np.where(present, types, -1).max(axis=1)
    lo = np.where(present, types, 99).min(axis=1)
    n_disagree = int(counts[multi & (hi != lo)].sum())
    mean = float((counts @ per_type_thirds) / (3 * n)) if n else None

    pairs = list(combinations(range(n_ann), 2)) or []
    kappas: dict[str, Stat] = {}
    for key, w in KAPPAS.items():
        per_pair = []
        for x, y in pairs:
            m = _pair_mask(types, x, y)
            if w == "binary":
                per_pair.append(binary_kappa(types[m, x], types[m, y], sample_weight=counts[m]))
            else:
                per_pair.append(cohen_kappa(types[m, x], types[m, y], w, sample_weight=counts[m]))
        kappas[key] = _light(per_pair, n_pairs) if per_pair else Stat(None, "undefined: only one annotator", 0)
    agree = [percent_agreement(types[m, x], types[m, y], sample_weight=counts[m])
             for x, y in pairs for m in [_pair_mask(types, x, y)]]
    pa = _light(agree, n_pairs) if agree else Stat(None, "undefined: only one annotator", 0)
    alpha = krippendorff_alpha(types, metric="ordinal", weights=counts)
    fleiss = fleiss_kappa_free_binary(types, counts)

    # Bootstrap: one set of resampled type counts shared by every statistic of the group.
    tables: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for x, y in pairs:
        m = _pair_mask(types, x, y)
        four = np.zeros((len(types), 16))
        four[np.flatnonzero(m), types[m, x].astype(int) * 4 + types[m, y]] = 1
        two = np.zeros((len(types), 4))
        two[np.flatnonzero(m), BINARY_BY_CODE[types[m, x]] * 2 + BINARY_BY_CODE[types[m, y]]] = 1
        tables[(x, y)] = (four, two)

    def boot_kappa(w: Weights | Literal["binary"]):
        def stat(draws: np.ndarray) -> np.ndarray:
            per = []
            for four, two in tables.values():
                if w == "binary":
                    per.append(kappa_from_tables((draws @ two).reshape(-1, 2, 2)))
                else:
                    per.append(kappa_from_tables((draws @ four).reshape(-1, 4, 4), w))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # all-NaN rows: undefined in that resample
                return np.nanmean(np.stack(per), axis=0)
        return stat

    none = Interval(None, None, n_boot, seed)
    kappa_cis = {k: (bootstrap_types(counts, boot_kappa(w), n_boot=n_boot, seed=seed)
                     if kappas[k].value is not None and tables else none) for k, w in KAPPAS.items()}
    mean_ci = (bootstrap_types(counts, lambda d: (d @ per_type_thirds) / (3 * (d @ per_type_n)),
                               n_boot=n_boot, seed=seed) if n else none)
    return GroupStats(n=n, n_items=n_items, n_pairs=n_pairs, mean_score=mean, mean_score_ci=mean_ci,
                      kappas=kappas, kappa_cis=kappa_cis, percent_agreement=pa, disagreements=n_disagree,
                      alpha=alpha, fleiss=fleiss)


def item_types(codes: np.ndarray, group_ids: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each group id: the distinct rows of `codes` among its items and how many items have each."""
    n_ann = codes.shape[1]
    group_ids = np.asarray(group_ids, dtype=np.int64)
    if n_ann <= 16:
        # Encode each row in base 5 (code + 1 per annotator): counting int64 keys finds the types.
        base = 5 ** np.arange(n_ann, dtype=np.int64)
        span = int(5**n_ann)
        keys = group_ids * span + (codes.astype(np.int64) + 1) @ base
        size = (int(group_ids.max()) + 1) * span if len(keys) else 0
        if size <= 10_000_000:  # small key range: a bincount is much faster than np.unique
            tally = np.bincount(keys, minlength=size)
            uniq = np.flatnonzero(tally)
            counts = tally[uniq]
        else:
            uniq, counts = np.unique(keys, return_counts=True)
        groups = uniq // span
        types = ((uniq % span)[:, None] // base % 5 - 1).astype(np.int8)
    else:
        uniq_rows, counts = np.unique(np.column_stack([group_ids, codes]), axis=0, return_counts=True)
        groups, types = uniq_rows[:, 0], uniq_rows[:, 1:].astype(np.int8)
    bounds = np.flatnonzero(np.diff(groups)) + 1
    return {int(g[0]): (t, c) for g, t, c in zip(np.split(groups, bounds), np.split(types, bounds),
                                                  np.split(counts, bounds), strict=True)}


def level_stats(p: Prepared, level: Level, *, n_boot: int = BOOTSTRAP_DEFAULT, seed: int = 0) -> list[GroupStats]:
    """GroupStats for every group of one level, in dataset/configuration order of first appearance."""
    datasets, configs, d, c = p.datasets, p.configs, p.dataset_idx, p.config_idx
    if level == "cell":
        gid, keyf = d * len(configs) + c, lambda g: {"dataset": datasets[g // len(configs)],
                                                    "config": configs[g % len(configs)]}
    elif level == "dataset":
        gid, keyf = d, lambda g: {"dataset": datasets[g]}
    elif level == "config":
        gid, keyf = c, lambda g: {"config": configs[g]}
    elif level == "overall":
        gid, keyf = np.zeros(len(p.items), dtype=np.int64), lambda g: {}
    else:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    out = []
    if len(p.items) == 0:
        if level != "overall":
            return out
        # Only gold items were rated: the model configurations' overall figures exist but are undefined.
        none, undefined = Interval(None, None, n_boot, seed), Stat(None, "undefined: no rated item", 0)
        return [GroupStats(n=0, n_items=0, n_pairs=0, mean_score=None, mean_score_ci=none,
                           kappas={k: undefined for k in KAPPAS}, kappa_cis={k: none for k in KAPPAS},
                           percent_agreement=undefined, disagreements=0, alpha=undefined, fleiss=undefined)]
    for g, (types, counts) in sorted(item_types(p.codes, gid).items()):
        stats = group_stats(types, counts, n_boot=n_boot, seed=seed)
        stats.key = keyf(g)
        out.append(stats)
    return out


def _cell_text(mean: float | None, kappa: float | None) -> str:
    if mean is None:
        return ""
    return f"{x100(mean)} ({fmt(kappa, 2)})"


def score_table(cells: list[GroupStats], by_dataset: list[GroupStats], by_config: list[GroupStats],
                overall: GroupStats, gold_by_dataset: list[GroupStats] | None = None,
                gold_overall: GroupStats | None = None) -> pd.DataFrame:
    """Rows: configurations, all of them, and the gold explanations' ceiling when rated; columns: datasets and
    their average; cells "mean×100 (κ)".

    The average column is each configuration over all its ratings (with κ over all its items); with the same
    number of rated samples per dataset it equals the mean of the dataset columns. Gold items are in none of the
    other rows (the callers leave them out), only in their own.
    """
    gold_by_dataset = gold_by_dataset or []
    datasets = list(dict.fromkeys([s.key["dataset"] for s in by_dataset]
                                  + [s.key["dataset"] for s in gold_by_dataset]))
    configs = [s.key["config"] for s in by_config]
    rows = configs + [ALL_CONFIGS] + ([GOLD_ROW] if gold_overall is not None and gold_overall.n else [])
    table = pd.DataFrame("", index=pd.Index(rows, name="config"), columns=[*datasets, AVERAGE])
    for s in cells:
        table.loc[s.key["config"], s.key["dataset"]] = _cell_text(s.mean_score, s.kappas["cohen_kappa"].value)
    for s in by_config:
        table.loc[s.key["config"], AVERAGE] = _cell_text(s.mean_score, s.kappas["cohen_kappa"].value)
    for s in by_dataset:
        table.loc[ALL_CONFIGS, s.key["dataset"]] = _cell_text(s.mean_score, s.kappas["cohen_kappa"].value)
    table.loc[ALL_CONFIGS, AVERAGE] = _cell_text(overall.mean_score, overall.kappas["cohen_kappa"].value)
    if GOLD_ROW in table.index:
        for s in gold_by_dataset:
            table.loc[GOLD_ROW, s.key["dataset"]] = _cell_text(s.mean_score, s.kappas["cohen_kappa"].value)
        table.loc[GOLD_ROW, AVERAGE] = _cell_text(gold_overall.mean_score, gold_overall.kappas["cohen_kappa"].value)
    return table


def rating_distribution(p: Prepared) -> pd.DataFrame:
    """Ratings per configuration and answer (all annotators): config, rating, label, count, share."""
    configs, c = p.configs, p.config_idx
    cc = np.repeat(c, p.codes.shape[1]).reshape(p.codes.shape)
    present = p.present
    counts = np.bincount(cc[present] * len(RATINGS) + p.codes[present], minlength=len(configs) * len(RATINGS))
    counts = counts.reshape(len(configs), len(RATINGS))
    rows = []
    for i, config in enumerate(configs):
        total = counts[i].sum()
        for j, r in enumerate(RATINGS):
            rows.append({"config": config, "rating": r, "label": RATING_LABELS[r], "count": int(counts[i, j]),
                         "share": float(counts[i, j] / total) if total else 0.0})
    return pd.DataFrame(rows, columns=["config", "rating", "label", "count", "share"])


def shortcoming_counts(p: Prepared) -> pd.DataFrame:
    """How many ratings (all annotators) carry each tag, per dataset × configuration, zeros included."""
    datasets, configs, d, c = p.datasets, p.configs, p.dataset_idx, p.config_idx
    cell = d * len(configs) + c
    n_cells, n_str = len(datasets) * len(configs), len(p.tag_strings)
    # Count (cell, tag string) pairs first — few distinct strings — then spread each string over its tags.
    present = p.present
    cells = np.repeat(cell, p.codes.shape[1]).reshape(p.codes.shape)[present]
    pair_counts = np.bincount(cells * n_str + p.tag_codes[present], minlength=n_cells * n_str)
    has_tag = p.has_tag()
    totals = pair_counts.reshape(n_cells, n_str) @ has_tag
    rated = np.bincount(cell, minlength=n_cells) > 0
    rows = [{"dataset": datasets[g // len(configs)], "config": configs[g % len(configs)], "tag": tag,
             "count": int(totals[g, t])}
            for g in range(n_cells) if rated[g] for t, tag in enumerate(p.tags)]
    return pd.DataFrame(rows, columns=["dataset", "config", "tag", "count"])


def shortcomings_by(counts: pd.DataFrame, by: Literal["config", "dataset"]) -> pd.DataFrame:
    """Shortcoming counts summed per configuration or per dataset: columns by, tag, count."""
    return counts.groupby([by, "tag"], sort=False, observed=True)["count"].sum().reset_index()


def tag_agreement(p: Prepared) -> pd.DataFrame:
    """Per tag, Cohen's κ on its presence between annotators over the items both rated (Light's mean for more
    than two annotators), with how often each annotator gave it."""
    present = p.present
    n_str = len(p.tag_strings)
    has_tag = p.has_tag()
    pairs = list(combinations(range(len(p.annotators)), 2))
    # Count (tag string of x, tag string of y) over the items both rated — few distinct pairs — once per pair
    # of annotators; each tag's 2×2 table is then a sum over those counts.
    joint: list[tuple[np.ndarray, int]] = []
    for x, y in pairs:
        m = present[:, x] & present[:, y]
        counts = np.bincount(p.tag_codes[m, x].astype(np.int64) * n_str + p.tag_codes[m, y], minlength=n_str * n_str)
        joint.append((counts.reshape(n_str, n_str), int(m.sum())))
    given = [np.bincount(p.tag_codes[present[:, i], i], minlength=n_str) @ has_tag for i in range(len(p.annotators))]
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    rows = []
    for t, tag in enumerate(p.tags):
        per_pair = []
        for counts, _ in joint:
            hx = has_tag[:, t]
            # table[bx * 2 + by] = Σ counts[i, j] over strings i with presence bx and j with presence by
            table = np.array([counts[np.ix_(hx == bx, hx == by)].sum() for bx in (0, 1) for by in (0, 1)])
            per_pair.append(presence_kappa(a, b, f'the tag "{tag}"', sample_weight=table))
        n_both = max((n for _, n in joint), default=0)
        k = _light(per_pair, n_both) if per_pair else Stat(None, "undefined: only one annotator", 0)
        row = {"tag": tag, "n_items": n_both, "kappa": k.value, "reason": k.reason}
        for i, name in enumerate(p.annotators):
            row[f"given_by_{name}"] = int(given[i][t])
        rows.append(row)
    return pd.DataFrame(rows)


def pairwise_kappa(p: Prepared, weights: Weights = None) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Cohen's κ for every pair of annotators: a symmetric frame (NaN where undefined, 1 on the diagonal) and the
    reasons for the undefined pairs."""
    names = p.annotators
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    reasons: dict[tuple[str, str], str] = {}
    for x, y in combinations(range(len(names)), 2):
        m = p.present[:, x] & p.present[:, y]
        res = cohen_kappa(p.codes[m, x], p.codes[m, y], weights)
        out.iloc[x, y] = out.iloc[y, x] = np.nan if res.value is None else res.value
        if res.reason:
            reasons[(names[x], names[y])] = res.reason
    return out, reasons


def disagreement_rows(p: Prepared, adjudications: pd.DataFrame | None = None) -> pd.DataFrame:
    """Items rated by two or more annotators whose answers differ: each annotator's answer and tags, and the
    researcher's adjudication when one was recorded."""
    present = p.present
    multi = present.sum(axis=1) >= 2
    hi = np.where(present, p.codes, -1).max(axis=1)
    lo = np.where(present, p.codes, 99).min(axis=1)
    idx = np.flatnonzero(multi & (hi != lo))
    out = p.items.iloc[idx][["item_id", "dataset", "sample_id", "config"]].reset_index(drop=True)
    names = np.array([*RATINGS, ""], dtype=object)
    tag_names = np.array([*p.tag_strings, ""], dtype=object)
    for i, a in enumerate(p.annotators):
        out[a] = names[p.codes[idx, i]]  # -1 → ""
        out[f"{a} tags"] = tag_names[p.tag_codes[idx, i]]
    adj_cols = ["final_rating", "kind", "note"]
    if adjudications is not None and len(adjudications):
        out = out.merge(adjudications[["item_id", *adj_cols]], on="item_id", how="left")
    else:
        for col in adj_cols:
            out[col] = None
    return out


def adjudication_counts(adjudications: pd.DataFrame | None, kinds: tuple[str, ...]) -> pd.DataFrame:
    """Recorded adjudications per kind of disagreement (zeros included)."""
    got = adjudications["kind"].value_counts() if adjudications is not None and len(adjudications) else {}
    return pd.DataFrame({"kind": list(kinds), "count": [int(got.get(k, 0)) for k in kinds]})
