"""How the report and the Analysis page show the metric–human correlations (analysis.metric_correlation): two
tables, a scatter figure, an HTML section. Nothing here computes."""

from __future__ import annotations

import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.formatting import fmt
from analysis.literal import literal_figure, literal_text
from analysis.metric_correlation import MIN_CONFIGURATIONS, MetricReport
from analysis.report.frame import escape, note, table_html

PER_ROW = 3  # scatter panels side by side
# The Analysis page reruns on every click: above this many metric scores its first bootstrap is a short one, shown
# in its input (nle-report runs once and keeps --metric-resamples, default --n-boot).
LARGE_STUDY_SCORES = 50_000
LARGE_STUDY_RESAMPLES = 100


def _with_interval(value: float | None, ci: list[float] | None, undefined: str | None) -> str:
    if value is None:
        return fmt(None, reason=undefined)
    return fmt(value) if ci is None else f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def correlation_table(report: MetricReport) -> pd.DataFrame:
    """Item level, one row per metric and dataset (then overall): items, Spearman ρ and Kendall τ-b with their
    bootstrap intervals, or "n/a (reason)"."""
    suffix = f" [{fmt(100 * report.confidence_level, 0) + ' %'} CI]" if report.n_resamples else ""
    rho, tau = f"Spearman ρ{suffix}", f"Kendall τ-b{suffix}"
    rows = [{"metric": r["metric"], "dataset": r["dataset"], "items": r["n"],
             rho: _with_interval(r["spearman"], r["spearman_ci"], r["undefined"]),
             tau: _with_interval(r["kendall"], r["kendall_ci"], r["undefined"])} for r in report.rows]
    return pd.DataFrame(rows, columns=["metric", "dataset", "items", rho, tau])


def system_table(report: MetricReport) -> pd.DataFrame:
    """System level, one row per metric and dataset (then overall): configurations, ρ and τ-b over their means."""
    return pd.DataFrame([{"metric": r["metric"], "dataset": r["dataset"], "configurations": r["n"],
                          "Spearman ρ": fmt(r["spearman"], reason=r["undefined"]),
                          "Kendall τ-b": fmt(r["kendall"], reason=r["undefined"])} for r in report.system],
                        columns=["metric", "dataset", "configurations", "Spearman ρ", "Kendall τ-b"])


def system_defined(report: MetricReport) -> bool:
    """Whether any system-level row has a figure (at least MIN_CONFIGURATIONS configurations somewhere)."""
    return any(r["undefined"] is None for r in report.system)


def metric_figure(report: MetricReport) -> go.Figure:
    """One panel per metric: each counted item's metric value against its mean human score ×100, one colour per
    dataset; a panel says when it shows a random sample of the items. Study strings shown literally."""
    metrics = list(report.n_points)
    cols = max(1, min(PER_ROW, len(metrics)))
    rows = max(1, -(-len(metrics) // cols))
    titles = [literal_text(m if report.n_points[m] <= _shown(report, m) else
                           f"{m} ({_shown(report, m):,} of {report.n_points[m]:,} items, drawn at random)")
              for m in metrics]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or None, shared_yaxes=True)
    datasets = sorted(report.points["dataset"].unique())
    palette = plotly.colors.qualitative.Plotly  # one colour per dataset in every panel
    in_legend: set[str] = set()
    for k, metric in enumerate(metrics):
        of_metric = report.points[report.points["metric"] == metric]
        for d in datasets:
            pts = of_metric[of_metric["dataset"] == d]
            if pts.empty:
                continue
            fig.add_scatter(x=pts["value"].to_numpy(), y=100 * pts["human"].to_numpy(), mode="markers", name=d,
                            legendgroup=d, showlegend=d not in in_legend,
                            marker=dict(opacity=0.6, size=6, color=palette[datasets.index(d) % len(palette)]),
                            text=pts["config"].astype(str).tolist(),
                            hovertemplate="%{text}: metric %{x:.4g}, human %{y:.1f}<extra>%{fullData.name}</extra>",
                            row=k // cols + 1, col=k % cols + 1)
            in_legend.add(d)
        fig.update_xaxes(title_text=literal_text(metric), row=k // cols + 1, col=k % cols + 1)
    fig.update_yaxes(title_text="mean human score ×100", col=1)
    fig.update_layout(title="Automatic metrics against the ratings (one point per item)",
                      height=max(400, 360 * rows))
    return literal_figure(fig)


def _shown(report: MetricReport, metric: str) -> int:
    return int((report.points["metric"] == metric).sum())


METRIC_DEFINITION = ("Spearman's ρ and Kendall's τ-b between each item's mean human score (yes 1, weak yes 2/3, "
                     "weak no 1/3, no 0, over its ratings) and its automatic metric score, per dataset and overall, "
                     "with a percentile bootstrap interval over resamples of the items. Gold reference items and "
                     "attention checks are left out; items: the rated items with the metric.")
NO_RATED_METRICS = ("No rated item has a metric score yet (gold reference items and attention checks do not "
                    "count).")


def system_text() -> str:
    return ("System level: over configurations, each configuration's mean human score against its mean metric "
            f"score (over the same items), ρ and τ-b without interval; needs at least {MIN_CONFIGURATIONS} "
            "configurations.")


def metric_html(report: MetricReport, figure_html: str = "") -> str:
    """The report.html section: what is correlated and how, the item- and system-level tables, the figure."""
    e = escape
    bootstrap = (f"Bootstrap: {report.n_resamples} resamples, {fmt(100 * report.confidence_level, 0) + ' %'} "
                 f"percentile interval, seed {report.seed}." if report.n_resamples else
                 "No intervals: 0 bootstrap resamples were asked for.")
    parts = [f"<h2 id='metric-correlation'>Automatic metrics and the ratings</h2>"
             f"<p>{e(METRIC_DEFINITION)} {e(bootstrap)}</p>"]
    if not report.rows:
        parts.append(note(NO_RATED_METRICS, "metric-note"))
        return "".join(parts)
    parts.append(table_html(correlation_table(report), table_id="metric-table"))
    parts.append(f"<p>{e(system_text())}</p>")
    if system_defined(report):
        parts.append(table_html(system_table(report), table_id="metric-system-table"))
    else:
        parts.append(note(f"Fewer than {MIN_CONFIGURATIONS} configurations: no system-level correlation.",
                          "metric-system-note"))
    parts.append(figure_html)
    return "".join(parts)
