"""The study report: every number (from analysis.tables / analysis.compare), figures, and the output files
(report.html, agreement.json, scores.csv, shortcomings.csv, disagreements.csv, PNGs). The app's Analysis page
uses the same functions."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.agreement import BOOTSTRAP_DEFAULT
from analysis.compare import DEFAULT_COMPARE, Comparison, compare
from analysis.data import GOLD_CONFIG, Prepared, prepare, split_export
from analysis.literal import literal_figure, literal_frame
from analysis.png import PngExporter
from analysis.power import PowerReport, PowerSettings, pilot_power
from analysis.power_report import power_figure, power_html
from analysis.tables import (
    CONTRACT_KEYS,
    GOLD_ROW,
    GroupStats,
    adjudication_counts,
    disagreement_rows,
    level_stats,
    pairwise_kappa,
    rating_distribution,
    score_table,
    shortcoming_counts,
    shortcomings_by,
    tag_agreement,
)
from annotate.core.scale import RATING_LABELS, RATINGS
from annotate.core.spreadsheet import escape_frame
from annotate.core.store import DISAGREEMENT_KINDS, Store
from annotate.core.text import show_controls

OUTPUT_FILES = ("report.html", "agreement.json", "scores.csv", "shortcomings.csv", "disagreements.csv")
# Stacked from the bottom: no, weak no, weak yes, yes.
STACK_ORDER = tuple(reversed(RATINGS))
COLORS = {"yes": "#1a9850", "weak_yes": "#a6d96a", "weak_no": "#fdae61", "no": "#d73027"}


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
    # Attention checks (issue 12 §4): per-annotator pass rates, and who `min_attention` dropped and why.
    attention: dict[str, Any] | None = None
    # Power of the comparison from these ratings (analysis.power), when asked for.
    power: PowerReport | None = None

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
        """agreement.json: exactly the keys of the contract in the issue (scores in [0, 1], κ float or null)."""
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
        {**r, "reason": f"attention-check pass rate {r['pass_rate']:.0%} ({r['passed']} of {r['checks']}) is below "
                        f"--min-attention {min_attention:g}"} for r in rows if r["pass_rate"] < min_attention]
    return ({"min_attention": min_attention, "annotators": rows, "dropped": dropped, "without_checks": []},
            {d["annotator"] for d in dropped})


# -- figures --------------------------------------------------------------------------------------------------------


def figures(a: Analysis) -> dict[str, go.Figure]:
    """The report's figures, built from aggregated tables only (a few dozen points whatever the study size)."""
    figs: dict[str, go.Figure] = {}
    dist = a.distribution
    fig = go.Figure()
    for r in STACK_ORDER:
        d = dist[dist["rating"] == r]
        fig.add_bar(x=d["config"], y=100 * d["share"], name=RATING_LABELS[r], marker_color=COLORS[r],
                    customdata=d["count"], hovertemplate="%{x}: %{y:.1f} % (%{customdata} ratings)<extra></extra>")
    fig.update_layout(barmode="stack", title="Answers per configuration (all annotators)",
                      yaxis_title="% of ratings", legend_traceorder="reversed")
    figs["rating_distribution"] = fig

    for by in ("config", "dataset"):
        # Per configuration, gold is its own bar; per dataset, only model configurations are pooled.
        short = a.shortcomings if by == "config" else a.shortcomings[a.shortcomings["config"] != GOLD_CONFIG]
        counts = shortcomings_by(short, by)
        fig = go.Figure()
        for key in dict.fromkeys(counts[by]):
            d = counts[counts[by] == key]
            fig.add_bar(x=d["tag"], y=d["count"], name=str(key))
        fig.update_layout(barmode="group", title=f"Shortcoming tags per {'configuration' if by == 'config' else by}",
                          yaxis_title="ratings with the tag", xaxis_tickangle=-30)
        figs[f"shortcomings_by_{by}"] = fig

    fig = go.Figure()
    for config in a.prepared.configs:
        cells = [s for s in a.cells if s.key["config"] == config]
        if all(s.kappas["cohen_kappa"].value is None for s in cells):
            continue  # no bar to draw (gold has no cells here; n/a cells are in the agreement table with why)
        k = [s.kappas["cohen_kappa"] for s in cells]
        ci = [s.kappa_cis["cohen_kappa"] for s in cells]
        y = [v.value if v.value is not None else None for v in k]
        fig.add_bar(x=[s.key["dataset"] for s in cells], y=y, name=config, error_y=dict(
            type="data", symmetric=False,
            array=[(c.high - v) if v is not None and c.high is not None else 0 for v, c in zip(y, ci, strict=True)],
            arrayminus=[(v - c.low) if v is not None and c.low is not None else 0 for v, c in zip(y, ci, strict=True)]))
    fig.update_layout(barmode="group", title="Cohen's κ per dataset × configuration (95 % bootstrap interval)",
                      yaxis_title="κ")
    figs["kappa_per_cell"] = fig

    c = a.comparison
    if c.test == "wilcoxon" and c.n_pairs:
        diff = pd.Series(100 * c.differences).round(1).value_counts().sort_index()
        fig = go.Figure(go.Bar(x=diff.index, y=diff.to_numpy()))
        fig.update_layout(title=f"Per-sample score difference, {c.a} − {c.b} (×100)", xaxis_title="difference",
                          yaxis_title="samples")
        figs["comparison"] = fig
    elif len(c.scores_a) or len(c.scores_b):
        # Different samples: the test compares the two distributions of per-sample scores, so show those.
        fig = go.Figure()
        for name, scores in ((c.a, c.scores_a), (c.b, c.scores_b)):
            counts = pd.Series(100 * scores).round(1).value_counts().sort_index()
            fig.add_bar(x=counts.index, y=counts.to_numpy(), name=f"{name} ({len(scores)} samples)")
        fig.update_layout(barmode="group", title=f"Per-sample scores, {c.a} vs {c.b} (×100)",
                          xaxis_title="per-sample mean score ×100", yaxis_title="samples")
        figs["comparison"] = fig

    if len(a.annotators) > 2:
        fig = go.Figure(go.Heatmap(z=a.pairwise.to_numpy(), x=a.annotators, y=a.annotators, zmin=-1, zmax=1,
                                   colorscale="RdBu"))
        fig.update_layout(title="Pairwise Cohen's κ")
        figs["pairwise_kappa"] = fig
    out = {name: literal_figure(fig) for name, fig in figs.items()}  # names from files shown literally
    if a.power is not None:
        out["power"] = power_figure(a.power)  # already literal
    return out


# -- outputs --------------------------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


FLEISS_DEFINITION = ("FEB's κ: Fleiss' κ with uniform (free-marginal) chance agreement 1/2 on {yes, weak yes} vs "
                     "{weak no, no}, over the items with the most common number of ratings (allenai/feb "
                     "scripts/compute_kappa.py); items used in brackets.")

# With two annotators (the paper's set-up) both are the one pair's figure.
PAIRS_DEFINITION = ("With more than two annotators: κ is Light's κ, the mean over the annotator pairs where κ is "
                    "defined; % agreement is the mean over every annotator pair with an item rated by both, so a pair "
                    "that gave all its shared items one and the same answer counts with its 100 % although its κ is "
                    "undefined.")


def agreement_table(a: Analysis, footnotes: list[str] | None = None) -> pd.DataFrame:
    """Agreement per group, formatted for display: κ (plain, linear, quadratic, binary) with 95 % intervals and
    FEB's κ. An undefined value shows "n/a [k]"; its reason is appended, once, to `footnotes` as entry k."""
    notes: list[str] = [] if footnotes is None else footnotes

    def na(reason: str | None) -> str:
        reason = reason or "undefined"
        if reason not in notes:
            notes.append(reason)
        return f"n/a [{notes.index(reason) + 1}]"

    rows = []
    gold = [] if a.gold_overall is None else [a.gold_overall, *a.gold_by_dataset]
    for level, groups in (("overall", [a.overall]), ("dataset", a.by_dataset), ("config", a.by_config),
                          ("cell", a.cells), (GOLD_ROW, gold)):
        for s in groups:
            config = GOLD_CONFIG if level == GOLD_ROW else s.key.get("config", "all")
            row = {"level": level, "dataset": s.key.get("dataset", "all"), "config": config,
                   "ratings": s.n, "items rated by ≥2": s.n_pairs,
                   "mean ×100 [95 % CI]": f"{_fmt(None if s.mean_score is None else 100 * s.mean_score, 1)} "
                   f"[{_fmt(None if s.mean_score_ci.low is None else 100 * s.mean_score_ci.low, 1)}, "
                   f"{_fmt(None if s.mean_score_ci.high is None else 100 * s.mean_score_ci.high, 1)}]"}
            for key, label in (("cohen_kappa", "κ"), ("cohen_kappa_linear", "κ linear"),
                               ("cohen_kappa_quadratic", "κ quadratic"), ("cohen_kappa_binary", "κ binary")):
                st, ci = s.kappas[key], s.kappa_cis[key]
                row[label] = (f"{st.value:.3f} [{_fmt(ci.low)}, {_fmt(ci.high)}]" if st.value is not None
                              else na(st.reason))
            row["FEB κ (items)"] = (
                f"{s.fleiss.value:.3f} ({s.fleiss.n})" if s.fleiss.value is not None else na(s.fleiss.reason))
            row["% agreement"] = _fmt(None if s.percent_agreement.value is None else 100 * s.percent_agreement.value, 1)
            row["disagreements"] = s.disagreements
            row["α ordinal"] = _fmt(s.alpha.value) if s.alpha.value is not None else na(s.alpha.reason)
            rows.append(row)
    return pd.DataFrame(rows)


def tag_agreement_table(a: Analysis) -> pd.DataFrame:
    """The per-tag agreement formatted for display: κ to three decimals, "n/a" where undefined with its reason
    beside it (a blank reason: κ is defined)."""
    tags = a.tag_agreement
    if "kappa" not in tags.columns:  # a study without tags
        return tags
    return tags.assign(kappa=[_fmt(v) for v in tags["kappa"]],
                       reason=[r if isinstance(r, str) else "" for r in tags["reason"]])


def pairwise_kappa_table(a: Analysis) -> pd.DataFrame:
    """Cohen's κ between every two annotators, formatted for display: three decimals, "n/a" where undefined."""
    return a.pairwise.map(_fmt)


def _test_text(name: str, symbol: str, statistic: float | None, p: float | None, reason: str | None) -> str:
    if p is None:
        return f"{name}: n/a ({reason})"
    return f"{name}: {symbol} = {_fmt(statistic, 1)}, p = {_fmt(p, 4)}"


def comparison_table(c: Comparison) -> pd.DataFrame:
    """The side-by-side summary: the primary test (named, with its statistic) and, when samples differ, the
    paired test on the shared samples."""
    def x100(v: float | None) -> str:
        return _fmt(None if v is None else 100 * v, 1)

    symbol = "W" if c.test == "wilcoxon" else "U"
    rows = [
        ("configurations", f"{c.a} (a) vs {c.b} (b)"),
        ("samples rated, a / b", f"{c.n_a} / {c.n_b}"),
        ("mean score ×100, a (all its samples)", x100(c.mean_a)),
        ("mean score ×100, b (all its samples)", x100(c.mean_b)),
        ("mean difference a − b ×100 [95 % CI]",
         f"{x100(c.mean_diff)} [{x100(c.mean_diff_ci.low)}, {x100(c.mean_diff_ci.high)}]"),
        ("primary test, two-sided", _test_text(c.test_name, symbol, c.statistic, c.p_value, c.reason)),
        ("samples rated under both", str(c.n_pairs)),
        ("wins a / ties / wins b (shared samples)", f"{c.wins_a} / {c.ties} / {c.wins_b}"),
    ]
    if c.test != "wilcoxon":
        if c.paired is not None:
            rows += [("paired subset: mean score ×100, a / b", f"{x100(c.paired.mean_a)} / {x100(c.paired.mean_b)}"),
                     ("paired subset: test, two-sided",
                      _test_text("Wilcoxon signed-rank", "W", c.paired.statistic, c.paired.p_value,
                                 "every paired difference is zero"))]
        else:
            rows.append(("paired subset: test", f"n/a (fewer than 10 shared samples: {c.n_pairs})"))
    return pd.DataFrame(rows, columns=["figure", "value"])


def _table_html(df: pd.DataFrame, index: bool = False) -> str:
    if index and df.index.name:
        # A named index makes pandas add a second, almost empty header row; put the name in the corner instead.
        df = df.rename_axis(None).rename_axis(df.index.name, axis="columns")
    return literal_frame(df).to_html(index=index, escape=True, na_rep="n/a", border=0, classes="t")


def render_html(a: Analysis, figs: dict[str, go.Figure]) -> str:
    """report.html: one self-contained page; plotly's JavaScript is inlined once, with the first figure."""
    def e(text: str) -> str:  # names from files: bidi controls made visible, then HTML-escaped
        return html.escape(show_controls(text))

    parts = [f"<h1>Human evaluation report — study {e(a.study)}</h1>",
             f"<p>Annotators: {e(', '.join(a.annotators)) or 'none'}. Items with a rating: {a.n_items}; rated by "
             f"every annotator: {a.n_items_rated_by_all}. Bootstrap: {a.n_boot} resamples of items, seed {a.seed}."
             "</p>"]
    parts += [f"<p class='note'>{e(n)}</p>" for n in a.notes]
    gold_note = (f" The row “{GOLD_ROW}” holds the dataset's own gold explanations, rated blind like the "
                 "others: it is a ceiling, and no other row, figure or test includes it."
                 if a.gold_overall is not None else "")
    parts += ["<h2>Scores</h2>",
              "<p>Mean score ×100 over all ratings of all annotators (yes 1, weak yes 2/3, weak no 1/3, no 0) and, "
              "in brackets, Cohen's κ between annotators. The average column pools each configuration's ratings "
              f"over datasets.{e(gold_note)}</p>",
              _table_html(a.score_table(), index=True).replace('class="dataframe t"', 'class="dataframe t" id="score-table"')]
    plotly_js: bool | str = True
    fig_html: dict[str, str] = {}
    for name, fig in figs.items():
        fig_html[name] = fig.to_html(full_html=False, include_plotlyjs=plotly_js, div_id=f"fig-{name}")
        plotly_js = False
    parts += [fig_html.get("rating_distribution", ""), fig_html.get("shortcomings_by_config", ""),
              fig_html.get("shortcomings_by_dataset", "")]
    footnotes: list[str] = []
    agreement = _table_html(agreement_table(a, footnotes))
    parts += ["<h2>Agreement</h2>",
              "<p>Over the items both annotators rated: Cohen's κ on the four answers (the paper's figure), linearly "
              "and quadratically weighted κ, binary κ ({yes, weak yes} vs {weak no, no}), percent agreement, "
              "disagreements, Krippendorff's α (ordinal). n/a [k]: undefined, for reason k below the table.</p>",
              f"<p>{e(PAIRS_DEFINITION)}</p>", f"<p>{e(FLEISS_DEFINITION)}</p>", agreement,
              "<ol class='footnotes' id='agreement-footnotes'>" + "".join(f"<li>{e(n)}</li>" for n in footnotes)
              + "</ol>", fig_html.get("kappa_per_cell", "")]
    if len(a.annotators) > 2:
        parts += ["<h3>Pairwise Cohen's κ</h3>", _table_html(pairwise_kappa_table(a), index=True),
                  fig_html.get("pairwise_kappa", "")]
    parts += ["<h3>Agreement on each shortcoming tag (κ on presence)</h3>", _table_html(tag_agreement_table(a))]
    c = a.comparison
    parts += [f"<h2>Side by side: {e(c.a)} vs {e(c.b)}</h2>", _table_html(comparison_table(c))]
    if c.note:
        parts.append(f"<p class='note' id='comparison-note'>{e(c.note)}</p>")
    parts.append(fig_html.get("comparison", ""))
    if a.power is not None:
        parts.append(power_html(a.power, fig_html.get("power", "")))
    parts += ["<h2>Disagreements and adjudication</h2>",
              f"<p>{len(a.disagreements)} items where annotators gave different answers; "
              f"{int(a.disagreements['kind'].notna().sum())} of them adjudicated. Adjudications by kind:</p>",
              _table_html(adjudication_counts(a.adjudications, DISAGREEMENT_KINDS))]
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table.t{border-collapse:collapse;"
             "margin:1em 0}table.t td,table.t th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             ".note{background:#fff3cd;padding:.5em}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report — {e(a.study)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(obj) else float(obj)
    return obj


def _big_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes via pyarrow's writer (6× faster than pandas' at 150 k rows; every text field quoted)."""
    try:
        import io

        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:  # pyarrow comes with streamlit; without it, pandas writes the same table
        return df.to_csv(index=False).encode()
    buf = io.BytesIO()
    pa_csv.write_csv(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


def outputs(a: Analysis, figs: dict[str, go.Figure] | None = None) -> dict[str, bytes]:
    """The report files as bytes, by file name (the app offers these as downloads)."""
    figs = figures(a) if figs is None else figs
    return {
        "report.html": render_html(a, figs).encode(),
        "agreement.json": json.dumps(_json_safe(a.agreement_json()), indent=2, ensure_ascii=False,
                                     allow_nan=False).encode(),
        "scores.csv": escape_frame(a.scores_frame()).to_csv(index=False).encode(),
        "shortcomings.csv": escape_frame(a.shortcomings).to_csv(index=False).encode(),
        "disagreements.csv": _big_csv(escape_frame(a.disagreements)),
    }


@dataclass
class ReportResult:
    analysis: Analysis
    files: list[Path]
    png_note: str | None


def build_report(store: Store, study: str | None = None, *, compare_configs: tuple[str, str] | None = None,
                 out_dir: str | Path, seed: int = 0, n_boot: int = BOOTSTRAP_DEFAULT, png: bool = True,
                 frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                 exporter: PngExporter | None = None, min_attention: float | None = None,
                 power: PowerSettings | None = None) -> ReportResult:
    """Write report.html, agreement.json, scores.csv, shortcomings.csv, disagreements.csv (and PNGs when `png`
    and a static exporter works) into `out_dir`. `frames`: see `analyse_store`; `exporter`: an already started
    PngExporter (closed here); `power`: also estimate the comparison's power from these ratings."""
    if exporter is None:
        exporter = PngExporter()
        if png:
            exporter.start()  # the browser starts while the analysis runs
    try:
        a = analyse_store(store, study, compare_configs=compare_configs, seed=seed, n_boot=n_boot, frames=frames,
                          min_attention=min_attention)
        if power is not None:
            a.power = pilot_power(a.prepared, a.comparison.a, a.comparison.b, power)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        figs = figures(a)
        if png:
            exporter.write_in_background(figs, out)
        files = []
        for name, data in outputs(a, figs).items():
            (out / name).write_bytes(data)
            files.append(out / name)
        note = None
        if png:
            pngs, note = exporter.result()
            files += pngs
    finally:
        exporter.close()
    return ReportResult(a, files, note)
