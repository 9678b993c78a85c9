"""The reports of a study, one module per study kind on a shared frame:

- `frame`: the HTML page, tables, notes, agreement.json's encoding and file writing every kind shares (numbers are
  formatted by `analysis.formatting`);
- `rating`: a rating study's report, its entry point (`sections`, `outputs`, `build_report`), on top of `compute`
  (every number, `Analysis`), `figures` (plotly) and `display` (tables of text, shared with the Analysis page);
- `pairwise`: a pairwise study's report (`sections`, `outputs`, `write_pairwise_report`) over analysis.pairwise;
- `power`: how a power analysis is shown, a section of the rating report.

`analysis.report` itself offers the rating report's names, as the app and the CLI have always imported them."""

from analysis.report.compute import (
    Analysis,
    analyse,
    analyse_export,
    analyse_store,
    attention_summary,
    check_compare_configs,
)
from analysis.report.display import (
    FLEISS_DEFINITION,
    PAIRS_DEFINITION,
    agreement_table,
    comparison_table,
    pairwise_kappa_table,
    tag_agreement_table,
)
from analysis.report.figures import COLORS, STACK_ORDER, figures
from analysis.report.rating import OUTPUT_FILES, ReportResult, build_report, outputs, render_html

__all__ = [
    "COLORS", "FLEISS_DEFINITION", "OUTPUT_FILES", "PAIRS_DEFINITION", "STACK_ORDER", "Analysis", "ReportResult",
    "agreement_table", "analyse", "analyse_export", "analyse_store", "attention_summary", "build_report",
    "check_compare_configs", "comparison_table", "figures", "outputs", "pairwise_kappa_table", "render_html",
    "tag_agreement_table",
]
