"""`nle-annotate`: every subcommand through `annotate.cli.main`, and the installed console script in a subprocess."""

from __future__ import annotations

import csv
import errno
import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.cli import main
from annotate.core.errors import AccessDenied
from annotate.core.store import EXPORT_COLUMNS, Store
from tests.helpers import dump, next_item, nle

SCRIPT = Path(sys.executable).parent / "nle-annotate"




def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(err: str, *parts: str) -> None:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err


@pytest.fixture
def nles(write_jsonl) -> Path:
    return write_jsonl([nle(ds, f"{ds}-{i}", cfg) for i, ds in enumerate(["esnli", "ecqa", "sbic", "comve"])
                        for cfg in ("full_ft", "att_q+layer_norm")])


@pytest.fixture
def study_db(capsys: pytest.CaptureFixture[str], db_path: Path, nles: Path) -> Path:
    """A database with study "s" (8 items) and annotators alice and bob, each with three answers."""
    assert run(capsys, "import", nles, "--db", db_path, "--study", "s")[0] == 0
    with Store(db_path) as store:
        for name in ("alice", "bob"):
            store.add_annotator(name, "s", code=f"{name}-code")
            aid = store.authenticate(name, f"{name}-code")["id"]
            for pos, (rating, tags) in enumerate([("yes", []), ("weak_yes", ["hallucination"]),
                                                  ("no", ["inaccurate", "one word"])]):
                store.submit(aid, next_item(store, aid)["item_id"], rating, tags, f"{name}, #{pos}", 2.5)
    return db_path


def test_import_then_reimport(capsys: pytest.CaptureFixture[str], db_path: Path, nles: Path) -> None:
    rc, out, err = run(capsys, "import", nles, "--db", db_path, "--study", "s")
    assert (rc, err) == (0, "") and out == f"imported {nles}: study 's', added: 8\n"
    before = dump(db_path)
    rc, out, _ = run(capsys, "import", nles, "--db", db_path)
    assert rc == 0 and out == f"imported {nles}: study 's', unchanged: 8\n"
    assert dump(db_path) == before


def test_import_with_gold_reports_samples_without_gold(capsys: pytest.CaptureFixture[str], db_path: Path,
                                                       write_jsonl) -> None:
    path = write_jsonl([nle("esnli", "1"), nle("esnli", "1", "bitfit"), nle("sbic", "2", gold_explanations=None)])
    rc, out, _ = run(capsys, "import", path, "--db", db_path, "--with-gold")
    assert rc == 0 and out == f"imported {path}: study 'default', added: 3, gold added: 1, gold skipped: 1\n"
    with Store(db_path) as store:
        assert sorted(store.items_frame()["config"]) == ["bitfit", "full_ft", "full_ft", "gold"]


def test_bad_file_exits_2_with_one_line_and_changes_nothing(capsys: pytest.CaptureFixture[str], study_db: Path,
                                                            write_jsonl) -> None:
    path = write_jsonl([nle("esnli", "n1"), {**nle("esnli", "n2"), "input": "not an object"}, nle("esnli", "n3")],
                       "bad.jsonl")
    before = dump(study_db)
    rc, out, err = run(capsys, "import", path, "--db", study_db, "--study", "s")
    assert (rc, out) == (2, "")
    assert err == (f"error: {path}, line 2, field 'input': must be a non-empty object of named strings, got a string"
                   " (nothing was imported; the database is unchanged)\n")
    assert dump(study_db) == before


@pytest.mark.parametrize("pairwise", [[], ["--pairwise", "full_ft", "att_q+layer_norm"]])
@pytest.mark.parametrize(("value", "shown"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("1e999", "1e999")])
def test_nan_or_infinity_names_file_line_and_field_and_changes_nothing(
        capsys: pytest.CaptureFixture[str], study_db: Path, tmp_path: Path, pairwise: list[str], value: str,
        shown: str) -> None:
    """Python's json reads these; SQLite then called the stored metadata malformed ("error: malformed JSON")."""
    lines = [json.dumps(nle("esnli", "n1", cfg)) for cfg in ("full_ft", "att_q+layer_norm")]
    lines.append(json.dumps({**nle("esnli", "n2"), "loss": 0.5})[:-1] + f', "scores": {{"bleu": {value}}}}}')
    path = tmp_path / "nan.jsonl"
    path.write_text("\n".join(lines) + "\n")
    before = dump(study_db)
    rc, out, err = run(capsys, "import", path, "--db", study_db, "--study", "p" if pairwise else "s", *pairwise)
    assert (rc, out) == (2, "")
    assert_one_line_error(err, f"error: {path}, line 3, field 'scores.bleu': {shown} is not a finite number")
    assert "malformed" not in err
    assert dump(study_db) == before


@pytest.mark.parametrize("args", [
    ["import", "{bad}"],
    ["import", "{bad}", "--pairwise", "full_ft", "bitfit"],
    ["import-ratings", "{bad}"],
    ["import", "{missing}"],
])
def test_a_failed_command_leaves_no_new_database_behind(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        write_jsonl, args: list[str]) -> None:
    bad = write_jsonl([nle("esnli", "n1"), {**nle("esnli", "n2"), "input": "not an object"}], "bad.jsonl")
    db = tmp_path / "new.db"
    argv = [a.format(bad=bad, missing=tmp_path / "missing.jsonl") for a in args]
    rc, out, err = run(capsys, *argv, "--db", db)
    assert (rc, out) == (2, "") and err.startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]  # no new.db, -wal or -shm


class _FullStdout(io.StringIO):
    """Standard output on a full disk: every write fails, as on `> /dev/full`."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def _import_like(tmp_path: Path, write_jsonl) -> dict[str, list[str]]:
    """Every command that imports into a new database, with a file it accepts."""
    nles = write_jsonl([nle("esnli", "1", c) for c in ("full_ft", "bitfit")])
    ratings = tmp_path / "r.csv"
    ratings.write_text("dataset,sample_id,config,annotator,rating\nesnli,1,full_ft,alice,yes\n")
    prefs = tmp_path / "p.csv"
    prefs.write_text("dataset,sample_id,annotator,preference\nesnli,1,alice,full_ft\n")
    return {"import": ["import", str(nles)],
            "import --pairwise": ["import", str(nles), "--pairwise", "full_ft", "bitfit"],
            "import-ratings": ["import-ratings", str(ratings)],
            "import-ratings (preferences)": ["import-ratings", str(prefs), "--pairwise", "full_ft", "bitfit"]}


@pytest.mark.parametrize("command", ["import", "import --pairwise", "import-ratings", "import-ratings (preferences)"])
def test_a_committed_import_is_kept_when_its_report_cannot_be_written(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, write_jsonl,
        command: str) -> None:
    db = tmp_path / "new.db"
    argv = [*_import_like(tmp_path, write_jsonl)[command], "--db", str(db)]
    monkeypatch.setattr(sys, "stdout", _FullStdout())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"error: the command completed (what it changed is saved in {db}), but its summary could not be "
                   "written to standard output: [Errno 28] No space left on device\n")
    with Store(db) as store:  # the import is there, whole
        assert len(store.studies()) == 1 and store.counts()["items"] >= 1


def test_a_new_database_that_holds_a_committed_import_is_never_deleted(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, write_jsonl) -> None:
    """Whatever fails after the import committed (here the --overlap setting), the import stays."""
    def refuse(self: Store, *a: object, **k: object) -> None:
        raise ValueError("overlap refused")
    monkeypatch.setattr(Store, "configure_study", refuse)
    db = tmp_path / "new.db"
    rc, out, err = run(capsys, "import", write_jsonl([nle()]), "--db", db, "--overlap", "3")
    assert (rc, out) == (2, "")
    assert err == f"error: overlap refused ({db} keeps what was saved before this error)\n"
    with Store(db) as store:
        assert store.counts()["items"] == 1


def test_console_script_output_to_a_full_disk_keeps_the_import(script: Path, tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    ratings = tmp_path / "r.csv"
    ratings.write_text("dataset,sample_id,config,annotator,rating\nesnli,1,full_ft,alice,yes\n")
    db = tmp_path / "new.db"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([str(script), "import-ratings", str(ratings), "--db", str(db)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"the command completed (what it changed is saved in {db})" in proc.stderr
    with Store(db) as store:
        assert store.counts()["ratings"] == 1


def test_annotators_add_prints_the_code_once_and_list_never(capsys: pytest.CaptureFixture[str], db_path: Path,
                                                            nles: Path) -> None:
    run(capsys, "import", nles, "--db", db_path, "--study", "s")
    rc, out, _ = run(capsys, "annotators", "add", "carol", "--db", db_path)
    assert rc == 0
    code = re.fullmatch(r"annotator 'carol' added\. Access code \(shown only now, give it to the annotator\): "
                        r"(\S+)\n", out).group(1)
    with Store(db_path) as store:
        assert store.authenticate("carol", code)["name"] == "carol"
        hashed = store.conn.execute("SELECT code_hash FROM annotators").fetchone()[0]
    rc, out, _ = run(capsys, "annotators", "list", "--db", db_path)
    assert rc == 0 and out == "carol\tstudy s\t0 of 8 answered\n"
    assert code not in out and hashed not in out and "scrypt" not in out
    rc, _, err = run(capsys, "annotators", "add", "Carol", "--db", db_path)
    assert rc == 2
    assert_one_line_error(err, "annotator 'Carol' already exists")


def test_annotators_list_shows_progress_and_imported(capsys: pytest.CaptureFixture[str], study_db: Path,
                                                     tmp_path: Path) -> None:
    with Store(study_db) as store:
        rated = store.ratings_frame("s").query("annotator == 'alice'").iloc[0]
    ratings = tmp_path / "r.csv"
    ratings.write_text("dataset,sample_id,config,annotator,rating\n"
                       f"{rated['dataset']},{rated['sample_id']},{rated['config']},dora,yes\n")
    assert run(capsys, "import-ratings", ratings, "--db", study_db)[0] == 0
    rc, out, _ = run(capsys, "annotators", "list", "--db", study_db, "--study", "s")
    # k = 2: alice's three items (bob rated them next) are complete; 5 items nobody rated remain for anyone.
    assert rc == 0 and out.splitlines() == [
        "alice\tstudy s\t3 of 8 answered", "bob\tstudy s\t3 of 8 answered",
        "dora\tstudy s\t1 of 6 answered (imported, cannot sign in)"]


def test_annotators_list_of_an_unknown_study_is_an_error(capsys: pytest.CaptureFixture[str], study_db: Path) -> None:
    rc, out, err = run(capsys, "annotators", "list", "--db", study_db, "--study", "typo")
    assert (rc, out) == (2, "")
    assert_one_line_error(err, "unknown study 'typo' (studies in this database: s)")


def test_reset_code(capsys: pytest.CaptureFixture[str], study_db: Path) -> None:
    rc, out, _ = run(capsys, "annotators", "reset-code", "alice", "--db", study_db)
    assert rc == 0
    code = out.rsplit(": ", 1)[1].strip()
    with Store(study_db) as store:
        assert store.authenticate("alice", code)["name"] == "alice"
        with pytest.raises(AccessDenied):
            store.authenticate("alice", "alice-code")
    rc, _, err = run(capsys, "annotators", "reset-code", "nobody", "--db", study_db)
    assert rc == 2
    assert_one_line_error(err, "unknown annotator 'nobody'")


@pytest.mark.parametrize("typed", ["Alice", " ALICE ", "alice"])
def test_reset_code_matches_names_as_sign_in_does(capsys: pytest.CaptureFixture[str], study_db: Path,
                                                   typed: str) -> None:
    rc, out, _ = run(capsys, "annotators", "reset-code", typed, "--db", study_db)
    assert rc == 0
    with Store(study_db) as store:
        assert store.authenticate(typed, out.rsplit(": ", 1)[1].strip())["name"] == "alice"


FORMULA = '=cmd|" /C calc"!A0'


def _comment_rating(db: Path, comment: str) -> None:
    with Store(db) as store:
        aid = store.authenticate("alice", "alice-code")["id"]
        store.submit(aid, store.annotator_item(aid, 0)["item_id"], "yes", [], comment, 1.0)


def test_export_is_safe_to_open_in_a_spreadsheet_and_imports_back(capsys: pytest.CaptureFixture[str], study_db: Path,
                                                                   tmp_path: Path) -> None:
    _comment_rating(study_db, FORMULA)
    out_file = tmp_path / "ratings.csv"
    assert run(capsys, "export", "--db", study_db, "--out", out_file)[0] == 0
    with out_file.open(newline="", encoding="utf-8") as f:
        comments = [r["comment"] for r in csv.DictReader(f)]
    assert "'" + FORMULA in comments and FORMULA not in comments
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in comments)
    fresh = tmp_path / "fresh.db"
    assert run(capsys, "import-ratings", out_file, "--db", fresh, "--study", "s")[0] == 0
    with Store(study_db) as a, Store(fresh) as b:
        pd_a, pd_b = a.ratings_frame("s"), b.ratings_frame("s")
        assert FORMULA in pd_b["comment"].tolist() and pd_b["comment"].tolist() == pd_a["comment"].tolist()


def test_export_raw_writes_cells_as_stored(capsys: pytest.CaptureFixture[str], study_db: Path, tmp_path: Path) -> None:
    _comment_rating(study_db, FORMULA)
    raw = tmp_path / "raw.csv"
    assert run(capsys, "export", "--db", study_db, "--out", raw, "--raw")[0] == 0
    with raw.open(newline="", encoding="utf-8") as f:
        assert FORMULA in [r["comment"] for r in csv.DictReader(f)]
    # A raw file whose text starts with a quote keeps it on import --raw, and loses it without.
    _comment_rating(study_db, "'=kept")
    assert run(capsys, "export", "--db", study_db, "--out", raw, "--raw")[0] == 0
    for flag, expected in ((["--raw"], "'=kept"), ([], "=kept")):
        fresh = tmp_path / f"fresh{len(flag)}.db"
        assert run(capsys, "import-ratings", raw, "--db", fresh, "--study", "s", *flag)[0] == 0
        with Store(fresh) as store:
            assert expected in store.ratings_frame("s")["comment"].tolist()


def test_import_of_another_split_seed_or_model_needs_allow_mixed(capsys: pytest.CaptureFixture[str], db_path: Path,
                                                                  write_jsonl) -> None:
    first = write_jsonl([nle("esnli", str(i), model="t5-large", split_seed=0) for i in range(3)], "seed0.jsonl")
    other = write_jsonl([nle("esnli", str(i), "full_ft", model="t5-large", split_seed=1) for i in range(3, 5)]
                        + [nle("esnli", "9", "bitfit", model="t5-large", split_seed=1)], "seed1.jsonl")
    assert run(capsys, "import", first, "--db", db_path, "--study", "s")[0] == 0
    before = dump(db_path)
    rc, out, err = run(capsys, "import", other, "--db", db_path, "--study", "s")
    assert (rc, out) == (2, "")
    assert_one_line_error(err, f"{other}: configuration 'full_ft' already holds 3 of model 't5-large', split_seed 0, "
                               "and this file adds 2 of model 't5-large', split_seed 1", "--allow-mixed",
                          "(nothing was imported)")
    assert dump(db_path) == before
    rc, out, err = run(capsys, "import", other, "--db", db_path, "--study", "s", "--allow-mixed")
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        f"imported {other}: study 's', added: 3",
        "warning: configuration 'full_ft' already holds 3 of model 't5-large', split_seed 0, and this file adds 2 of"
        " model 't5-large', split_seed 1 (merged under one name: --allow-mixed)"]
    # A file without model or seed conflicts with nothing.
    unknown = write_jsonl([nle("esnli", "20")], "plain.jsonl")
    assert run(capsys, "import", unknown, "--db", db_path, "--study", "s")[0] == 0


def test_import_summary_names_the_lines_of_unchanged_gold_items(capsys: pytest.CaptureFixture[str], db_path: Path,
                                                               write_jsonl) -> None:
    path = write_jsonl([nle("esnli", "1"), nle("esnli", "1", "bitfit"), nle("esnli", "2"),
                        nle("esnli", "3", "gold")])
    assert run(capsys, "import", path, "--db", db_path, "--study", "s", "--with-gold")[0] == 0
    rc, out, _ = run(capsys, "import", path, "--db", db_path, "--study", "s", "--with-gold")
    # Unchanged: four file lines, the gold references made from lines 1 and 3, and line 4's own gold item.
    assert rc == 0 and out == (f"imported {path}: study 's', unchanged: 6 (of them gold items: 3, from lines 1, 3, 4)"
                               "\n")


def test_export_csv(capsys: pytest.CaptureFixture[str], study_db: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "ratings.csv"
    rc, out, _ = run(capsys, "export", "--db", study_db, "--format", "csv", "--out", out_file)
    assert rc == 0 and out == f"wrote 6 ratings to {out_file}\n"
    with out_file.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["dataset", "sample_id", "config", "annotator", "rating", "score", "tags", "comment",
                       "seconds", "submitted_at"]
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert sorted((r["annotator"], r["rating"], float(r["score"]), r["tags"]) for r in body) == [
        ("alice", "no", 0.0, "inaccurate;one word"), ("alice", "weak_yes", pytest.approx(2 / 3), "hallucination"),
        ("alice", "yes", 1.0, ""), ("bob", "no", 0.0, "inaccurate;one word"),
        ("bob", "weak_yes", pytest.approx(2 / 3), "hallucination"), ("bob", "yes", 1.0, "")]
    assert {r["comment"] for r in body} >= {"alice, #0", "bob, #2"}
    assert {r["seconds"] for r in body} == {"2.5"}
    assert {r["config"] for r in body} <= {"full_ft", "att_q+layer_norm"}


def test_export_jsonl(capsys: pytest.CaptureFixture[str], study_db: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "ratings.jsonl"
    assert run(capsys, "export", "--db", study_db, "--format", "jsonl", "--out", out_file)[0] == 0
    records = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6 and all(list(r) == EXPORT_COLUMNS for r in records)
    scores = {r["rating"]: r["score"] for r in records}
    assert scores["yes"] == 1 and scores["no"] == 0 and scores["weak_yes"] == pytest.approx(2 / 3, abs=1e-9)
    assert {r["tags"] for r in records} == {"", "hallucination", "inaccurate;one word"}


def test_export_of_an_unknown_study_or_format(capsys: pytest.CaptureFixture[str], study_db: Path,
                                              tmp_path: Path) -> None:
    rc, _, err = run(capsys, "export", "--db", study_db, "--study", "nope", "--out", tmp_path / "x.csv")
    assert rc == 2
    assert_one_line_error(err, "unknown study 'nope' (studies in this database: s)")
    with pytest.raises(SystemExit) as info:  # argparse refuses the format itself
        main(["export", "--db", str(study_db), "--format", "xml", "--out", str(tmp_path / "x.xml")])
    assert info.value.code == 2


def test_import_ratings_round_trip_and_violation_note(capsys: pytest.CaptureFixture[str], study_db: Path,
                                                      tmp_path: Path) -> None:
    exported = tmp_path / "ratings.csv"
    run(capsys, "export", "--db", study_db, "--out", exported)
    fresh = tmp_path / "fresh.db"
    rc, out, _ = run(capsys, "import-ratings", exported, "--db", fresh, "--study", "s")
    # k = 2: bob was given the three items alice rated, so six ratings of three items.
    assert rc == 0 and out == (f"imported {exported}: study 's', ratings added: 6, items created: 3 (3 not queued: "
                               "no input, predicted_label and explanation in the file), annotators created: 2\n")
    with Store(study_db) as a, Store(fresh) as b:
        assert a.ratings_frame("s").equals(b.ratings_frame("s"))
    rc, out, _ = run(capsys, "import-ratings", exported, "--db", fresh)
    assert rc == 0 and out == f"imported {exported}: study 's', ratings unchanged: 6\n"

    odd = tmp_path / "odd.csv"
    odd.write_text("dataset,sample_id,config,annotator,rating,tags\nesnli,z,full_ft,erin,Yes,inaccurate\n")
    rc, out, _ = run(capsys, "import-ratings", odd, "--db", fresh)
    assert rc == 0 and out.splitlines()[1:] == [
        "note: 1 imported ratings break the study's answer/tag rules (kept as given), e.g.:",
        '  line 2: Rule "no tags for Yes": an answer of "Yes" takes no shortcoming tag.']


def test_import_ratings_bad_file(capsys: pytest.CaptureFixture[str], study_db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,sample_id,config,annotator,rating,score\nesnli,z,full_ft,erin,yes,1\n"
                   "esnli,y,full_ft,erin,no,1\n")
    before = dump(study_db)
    rc, out, err = run(capsys, "import-ratings", bad, "--db", study_db)
    assert (rc, out) == (2, "")
    assert_one_line_error(err, f"{bad}, line 3, field 'score': 1.0 does not match rating 'no'",
                          "nothing was imported")
    assert dump(study_db) == before


def test_backup(capsys: pytest.CaptureFixture[str], study_db: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "backup.db"
    rc, out, _ = run(capsys, "backup", "--db", study_db, "--out", out_file)
    assert rc == 0 and out == f"backed up {study_db} to {out_file} (integrity_check: ok)\n"
    copy = sqlite3.connect(str(out_file))
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()
    original = dump(study_db)
    assert dump(out_file)["ratings"] == original["ratings"] and dump(out_file)["items"] == original["items"]
    before = out_file.read_bytes()
    rc, _, err = run(capsys, "backup", "--db", study_db, "--out", out_file)
    assert rc == 2
    assert_one_line_error(err, "already exists; choose a new file name")
    assert out_file.read_bytes() == before


def test_backup_of_a_missing_database_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing, out_file = tmp_path / "typo.db", tmp_path / "backup.db"
    rc, _, err = run(capsys, "backup", "--db", missing, "--out", out_file)
    assert rc == 2
    assert_one_line_error(err, f"database {missing} does not exist")
    assert not missing.exists() and not out_file.exists()


@pytest.mark.parametrize("argv", [
    ["export", "--db", "{notdb}", "--out", "{tmp}/x.csv"],
    ["annotators", "list", "--db", "{notdb}"],
    ["import", "{tmp}/missing.jsonl", "--db", "{tmp}/fresh.db"],
    ["export", "--db", "{tmp}/no/such/dir/x.db", "--out", "{tmp}/x.csv"],
    ["import-ratings", "{tmp}", "--db", "{tmp}/fresh.db"],
])
def test_environment_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    notdb = tmp_path / "not-a-database.db"
    notdb.write_text("this is not SQLite " * 100)
    rc, _, err = run(capsys, *[a.format(tmp=tmp_path, notdb=notdb) for a in argv])
    assert rc == 2
    assert_one_line_error(err)


# -- the installed console script ------------------------------------------------------------------------------------


@pytest.fixture
def script() -> Path:
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT} (pip install -e .)")
    return SCRIPT


def test_console_script_rejects_a_bad_file_without_traceback(script: Path, study_db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(json.dumps(nle("esnli", "n1")).encode() + b"\n" + b'{"dataset": "es\xffnli"}\n')
    before = dump(study_db)
    proc = subprocess.run([str(script), "import", str(bad), "--db", str(study_db)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: {bad}, line 2: invalid UTF-8 (byte 0xff) "
                           "(nothing was imported; the database is unchanged)\n")
    assert dump(study_db) == before


def test_console_script_import_add_export(script: Path, tmp_path: Path, nles: Path) -> None:
    db = tmp_path / "cli.db"

    def call(*args: str | Path) -> str:
        proc = subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return proc.stdout

    assert "added: 8" in call("import", nles, "--db", db, "--study", "s")
    code = call("annotators", "add", "alice", "--db", db).rsplit(": ", 1)[1].strip()
    with Store(db) as store:
        aid = store.authenticate("alice", code)["id"]
        store.submit(aid, next_item(store, aid)["item_id"], "weak_no", ["irrelevant"])
    call("export", "--db", db, "--out", tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS) and len(lines) == 2
    assert ",alice,weak_no,0.3333333333333333,irrelevant,," in lines[1]
