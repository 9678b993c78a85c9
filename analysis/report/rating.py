"""The rating study's report: its sections of report.html, its files (report.html, agreement.json, scores.csv,
shortcomings.csv, disagreements.csv, PNGs) and `build_report`, which computes (analysis.report.compute), draws
(analysis.report.figures) and writes them."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis.defaults import BOOTSTRAP_DEFAULT
from analysis.metric_correlation import metric_report
from analysis.png import PngExporter
from analysis.power import PowerSettings, pilot_power
from analysis.report.compute import Analysis, analyse_store
from analysis.report.display import (
    FLEISS_DEFINITION,
    PAIRS_DEFINITION,
    agreement_table,
    comparison_table,
    pairwise_kappa_table,
    tag_agreement_table,
)
from analysis.report.figures import figures
from analysis.report.frame import escape, json_bytes, note, page, table_html, write_files
from analysis.report.metrics import metric_html
from analysis.report.power import power_html
from analysis.tables import GOLD_ROW, adjudication_counts
from annotate.core.spreadsheet import escape_frame
from annotate.core.store import DISAGREEMENT_KINDS, Store

OUTPUT_FILES = ("report.html", "agreement.json", "scores.csv", "shortcomings.csv", "disagreements.csv")


def sections(a: Analysis, figs: dict[str, go.Figure]) -> list[str]:
    """report.html's body for a rating study, in order: heading and notes, scores, agreement, side by side, power
    (when estimated), automatic metrics (when the study has metric scores), disagreements. Plotly's JavaScript is
    inlined once, with the first figure."""
    e = escape
    parts = [f"<h1>Human evaluation report — study {e(a.study)}</h1>",
             f"<p>Annotators: {e(', '.join(a.annotators)) or 'none'}. Items with a rating: {a.n_items}; rated by "
             f"every annotator: {a.n_items_rated_by_all}. Bootstrap: {a.n_boot} resamples of items, seed {a.seed}."
             "</p>"]
    parts += [note(n) for n in a.notes]
    gold_note = (f" The row “{GOLD_ROW}” holds the dataset's own gold explanations, rated blind like the "
                 "others: it is a ceiling, and no other row, figure or test includes it."
                 if a.gold_overall is not None else "")
    parts += ["<h2>Scores</h2>",
              "<p>Mean score ×100 over all ratings of all annotators (yes 1, weak yes 2/3, weak no 1/3, no 0) and, "
              "in brackets, Cohen's κ between annotators. The average column pools each configuration's ratings "
              f"over datasets.{e(gold_note)}</p>",
              table_html(a.score_table(), index=True, table_id="score-table")]
    plotly_js = True
    fig_html: dict[str, str] = {}
    for name, fig in figs.items():
        fig_html[name] = fig.to_html(full_html=False, include_plotlyjs=plotly_js, div_id=f"fig-{name}")
        plotly_js = False
    parts += [fig_html.get("rating_distribution", ""), fig_html.get("shortcomings_by_config", ""),
              fig_html.get("shortcomings_by_dataset", "")]
    footnotes: list[str] = []
    agreement = table_html(agreement_table(a, footnotes))
    parts += ["<h2>Agreement</h2>",
              "<p>Over the items both annotators rated: Cohen's κ on the four answers (the paper's figure), linearly "
              "and quadratically weighted κ, binary κ ({yes, weak yes} vs {weak no, no}), percent agreement, "
              "disagreements, Krippendorff's α (ordinal). n/a [k]: undefined, for reason k below the table.</p>",
              f"<p>{e(PAIRS_DEFINITION)}</p>", f"<p>{e(FLEISS_DEFINITION)}</p>", agreement,
              "<ol class='footnotes' id='agreement-footnotes'>" + "".join(f"<li>{e(n)}</li>" for n in footnotes)
              + "</ol>", fig_html.get("kappa_per_cell", "")]
    if len(a.annotators) > 2:
        parts += ["<h3>Pairwise Cohen's κ</h3>", table_html(pairwise_kappa_table(a), index=True),
                  fig_html.get("pairwise_kappa", "")]
    parts += ["<h3>Agreement on each shortcoming tag (κ on presence)</h3>", table_html(tag_agreement_table(a))]
    c = a.comparison
    parts += [f"<h2>Side by side: {e(c.a)} vs {e(c.b)}</h2>", table_html(comparison_table(c))]
    if c.note:
        parts.append(note(c.note, "comparison-note"))
    parts.append(fig_html.get("comparison", ""))
    if a.power is not None:
        parts.append(power_html(a.power, fig_html.get("power", "")))
    if a.metrics is not None:
        parts.append(metric_html(a.metrics, fig_html.get("metric_correlation", "")))
    parts += ["<h2>Disagreements and adjudication</h2>",
              f"<p>{len(a.disagreements)} items where annotators gave different answers; "
              f"{int(a.disagreements['kind'].notna().sum())} of them adjudicated. Adjudications by kind:</p>",
              table_html(adjudication_counts(a.adjudications, DISAGREEMENT_KINDS))]
    return parts


def render_html(a: Analysis, figs: dict[str, go.Figure]) -> str:
    """report.html of a rating study: one self-contained page."""
    return page(f"Report — {a.study}", sections(a, figs))


def _big_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes via pyarrow's writer, much faster than pandas' on a large study (every text field quoted)."""
    try:
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
        "agreement.json": json_bytes(a.agreement_json()),
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
                 power: PowerSettings | None = None, metric_resamples: int | None = None) -> ReportResult:
    """Write report.html, agreement.json, scores.csv, shortcomings.csv, disagreements.csv (and PNGs when `png`
    and a static exporter works) into `out_dir`. `frames`: see `analyse_store`; `exporter`: an already started
    PngExporter (closed here); `power`: also estimate the comparison's power from these ratings;
    `metric_resamples`: bootstrap resamples of the metric–human correlations (default `n_boot`)."""
    if exporter is None:
        exporter = PngExporter()
        if png:
            exporter.start()  # the browser starts while the analysis runs
    try:
        a = analyse_store(store, study, compare_configs=compare_configs, seed=seed, n_boot=n_boot, frames=frames,
                          min_attention=min_attention)
        if power is not None:
            a.power = pilot_power(a.prepared, a.comparison.a, a.comparison.b, power)
        a.metrics = metric_report(a.prepared, store.metrics_frame(a.study), seed=seed,
                                  n_resamples=n_boot if metric_resamples is None else metric_resamples)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)  # before the PNG writer starts on it
        figs = figures(a)
        if png:
            exporter.write_in_background(figs, out)
        files = write_files(outputs(a, figs), out)
        png_note = None
        if png:
            pngs, png_note = exporter.result()
            files += pngs
    finally:
        exporter.close()
    return ReportResult(a, files, png_note)
