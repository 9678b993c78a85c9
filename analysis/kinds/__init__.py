"""What each study kind adds in the analysis, one module each, registered in one table: `REPORTS` maps a kind's
name (`annotate.core.kinds.KINDS`) to its report, which `nle-report` asks for (docs/development.md)."""

from __future__ import annotations

from analysis.kinds import pairwise, rating
from analysis.kinds.base import KindReport

REPORTS: dict[str, KindReport] = {r.name: r for r in (
    rating.REPORT,  # report.html, agreement.json, scores / shortcomings / disagreements CSV, PNGs
    pairwise.REPORT,  # report.html, agreement.json, pairwise.csv
)}
