"""A rating study's report: report.html, agreement.json, the CSV files and, with --png, the figures as PNG
(analysis.report.rating)."""

from __future__ import annotations

import threading
from typing import Any

from analysis.kinds.base import KindReport, ReportRequest


class RatingReport(KindReport):
    name = "rating"

    def write(self, store: Any, study: str, request: ReportRequest) -> int:
        if request.png:
            request.exporter.start()  # Chromium starts in the background while we read and compute
        # SQLite releases the GIL while it builds the columns: read the ratings in a thread while the main
        # thread imports SciPy, scikit-learn and plotly (slow on a cold start).
        read: dict[str, object] = {}

        def prefetch() -> None:
            try:
                read["frames"] = store.analysis_frames(study)
            except BaseException as exc:  # re-raised in the main thread below
                read["error"] = exc
        thread = threading.Thread(target=prefetch, daemon=True)
        thread.start()
        from analysis.report import build_report

        thread.join()
        if "error" in read:
            raise read["error"]  # type: ignore[misc]
        result = build_report(store, study, compare_configs=request.compare, out_dir=request.out,
                              seed=request.seed, n_boot=request.n_boot, png=request.png,
                              frames=read["frames"],  # type: ignore[arg-type]
                              exporter=request.exporter, min_attention=request.min_attention, power=request.power,
                              metric_resamples=request.metric_resamples)
        a = result.analysis
        line = (f"study {a.study!r}: {a.overall.n} ratings of {a.overall.n_items} items by {len(a.annotators)} "
                "annotators")
        if a.gold_overall is not None:  # the human ceiling is reported apart, never pooled into the overall
            line += f" (and {a.gold_overall.n} ratings of {a.gold_overall.n_items} gold reference items)"
        print(line)
        if a.metrics is not None:
            print(f"metric scores against the ratings: {', '.join(a.metrics.n_points) or 'none on a rated item'} "
                  f"({a.metrics.n_resamples} bootstrap resamples)")
        for d in (a.attention or {}).get("dropped", []):
            print(f"dropped annotator {d['annotator']}: {d['reason']}")
        print(f"wrote {len(result.files)} files to {request.out}: {', '.join(p.name for p in result.files)}")
        if result.png_note:
            print(f"note: {result.png_note}")
        return 0


REPORT = RatingReport()
