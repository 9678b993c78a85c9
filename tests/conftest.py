"""Shared fixtures: stores on a temporary file, NLE files written on the fly, the demo study."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from annotate.core import assignment
from annotate.core.store import Store
from annotate.core.store import pairwise as pairwise_store
from tests.helpers import COMVE_DIR


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a `slow` test first, and in each file its slow tests first: under pytest-xdist the longest tests
    start at once and overlap the rest instead of ending the run alone. Each file stays in one piece (its
    module-scoped fixtures are made once); otherwise the order is pytest's."""
    first = {}
    for index, item in enumerate(items):
        first.setdefault(item.path, index)
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in slow_files, first[item.path], not item.get_closest_marker("slow")))


@pytest.fixture(autouse=True)
def seeded_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attention-check positions and pairwise sides drawn from a fixed seed, so that every test sees the same queues
    and sides whatever ran before it (the app draws them from the system's randomness)."""
    monkeypatch.setattr(assignment, "_SLOT_RNG", random.Random(0))
    monkeypatch.setattr(pairwise_store, "_SIDES", random.Random(0))


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """Write dicts (or raw strings) as JSONL lines to a temp file and return its path."""
    def write(lines: list[Any], name: str = "nles.jsonl") -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8") as f:
            for line in lines:
                f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        return path
    return write


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "annotations.db"


@pytest.fixture
def store(db_path: Path):
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def demo_store(store: Store) -> Store:
    from annotate.core.demo import load_demo

    load_demo(store)
    return store


@pytest.fixture
def comve_dir() -> Path:
    if not COMVE_DIR.is_dir():
        pytest.skip(f"real ComVE files not found at {COMVE_DIR}")
    return COMVE_DIR
