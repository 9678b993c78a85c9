"""`nle-annotate`: thin command-line functions over the Store."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from importlib.resources import files
from pathlib import Path

from annotate.core.errors import InputFileError
from annotate.core.store import Store

MAX_UPLOAD_MB = 25


def _store(args: argparse.Namespace) -> Store:
    return Store(args.db)


def cmd_import(args: argparse.Namespace) -> int:
    with _store(args) as store:
        result = store.import_nles(args.file, args.study, with_gold=args.with_gold)
    print(f"imported {args.file}: {result.summary()}")
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
    if not rows:
        print("no annotators yet")
    for r in rows:
        sign_in = "" if r["can_sign_in"] else " (imported, cannot sign in)"
        print(f"{r['name']}\tstudy {r['study']}\t{r['answered']} of {r['assigned']} answered{sign_in}")
    return 0


def cmd_annotators_reset(args: argparse.Namespace) -> int:
    with _store(args) as store:
        code = store.reset_code(args.name)
    print(f"new access code for {args.name!r} (the old one no longer works): {code}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _store(args) as store:
        n = store.export(args.out, args.format, args.study)
    print(f"wrote {n} ratings to {args.out}")
    return 0


def cmd_import_ratings(args: argparse.Namespace) -> int:
    with _store(args) as store:
        result = store.import_ratings(args.file, args.study)
    print(f"imported {args.file}: {result.summary()}")
    if result.rule_violations:
        print(f"note: {result.rule_violations} imported ratings break the study's answer/tag rules "
              "(kept as given), e.g.:")
        for example in result.violation_examples:
            print(f"  {example}")
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
    # Megabytes; bigger NLE files are imported with `nle-annotate import` (the researcher page says so).
    "--server.maxUploadSize", str(MAX_UPLOAD_MB),
)


def cmd_serve(args: argparse.Namespace, extra: list[str]) -> int:
    from streamlit.web import cli as stcli

    app = files("annotate.app") / "main.py"  # a real file inside the package, checkout or wheel
    os.environ["NLE_DB"] = str(Path(args.db).resolve())
    if args.demo:
        os.environ["NLE_DEMO"] = "1"
    defaults = [*SERVE_DEFAULTS]
    sys.argv = ["streamlit", "run", str(app), *defaults, *extra]
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
    p.set_defaults(func=cmd_import)

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
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = with_db(sub.add_parser("import-ratings", help="import ratings collected elsewhere (export's columns)"))
    p.add_argument("file")
    p.set_defaults(func=cmd_import_ratings)

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
    args, extra = parser.parse_known_args(argv)
    if args.command == "serve":
        return cmd_serve(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (InputFileError, ValueError, OSError, sqlite3.Error) as exc:
        # One line on stderr, no traceback (OSError covers FileExistsError and PermissionError).
        note = " (nothing was imported; the database is unchanged)" if isinstance(exc, InputFileError) else ""
        print(f"error: {exc}{note}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
