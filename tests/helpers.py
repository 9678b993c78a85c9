"""Helpers shared by the test packages: a valid NLE line, database dumps, file hashes and queue helpers.

Imported as `tests.helpers` (never from a conftest, so any subset of test files collects).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
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


_ESCAPED = re.compile(r"(`+)( ?)(.+?)\2\1(?!`)|\\(.)")


def unescape(markdown: str) -> str:
    """The text a reader sees of render.md_escape's output: backslash escapes and inline code spans undone."""
    return _ESCAPED.sub(lambda m: m.group(3) if m.group(1) else m.group(4), markdown)


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


def overlap_all(store: Store, study: str | None = None) -> Store:
    """Give the study k = all (the paper's set-up): every annotator holds every item at once, in their own random
    order, so queue positions exist before anyone asks for them. For tests of exactly that; a new study has
    k = 2, whose queues grow one item at a time."""
    store.configure_study(study, overlap="all")
    return store


def next_item(store: Store, annotator_id: int) -> dict[str, Any]:
    """The item the annotator is shown next, as the app asks for it (in a k-of-N study this reserves it)."""
    position = store.next_unanswered(annotator_id)
    assert position is not None, f"annotator {annotator_id} has nothing left to rate"
    return store.annotator_item(annotator_id, position)


def walk_queue(store: Store, annotator_id: int) -> Iterator[int]:
    """The annotator's queue positions in the order the app shows them, until they are done (k = all or k-of-N
    alike). Answer each position before taking the next, or the walk comes back to it."""
    position = store.next_unanswered(annotator_id)
    while position is not None:
        yield position
        position = store.next_unanswered(annotator_id, after=position)
