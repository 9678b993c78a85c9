"""`nle-annotate study set/show/open/close` and `import --overlap` (issue 12 §1, §3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from annotate import cli
from annotate.core.store import Store
from tests.helpers import dump, nle


@pytest.fixture
def db(tmp_path: Path, write_jsonl) -> str:
    path = str(tmp_path / "a.db")
    assert cli.main(["import", "--db", path, "--study", "s", "--overlap", "2",
                     str(write_jsonl([nle(sample_id=str(i)) for i in range(4)]))]) == 0
    return path


def test_import_with_overlap_and_study_set_show(db: str, capsys) -> None:
    with Store(db) as store:
        assert store.assignment_settings("s").overlap == 2
    assert cli.main(["study", "set", "--db", db, "s", "--overlap", "3", "--max-per-annotator", "2",
                     "--lapse-minutes", "10", "--attention-tolerance", "within_one", "--completion-code", "XY-1",
                     "--redirect-url", "https://example.org/done"]) == 0
    out = capsys.readouterr().out
    for line in ("overlap k: 3", "max items per annotator: 2", "reservation lapses after: 600 s",
                 "attention checks pass: within one", "completion code: XY-1", "redirect URL: https://example.org/done",
                 "joining by link: closed"):
        assert line in out
    assert cli.main(["study", "set", "--db", db, "--overlap", "all", "--no-cap"]) == 0
    assert "overlap k: all" in capsys.readouterr().out
    assert cli.main(["study", "show", "--db", db]) == 0
    assert "complete sets: 0 of 4 items" in capsys.readouterr().out


PAIR = ("full_ft", "att_q")


@pytest.mark.parametrize(("command", "shown"), [
    (["import", "nles"], "2"),
    (["import", "nles", "--overlap", "all"], "all (every annotator rates every item)"),
    (["import", "nles", "--pairwise", *PAIR], "2"),
    (["import", "nles", "--pairwise", *PAIR, "--overlap", "all"], "all (every annotator rates every item)"),
    (["import", "nles", "--pairwise", *PAIR, "--overlap", "3"], "3"),
    (["import-ratings", "ratings"], "2"),
])
def test_a_new_study_has_k_2_unless_the_import_says_otherwise(tmp_path: Path, write_jsonl, capsys, command,
                                                              shown) -> None:
    files = {"nles": write_jsonl([nle(sample_id=str(i), config=c) for i in range(3) for c in PAIR]),
             "ratings": tmp_path / "r.csv"}
    files["ratings"].write_text("dataset,sample_id,config,annotator,rating\nesnli,1,full_ft,dora,yes\n")
    path = str(tmp_path / "n.db")
    assert cli.main([command[0], str(files[command[1]]), "--db", path, "--study", "new", *command[2:]]) == 0
    capsys.readouterr()
    assert cli.main(["study", "show", "--db", path, "new"]) == 0
    assert f"  overlap k: {shown}\n" in capsys.readouterr().out


def test_an_import_without_overlap_keeps_an_existing_studys_setting(db: str, write_jsonl, capsys) -> None:
    assert cli.main(["study", "set", "--db", db, "s", "--overlap", "all"]) == 0
    assert cli.main(["import", "--db", db, "--study", "s", str(write_jsonl([nle(sample_id="new")], "more.jsonl"))]) == 0
    capsys.readouterr()
    assert cli.main(["study", "show", "--db", db, "s"]) == 0
    assert "  overlap k: all (every annotator rates every item)\n" in capsys.readouterr().out


def test_open_prints_the_link_once_and_close_ends_it(db: str, capsys) -> None:
    assert cli.main(["study", "open", "--db", db, "s", "--max-joined", "30"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"/\?study=s&join=([A-Za-z0-9_-]+)&pid=WORKER_ID", out).group(1)
    with Store(db) as store:
        assert store.join("s", token, "w1")["name"] == "crowd:w1"
        assert token not in str(dump(db))
    assert cli.main(["study", "close", "--db", db, "s"]) == 0
    assert "closed" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["study", "set", "--overlap", "0"], "error: overlap must be a positive integer or 'all', got '0'"),
    (["study", "set", "--redirect-url", "ftp://x"], "error: redirect URL must start with http:// or https://"),
    (["study", "open", "nope"], "error: unknown study 'nope'"),
    (["study", "open", "--max-joined", "0"], "error: max_joined must be at least 1, got 0"),
])
def test_bad_settings_are_one_line_errors_and_change_nothing(db: str, capsys, args, message) -> None:
    before = dump(db)
    assert cli.main([*args[:2], "--db", db, *args[2:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert dump(db) == before


def test_import_with_a_bad_overlap_writes_nothing(tmp_path: Path, write_jsonl, capsys) -> None:
    path = str(tmp_path / "b.db")
    assert cli.main(["import", "--db", path, "--overlap", "none", str(write_jsonl([nle()]))]) == 2
    assert "overlap must be a positive integer or 'all'" in capsys.readouterr().err
    assert not Path(path).exists()
