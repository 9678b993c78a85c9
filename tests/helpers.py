"""Helpers shared by the test packages: a valid NLE line, database dumps and file hashes.

Imported as `tests.helpers` (never from a conftest, so any subset of test files collects).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from annotate.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
COMVE_DIR = ROOT.parent / "shared" / "data" / "comve"


def nle(dataset: str = "esnli", sample_id: str = "1", config: str = "full_ft", **over: Any) -> dict[str, Any]:
    """A valid NLE line as a dict; keyword arguments override fields."""
    inputs = {
        "esnli": {"premise": "A man plays a guitar.", "hypothesis": "A man makes music."},
        "ecqa": {"question": "Where are plates kept?", "choices": ["cupboard", "sea", "car", "sky", "shoe"]},
        "sbic": {"post": "Lovely weather today."},
        "comve": {"sent0": "He drinks milk.", "sent1": "He drinks apple."},
    }
    line = {
        "dataset": dataset, "sample_id": sample_id, "config": config,
        "input": inputs.get(dataset, {"text": "some input"}), "predicted_label": "entailment",
        "explanation": f"explanation of {dataset}/{sample_id} by {config}",
        "gold_label": "entailment", "gold_explanations": [f"gold explanation of {sample_id}"],
    }
    line.update(over)
    return line


def dump(path: str | Path, *, without: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Schema and every row of every table but `without`, read through a separate connection (what another client
    sees)."""
    conn = sqlite3.connect(str(path))
    try:
        out = {"sqlite_master": conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            if table not in without:
                out[table] = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
        return out
    finally:
        conn.close()


def file_hash(store: Store) -> str:
    """Hash of the main database file once the WAL is folded into it and truncated."""
    busy, _, _ = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    return hashlib.sha256(Path(store.path).read_bytes()).hexdigest()
