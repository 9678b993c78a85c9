"""A separate OS process that imports an NLE file through the Store and stops inside the import's transaction.

Run as a script: `python importer.py DB NLES STUDY`. On the first SQL statement after the open transaction has
spilled pages into the WAL file (the file grew since the transaction began), it prints `inside` and blocks on stdin, so the test can SIGKILL it at a point
chosen by what SQLite did, not by timing.
"""

from __future__ import annotations

import os
import sys

from annotate.core.store import Store


def main(db: str, nles: str, study: str) -> int:
    store = Store(db)
    wal = f"{db}-wal"
    at_begin: int | None = None  # the WAL's size when the import's transaction began
    stopped = False

    def on_statement(_sql: str) -> None:
        nonlocal at_begin, stopped
        if stopped or not store.conn.in_transaction:
            return
        size = os.path.getsize(wal) if os.path.exists(wal) else 0
        if at_begin is None:
            at_begin = size
        elif size > at_begin:
            stopped = True
            print("inside", flush=True)
            sys.stdin.readline()  # never answered: the test kills this process here

    store.conn.set_trace_callback(on_statement)
    store.import_nles(nles, study)
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
