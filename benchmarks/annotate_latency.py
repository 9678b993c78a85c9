"""Latency of the annotator's loop on a large study: store operations and full page reruns.

    python benchmarks/annotate_latency.py [--items 100000] [--ops 2000] [--reruns 200]
    python benchmarks/annotate_latency.py --smoke     # smallest size (500 items, 50 ops, 20 reruns, 5 submits): checks the script

Builds a temporary database with `--items` items and two annotators (each with every item in their queue),
then prints p50/p95 in milliseconds of
- "fetch next item": Store.next_unanswered + Store.annotator_item (what the page does to show an item),
- "save a rating": Store.submit (one committed transaction, WAL),
- "page rerun": a full rerun of the annotate page through Streamlit's AppTest, signed-in annotator,
- "answer + submit rerun": pick an answer and a tag in the item's form and press Submit (one rerun, which saves).
and, as a yardstick for how busy the machine is, a minimal page of one radio and six checkboxes (~5 ms idle).
Targets on a 2-core machine: store operations p95 < 1 ms, page rerun p95 < 50 ms. The AppTest rows also show
the process's CPU time per rerun (all threads), which other jobs on the machine do not inflate.
Run it from the repository root: AppTest reads .streamlit/config.toml from the working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotate.core import limits  # noqa: E402
from annotate.core.store import Store  # noqa: E402

DATASETS = ["esnli", "ecqa", "sbic", "comve"]
INPUTS = {
    "esnli": {"premise": "A man in a red shirt is playing a guitar on a stage.", "hypothesis": "A man performs."},
    "ecqa": {"question": "Where would you put a plate after washing it?",
             "choices": ["cupboard", "table", "restaurant", "dishwasher", "flea market"]},
    "sbic": {"post": "Can anyone recommend a good recipe for banana bread?"},
    "comve": {"sent0": "He put the elephant in the fridge.", "sent1": "He put the milk in the fridge."},
}


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return statistics.median(ms), q[94]


def timed(fn: Callable[[], object], n: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of `n` calls; with `cpu`, also appends this process's CPU seconds per call."""
    out = []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(time.process_time() - c)
    return out


def build(db: Path, n_items: int) -> dict[str, int]:
    """A study of `n_items` NLEs (two configurations per sample) and annotators a and b; returns their ids."""
    nles = db.parent / "nles.jsonl"
    with nles.open("w") as f:
        for i in range(n_items):
            ds = DATASETS[(i // 2) % 4]
            f.write(json.dumps({
                "dataset": ds, "sample_id": f"{ds}-{i // 2}", "config": ("full_ft", "att_q+layer_norm")[i % 2],
                "input": INPUTS[ds], "predicted_label": "entailment",
                "explanation": f"because explanation number {i} says so.",
            }) + "\n")
    with Store(db) as store:
        t = time.perf_counter()
        store.import_nles(nles, "bench")
        for name in ("a", "b"):
            store.add_annotator(name, "bench", code=f"code-{name}")
        print(f"built {n_items:,} items, 2 annotators in {time.perf_counter() - t:.1f} s")
        return {a["name"]: a["id"] for a in store.annotators("bench")}


def bench_store(db: Path, aid: int, n_ops: int) -> dict[str, tuple[float, float]]:
    with Store(db) as store:
        fetch, save = [], []
        pos = -1
        for i in range(n_ops):
            t = time.perf_counter()
            pos = store.next_unanswered(aid, after=pos)
            item = store.annotator_item(aid, pos)
            fetch.append(time.perf_counter() - t)
            t = time.perf_counter()
            store.submit(aid, item["item_id"], "weak_no" if i % 2 else "yes",
                         ["hallucination"] if i % 2 else [], "", 3.0)
            save.append(time.perf_counter() - t)
        return {"fetch next item (store)": percentiles(fetch), "save a rating (store)": percentiles(save)}


def bench_page(db: Path, n_reruns: int, n_submits: int | None = None,
               ) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Wall-clock and CPU (p50, p95) of AppTest reruns; CPU time does not grow when other jobs share the cores."""
    os.environ["NLE_DB"] = str(db)
    os.environ.pop("NLE_DEMO", None)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.text_input(key="sign_in_name").input("b")
    at.text_input(key="sign_in_code").input("code-b")
    at.button(key="sign_in").click().run()
    assert not at.exception and at.get("progress"), "sign-in failed"
    for _ in range(5):  # warm up imports and caches
        at.run()
    rerun_cpu: list[float] = []
    reruns = timed(at.run, n_reruns, rerun_cpu)

    submits, submit_cpu = [], []
    for i in range(n_submits or max(20, n_reruns // 4)):
        t, c = time.perf_counter(), time.process_time()
        at.radio[0].set_value("yes" if i % 2 else "weak_no")  # in the item's form: no run until Submit
        if i % 2 == 0:
            next(c for c in at.checkbox if c.label == "hallucination").check()
        next(b for b in at.button if b.label == "Submit").click().run()
        submits.append(time.perf_counter() - t)
        submit_cpu.append(time.process_time() - c)
        assert not at.error, [e.value for e in at.error]
        time.sleep(limits.SUBMIT_WINDOW_S / limits.SUBMIT_BURST)  # untimed: a person's pace, under the flood limit
    # The yardstick, measured now on this machine: tells how loaded the CPUs are during the run.
    minimal = AppTest.from_string(
        "import streamlit as st\nst.radio('q', ['a', 'b', 'c', 'd'], key='r')\n"
        "for i in range(6):\n    st.checkbox(f't{i}', key=f'c{i}')\n", default_timeout=60).run()
    for _ in range(5):
        minimal.run()
    baseline_cpu: list[float] = []
    baseline = timed(minimal.run, n_reruns, baseline_cpu)
    names = ("page rerun (AppTest)", "answer + submit, 1 rerun (AppTest)", "yardstick: radio + 6 checkboxes")
    wall = dict(zip(names, map(percentiles, (reruns, submits, baseline)), strict=True))
    cpu = dict(zip(names, map(percentiles, (rerun_cpu, submit_cpu, baseline_cpu)), strict=True))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--reruns", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="smallest size: 500 items, 50 ops, 20 reruns, 5 submits")
    args = parser.parse_args()
    if args.smoke:
        args.items, args.ops, args.reruns = 500, 50, 20
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        ids = build(db, args.items)
        results = bench_store(db, ids["a"], args.ops)
        wall, cpu = bench_page(db, args.reruns, 5 if args.smoke else None)
        results.update(wall)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{args.items:,} items, 2 annotators; {os.cpu_count()} CPUs visible, load average {load:.1f}")
    print(f"{'operation':40s} {'p50 ms':>8s} {'p95 ms':>8s} {'CPU p50':>8s} {'CPU p95':>8s}")
    for name, (p50, p95) in results.items():
        extra = "".join(f" {v:8.2f}" for v in cpu[name]) if name in cpu else ""
        print(f"{name:40s} {p50:8.2f} {p95:8.2f}{extra}")


if __name__ == "__main__":
    main()
