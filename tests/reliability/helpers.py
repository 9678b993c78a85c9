"""Helpers for the reliability suite: a study of generated items, and writer processes over it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from annotate.core.store import Store

WRITER = Path(__file__).with_name("writer.py")
CODES = {"ann-a": "code-a-1234", "ann-b": "code-b-5678"}


def write_nles(path: Path, n: int) -> Path:
    """A valid NLE JSONL file of n items (one configuration, varied datasets)."""
    datasets = ("esnli", "ecqa", "sbic", "comve")
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({
                "dataset": datasets[i % 4], "sample_id": f"s{i:05d}", "config": "full_ft",
                "input": {"premise": f"premise {i}", "hypothesis": f"hypothesis {i}"},
                "predicted_label": "entailment", "explanation": f"explanation number {i}",
            }) + "\n")
    return path


def make_study(tmp_path: Path, n_items: int, annotators: dict[str, str] = CODES) -> Path:
    """A database with one study of n_items generated items and the given annotators; returns its path."""
    db = tmp_path / "annotations.db"
    with Store(db) as store:
        store.import_nles(write_nles(tmp_path / "nles.jsonl", n_items), study="load")
        for name, code in annotators.items():
            store.add_annotator(name, "load", code=code)
    return db


def start_writer(db: Path, annotator: str, *extra: str) -> subprocess.Popen:
    """Start tests/reliability/writer.py in its own OS process (text pipes, line-buffered)."""
    return subprocess.Popen([sys.executable, str(WRITER), str(db), annotator, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def parse_acks(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """(item_id, revision, rating, tags) of every `ack` line a writer printed."""
    out = []
    for line in lines:
        parts = line.rstrip("\n").split("\t")
        if parts[0] == "ack":
            out.append((int(parts[1]), int(parts[2]), parts[3], parts[4] if len(parts) > 4 else ""))
    return out


def annotator_ids(db: Path) -> dict[str, int]:
    with Store(db) as store:
        return {r["name"]: r["id"] for r in store.annotators()}
