"""`nle-report`: the study's human-evaluation results as report.html, agreement.json and CSV files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.defaults import (
    BOOTSTRAP_DEFAULT,
    DEFAULT_COMPARE,
    POWER_ALPHA_DEFAULT,
    POWER_SIMS_DEFAULT,
    POWER_SIZES_DEFAULT,
)
from annotate.core.argv import take_option_values

if TYPE_CHECKING:
    from analysis.power import PowerSettings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nle-report", description="Write the human-evaluation report of a study.")
    p.add_argument("--db", required=True, help="the annotation database (SQLite file)")
    p.add_argument("--out", required=True, help="folder for report.html, agreement.json and the CSV files")
    p.add_argument("--study", default=None, help="study name (default: the only study)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                   help="two configurations of the study to compare side by side, the two words after --compare "
                        "even when one begins with '-' (an unknown one is an error; "
                        f"default: {' '.join(DEFAULT_COMPARE)} when the study has them)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=BOOTSTRAP_DEFAULT,
                   help=f"bootstrap resamples (default {BOOTSTRAP_DEFAULT})")
    p.add_argument("--min-attention", type=float, default=None, metavar="RATE",
                   help="drop annotators whose attention-check pass rate is below RATE (0-1) from every figure; "
                        "report.html and agreement.json say who and why")
    p.add_argument("--metric-resamples", type=int, default=None, metavar="N",
                   help="bootstrap resamples of the metric-human correlations (default: --n-boot's; 0: no "
                        "intervals; the cost grows as N x items x log items)")
    # Opt-in: the static exporter starts a headless Chromium, slow next to the rest of the report
    # (benchmarks/report_scale.py).
    p.add_argument("--png", action="store_true", help="also export the figures as PNG (needs kaleido and Chromium)")
    power = p.add_argument_group("power from a pilot (docs/analysis.md)")
    power.add_argument("--power", action="store_true",
                       help="estimate by simulation how many samples the --compare pair needs (per dataset, overall)")
    power.add_argument("--power-sims", type=int, default=None, metavar="N",
                       help=f"simulated studies per sample size (default {POWER_SIMS_DEFAULT})")
    power.add_argument("--power-alpha", type=float, default=None, metavar="ALPHA",
                       help=f"level of the test (default {POWER_ALPHA_DEFAULT})")
    power.add_argument("--power-effect", type=float, default=None, metavar="POINTS",
                       help="simulate this difference a − b in points of the 0-100 scale instead of the pilot's")
    power.add_argument("--power-sizes", type=int, nargs="+", default=None, metavar="N",
                       help="samples per configuration to try (default "
                            f"{' '.join(map(str, POWER_SIZES_DEFAULT))})")
    power.add_argument("--power-raters", type=int, nargs="+", default=None, metavar="R",
                       help="ratings per sample to simulate (default: each sample's own, as in the pilot)")
    return p


def power_settings(args: argparse.Namespace) -> PowerSettings | None:
    """The PowerSettings that --power and its options ask for (ValueError when they are wrong), or None."""
    given = {k: v for k, v in (("sims", args.power_sims), ("alpha", args.power_alpha), ("effect", args.power_effect),
                               ("sizes", args.power_sizes), ("raters", args.power_raters)) if v is not None}
    if not args.power:
        if given:
            raise ValueError(f"--power-{next(iter(given))} needs --power")
        return None
    from analysis.power import PowerSettings

    return PowerSettings(n_sim=given.get("sims", POWER_SIMS_DEFAULT), alpha=given.get("alpha", POWER_ALPHA_DEFAULT),
                         effect_points=given.get("effect"), sizes=tuple(given.get("sizes", POWER_SIZES_DEFAULT)),
                         raters=tuple(given.get("raters", (None,))), seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    # The two words after --compare are the names, even one that begins with "-" (argparse alone refuses it).
    rest, compare = take_option_values(sys.argv[1:] if argv is None else argv, "--compare", 2)
    args = build_parser().parse_args(rest)
    if compare is not None:
        args.compare = compare
    db = Path(args.db)
    if not db.is_file():
        print(f"error: {db}: no such database file", file=sys.stderr)
        return 2
    from analysis.kinds import REPORTS
    from analysis.kinds.base import ReportRequest
    from analysis.png import PngExporter
    from annotate.core.store import Store

    try:
        power = power_settings(args)
        if args.metric_resamples is not None and args.metric_resamples < 0:
            raise ValueError(f"--metric-resamples must be 0 or more, got {args.metric_resamples}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = Store(db)
    request = ReportRequest(args.out, seed=args.seed, n_boot=args.n_boot,
                            compare=tuple(args.compare) if args.compare else None,  # type: ignore[arg-type]
                            min_attention=args.min_attention, png=args.png, power=power, exporter=PngExporter(),
                            metric_resamples=args.metric_resamples)
    try:
        s = store.resolve_study(args.study)
        return REPORTS[store.study_kind(s["id"]).name].write(store, s["name"], request)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        request.exporter.close()
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
