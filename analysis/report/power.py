"""How the report and the Analysis page show a power analysis (analysis.power): a table, a curve, an HTML
section. Nothing here computes."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.compare import TEST_NAMES
from analysis.formatting import NA, fmt, x100
from analysis.literal import literal_figure
from analysis.power import TARGET_POWER, PowerCurve, PowerReport
from analysis.report.frame import escape, note, table_html

TEST_LABELS = {**TEST_NAMES, "t-paired": "paired t", "t-independent": "Student t"}
TARGET_POWER_TEXT = fmt(TARGET_POWER, 0, style="%")


def raters_label(c: PowerCurve) -> str:
    """Ratings per sample as simulated: a number (with the mean when some samples have fewer, and give all
    theirs), or each sample's own as in the pilot (with their mean)."""
    if c.raters is not None:
        fewer = c.ratings_per_sample is not None and c.ratings_per_sample < c.raters
        return f"{c.raters} ({fmt(c.ratings_per_sample, 1)} on average)" if fewer else str(c.raters)
    own = "" if c.ratings_per_sample is None else f" ({fmt(c.ratings_per_sample, 1)} on average)"
    return f"as rated{own}"


def n_for_80_text(c: PowerCurve) -> str:
    if c.result is None:
        return NA
    n = c.n_for_80
    return str(n) if n is not None else f"not within {max(c.result.sizes)}"


def power_table(report: PowerReport) -> pd.DataFrame:
    """One row per curve: its design, the pilot's difference and the simulated one (×100), the smallest sample
    size reaching 80 %, and the power in % ± its Monte-Carlo standard error at each size."""
    rows = []
    for c in report.curves:
        r = c.result
        row = {"dataset": c.dataset, "ratings per sample": raters_label(c), "test": TEST_LABELS[c.test],
               "pilot samples a / b": f"{c.n_pilot_a} / {c.n_pilot_b}",
               "pilot a − b ×100": NA if r is None else x100(r.pilot_effect),
               "simulated a − b ×100": NA if r is None else x100(r.effect),
               f"n for {TARGET_POWER_TEXT}": n_for_80_text(c)}
        for k, n in enumerate(report.settings.sizes):
            row[f"n={n}"] = NA if r is None else f"{x100(r.power[k])} ± {x100(r.se[k])}"
        rows.append(row)
    return pd.DataFrame(rows)


def curve_name(c: PowerCurve, several_raters: bool) -> str:
    return f"{c.dataset} · {raters_label(c)} ratings" if several_raters else c.dataset


def power_figure(report: PowerReport) -> go.Figure:
    """Power (%) against samples per configuration, one line per dataset (and overall), ±1 Monte-Carlo standard
    error as error bars, the 80 % target as a dashed line; study strings shown literally."""
    several = len(report.settings.raters) > 1
    fig = go.Figure()
    for c in report.curves:
        if c.result is None:
            continue
        r = c.result
        fig.add_scatter(x=list(r.sizes), y=list(100 * r.power), mode="lines+markers", name=curve_name(c, several),
                        error_y=dict(type="data", array=list(100 * r.se)),
                        line=dict(width=3 if c.dataset == "overall" else 1.5),
                        hovertemplate="n = %{x}: %{y:.1f} %<extra>%{fullData.name}</extra>")
    fig.add_hline(y=100 * TARGET_POWER, line_dash="dash", line_color="#888",
                  annotation_text=TARGET_POWER_TEXT, annotation_position="top left")
    s = report.settings
    effect = "the pilot's difference" if s.effect_points is None else f"a difference of {s.effect_points:g} points"
    fig.update_layout(title=f"Power to tell {report.a} from {report.b} ({effect}, α = {s.alpha:g}, "
                            f"{s.n_sim} simulations per point)",
                      xaxis_title="samples per configuration", yaxis_title="power (%)", yaxis_range=[0, 102])
    return literal_figure(fig)


def power_html(report: PowerReport, figure_html: str = "") -> str:
    """The report.html section: what was simulated, the table, reasons for missing curves, the figure."""
    e = escape
    s = report.settings
    effect = ("the pilot's own difference between the configurations" if s.effect_points is None else
              f"a difference a − b of {s.effect_points:g} points on the 0–100 scale (B's ratings moved along "
              "the answers)")
    raters = ", ".join("each sample's own ratings" if r is None else str(r) for r in s.raters)
    text = (f"How often the report's test would find p < {s.alpha:g} if the study had n samples per configuration "
            f"like those rated so far: {s.n_sim} simulated studies per n, each drawing n of the pilot's samples "
            f"with replacement (pairs together in a paired design, each sample with its ratings), for {effect}; "
            f"ratings per sample: {raters}; seed {s.seed}. Power in % ± its Monte-Carlo standard error; "
            f"n for {TARGET_POWER_TEXT}: the smallest n tried that reaches it.")
    notes = "".join(note(f"{c.dataset}: {c.reason}") for c in report.curves if c.reason)
    table = table_html(power_table(report))
    return (f"<h2 id='power'>Power from this pilot: {e(report.a)} vs {e(report.b)}</h2><p>{e(text)}</p>"
            f"{table}{notes}{figure_html}")
