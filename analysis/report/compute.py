"""A rating study's report, computed: every number it shows (from analysis.tables and analysis.compare) in one
`Analysis`, from a store, an export or plain frames. Nothing here formats or draws."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.compare import DEFAULT_COMPARE, Comparison, compare
from analysis.data import GOLD_CONFIG, Prepared, prepare, split_export
from analysis.defaults import BOOTSTRAP_DEFAULT
from analysis.formatting import fmt
from analysis.metric_correlation import MetricReport
from analysis.power import PowerReport
from analysis.tables import (
    CONTRACT_KEYS,
    GroupStats,
    disagreement_rows,
    level_stats,
    pairwise_kappa,
    rating_distribution,
    score_table,
    shortcoming_counts,
    tag_agreement,
)
from annotate.core.store import Store


@dataclass
class Analysis:
    """Everything the report shows, computed once."""

    study: str
    prepared: Prepared
    overall: GroupStats
    cells: list[GroupStats]
    by_dataset: list[GroupStats]
    by_config: list[GroupStats]
    distribution: pd.DataFrame
    shortcomings: pd.DataFrame
    tag_agreement: pd.DataFrame
    pairwise: pd.DataFrame
    pairwise_reasons: dict[tuple[str, str], str]
    comparison: Comparison
    disagreements: pd.DataFrame
    adjudications: pd.DataFrame
    seed: int
    n_boot: int
    notes: list[str] = field(default_factory=list)
    # The gold explanations (config "gold"), a human ceiling kept out of every other figure; None when unrated.
    gold_overall: GroupStats | None = None
    gold_by_dataset: list[GroupStats] = field(default_factory=list)
    # Attention checks: per-annotator pass rates, and who `min_attention` dropped and why.
    attention: dict[str, Any] | None = None
    # Power of the comparison from these ratings (analysis.power), when asked for.
    power: PowerReport | None = None
    # Automatic metrics against the ratings (analysis.metric_correlation), when the study has metric scores.
    metrics: MetricReport | None = None

    @property
    def annotators(self) -> list[str]:
        return self.prepared.annotators

    @property
    def n_items(self) -> int:
        """Items with at least one rating."""
        return len(self.prepared.items)

    @property
    def n_items_rated_by_all(self) -> int:
        """Items rated by every annotator who rated anything in the study."""
        return int(self.prepared.present.all(axis=1).sum()) if self.annotators else 0

    def agreement_json(self) -> dict[str, Any]:
        """agreement.json: exactly the keys of its contract in docs/analysis.md (scores in [0, 1], κ float or
        null)."""
        def strip(stats: GroupStats, keys: tuple[str, ...]) -> dict[str, Any]:
            c = stats.contract()
            return {k: c[k] for k in (*keys, *CONTRACT_KEYS)}
        return {
            "study": self.study,
            "annotators": list(self.annotators),
            "n_items": self.n_items,
            "n_items_rated_by_all": self.n_items_rated_by_all,
            "overall": strip(self.overall, ()),
            "cells": [strip(s, ("dataset", "config")) for s in self.cells],
            "by_dataset": [strip(s, ("dataset",)) for s in self.by_dataset],
            "by_config": [strip(s, ("config",)) for s in self.by_config],
            "shortcomings": [{"dataset": r.dataset, "config": r.config, "tag": r.tag, "count": int(r.count)}
                             for r in self.shortcomings.itertuples(index=False)],
            "comparison": self.comparison.contract(),
            "gold": None if self.gold_overall is None else {
                "overall": strip(self.gold_overall, ()),
                "by_dataset": [strip(s, ("dataset",)) for s in self.gold_by_dataset]},
            **({"attention": self.attention} if self.attention is not None else {}),
            **({"power": self.power.contract()} if self.power is not None else {}),
            **(self.metrics.contract() if self.metrics is not None else {}),
        }

    def scores_frame(self) -> pd.DataFrame:
        """scores.csv: one row per group (level cell/dataset/config/overall) with intervals and reasons."""
        rows = []
        gold = [] if self.gold_overall is None else [*self.gold_by_dataset, self.gold_overall]
        for level, groups in (("cell", self.cells), ("dataset", self.by_dataset), ("config", self.by_config),
                              ("overall", [self.overall]), ("gold", gold)):
            for s in groups:
                config = GOLD_CONFIG if level == "gold" else s.key.get("config", "")
                rows.append({"level": level, "dataset": s.key.get("dataset", ""), "config": config,
                             **{k: v for k, v in s.flat().items() if k not in ("dataset", "config")}})
        return pd.DataFrame(rows)

    def score_table(self) -> pd.DataFrame:
        return score_table(self.cells, self.by_dataset, self.by_config, self.overall, self.gold_by_dataset,
                           self.gold_overall)


def check_compare_configs(items: pd.DataFrame, configs: tuple[str, str]) -> None:
    """ValueError unless both configurations exist in the study (rated or not) and neither is gold."""
    known = sorted({str(c) for c in items["config"].unique()} - {GOLD_CONFIG})
    for c in configs:
        if c == GOLD_CONFIG:
            raise ValueError(f"{GOLD_CONFIG!r} holds the gold explanations, the human ceiling, not a configuration; "
                             f"the study's configurations: {', '.join(known) or 'none'}")
        if c not in known:
            raise ValueError(f"unknown configuration {c!r} to compare; the study's configurations: "
                             f"{', '.join(known) or 'none'}")


def analyse(items: pd.DataFrame, ratings: pd.DataFrame, *, study: str, tags: list[str] | None = None,
            adjudications: pd.DataFrame | None = None, compare_configs: tuple[str, str] | None = None,
            seed: int = 0, n_boot: int = BOOTSTRAP_DEFAULT) -> Analysis:
    """Every number of the report from items (item_id, dataset, sample_id, config) and ratings (item_id,
    annotator, rating, tags). `compare_configs`: two configurations of the study (checked); None: the default
    pair, whether or not the study has them. Items of config "gold" are reported only as the human ceiling."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if compare_configs is not None:
        check_compare_configs(items, compare_configs)
    p = prepare(items, ratings, tags)
    if len(p.items) == 0:
        raise ValueError(f"study {study!r} has no ratings yet; nothing to report")
    gold = p.config_mask(GOLD_CONFIG)
    models = p.subset(~gold) if gold.any() else p
    stats = {level: level_stats(models, level, n_boot=n_boot, seed=seed)
             for level in ("cell", "dataset", "config", "overall")}
    pw, reasons = pairwise_kappa(models)
    adj = adjudications if adjudications is not None else pd.DataFrame(
        columns=["item_id", "dataset", "sample_id", "config", "final_rating", "kind", "note"])
    a = Analysis(
        study=study, prepared=p, overall=stats["overall"][0], cells=stats["cell"], by_dataset=stats["dataset"],
        by_config=stats["config"], distribution=rating_distribution(p), shortcomings=shortcoming_counts(p),
        tag_agreement=tag_agreement(models), pairwise=pw, pairwise_reasons=reasons,
        comparison=compare(p, *(compare_configs or DEFAULT_COMPARE), n_boot=n_boot, seed=seed),
        disagreements=disagreement_rows(p, adj), adjudications=adj, seed=seed, n_boot=n_boot)
    if gold.any():
        ceiling = p.subset(gold)
        a.gold_overall = level_stats(ceiling, "overall", n_boot=n_boot, seed=seed)[0]
        a.gold_by_dataset = level_stats(ceiling, "dataset", n_boot=n_boot, seed=seed)
    if len(a.annotators) < 2:
        a.notes.append("Only one annotator has rated items, so no agreement figure is defined.")
    return a


def analyse_export(ratings: pd.DataFrame, *, study: str = "ratings", **kw: Any) -> Analysis:
    """`analyse` for export-shaped ratings (a ratings CSV read with pandas)."""
    items, r = split_export(ratings)
    return analyse(items, r, study=study, **kw)


def analyse_store(store: Store, study: str | None = None, *, compare_configs: tuple[str, str] | None = None,
                  seed: int = 0, n_boot: int = BOOTSTRAP_DEFAULT,
                  frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                  min_attention: float | None = None) -> Analysis:
    """`analyse` over a study in the store (the only one when `study` is None), with its adjudications.
    `frames`: the study's `store.analysis_frames`, when the caller already read them. `min_attention`: drop the
    ratings of annotators whose attention-check pass rate is below it from every figure (annotators who answered
    no check are kept, and the report says so)."""
    if min_attention is not None and not 0.0 <= min_attention <= 1.0:
        raise ValueError(f"min_attention must be between 0 and 1, got {min_attention}")
    s = store.resolve_study(study)
    items, ratings = frames if frames is not None else store.analysis_frames(s["name"])
    checks = store.attention_frame(s["name"])
    attention, dropped = attention_summary(checks, min_attention)
    if dropped:
        ratings = ratings[~ratings["annotator"].astype(str).isin(dropped)].reset_index(drop=True)
    a = analyse(items, ratings, study=s["name"], tags=s["tags"], adjudications=store.adjudications_frame(s["name"]),
                compare_configs=compare_configs, seed=seed, n_boot=n_boot)
    if attention is not None:
        checked = {r["annotator"] for r in attention["annotators"]}
        attention["without_checks"] = [n for n in a.annotators if n not in checked]
        a.attention = attention
        a.notes += [f"Dropped annotator {d['annotator']}: {d['reason']}." for d in attention["dropped"]]
        if min_attention is not None and attention["without_checks"]:
            a.notes.append("Kept without an attention-check result (answered none): "
                           + ", ".join(attention["without_checks"]) + ".")
    return a


def attention_summary(checks: pd.DataFrame, min_attention: float | None) -> tuple[dict[str, Any] | None, set[str]]:
    """(agreement.json's "attention" section, names to drop): pass rates per annotator and, with a threshold,
    who falls below it and why. None when the study has no attention results and no threshold was asked for."""
    if min_attention is None and checks.empty:
        return None, set()
    rows = [{"annotator": r.annotator, "checks": int(r.checks), "passed": int(r.passed),
             "pass_rate": float(r.pass_rate)} for r in checks.itertuples(index=False)]
    dropped = [] if min_attention is None else [
        {**r, "reason": f"attention-check pass rate {fmt(r['pass_rate'], 0, style='%')} ({r['passed']} of {r['checks']}) is below "
                        f"--min-attention {min_attention:g}"} for r in rows if r["pass_rate"] < min_attention]
    return ({"min_attention": min_attention, "annotators": rows, "dropped": dropped, "without_checks": []},
            {d["annotator"] for d in dropped})
