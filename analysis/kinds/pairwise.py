"""A pairwise study's report: report.html, agreement.json and pairwise.csv (analysis.report.pairwise)."""

from __future__ import annotations

from typing import Any

from analysis.kinds.base import KindReport, ReportRequest


class PairwiseReport(KindReport):
    name = "pairwise"

    def write(self, store: Any, study: str, request: ReportRequest) -> int:
        if request.power is not None:
            raise ValueError(f"--power estimates the power of a rating study's comparison; {study!r} is a "
                             "pairwise study")
        from analysis.report.pairwise import write_pairwise_report

        return write_pairwise_report(store, study, request.out, seed=request.seed, n_boot=request.n_boot)


REPORT = PairwiseReport()
