"""Benchmark: what `nle-report --power` adds to `nle-report` on 100,000 ratings (50,000 items × 2 annotators),
with the default number of simulations.

Usage: python benchmarks/power_scale.py [--items 50000] [--repeats 3] [--db PATH] [--effect POINTS] [--smoke]

Builds the study as benchmarks/report_scale.py does (4 datasets × 5 configurations sharing sample ids, so the
full_ft vs att_q+layer_norm comparison is paired: Wilcoxon, 2,500 pairs per dataset), then runs `nle-report` with
and without `--power`, taking turns, and prints the wall and CPU time each run took and what --power adds (the
medians' difference). Target: < 10 s added on the 2-core machine. --effect passes --power-effect (B's ratings
moved along the answers, which costs more than the pilot's own difference). --smoke: 2,000 items and 50 simulations, to
check that the script runs (no target).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report_scale import populate

TARGET_S = 10.0


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(db: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `nle-report` in a subprocess."""
    cmd = [sys.executable, "-m", "analysis.cli", "--db", str(db), "--out", str(out), "--seed", "0", *extra]
    cpu0, t0 = cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, cpu_children() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"nle-report failed:\n{proc.stdout}\n{proc.stderr}")
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=None, help="items, each rated twice (default 50000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, taking turns (default 3)")
    parser.add_argument("--db", type=Path, default=None, help="reuse/create this database (default: a temp file)")
    parser.add_argument("--effect", type=float, default=None, help="also pass --power-effect POINTS")
    parser.add_argument("--smoke", action="store_true", help="smallest size: 2,000 items, 50 simulations, 1 run")
    args = parser.parse_args()
    items = args.items or (2_000 if args.smoke else 50_000)
    repeats = 1 if args.smoke else args.repeats
    power = ["--power", *(["--power-sims", "50"] if args.smoke else []),
             *([] if args.effect is None else ["--power-effect", str(args.effect)])]
    tmp = Path(tempfile.mkdtemp(prefix="nle-power-bench-"))
    try:
        db = args.db or tmp / "bench.db"
        if not db.exists():
            t0 = time.perf_counter()
            populate(db, items)
            print(f"setup: {items:,} items, {2 * items:,} ratings in {time.perf_counter() - t0:.1f} s ({db})")
        loads = [os.getloadavg()[0]]
        plain, with_power = [], []
        for k in range(repeats):
            plain.append(run(db, tmp / f"plain{k}", []))
            with_power.append(run(db, tmp / f"power{k}", power))
            loads.append(os.getloadavg()[0])
        section = json.loads((tmp / "power0" / "agreement.json").read_text())["power"]
        overall = next(c for c in section["curves"] if c["dataset"] == "overall")
        print(f"power ({' '.join(power)}): {len(section['curves'])} curves × {len(section['sizes'])} sizes × {section['n_sim']} "
              f"simulations; overall {overall['test']} on {overall['n_pilot']['a']:,} pairs, n for 80 %: "
              f"{overall['n_for_80']}")
        for name, runs in (("nle-report", plain), ("nle-report --power", with_power)):
            print(f"{name}: wall {', '.join(f'{w:.2f}' for w, _ in runs)} s; "
                  f"CPU {', '.join(f'{c:.2f}' for _, c in runs)} s")
        added_wall = statistics.median(w for w, _ in with_power) - statistics.median(w for w, _ in plain)
        added_cpu = statistics.median(c for _, c in with_power) - statistics.median(c for _, c in plain)
        verdict = "smoke, no target" if args.smoke else ("OK" if added_wall < TARGET_S else "MISSED")
        print(f"--power adds (medians): wall {added_wall:.2f} s (target < {TARGET_S} s), CPU {added_cpu:.2f} s; "
              f"load average {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores -> {verdict}")
        if max(loads) > 1.0:
            print("note: other processes were using the CPU; wall times (and, less so, CPU times) are inflated")
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
