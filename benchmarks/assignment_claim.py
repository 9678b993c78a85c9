"""Cost of k-of-N assignment on a large study: one annotator step (show the next item, submit) and the queue count.

    python benchmarks/assignment_claim.py [--items 10000] [--annotators 5] [--steps 200] [--k 2]
    python benchmarks/assignment_claim.py --smoke     # smallest size (200 items, 20 steps): checks the script

Builds a temporary database with `--items` items in a k-of-N study and `--annotators` annotators, then lets them
take turns: `next_unanswered` (which reserves the next item inside BEGIN IMMEDIATE), `annotator_item`, `submit`.
Prints p50/p95 milliseconds per step and of `queue_length` (the progress bar's total, cached 60 s by the page).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotate.core.store import Store  # noqa: E402
from tests.helpers import nle  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--annotators", type=int, default=5)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="smallest size: 200 items, 20 steps")
    args = p.parse_args()
    if args.smoke:
        args.items, args.steps = 200, 20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        path.write_text("".join(json.dumps(nle("esnli", f"s{i}")) + "\n" for i in range(args.items)))
        with Store(Path(tmp) / "bench.db") as store:
            store.import_nles(path, "bench")
            store.configure_study("bench", overlap=args.k)
            for i in range(args.annotators):
                store.add_annotator(f"a{i}", "bench", code=f"code-{i}")
            ids = [a["id"] for a in store.annotators("bench")]
            pos = {a: store.next_unanswered(a) for a in ids}
            steps, counts = [], []
            for n in range(args.steps):
                a = ids[n % len(ids)]
                t0 = time.perf_counter()
                item = store.annotator_item(a, pos[a])
                store.submit(a, item["item_id"], "yes")
                pos[a] = store.next_unanswered(a, after=pos[a])
                steps.append(1000 * (time.perf_counter() - t0))
                t0 = time.perf_counter()
                store.queue_length(a)
                counts.append(1000 * (time.perf_counter() - t0))
    for name, xs in (("step (submit + reserve next)", steps), ("queue_length", counts)):
        q = statistics.quantiles(xs, n=20)
        print(f"{args.items} items, k={args.k}, {args.annotators} annotators: {name}: "
              f"p50 {statistics.median(xs):.2f} ms, p95 {q[18]:.2f} ms")


if __name__ == "__main__":
    main()
