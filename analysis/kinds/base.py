"""The interface every study kind implements in the analysis: its report.

Each kind is one module of `analysis.kinds` holding one `KindReport`, registered in that package's `REPORTS` under
the kind's name in `annotate.core.kinds.KINDS`. `nle-report` asks the study's kind for its report; the modules here
are light (they import their report's computing and figures only when asked), so that the command can read the
study while the heavy modules load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.defaults import BOOTSTRAP_DEFAULT


@dataclass
class ReportRequest:
    """What `nle-report` asks for; a kind reads the settings that apply to it."""

    out: str | Path  # the folder for the report's files
    seed: int = 0
    n_boot: int = BOOTSTRAP_DEFAULT
    compare: tuple[str, str] | None = None  # two configurations side by side (a rating study's)
    min_attention: float | None = None  # drop annotators below this attention-check pass rate
    png: bool = False  # also the figures as PNG
    power: Any = None  # analysis.power.PowerSettings, or None
    metric_resamples: int | None = None  # bootstrap resamples of the metric-human correlations (None: n_boot)
    exporter: Any = None  # analysis.png.PngExporter, started by the kind when it draws PNGs


class KindReport:
    """One study kind's report."""

    name: str = ""  # the kind's name in annotate.core.kinds.KINDS

    def write(self, store: Any, study: str, request: ReportRequest) -> int:
        """Write the report of `study` into `request.out` and print what was written; the exit code. ValueError
        or OSError for a request the kind cannot serve (nothing is written then)."""
        raise NotImplementedError
