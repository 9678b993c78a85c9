"""Helpers for the analysis tests: a small rated study written as a ratings CSV and imported into a store.

(Not a conftest.py: the test modules elsewhere import `nle` from the top-level conftest by name.)
"""

from __future__ import annotations

import csv
from pathlib import Path

from annotate.core.store import Store
from tests.helpers import nle

# (dataset, sample_id, config) -> {annotator: (rating, tags)}: 2 datasets × 2 configs × 3 samples,
# with full_ft and att_q+layer_norm rated on the same samples except one each (see test_report).
RATINGS: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {
    ("esnli", "s1", "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")},
    ("esnli", "s2", "full_ft"): {"alice": ("weak_yes", ""), "bob": ("weak_no", "inaccurate")},
    ("esnli", "s3", "full_ft"): {"alice": ("no", "nonsensical"), "bob": ("no", "nonsensical;one word")},
    ("esnli", "s1", "att_q+layer_norm"): {"alice": ("weak_no", "hallucination"), "bob": ("no", "hallucination")},
    ("esnli", "s2", "att_q+layer_norm"): {"alice": ("weak_yes", ""), "bob": ("weak_yes", "")},
    ("esnli", "s4", "att_q+layer_norm"): {"alice": ("yes", ""), "bob": ("weak_yes", "")},
    ("ecqa", "q1", "full_ft"): {"alice": ("yes", ""), "bob": ("weak_yes", "")},
    ("ecqa", "q2", "full_ft"): {"alice": ("weak_no", "inaccurate"), "bob": ("weak_no", "inaccurate")},
    ("ecqa", "q3", "full_ft"): {"alice": ("yes", ""), "bob": ("yes", "")},
    ("ecqa", "q1", "att_q+layer_norm"): {"alice": ("no", "empty"), "bob": ("no", "empty")},
    ("ecqa", "q2", "att_q+layer_norm"): {"alice": ("weak_no", "one word"), "bob": ("yes", "")},
    ("ecqa", "q3", "att_q+layer_norm"): {"alice": ("weak_yes", ""), "bob": ("weak_yes", "")},
}


def write_ratings_csv(path: Path, ratings: dict = RATINGS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "sample_id", "config", "annotator", "rating", "tags"])
        for (d, s, c), by in ratings.items():
            for who, (r, t) in by.items():
                w.writerow([d, s, c, who, r, t])
    return path


def fill_store(store: Store, write_jsonl, ratings_csv: Path, study: str = "pilot") -> Store:
    """The items of RATINGS imported as NLEs into `study`, then the ratings CSV imported."""
    lines = [nle(d, s, c, explanation=f"expl {d}/{s} by {c}") for d, s, c in RATINGS]
    store.import_nles(write_jsonl(lines), study)
    store.import_ratings(ratings_csv, study)
    return store
