"""Benchmark: the bootstrap of `analysis.metric_correlation.rank_correlation` (Spearman ρ and Kendall τ-b with
their percentile intervals) on synthetic items.

Usage: python benchmarks/metric_correlation_speed.py [--items 10000 100000] [--resamples 1000] [--repeats 5]
       python benchmarks/metric_correlation_speed.py --smoke   # smallest size (1,000 items, 50 resamples, 1 run)

Human means on a 7-level grid (two annotators' averages) against a continuous metric that tracks them, the
shape of a real study; prints per size the median wall and CPU time of one call (with the interval) and of the
point estimates alone, and the load average. Target: 1,000 resamples over 10,000 items well under 2 s on the
2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.metric_correlation import rank_correlation  # noqa: E402

TARGET_S = 2.0


def timed(human: np.ndarray, metric: np.ndarray, n_resamples: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one rank_correlation."""
    wall, cpu = time.perf_counter(), time.process_time()
    rank_correlation(human, metric, n_resamples=n_resamples)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="smallest size: checks the script, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        args.items, args.resamples, args.repeats = [1000], 50, 1
    rng = np.random.default_rng(0)
    print(f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for n in args.items:
        human = rng.integers(0, 7, n) / 6
        metric = 0.8 + 0.1 * human + rng.normal(0, 0.05, n)
        rank_correlation(human, metric, n_resamples=10)  # warm-up
        full = [timed(human, metric, args.resamples) for _ in range(args.repeats)]
        point = [timed(human, metric, 0) for _ in range(args.repeats)]
        wall, cpu = statistics.median(w for w, _ in full), statistics.median(c for _, c in full)
        verdict = "" if n != 10_000 or args.resamples != 1000 else f"  (target < {TARGET_S:.0f} s: " + (
            "met)" if wall < TARGET_S else "NOT met)")
        print(f"{n:>9,} items, {args.resamples} resamples: {wall:.3f} s wall, {cpu:.3f} s CPU (median of "
              f"{args.repeats}); point estimates alone {statistics.median(w for w, _ in point) * 1000:.1f} ms{verdict}")
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
