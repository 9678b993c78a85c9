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


def _store(args: argparse.Namespace) -> Store:
    return Store(args.db)


def cmd_import(args: argparse.Namespace) -> int:
    if args.pairwise:
        return cmd_import_pairwise(args)
    with _store(args) as store:
        result = store.import_nles(args.file, args.study, with_gold=args.with_gold)
    print(f"imported {args.file}: {result.summary()}")
    return 0


def cmd_import_pairwise(args: argparse.Namespace) -> int:
    if args.with_gold:
        raise ValueError("--with-gold does not apply to a pairwise study")
    with _store(args) as store:
        out = store.import_pairwise(args.file, *args.pairwise, args.study,
                                    rate_sides=True if args.rate_sides else None)
    print(f"imported {args.file}: {out.summary()}")
    for dataset, sample_id, reason in out.selection.excluded:
        print(f"  excluded {dataset}/{sample_id}: {reason}")
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
    from annotate.core.publish import export_parquet

    with _store(args) as store:
        if args.format == "parquet":
            card = export_parquet(store, args.out, args.study)
            print(f"wrote {card.n_rows} {card.unit} and a dataset card to {args.out}")
            return 0
        pairwise = store.pairwise_setup(store.resolve_study(args.study)["id"]) is not None
        n = store.export(args.out, args.format, args.study)
    print(f"wrote {n} {'pairwise answers' if pairwise else 'ratings'} to {args.out}")
    return 0


def cmd_import_ratings(args: argparse.Namespace) -> int:
    from annotate.core.pairwise import is_preferences_header

    path = Path(args.file)
    with _store(args) as store:
        # A `preference` column marks pairwise answers; read the header only (a missing file errors below).
        head = path.open("rb").read(65536) if path.is_file() else b""
        if args.pairwise or is_preferences_header(head):
            result = store.import_preferences(args.file, args.study,
                                              pairwise=tuple(args.pairwise) if args.pairwise else None)
            print(f"imported {args.file}: {result.summary()}")
            return 0
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


def cmd_serve(args: argparse.Namespace, extra: list[str]) -> int:
    from streamlit.web import cli as stcli

    app = files("annotate.app") / "main.py"  # a real file inside the package, checkout or wheel
    os.environ["NLE_DB"] = str(Path(args.db).resolve())
    if args.demo:
        os.environ["NLE_DEMO"] = "1"
    # Annotators get a plain page: no Deploy button or developer menu.
    defaults = ["--client.toolbarMode", "viewer", "--browser.gatherUsageStats", "false"]
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
    p.add_argument("--pairwise", nargs=2, metavar=("A", "B"), default=None,
                   help="build a blind pairwise study of configuration A against B: one pair per sample both "
                        "predicted correctly")
    p.add_argument("--rate-sides", action="store_true",
                   help="pairwise study: also ask for the 4-point rating of each explanation")
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
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv",
                   help="parquet: a folder with Parquet files and a dataset card (needs pyarrow)")
    p.add_argument("--out", required=True, help="output file (a folder for parquet)")
    p.set_defaults(func=cmd_export)

    p = with_db(sub.add_parser("import-ratings", help="import ratings (or pairwise answers: a `preference` column) "
                                                       "collected elsewhere (export's columns)"))
    p.add_argument("file")
    p.add_argument("--pairwise", nargs=2, metavar=("A", "B"), default=None,
                   help="pairwise answers for a new study comparing A with B")
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
