"""A rating study's report, drawn: its plotly figures, built from the computed `Analysis` (aggregated tables only, a
few dozen points whatever the study size), every study string shown literally."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.data import GOLD_CONFIG
from analysis.literal import literal_figure
from analysis.report.compute import Analysis
from analysis.report.metrics import metric_figure
from analysis.report.power import power_figure
from analysis.tables import shortcomings_by
from annotate.core.scale import RATING_LABELS, RATINGS

# Stacked from the bottom: no, weak no, weak yes, yes.
STACK_ORDER = tuple(reversed(RATINGS))
COLORS = {"yes": "#1a9850", "weak_yes": "#a6d96a", "weak_no": "#fdae61", "no": "#d73027"}


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
    if a.metrics is not None and a.metrics.rows:
        out["metric_correlation"] = metric_figure(a.metrics)  # already literal
    return out
