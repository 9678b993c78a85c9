"""`nle-annotate`: thin command-line functions over the Store."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import os
import sqlite3
import sys
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlencode

from annotate.core import kinds
from annotate.core.argv import take_option_values
from annotate.core.assignment import parse_overlap
from annotate.core.crowd import DEFAULT_JOINS_PER_ADDRESS, is_worker_name
from annotate.core.errors import InputFileError
from annotate.core.store import Store

MAX_UPLOAD_MB = 25


def _store(args: argparse.Namespace) -> Store:
    return Store(args.db)


def cmd_import(args: argparse.Namespace) -> int:
    overlap = parse_overlap(args.overlap) if args.overlap is not None else None  # checked before any write
    with _store(args) as store:
        study, lines = kinds.for_import(args).import_file(store, args)
        if args.overlap is not None:
            store.configure_study(study, overlap=overlap)
    print("\n".join(lines))
    return 0


def _describe_settings(name: str, s: dict) -> str:
    k = "all (every annotator rates every item)" if s["overlap"] is None else str(s["overlap"])
    return "\n".join([
        f"study {name}", f"  overlap k: {k}", f"  max items per annotator: {s['max_per_annotator'] or 'no cap'}",
        f"  reservation lapses after: {s['lapse_seconds']} s",
        f"  attention checks pass: {s['attention_tolerance'].replace('_', ' ')}",
        f"  completion code: {s['completion_code'] or '(none)'}", f"  redirect URL: {s['redirect_url'] or '(none)'}",
        f"  answers that earn the completion code: at least {s['code_min_answers']}",
        f"  joining by link: {'open' if s['join_open'] else 'closed'}"
        + (f", at most {s['max_joined']} participants" if s["max_joined"] else "")
        + f", {_per_address(s['joins_per_address'])}"])


def _per_address(limit: int | None) -> str:
    return f"at most {limit} new per client address" if limit else "no limit per client address"


def cmd_study_set(args: argparse.Namespace) -> int:
    changes = {k: v for k, v in (("overlap", args.overlap), ("max_per_annotator", args.max_per_annotator),
                                 ("attention_tolerance", args.attention_tolerance),
                                 ("completion_code", args.completion_code), ("redirect_url", args.redirect_url),
                                 ("code_min_answers", args.code_min_answers))
               if v is not None}
    if args.lapse_minutes is not None:
        changes["lapse_seconds"] = round(args.lapse_minutes * 60)
    if args.no_cap:
        changes["max_per_annotator"] = None
    with _store(args) as store:
        name = store.resolve_study(args.name)["name"]
        store.configure_study(name, **changes)
        print(_describe_settings(name, store.study_settings(name)))
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        name = store.resolve_study(args.name)["name"]
        print(_describe_settings(name, store.study_settings(name)))
        p = store.progress(name)
        print(f"  complete sets: {p['complete_sets']} of {p['items']} items; ratings still needed: "
              f"{p['ratings_needed']}")
    return 0


def cmd_study_open(args: argparse.Namespace) -> int:
    with _store(args) as store:
        name = store.resolve_study(args.name)["name"]
        token = store.open_joining(name, max_joined=args.max_joined, joins_per_address=args.joins_per_address)
    link = "/?" + urlencode({"study": name, "join": token, "pid": "WORKER_ID"})
    print(f"joining study {name!r} is open" + (f" for at most {args.max_joined} participants" if args.max_joined
                                               else "") + f" ({_per_address(args.joins_per_address)}; behind a "
          "reverse proxy see docs/deploying.md). The secret link is shown only now (earlier links no longer work):")
    print(f"  {link}")
    print("Prolific: use ...&PROLIFIC_PID={{%PROLIFIC_PID%}}; MTurk: ...&workerId=... (in place of pid).")
    return 0


def cmd_study_close(args: argparse.Namespace) -> int:
    with _store(args) as store:
        name = store.resolve_study(args.name)["name"]
        store.close_joining(name)
    print(f"joining study {name!r} is closed; join links no longer work")
    return 0


def cmd_import_feb_mturk(args: argparse.Namespace) -> int:
    from annotate.core import feb_mturk

    key = None
    if args.pseudonym_key:
        key, created = feb_mturk.load_key(args.pseudonym_key)
        if created:
            print(f"created pseudonym key {args.pseudonym_key}: keep it private, and give it again to re-import")
    with _store(args) as store:
        result = feb_mturk.import_feb_mturk(store, args.dir, args.study, key)
    print(f"imported {args.dir}: {result.summary()}")
    return 0


def cmd_annotators_add(args: argparse.Namespace) -> int:
    with _store(args) as store:
        code = store.add_annotator(args.name, args.study)
    print(f"annotator {args.name!r} added. Access code (shown only now, give it to the annotator): {code}")
    return 0


def cmd_annotators_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        if args.study is not None:
            store.resolve_study(args.study)  # a mistyped study is an error, not "no annotators yet"
        rows = store.annotators(args.study)
        # Out of the total the annotator's page shows: in a k-of-N study that counts the items still open to them.
        totals = {r["id"]: store.queue_length(r["id"]) for r in rows}
    if not rows:
        print("no annotators yet")
    for r in rows:
        sign_in = " (joined by link)" if r["joined"] else "" if r["can_sign_in"] else " (imported, cannot sign in)"
        print(f"{r['name']}\tstudy {r['study']}\t{r['answered']} of {totals[r['id']]} answered{sign_in}")
    return 0


def cmd_annotators_reset(args: argparse.Namespace) -> int:
    with _store(args) as store:
        code = store.reset_code(args.name)
    kind = "resume code" if is_worker_name(args.name) else "access code"  # a crowd worker's continues on a device
    print(f"new {kind} for {args.name!r} (the old one no longer works): {code}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from annotate.core.publish import export_parquet

    with _store(args) as store:
        if args.format == "parquet":
            card = export_parquet(store, args.out, args.study)
            print(f"wrote {card.n_rows} {card.unit} and a dataset card to {args.out}")
            return 0
        kind = store.study_kind(store.resolve_study(args.study)["id"])
        n = store.export(args.out, args.format, args.study, raw=args.raw)
    print(f"wrote {n} {kind.answers_noun} to {args.out}")
    return 0


def cmd_import_ratings(args: argparse.Namespace) -> int:
    path = Path(args.file)
    with _store(args) as store:
        # The file's first bytes tell one kind's answers from another's (a missing file errors below).
        head = path.open("rb").read(65536) if path.is_file() else b""
        lines = kinds.for_answers(args, head).import_answers(store, args)
    print("\n".join(lines))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    # Opening a missing --db would create an empty database and "back it up" with integrity ok.
    if not Path(args.db).is_file():
        raise FileNotFoundError(f"database {args.db} does not exist")
    with _store(args) as store:
        out = store.backup(args.out)
        with Store(out) as copy:
            check = copy.integrity_check()
    print(f"backed up {args.db} to {out} (integrity_check: {check})")
    return 0 if check == "ok" else 1


# What `serve` passes to `streamlit run` before the user's own options (which win); docs/deploying.md explains each.
SERVE_DEFAULTS = (
    # Annotators get a plain page: no Deploy button or developer menu.
    "--client.toolbarMode", "viewer", "--browser.gatherUsageStats", "false",
    # No tracebacks, source lines or file paths in the browser ("full" turns them back on for development).
    "--client.showErrorDetails", "none",
    # A rerun request waits for the running one instead of cancelling it: a client that floods key presses
    # cannot start a rerun per message, and a key's run is never cut short by the Enter that follows it.
    "--runner.fastReruns", "false",
    # Streamlit's default runs gc.collect(2) after every script run. On this app's large heap (pandas, SciPy,
    # Plotly) that holds the GIL for long, right after the run's result reached the browser, so the Enter that
    # followed a key press waited for it, and with several annotators every session did (docs/benchmarks.md).
    # Python's own generational collection still runs.
    "--runner.postScriptGC", "false",
    # The installed app's sources do not change while it serves; the watcher polled them on every run.
    "--server.fileWatcherType", "none",
    # Megabytes; bigger NLE files are imported with `nle-annotate import` (the researcher page says so).
    "--server.maxUploadSize", str(MAX_UPLOAD_MB),
)


# What the app's pages import, loaded before the server starts so that `gc.freeze()` can take them out of
# Python's full collections (see cmd_serve).
APP_MODULES = ("annotate.app.router", "annotate.app.kinds", "annotate.app.admin",
               "analysis.report", "analysis.compare", "analysis.tables", "analysis.data", "plotly.graph_objects")


def _import_and_freeze() -> None:
    """Import the app's modules now and move every object so far to the permanent generation: a full collection
    then skips these long-lived objects instead of walking them all while holding the GIL as annotators wait
    (docs/benchmarks.md)."""
    for name in APP_MODULES:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


def _no_external_ip_lookup() -> None:
    """Streamlit asks checkip.amazonaws.com for the server's public address when it runs headless (to print an
    "External URL", and as one more allowed websocket origin): a request to another host, which `serve` never makes.
    Same-origin websockets, the only kind the app's pages open, are allowed without it."""
    from streamlit import net_util

    net_util.get_external_ip = lambda: None


def cmd_serve(args: argparse.Namespace, extra: list[str]) -> int:
    from streamlit.web import cli as stcli

    app = files("annotate.app") / "main.py"  # a real file inside the package, checkout or wheel
    os.environ["NLE_DB"] = str(Path(args.db).resolve())
    if args.demo:
        os.environ["NLE_DEMO"] = "1"
    defaults = [*SERVE_DEFAULTS]
    sys.argv = ["streamlit", "run", str(app), *defaults, *extra]
    _import_and_freeze()
    _no_external_ip_lookup()
    return stcli.main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nle-annotate", description="Human evaluation of NLEs: data in and out.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", required=True, help="SQLite database file (created when new)")
        p.add_argument("--study", default=None, help="study name (default: the only study)")
        return p

    p = with_db(sub.add_parser("import", help="import an NLE JSONL file"))
    p.add_argument("file")
    p.add_argument("--with-gold", action="store_true",
                   help="also add each sample's first gold explanation as a blind reference item (config 'gold')")
    p.add_argument("--allow-mixed", action="store_true",
                   help="accept NLEs of another model or split_seed than their configuration already holds")
    p.add_argument("--overlap", default=None, metavar="K",
                   help="ratings per item: a number k (k-of-N assignment; a new study gets 2) or 'all' (every "
                        "annotator rates every item, the paper's set-up); an existing study keeps its setting "
                        "unless given")
    for kind in kinds.KINDS.values():
        kind.add_import_options(p)
    p.set_defaults(func=cmd_import)

    study = sub.add_parser("study", help="assignment, attention and crowd settings of a study").add_subparsers(
        dest="action", required=True)
    p = study.add_parser("set", help="change assignment settings (only the options given)")
    p.add_argument("--db", required=True, help="SQLite database file")
    p.add_argument("name", nargs="?", default=None, help="study name (default: the only study)")
    p.add_argument("--overlap", metavar="K", help="ratings per item: a number k or 'all'")
    p.add_argument("--max-per-annotator", type=int, metavar="N", help="cap on regular items per annotator")
    p.add_argument("--no-cap", action="store_true", help="remove the cap on items per annotator")
    p.add_argument("--lapse-minutes", type=float, metavar="M",
                   help="a reserved, unanswered item goes back to the pool after M minutes (default 30)")
    p.add_argument("--attention-tolerance", choices=["exact", "within_one"],
                   help="an attention check passes on exactly the expected answer, or within one step")
    p.add_argument("--completion-code", metavar="CODE", help="code shown when an annotator's work is done ('' = none)")
    p.add_argument("--redirect-url", metavar="URL", help="http(s) link shown with the completion code ('' = none)")
    p.add_argument("--code-min-answers", type=int, metavar="N",
                   help="fewest answers that earn the completion code when the study runs out of items for a "
                        "worker (default 1; 0 = also a worker it had nothing left for)")
    p.set_defaults(func=cmd_study_set)
    p = study.add_parser("show", help="print a study's settings and complete k-sets")
    p.add_argument("--db", required=True, help="SQLite database file")
    p.add_argument("name", nargs="?", default=None)
    p.set_defaults(func=cmd_study_show)
    p = study.add_parser("open", help="open crowd joining; prints the secret join link once")
    p.add_argument("--db", required=True, help="SQLite database file")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--max-joined", type=int, metavar="N", help="cap on annotators who join by link")
    p.add_argument("--joins-per-address", type=int, metavar="N", default=DEFAULT_JOINS_PER_ADDRESS,
                   help=f"new workers one client address may join (default {DEFAULT_JOINS_PER_ADDRESS}; 0 = no limit)")
    p.set_defaults(func=cmd_study_open)
    p = study.add_parser("close", help="close crowd joining (join links stop working)")
    p.add_argument("--db", required=True, help="SQLite database file")
    p.add_argument("name", nargs="?", default=None)
    p.set_defaults(func=cmd_study_close)

    ann = sub.add_parser("annotators", help="add or list annotators").add_subparsers(dest="action", required=True)
    p = with_db(ann.add_parser("add", help="add an annotator and print their access code once"))
    p.add_argument("name")
    p.set_defaults(func=cmd_annotators_add)
    p = with_db(ann.add_parser("list", help="list annotators and their progress"))
    p.set_defaults(func=cmd_annotators_list)
    p = with_db(ann.add_parser("reset-code", help="issue a new access code"))
    p.add_argument("name")
    p.set_defaults(func=cmd_annotators_reset)

    p = with_db(sub.add_parser("export", help="write one row per rating"))
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv",
                   help="parquet: a folder with Parquet files and a dataset card (needs pyarrow)")
    p.add_argument("--out", required=True, help="output file (a folder for parquet)")
    p.add_argument("--raw", action="store_true",
                   help="CSV: write cells as stored, without the quote that keeps spreadsheets from running formulas")
    p.set_defaults(func=cmd_export)

    p = with_db(sub.add_parser("import-ratings", help="import ratings (or pairwise answers: a `preference` column) "
                                                       "collected elsewhere (export's columns)"))
    p.add_argument("file")
    p.add_argument("--raw", action="store_true",
                   help="the file was written with export --raw: keep a leading quote before =, +, -, @ as text")
    for kind in kinds.KINDS.values():
        kind.add_answers_options(p)
    p.set_defaults(func=cmd_import_ratings)

    p = sub.add_parser("import-feb-mturk", help="import FEB's MTurk crowd evaluation (DIR/results/<dataset>/*.csv) "
                                                 "as a study with items and ratings")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--db", required=True, help="SQLite database file (created when new)")
    p.add_argument("--study", default=None, help="study name (default: feb-mturk)")
    p.add_argument("--pseudonym-key", metavar="FILE", default=None,
                   help="key of the worker pseudonyms, for batches with MTurk's WorkerId column (created when new)")
    p.set_defaults(func=cmd_import_feb_mturk)

    p = sub.add_parser("backup", help="copy the database safely while the app is running")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("serve", help="start the Streamlit app; extra options go to `streamlit run`")
    p.add_argument("--db", required=True)
    p.add_argument("--demo", action="store_true", help="load the bundled demo study when the database has no study")
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    names: dict[str, list[str]] = {}
    if argv[:1] in (["import"], ["import-ratings"]):  # configuration names after --pairwise may begin with "-"
        for option, n in kinds.name_options().items():
            argv, values = take_option_values(argv, option, n)
            if values is not None:
                names[option] = values
    args, extra = parser.parse_known_args(argv)
    for option, values in names.items():
        setattr(args, option.removeprefix("--").replace("-", "_"), values)
    if args.command == "serve":
        return cmd_serve(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    db = Path(args.db) if getattr(args, "db", None) else None
    new_db = db is not None and not db.exists()
    # The command's summary is written only once the command has finished: a summary that cannot be written
    # (a full disk, a closed pipe) is then told apart from a command that failed.
    summary = io.StringIO()
    try:
        with contextlib.redirect_stdout(summary):
            rc = args.func(args)
    except (InputFileError, ValueError, OSError, sqlite3.Error) as exc:
        # One line on stderr, no traceback (OSError covers FileExistsError and PermissionError).
        _write_stdout(summary.getvalue())
        note = " (nothing was imported; the database is unchanged)" if isinstance(exc, InputFileError) else ""
        if new_db and _holds_a_study(db):  # what committed before the error is the user's: never delete it
            note = f" ({db} keeps what was saved before this error)"
        elif new_db:  # a failed command leaves no database behind that it created itself
            for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                path.unlink(missing_ok=True)
            note = " (nothing was imported; no database was created)" if note else note
        print(f"error: {exc}{note}", file=sys.stderr)
        return 2
    written = _write_stdout(summary.getvalue())
    if written is not None:
        saved = f" (what it changed is saved in {db})" if db is not None else ""
        print(f"error: the command completed{saved}, but its summary could not be written to standard output: "
              f"{written}", file=sys.stderr)
        return 2
    return rc


def _write_stdout(text: str) -> OSError | None:
    """Write `text` to standard output; the error when that fails (a full disk, a closed pipe)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        return exc
    return None


def _holds_a_study(db: Path) -> bool:
    """Whether the database holds a committed study (read on a connection of its own: only committed data counts).
    True when it cannot be read: a database whose content is unknown is never deleted."""
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'").fetchone() is None:
                return False
            return conn.execute("SELECT EXISTS (SELECT 1 FROM studies)").fetchone()[0] == 1
        finally:
            conn.close()
    except sqlite3.Error:
        return True


if __name__ == "__main__":
    sys.exit(main())
