"""The bundled demo studies, loaded into a new database: "demo" (illustrative items and two demo annotators) and
"feb-example" (a sample of FEB's published crowd ratings, so that the Analysis page has real data from the start).

Both ship inside the package (`annotate/core/demo_study/`, `annotate/core/feb_example/`), so an installed wheel has
them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from annotate.core.feb_mturk import import_feb_mturk
from annotate.core.store import Store

DEMO_FILE = files("annotate.core") / "demo_study" / "nles.jsonl"
DEMO_STUDY = "demo"
DEMO_ANNOTATORS = {"alice": "demo-alice", "bob": "demo-bob"}
FEB_EXAMPLE_DIR = files("annotate.core") / "feb_example"
FEB_EXAMPLE_STUDY = "feb-example"


def load_demo(store: Store) -> bool:
    """Load the demo studies unless the database already has a study; True when they were loaded."""
    if store.studies():
        return False
    store.import_nles("demo_study/nles.jsonl", study=DEMO_STUDY, with_gold=True, data=DEMO_FILE.read_bytes())
    for name, code in DEMO_ANNOTATORS.items():
        store.add_annotator(name, DEMO_STUDY, code=code)
    # A package installed as files (a wheel or a checkout), so the folder is a real directory.
    import_feb_mturk(store, Path(str(FEB_EXAMPLE_DIR)), FEB_EXAMPLE_STUDY)
    return True
