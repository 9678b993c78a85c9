"""A separate OS process that submits ratings through the Store, as the app does for one annotator.

Run as a script (never imported by the app): `python writer.py DB ANNOTATOR [--go FILE] [--stop FILE]
[--count N] [--revise-every K]`. It signs in with the annotator's id, then walks its queue with
`next_unanswered` / `annotator_item` / `submit`, and prints one acknowledgement line per submission right after
`submit` returned (i.e. after COMMIT): `ack<TAB>ITEM_ID<TAB>REVISION<TAB>RATING<TAB>TAGS`. Errors go to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from annotate.core.scale import RATINGS
from annotate.core.store import Store

# Ratings cycle through the scale; tags follow the default rules (yes: none; weak no / no: at least one).
TAGS_FOR = {"yes": [], "weak_yes": [], "weak_no": ["incomplete explanation"], "no": ["nonsensical", "inaccurate"]}


def answer_for(item_id: int, revision: int) -> tuple[str, list[str]]:
    """The deterministic answer a writer gives an item (so the test can recompute what should be stored)."""
    rating = RATINGS[(item_id + revision) % len(RATINGS)]
    return rating, TAGS_FOR[rating]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("annotator")
    p.add_argument("--go", help="wait until this file exists before the first submission (a start barrier)")
    p.add_argument("--ready", help="create this file once the store is open and the queue is known")
    p.add_argument("--stop", help="run (revising once the queue is done) until this file exists")
    p.add_argument("--count", type=int, default=None, help="stop after this many submissions")
    p.add_argument("--pause-ms", type=float, default=0, help="pause between submissions (an annotator's pace)")
    p.add_argument("--revise-every", type=int, default=0, help="every K-th submission revises an earlier answer")
    args = p.parse_args(argv)
    try:
        store = Store(args.db)
        row = store.conn.execute("SELECT id FROM annotators WHERE name = ?", (args.annotator,)).fetchone()
        if row is None:
            raise SystemExit(f"unknown annotator {args.annotator!r}")
        aid = row[0]
        if args.ready:
            Path(args.ready).touch()
        if args.go:
            while not Path(args.go).exists():
                time.sleep(0.001)
        done: list[int] = []
        n = 0
        position = -1
        out = sys.stdout
        while args.count is None or n < args.count:
            if args.stop and Path(args.stop).exists():
                break
            if args.revise_every and done and n % args.revise_every == args.revise_every - 1:
                item_id = done[n % len(done)]
            else:
                nxt = store.next_unanswered(aid, position)
                if nxt is None and not (args.stop and done):
                    break
                if nxt is None:  # queue finished but told to run until stopped: keep revising
                    item_id = done[n % len(done)]
                else:
                    position = nxt
                    item_id = store.annotator_item(aid, position)["item_id"]
                    done.append(item_id)
            revision = len(store.history(aid, item_id)) + 1
            rating, tags = answer_for(item_id, revision)
            saved = store.submit(aid, item_id, rating, tags, comment=f"c{item_id}.{revision}", seconds=1.5)
            out.write(f"ack\t{item_id}\t{saved['revision']}\t{rating}\t{';'.join(tags)}\n")
            out.flush()
            n += 1
            if args.pause_ms:
                time.sleep(args.pause_ms / 1000)
        store.close()
        out.write(f"done {n}\n")
        out.flush()
        return 0
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
