"""Pairwise studies in the store and on the command line: pairs from NLE files, blind sides, preferences in and
out (round trip), nle-report's pairwise section, and the Parquet export loaded by Hugging Face `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.cli import main as report_main
from analysis.pairwise import CONTRACT_KEYS
from annotate.cli import main as cli
from annotate.core.errors import AccessDenied, InputFileError
from annotate.core.exporting import ratings_bytes
from annotate.core.pairwise import (
    CHOICES,
    EXPORT_PREFERENCE_COLUMNS,
    read_preferences_csv,
    to_choice,
    to_preference,
)
from annotate.core.scale import DEFAULT_TAGS
from annotate.core.store import Store
from tests.helpers import dump, nle, walk_queue

A, B = "full_ft", "att_q+ln"


def pair_lines() -> list[dict]:
    """Six samples under both configurations, plus: A wrong on s6, B wrong on s7, both wrong on s8, no gold on
    s9, only A on s10."""
    lines = [nle("esnli", f"s{i}", c, explanation=f"{c} says {i}") for i in range(6) for c in (A, B)]
    lines += [nle("esnli", "s6", A, predicted_label="neutral"), nle("esnli", "s6", B),
              nle("esnli", "s7", A), nle("esnli", "s7", B, predicted_label="neutral"),
              nle("esnli", "s8", A, predicted_label="neutral"), nle("esnli", "s8", B, predicted_label="neutral"),
              nle("esnli", "s9", A, gold_label=None), nle("esnli", "s9", B, gold_label=None),
              nle("esnli", "s10", A), nle("esnli", "s11", "other_config")]
    return lines


@pytest.fixture
def pw(store: Store, write_jsonl) -> Store:
    store.import_pairwise(write_jsonl(pair_lines()), A, B, "pw")
    for name in ("anna", "ben"):
        store.add_annotator(name, "pw", code=f"code-{name}")
    return store


def test_one_pair_per_sample_both_predicted_correctly_others_counted_and_listed(store: Store, write_jsonl) -> None:
    out = store.import_pairwise(write_jsonl(pair_lines()), A, B, "pw")
    assert (out.result.added, len(out.selection.pairs)) == (6, 6)
    assert sorted(out.selection.excluded) == [
        ("esnli", "s10", f"only {A} has this sample"), ("esnli", "s6", f"{A} predicted wrongly"),
        ("esnli", "s7", f"{B} predicted wrongly"), ("esnli", "s8", "both predicted wrongly"),
        ("esnli", "s9", "no gold_label")]
    items = store.items_frame("pw")
    assert set(items["config"]) == {f"{A} vs {B}"} and len(items) == 6
    again = store.import_pairwise(write_jsonl(pair_lines()), A, B, "pw")
    assert (again.result.added, again.result.unchanged) == (0, 6)


def test_cli_import_lists_the_excluded_samples(db_path: Path, write_jsonl, capsys: pytest.CaptureFixture) -> None:
    assert cli(["import", str(write_jsonl(pair_lines())), "--db", str(db_path), "--study", "pw",
                "--pairwise", A, B]) == 0
    out = capsys.readouterr().out
    assert "pairs: 6" in out and f"  excluded esnli/s6: {A} predicted wrongly" in out
    assert "excluded: 1 att_q+ln predicted wrongly, 1 both predicted wrongly" in out


@pytest.mark.parametrize(("pairwise", "message"), [
    ((A, "missing_cfg"), "no line has config 'missing_cfg'"),
    ((A, A), "two different configurations"),
])
def test_bad_pairwise_import_changes_nothing(store: Store, write_jsonl, pairwise: tuple[str, str],
                                             message: str) -> None:
    before = store.counts()
    with pytest.raises((InputFileError, ValueError), match=message):
        store.import_pairwise(write_jsonl(pair_lines()), *pairwise, "pw")
    assert store.counts() == before


def test_a_file_that_makes_no_pair_is_refused_with_the_reasons(store: Store, write_jsonl) -> None:
    # No gold_label anywhere (lines 1-4), a wrong prediction (lines 5-6) and a sample only A has (line 7).
    lines = [nle("esnli", f"g{i}", c, gold_label=None) for i in range(2) for c in (A, B)]
    lines += [nle("esnli", "w", A, predicted_label="neutral"), nle("esnli", "w", B), nle("esnli", "only", A)]
    path = write_jsonl(lines)
    with pytest.raises(InputFileError) as err:
        store.import_pairwise(path, A, B, "pw")
    assert str(err.value) == (
        f"{path}: nothing to import: no sample of {A!r} and {B!r} makes a pair (both must predict the gold_label): "
        "no gold_label: 2 samples (field 'gold_label', lines 1, 3); "
        f"{A} predicted wrongly: 1 sample (field 'predicted_label', line 5); "
        f"only {A} has this sample: 1 sample (field 'sample_id', line 7)")
    assert store.studies() == []  # no empty study


def test_a_file_without_pairs_changes_an_existing_study_in_nothing(pw: Store, write_jsonl, db_path: Path) -> None:
    before = dump(db_path)
    path = write_jsonl([nle("esnli", f"n{i}", c, gold_label=None) for i in range(7) for c in (A, B)])
    with pytest.raises(InputFileError, match=r"no gold_label: 7 samples \(field 'gold_label', lines 1, 3, 5, 7, 9, "
                                             r"\.\.\.\)$"):
        pw.import_pairwise(path, A, B, "pw")
    assert dump(db_path) == before


def test_cli_pairwise_import_of_no_pair_fails_and_creates_no_database(tmp_path: Path, write_jsonl,
                                                                    capsys: pytest.CaptureFixture) -> None:
    path = write_jsonl([nle("esnli", "1", c, gold_label=None) for c in (A, B)])
    db = tmp_path / "new.db"
    assert cli(["import", str(path), "--db", str(db), "--pairwise", A, B]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"error: {path}: nothing to import: no sample of {A!r} and {B!r} makes a pair (both must predict the "
        "gold_label): no gold_label: 1 sample (field 'gold_label', line 1) (nothing was imported; no database was "
        "created)\n")
    assert not db.exists()


def test_cli_pairwise_names_may_begin_with_a_dash(tmp_path: Path, write_jsonl, capsys: pytest.CaptureFixture) -> None:
    path = write_jsonl([nle("esnli", "1", c) for c in ("-ablation", "--full")])
    db = tmp_path / "new.db"
    assert cli(["import", str(path), "--db", str(db), "--pairwise", "-ablation", "--full"]) == 0
    assert "pairs: 1" in capsys.readouterr().out
    with Store(db) as store:
        assert store.pairwise_setup(store.resolve_study(None)["id"]) == {"a": "-ablation", "b": "--full",
                                                                          "rate_sides": False}


def test_a_rating_study_is_not_turned_into_a_pairwise_one(store: Store, write_jsonl) -> None:
    store.import_nles(write_jsonl([nle()]), "rating")
    with pytest.raises(ValueError, match="'rating' is a rating study"):
        store.import_pairwise(write_jsonl(pair_lines()), A, B, "rating")


def test_rating_files_are_not_mixed_into_a_pairwise_study(pw: Store, write_jsonl, tmp_path: Path) -> None:
    before = pw.counts()
    with pytest.raises(ValueError, match="'pw' is a pairwise study; import its NLE file with --pairwise A B"):
        pw.import_nles(write_jsonl([nle("esnli", "x1", A)]), "pw")
    ratings = tmp_path / "r.csv"
    ratings.write_text(f"dataset,sample_id,config,annotator,rating\nesnli,s0,{A},zoe,yes\n")
    with pytest.raises(ValueError, match="'pw' is a pairwise study; its answers need a `preference` column"):
        pw.import_ratings(ratings, "pw")
    assert pw.counts() == before


def test_changed_pair_content_is_refused(pw: Store, write_jsonl) -> None:
    lines = pair_lines()
    lines[1] = nle("esnli", "s0", B, explanation="a new explanation")
    with pytest.raises(InputFileError, match="already in study 'pw' with different content"):
        pw.import_pairwise(write_jsonl(lines), A, B, "pw")


def test_only_shown_items_of_ones_own_queue_can_be_answered(pw: Store) -> None:
    anna, ben = (a["id"] for a in pw.annotators("pw"))
    item = pw.annotator_pair(anna, pw.next_unanswered(anna))
    # ben is given anna's pair next (k = 2 offers items others hold first): in his queue, never shown to him.
    assert pw.annotator_item(ben, pw.next_unanswered(ben))["item_id"] == item["item_id"]
    with pytest.raises(AccessDenied):
        pw.submit_preference(ben, item["item_id"], "1")
    with pytest.raises(AccessDenied):
        pw.submit_preference(anna, 999, "1")
    with pytest.raises(ValueError, match="unknown choice"):
        pw.submit_preference(anna, item["item_id"], "left")
    assert pw.preferences_frame("pw").empty


def test_revision_keeps_history(pw: Store) -> None:
    anna = pw.annotators("pw")[0]["id"]
    item = pw.annotator_pair(anna, pw.next_unanswered(anna))
    pw.submit_preference(anna, item["item_id"], "1")
    second = pw.submit_preference(anna, item["item_id"], "tie", comment="on reflection")
    assert second["revision"] == 2
    hist = pw.conn.execute("SELECT preference, revision FROM preference_history WHERE annotator_id = ?"
                           " ORDER BY id", (anna,)).fetchall()
    assert [h[1] for h in hist] == [1, 2] and hist[1][0] == "tie"
    assert pw.answered_count(anna) == 1


def answer_all(store: Store) -> None:
    for k, a in enumerate(store.annotators("pw")):
        for pos in walk_queue(store, a["id"]):
            item = store.annotator_pair(a["id"], pos)
            store.submit_preference(a["id"], item["item_id"], ("1", "2", "tie")[(pos + k) % 3],
                                    tags_1=["nonsensical"] if pos % 2 else [], tags_2=["irrelevant", "empty"],
                                    comment="=cmd|' /C calc'!A0" if pos == 0 else f"c{pos}", seconds=1.5 + pos)


def test_export_import_round_trip_of_pairwise_answers(pw: Store, tmp_path: Path, capsys) -> None:
    answer_all(pw)
    first = tmp_path / "prefs.csv"
    assert cli(["export", "--db", pw.path, "--study", "pw", "--out", str(first)]) == 0
    exported = pd.read_csv(first, keep_default_na=False, dtype=str)
    assert list(exported.columns) == EXPORT_PREFERENCE_COLUMNS
    assert set(exported["preference"]) <= {A, B, "tie"} and set(exported["shown_first"]) == {A, B}
    assert pw.export_bytes("pw") == first.read_bytes()  # the researcher page's download is the same file

    fresh = tmp_path / "fresh.db"
    assert cli(["import-ratings", str(first), "--db", str(fresh), "--study", "pw2", "--pairwise", A, B]) == 0
    assert "ratings added: 12" in capsys.readouterr().out
    second = tmp_path / "again.csv"
    assert cli(["export", "--db", str(fresh), "--out", str(second)]) == 0
    assert second.read_bytes() == first.read_bytes()
    # Importing the same file again changes nothing; the analysis agrees on both databases.
    with Store(fresh) as s2:
        result = s2.import_preferences(first, "pw2")
        assert (result.ratings_added, result.ratings_unchanged) == (0, 12)
        from analysis.pairwise import analyse_pairwise_store
        assert analyse_pairwise_store(s2, n_boot=50).agreement_json()["pairwise"] == \
            analyse_pairwise_store(pw, "pw", n_boot=50).agreement_json()["pairwise"]


def test_bad_preference_names_file_line_and_field_and_changes_nothing(pw: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"dataset,sample_id,annotator,preference\nesnli,s0,zoe,{A}\nesnli,s1,zoe,gpt-4\n")
    before = pw.counts()
    with pytest.raises(InputFileError) as e:
        pw.import_preferences(bad, "pw")
    assert str(e.value).startswith(f"{bad}, line 3, field 'preference':") or "line 3" in str(e.value)
    assert "preference" in str(e.value) and "'gpt-4'" in str(e.value)
    assert pw.counts() == before


def test_import_ratings_without_a_pairwise_study_asks_for_the_configurations(tmp_path: Path, capsys) -> None:
    f = tmp_path / "p.csv"
    f.write_text(f"dataset,sample_id,annotator,preference\nesnli,s0,zoe,{A}\n")
    assert cli(["import-ratings", str(f), "--db", str(tmp_path / "n.db")]) == 2
    assert "name the two configurations with --pairwise A B" in capsys.readouterr().err


def test_nle_report_writes_the_pairwise_section(pw: Store, tmp_path: Path) -> None:
    answer_all(pw)
    out = tmp_path / "report"
    assert report_main(["--db", pw.path, "--study", "pw", "--out", str(out), "--n-boot", "100"]) == 0
    j = json.loads((out / "agreement.json").read_text())
    assert tuple(j["pairwise"]) == CONTRACT_KEYS
    assert (j["pairwise"]["a"], j["pairwise"]["b"], j["pairwise"]["n_items"]) == (A, B, 6)
    assert j["pairwise"]["wins_a"] + j["pairwise"]["ties"] + j["pairwise"]["wins_b"] == 12
    assert [d["dataset"] for d in j["pairwise_by_dataset"]] == ["esnli"]
    assert "Explanation 1 chosen" in (out / "report.html").read_text()


# -- publishable ratings -------------------------------------------------------------------------------------------


def load(folder: Path, cache: Path):
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset("parquet", data_dir=str(folder), cache_dir=str(cache))


def test_parquet_export_of_ratings_loads_with_datasets(store: Store, write_jsonl, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    store.import_nles(write_jsonl([nle("esnli", str(i), c) for i in range(3) for c in (A, B)]), "s")
    for name in ("anna", "ben"):
        store.add_annotator(name, "s", code=f"code-{name}")
    for a in store.annotators("s"):
        for pos in walk_queue(store, a["id"]):
            item = store.annotator_item(a["id"], pos)
            store.submit(a["id"], item["item_id"], "weak_no", ["inaccurate", "one word"], "hm", 2.0)
    out = tmp_path / "pub"
    assert cli(["export", "--db", store.path, "--format", "parquet", "--out", str(out)]) == 0
    ds = load(out, tmp_path / "cache")
    ratings = ds["ratings"]
    assert ratings.num_rows == 12
    assert ratings.column_names == ["dataset", "sample_id", "config", "annotator", "rating", "score", "tags", "comment",
                                    "seconds", "submitted_at", "guidelines_version"]
    assert ratings[0]["tags"] == ["inaccurate", "one word"] and ratings[0]["score"] == pytest.approx(1 / 3)
    items = load(out / "items", tmp_path / "cache2")["train"]
    assert items.num_rows == 6 and set(items["explanation"]) == {f"explanation of esnli/{i} by {c}"
                                                                 for i in range(3) for c in (A, B)}
    card = (out / "README.md").read_text()
    for needed in ("| `rating` |", "| `weak_no` | Weak no | 0.3333 |", "| inaccurate | States something false. |",
                   "- Annotators: 2", "- Ratings: 12", "- Guidelines version: 1", "observed answers per item: min 2"):
        assert needed in card, needed
    # Refuses to write into a folder that holds something.
    assert cli(["export", "--db", store.path, "--format", "parquet", "--out", str(out)]) == 2


def test_parquet_export_of_a_pairwise_study(pw: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    answer_all(pw)
    out = tmp_path / "pub"
    assert cli(["export", "--db", pw.path, "--study", "pw", "--format", "parquet", "--out", str(out)]) == 0
    prefs = load(out, tmp_path / "cache")["preferences"]
    assert prefs.num_rows == 12 and set(prefs["preference"]) <= {A, B, "tie"}
    assert prefs[0]["tags_b"] == ["irrelevant", "empty"] or prefs[0]["tags_a"] == ["irrelevant", "empty"]
    items = load(out / "items", tmp_path / "cache2")["train"]
    assert set(items["explanation_a"]) == {f"{A} says {i}" for i in range(6)}
    card = (out / "README.md").read_text()
    assert f"configuration `{A}` (A) against `{B}` (B)" in card and "- Preferences: 12" in card


@given(st.sampled_from(CHOICES), st.booleans())
def test_on_screen_choice_and_stored_preference_are_inverse(choice: str, a_first: bool) -> None:
    pref = to_preference(choice, a_first)
    assert to_choice(pref, a_first) == choice
    assert (pref == "tie") == (choice == "tie")


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([A, B, "tie"]), st.lists(st.sampled_from(DEFAULT_TAGS), max_size=3,
                                                                    unique=True), _text), min_size=1, max_size=6))
def test_preferences_csv_round_trip(rows: list[tuple[str, list[str], str]]) -> None:
    df = pd.DataFrame([{"dataset": "esnli", "sample_id": str(i), "annotator": "zoe", "preference": p,
                        "tags_a": ";".join(t), "tags_b": "", "comment": c, "rating_a": "", "rating_b": "",
                        "shown_first": A, "seconds": 1.0, "submitted_at": "2026-12-02T10:00:00.000+00:00"}
                       for i, (p, t, c) in enumerate(rows)])
    back = read_preferences_csv("p.csv", A, B, DEFAULT_TAGS,
                                ratings_bytes(df, "csv", columns=EXPORT_PREFERENCE_COLUMNS))
    assert [(r.preference, r.tags_a, r.comment, r.a_first) for r in back] == [
        ({A: "a", B: "b", "tie": "tie"}[p], t, c, True) for p, t, c in rows]
