"""Benchmark: `nle-report` end to end on 500,000 items × 2 annotators (1,000,000 ratings).

Usage: python benchmarks/report_scale.py [--items 500000] [--db PATH] [--keep] [--png]
       [--metric] [--metric-resamples N]
       python benchmarks/report_scale.py --smoke     # smallest size (1,000 items): checks the script

Builds the store with plain executemany SQL (setup only, not timed), then times `nle-report` in a subprocess
and reads its peak resident memory from getrusage(RUSAGE_CHILDREN). Targets: < 8 s and < 1.5 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from annotate.core.scale import DEFAULT_TAGS, RATINGS, score
from annotate.core.store import Store, now_iso

DATASETS = ("esnli", "ecqa", "sbic", "comve")
CONFIGS = ("full_ft", "att_q+layer_norm", "layer_norm", "bias", "att_q")
TARGET_S, TARGET_GB = 8.0, 1.5


def populate(path: Path, n_items: int, seed: int = 0, metric: bool = False) -> None:
    """A study of n_items items (datasets × configs share sample ids) rated by alice and bob; with `metric`, every
    item has a `bertscore_f1` score that tracks alice's answer."""
    rng = np.random.default_rng(seed)
    store = Store(path)
    store.create_study("bench")
    for name in ("alice", "bob"):
        store.add_annotator(name, "bench", code=f"{name}-code")
    study_id = store.get_study("bench")["id"]
    ids = dict(store.conn.execute("SELECT name, id FROM annotators"))
    ts = now_iso()
    cells = [(d, c) for d in DATASETS for c in CONFIGS]
    per_cell = n_items // len(cells)
    conn = store.conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO items (id, study_id, dataset, sample_id, config, input, predicted_label, explanation, metadata,"
        " created_at) VALUES (?, ?, ?, ?, ?, '{}', 'entailment', 'because of reasons.', '{}', ?)",
        ((k * per_cell + s + 1, study_id, d, f"{d}-{s}", c, ts)
         for k, (d, c) in enumerate(cells) for s in range(per_cell)))
    n = per_cell * len(cells)
    # Bob agrees with Alice 60 % of the time, otherwise answers at random: κ around 0.5.
    a = rng.integers(0, 4, n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, 4, n))
    tag_sets = [";".join(DEFAULT_TAGS[i:i + 1 + (i % 2)]) for i in range(0, 10)]
    tag_pick = rng.integers(0, len(tag_sets), (2, n))

    def rows(who: str, codes: np.ndarray, picks: np.ndarray):
        aid = ids[who]
        for i in range(n):
            r = RATINGS[codes[i]]
            tags = tag_sets[picks[i]] if codes[i] >= 2 else ""
            yield (i + 1, aid, r, score(r), tags, "", 12.5, ts, "1", 1, "import")

    for who, codes, picks in (("alice", a, tag_pick[0]), ("bob", b, tag_pick[1])):
        conn.executemany(
            "INSERT INTO ratings (item_id, annotator_id, rating, score, tags, comment, seconds, submitted_at,"
            " guidelines_version, revision, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows(who, codes, picks))
    if metric:
        noise = rng.normal(0, 0.05, n)
        conn.executemany("INSERT INTO item_metrics (item_id, name, value) VALUES (?, 'bertscore_f1', ?)",
                         ((i + 1, float(0.8 + 0.05 * (3 - a[i]) + noise[i])) for i in range(n)))
    conn.execute("COMMIT")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse/create this database (default: a temp file)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (database and report)")
    parser.add_argument("--png", action="store_true", help="pass --png to nle-report (PNG figures via kaleido)")
    parser.add_argument("--metric", action="store_true", help="give every item one automatic metric score")
    parser.add_argument("--metric-resamples", type=int, default=None, help="pass --metric-resamples N to nle-report")
    parser.add_argument("--smoke", action="store_true", help="smallest size: 1,000 items")
    args = parser.parse_args()
    if args.smoke:
        args.items = 1000
    tmp = Path(tempfile.mkdtemp(prefix="nle-report-bench-"))
    db = args.db or tmp / "bench.db"
    if not db.exists():
        t0 = time.perf_counter()
        populate(db, args.items, metric=args.metric)
        print(f"setup: {args.items:,} items, {2 * args.items:,} ratings in {time.perf_counter() - t0:.1f} s ({db})")
    out = tmp / "report"
    cmd = [sys.executable, "-m", "analysis.cli", "--db", str(db), "--out", str(out), "--seed", "0"]
    if args.png:
        cmd.append("--png")
    if args.metric_resamples is not None:
        cmd += ["--metric-resamples", str(args.metric_resamples)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_gb = usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is KiB on Linux; the largest child (nle-report itself)
    cpu_s = usage.ru_utime + usage.ru_stime  # all children: nle-report and, with PNGs, the headless Chromium
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        if not args.keep:
            shutil.rmtree(tmp)
        return 1
    print(proc.stdout.strip())
    summary = json.loads((out / "agreement.json").read_text())
    print(f"overall: n={summary['overall']['n']:,} kappa={summary['overall']['cohen_kappa']:.3f}")
    print(f"nle-report{' --png' if args.png else ''}: wall {elapsed:.2f} s (target < {TARGET_S} s), "
          f"CPU {cpu_s:.2f} s, peak RSS {peak_gb:.2f} GB (target < {TARGET_GB} GB), load average before the run "
          f"{load:.1f} on {os.cpu_count()} cores -> {'OK' if elapsed < TARGET_S and peak_gb < TARGET_GB else 'MISSED'}")
    if load > 1.0:
        print("note: other processes were using the CPU; the wall time (and, less so, the CPU time) is inflated")
    if not args.keep:  # the temp folder holds the report (and the database unless --db named one elsewhere)
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
