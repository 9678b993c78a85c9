"""The pairwise study's report: its sections of report.html and its files (report.html, agreement.json,
pairwise.csv), from the computed `PairwiseAnalysis` (analysis.pairwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis.defaults import BOOTSTRAP_DEFAULT
from analysis.pairwise import PairwiseAnalysis, analyse_pairwise_store
from analysis.pairwise_sides import SIDE_RATINGS_TEXT
from analysis.report.frame import escape, json_bytes, note, page, table_html, write_files
from annotate.core.spreadsheet import escape_cell

OUTPUT_FILES = ("report.html", "agreement.json", "pairwise.csv")


def sections(p: PairwiseAnalysis) -> list[str]:
    """report.html's body for a pairwise study, in order: heading with the definitions, notes, the comparison per
    dataset and overall, the side ratings (when the study asks for them)."""
    e = escape
    parts = [f"<h1>Pairwise comparison — study {e(p.study)}</h1>",
             f"<p>{e(p.a)} (A) against {e(p.b)} (B). Annotators: {e(', '.join(p.annotators))}. Win rate: ties count "
             f"half; interval: {p.n_boot} bootstrap resamples of pairs, seed {p.seed}. Sign test: exact, two-sided, "
             "over pairs by their net preference, ties left out. κ: Cohen's on A / B / tie (mean over annotator "
             "pairs with more than two). Explanation 1 chosen: share of side choices that went to the explanation "
             "shown first (0.5 = no position bias), exact interval.</p>"]
    parts += [note(n) for n in p.notes]
    parts.append(table_html(p.table()))
    sides = p.side_table()
    if sides is not None:
        parts += ["<h2 id='side-ratings'>Side ratings</h2>", f"<p>{e(SIDE_RATINGS_TEXT)}</p>", table_html(sides)]
    elif p.side_ratings_reason:
        parts += ["<h2 id='side-ratings'>Side ratings</h2>", note(f"{p.side_ratings_reason}.")]
    return parts


def render_html(p: PairwiseAnalysis) -> str:
    """report.html of a pairwise study: one self-contained page."""
    return page(f"Pairwise — {p.study}", sections(p))


def _csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the dataset names, which come from files, escaped for spreadsheets (as in every CSV the
    project writes); the figures are numbers this module wrote, so a negative κ stays a number."""
    return table.assign(dataset=table["dataset"].map(escape_cell))


def outputs(p: PairwiseAnalysis) -> dict[str, bytes]:
    """The pairwise report's files as bytes, by file name; pairwise.csv safe to open in a spreadsheet."""
    return {"report.html": render_html(p).encode(),
            "agreement.json": json_bytes(p.agreement_json()),
            "pairwise.csv": _csv_safe(p.table()).to_csv(index=False).encode()}


def write_pairwise_report(store: Any, study: str, out_dir: str | Path, *, seed: int = 0,
                          n_boot: int = BOOTSTRAP_DEFAULT) -> int:
    """`nle-report` on a pairwise study: report.html, agreement.json and pairwise.csv in `out_dir`; exit code."""
    p = analyse_pairwise_store(store, study, seed=seed, n_boot=n_boot)
    files = outputs(p)
    write_files(files, out_dir)
    o = p.overall
    print(f"study {p.study!r} (pairwise, {p.a} vs {p.b}): {o.n_answers} answers on {o.n_items} pairs by "
          f"{len(p.annotators)} annotators")
    print(f"wrote {len(files)} files to {Path(out_dir)}: {', '.join(files)}")
    return 0
