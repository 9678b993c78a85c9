"""The bundled demo study: illustrative items and two demo annotators, loaded into a new database.

The items ship inside the package (`annotate/core/demo_study/nles.jsonl`), so an installed wheel has them.
"""

from __future__ import annotations

from importlib.resources import files

from annotate.core.store import Store

DEMO_FILE = files("annotate.core") / "demo_study" / "nles.jsonl"
DEMO_STUDY = "demo"
DEMO_ANNOTATORS = {"alice": "demo-alice", "bob": "demo-bob"}


def load_demo(store: Store) -> bool:
    """Load the demo study unless the database already has one; True when it was loaded."""
    if store.studies():
        return False
    store.import_nles("demo_study/nles.jsonl", study=DEMO_STUDY, with_gold=True, data=DEMO_FILE.read_bytes())
    for name, code in DEMO_ANNOTATORS.items():
        store.add_annotator(name, DEMO_STUDY, code=code)
    return True
