"""The ratings CSV/JSONL export and `import_ratings`: round trips, accepted spellings, all-or-nothing rejection."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from annotate.core.errors import InputFileError
from annotate.core.formats import RATING_COLUMNS, read_nle_file, read_ratings_csv
from annotate.core.scale import DEFAULT_TAGS
from annotate.core.store import EXPORT_COLUMNS, Store
from tests.helpers import dump, file_hash, next_item, nle, overlap_all, walk_queue

TS = "2026-01-02T03:04:05.678+00:00"






def write_csv(path: Path, rows: list[list[str] | dict[str, str]], header: list[str] = EXPORT_COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow([row.get(c, "") for c in header] if isinstance(row, dict) else row)
    return path


def row(sample_id: str = "g1", annotator: str = "alice", rating: str = "yes", **over: str) -> dict[str, str]:
    base = {"dataset": "esnli", "sample_id": sample_id, "config": "full_ft", "annotator": annotator, "rating": rating,
            "score": "", "tags": "", "comment": "", "seconds": "3.5", "submitted_at": TS}
    return {**base, **over}


def annotator_ids(store: Store) -> dict[str, int]:
    return {a["name"]: a["id"] for a in store.annotators()}


@pytest.fixture
def rated(store: Store, write_jsonl) -> Store:
    """Study "s": six items, alice and bob with ratings of every kind, awkward comments, one revision."""
    store.import_nles(write_jsonl([nle(ds, f"{ds}-{i}", cfg) for i, ds in enumerate(["esnli", "ecqa", "comve"])
                                   for cfg in ("full_ft", "att_q+layer_norm")]), "s")
    store.add_annotator("alice", "s", code="a")
    store.add_annotator("bob", "s", code="b")
    ids = annotator_ids(store)
    answers = [("yes", [], 'plain, with "quotes"', 1.25), ("weak_yes", ["hallucination"], "line one\nline two", 7.0),
               ("weak_no", ["inaccurate", "one word"], "é 漢字 \u2028 sep", None), ("no", ["empty"], "", 0.0),
               ("no", ["irrelevant", "true but irrelevant"], ";semi;colons;", 12.5), ("yes", [], " spaced ", 2.5)]
    for name in ("alice", "bob"):
        aid = ids[name]
        for pos, (rating, tags, comment, seconds) in zip(walk_queue(store, aid), answers, strict=True):
            item = store.annotator_item(aid, pos)["item_id"]
            store.submit(aid, item, rating, tags, f"{name}: {comment}", seconds)
    first = store.annotator_item(ids["alice"], 0)["item_id"]
    store.submit(ids["alice"], first, "weak_yes", ["repeats input"], "revised,\r\nwith CRLF", 4.0)
    return store


# -- export ------------------------------------------------------------------------------------------------------


def test_export_csv_columns_and_values(rated: Store, tmp_path: Path) -> None:
    out = tmp_path / "ratings.csv"
    assert rated.export(out, "csv", "s") == 12
    with out.open(encoding="utf-8", newline="") as f:
        records = list(csv.reader(f))
    assert records[0] == EXPORT_COLUMNS
    assert EXPORT_COLUMNS == ["dataset", "sample_id", "config", "annotator", "rating", "score", "tags", "comment",
                              "seconds", "submitted_at"]
    body = [dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in records[1:]]
    assert len(body) == 12
    expected_score = {"yes": 1.0, "weak_yes": 2 / 3, "weak_no": 1 / 3, "no": 0.0}
    for r in body:
        assert float(r["score"]) == pytest.approx(expected_score[r["rating"]], abs=1e-12)
        assert all(t in DEFAULT_TAGS for t in r["tags"].split(";") if t)
    tags = {r["tags"] for r in body}
    assert {"inaccurate;one word", "irrelevant;true but irrelevant", "repeats input", ""} <= tags
    comments = {r["comment"] for r in body}
    assert "revised,\r\nwith CRLF" in comments and 'bob: plain, with "quotes"' in comments
    assert {r["config"] for r in body} == {"full_ft", "att_q+layer_norm"}


def test_export_jsonl(rated: Store, tmp_path: Path) -> None:
    out = tmp_path / "ratings.jsonl"
    assert rated.export(out, "jsonl", "s") == 12
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").split("\n") if x]
    assert len(lines) == 12
    assert all(list(x) == EXPORT_COLUMNS for x in lines)
    frame = rated.ratings_frame("s")
    for record, (_, expected) in zip(lines, frame.iterrows(), strict=True):
        for col in ("dataset", "sample_id", "config", "annotator", "rating", "tags", "comment", "submitted_at"):
            assert record[col] == expected[col]
        assert record["score"] == pytest.approx(expected["score"], abs=1e-9)
        assert (record["seconds"] is None) == pd.isna(expected["seconds"])
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        rated.export(tmp_path / "x.xml", "xml", "s")


def test_export_import_round_trip_into_a_fresh_database(rated: Store, tmp_path: Path) -> None:
    out = tmp_path / "ratings.csv"
    rated.export(out, "csv", "s")
    with Store(tmp_path / "fresh.db") as fresh:
        result = fresh.import_ratings(out, "s")
        assert (result.ratings_added, result.items_created, result.annotators_created) == (12, 6, 2)
        # The app's ratings obey the rules; the revised one ("weak_yes" with a tag) does too.
        assert result.rule_violations == 0
        pd.testing.assert_frame_equal(fresh.ratings_frame("s"), rated.ratings_frame("s"))
        before = dump(fresh.path)
        again = fresh.import_ratings(out, "s")
        assert (again.ratings_unchanged, again.ratings_added, again.ratings_updated) == (12, 0, 0)
        assert dump(fresh.path) == before
        assert all(not a["can_sign_in"] for a in fresh.annotators("s"))


def test_padded_identifiers_round_trip_to_the_same_item(store: Store, write_jsonl, tmp_path: Path) -> None:
    # The CSV reader strips identifiers; the NLE reader must too, or re-importing an export creates new items.
    line = nle("esnli", "7", "full_ft")
    store.import_nles(write_jsonl([{**line, "dataset": "esnli ", "sample_id": " 7 ", "config": " full_ft"}]), "s")
    store.add_annotator("alice", "s", code="a")
    aid = annotator_ids(store)["alice"]
    store.submit(aid, next_item(store, aid)["item_id"], "yes")
    assert store.items_frame("s")[["dataset", "sample_id", "config"]].values.tolist() == [["esnli", "7", "full_ft"]]
    out = tmp_path / "r.csv"
    store.export(out, "csv", "s")
    result = store.import_ratings(out, "s")
    assert (result.ratings_unchanged, result.items_created) == (1, 0)
    assert store.import_nles(write_jsonl([line], "b.jsonl"), "s").unchanged == 1


def test_import_back_into_the_source_changes_nothing(rated: Store, tmp_path: Path, db_path: Path) -> None:
    out = tmp_path / "ratings.csv"
    rated.export(out, "csv", "s")
    before = dump(db_path)
    result = rated.import_ratings(out, "s")
    assert result.ratings_unchanged == 12 and result.ratings_added == result.ratings_updated == 0
    assert dump(db_path) == before


# -- import-ratings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("Weak yes", "weak_yes"), ("weak-no", "weak_no"), ("WEAK_NO", "weak_no"), ("Yes ", "yes"), (" No", "no"),
    ("weak yes", "weak_yes"),
])
def test_rating_spellings_are_accepted(store: Store, tmp_path: Path, spelling: str, canonical: str) -> None:
    path = write_csv(tmp_path / "r.csv", [row(rating=spelling, tags="inaccurate" if "no" in canonical else "")])
    store.import_ratings(path, "s")
    assert store.ratings_frame("s")["rating"].tolist() == [canonical]


@pytest.mark.parametrize(("rating", "score"), [
    ("yes", "1"), ("yes", "1.0"), ("weak_yes", "2/3"), ("weak_yes", "0.6667"), ("weak_yes", "0.6666666666666666"),
    ("weak_no", "1/3"), ("weak_no", " 0.333 "), ("no", "0"), ("no", ""),
])
def test_consistent_scores_are_accepted(store: Store, tmp_path: Path, rating: str, score: str) -> None:
    path = write_csv(tmp_path / "r.csv", [row(rating=rating, score=score)])
    store.import_ratings(path, "s")
    assert store.ratings_frame("s")["rating"].tolist() == [rating]


def test_annotator_names_match_case_insensitively(store: Store, write_jsonl, tmp_path: Path) -> None:
    """A row for "Alice" is alice's rating, as sign-in treats the name; not a second, imported annotator."""
    store.import_nles(write_jsonl([nle("esnli", "g1")]), "s")
    store.add_annotator("alice", "s", code="a")
    store.import_ratings(write_csv(tmp_path / "r.csv", [row(sample_id="g1", annotator="Alice")]), "s")
    assert [a["name"] for a in store.annotators("s")] == ["alice"]
    assert store.ratings_frame("s")["annotator"].tolist() == ["alice"]
    twice = write_csv(tmp_path / "r2.csv", [row(sample_id="g1", annotator="alice"), row(sample_id="g1", annotator="ALICE")])
    with pytest.raises(InputFileError, match=r"line 3, field 'annotator': second rating of the same item by 'ALICE'"):
        store.import_ratings(twice, "s")


@pytest.mark.parametrize("overlap", ["2", "all"])
def test_items_and_annotators_are_created_from_rows(store: Store, write_jsonl, tmp_path: Path, overlap: str) -> None:
    store.import_nles(write_jsonl([nle("esnli", "g1")]), "s")
    if overlap == "all":
        overlap_all(store, "s")
    store.add_annotator("alice", "s", code="a")
    header = [*EXPORT_COLUMNS, "input", "predicted_label", "explanation"]
    path = write_csv(tmp_path / "r.csv", [
        row("g1", "alice", "yes", predicted_label="x", explanation="y"),
        row("new-1", "carol", "weak_no", tags="inaccurate", predicted_label="neutral", explanation="because so"),
        row("new-2", "carol", "no", tags="empty"),
        row("new-3", "carol", "yes", input='{"premise": "p", "hypothesis": "h"}', predicted_label="entailment",
            explanation="p says h"),
    ], header=header)
    result = store.import_ratings(path, "s")
    assert (result.items_created, result.items_not_queued, result.annotators_created, result.ratings_added) == (3, 2, 1, 4)
    items = store.items_frame("s").set_index("sample_id")
    assert items.loc["g1", "explanation"] == nle("esnli", "g1")["explanation"]  # existing item untouched
    assert (items.loc["new-1", "predicted_label"], items.loc["new-1", "explanation"]) == ("neutral", "because so")
    assert items.loc["new-1", "metadata"] == {"created_by": "import-ratings", "queued": False}
    assert items.loc["new-3", "input"] == {"premise": "p", "hypothesis": "h"}
    # Only the item whose row carried input, predicted_label and explanation joins the queues: an annotator is
    # never asked to rate a blank item.
    carol = next(a for a in store.annotators("s") if a["name"] == "carol")
    assert (carol["can_sign_in"], carol["answered"]) == (0, 3)
    alice = annotator_ids(store)["alice"]
    assert store.queue_length(alice) == 2 and store.answered_count(alice) == 1  # g1 and new-3
    assert store.ratings_frame("s", extra=True)["source"].unique().tolist() == ["import"]
    # Walking their queues, alice and (later) dave are given only the items with text: never new-1 or new-2.
    store.add_annotator("dave", "s", code="d")
    g1, new3 = int(items.loc["g1", "item_id"]), int(items.loc["new-3", "item_id"])
    given = {}
    for name in ("alice", "dave"):
        aid = annotator_ids(store)[name]
        given[name] = set()
        for pos in walk_queue(store, aid):
            item = store.annotator_item(aid, pos)["item_id"]
            given[name].add(item)
            store.submit(aid, item, "yes")
    # With k = 2, new-3 is complete (carol, alice) by the time dave asks.
    assert given == {"alice": {new3}, "dave": {g1, new3} if overlap == "all" else {g1}}


# NaN and Infinity (which Python's json reads) are no strings either: refused the same way, never stored.
@pytest.mark.parametrize("value", ['{"premise": 3}', "[1]", "{}", "not json", '{"premise": NaN}', "Infinity"])
def test_input_column_must_be_an_object_of_strings(store: Store, tmp_path: Path, value: str) -> None:
    store.create_study("s")
    path = write_csv(tmp_path / "r.csv", [row("n", "carol", input=value)], header=[*EXPORT_COLUMNS, "input"])
    with pytest.raises(InputFileError, match=r"line 2, field 'input': must be a JSON object of named strings"):
        store.import_ratings(path, "s")


def test_rule_violations_are_counted_not_enforced(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [
        row("1", rating="yes", tags="inaccurate"), row("2", rating="no"), row("3", rating="no", tags="empty;one word"),
        row("4", rating="weak_yes"),
    ])
    result = store.import_ratings(path, "s")
    assert result.ratings_added == 4 and result.rule_violations == 3
    assert result.violation_examples == [
        'line 2: Rule "no tags for Yes": an answer of "Yes" takes no shortcoming tag.',
        'line 3: Rule "tags required for No": an answer of "No" needs at least one shortcoming tag.',
        'line 4: Rule "empty is exclusive": the tag "empty" cannot be combined with other tags.',
    ]
    assert "rule violations: 3" in result.summary()


def test_reimport_with_a_change_revises_and_keeps_history(store: Store, tmp_path: Path) -> None:
    store.import_ratings(write_csv(tmp_path / "a.csv", [row("1"), row("2")]), "s")
    result = store.import_ratings(write_csv(tmp_path / "b.csv", [row("1"), row("2", rating="no", tags="empty")]), "s")
    assert (result.ratings_unchanged, result.ratings_updated, result.ratings_added) == (1, 1, 0)
    aid = annotator_ids(store)["alice"]
    item = int(store.items_frame("s").set_index("sample_id").loc["2", "item_id"])
    assert [(h["rating"], h["revision"], h["source"]) for h in store.history(aid, item)] == [
        ("yes", 1, "import"), ("no", 2, "import")]


def test_submitted_at_and_seconds_kept_as_given(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [row("1", submitted_at="2026-01-02T03:04:05Z", seconds="0"),
                                          row("2", submitted_at="", seconds=""),
                                          row("3", submitted_at="2026-01-02 03:04", seconds="1e3")])
    store.import_ratings(path, "s")
    frame = store.ratings_frame("s").set_index("sample_id")
    assert frame.loc["1", "submitted_at"] == "2026-01-02T03:04:05Z" and frame.loc["1", "seconds"] == 0
    assert frame.loc["2", "submitted_at"] > "2026" and pd.isna(frame.loc["2", "seconds"])  # import time
    assert frame.loc["3", "submitted_at"] == "2026-01-02 03:04" and frame.loc["3", "seconds"] == 1000


def test_multiline_and_separator_comments_survive(store: Store, tmp_path: Path) -> None:
    comments = ["a\r\nb", "c\rd", "e\u2028f\x85g", 'q "quoted", x']
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8", newline="") as f:  # QUOTE_ALL: the csv module leaves a bare CR unquoted
        w = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
        w.writerow(EXPORT_COLUMNS)
        w.writerows([[row(str(i), comment=c)[k] for k in EXPORT_COLUMNS] for i, c in enumerate(comments)])
    store.import_ratings(path, "s")
    assert store.ratings_frame("s")["comment"].tolist() == comments
    out = tmp_path / "export.csv"
    store.export(out, "csv", "s")  # and the export quotes them so that they come back
    with Store(tmp_path / "fresh.db") as fresh:
        fresh.import_ratings(out, "s")
        pd.testing.assert_frame_equal(fresh.ratings_frame("s"), store.ratings_frame("s"))


def test_only_required_columns(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["esnli", "1", "full_ft", "alice", "Weak no"]], header=list(RATING_COLUMNS))
    store.import_ratings(path, "s")
    frame = store.ratings_frame("s")
    assert frame[["rating", "tags", "comment"]].values.tolist() == [["weak_no", "", ""]]


def test_study_with_own_tags_accepts_them(store: Store, tmp_path: Path) -> None:
    store.create_study("mine", tags=["vague", "wrong"], rules={"exclusive_tags": []})
    path = write_csv(tmp_path / "r.csv", [row("1", rating="no", tags="vague;wrong")])
    store.import_ratings(path, "mine")
    assert store.ratings_frame("mine")["tags"].tolist() == ["vague;wrong"]
    with pytest.raises(InputFileError, match="unknown shortcoming tag 'inaccurate'"):
        store.import_ratings(write_csv(tmp_path / "s.csv", [row("2", rating="no", tags="inaccurate")]), "mine")


# -- rejection of bad ratings files --------------------------------------------------------------------------------


def _raw(fields: list[str]) -> str:
    return ",".join(fields)


GOOD = [row("g1"), row("g2", "bob", "no", tags="empty")]
BAD_ROWS: list[tuple[str, dict[str, str] | str | bytes, str]] = [
    ("unknown-rating", row("b", rating="maybe"), ", field 'rating': unknown rating 'maybe'"),
    ("score-mismatch", row("b", rating="no", tags="empty", score="1"),
     ", field 'score': 1.0 does not match rating 'no' (expected 0.0000)"),
    ("score-2/3-for-yes", row("b", score="2/3"), ", field 'score': 0.6666666666666666 does not match rating 'yes'"),
    ("score-text", row("b", score="high"), ", field 'score': not a number: 'high'"),
    ("score-div-zero", row("b", score="1/0"), ", field 'score': not a number: '1/0'"),
    ("score-overflow", row("b", score="1e400"), ", field 'score': not a number: '1e400'"),
    ("unknown-tag", row("b", rating="no", tags="empty;bogus"), ", field 'tags': unknown shortcoming tag 'bogus'"),
    ("seconds-text", row("b", seconds="soon"), ", field 'seconds': not a number: 'soon'"),
    ("seconds-negative", row("b", seconds="-1"), ", field 'seconds': must be a non-negative number"),
    ("seconds-nan", row("b", seconds="nan"), ", field 'seconds': must be a non-negative number"),
    ("seconds-inf", row("b", seconds="inf"), ", field 'seconds': must be a non-negative number"),
    ("submitted_at-text", row("b", submitted_at="yesterday"),
     ", field 'submitted_at': not an ISO 8601 timestamp: 'yesterday'"),
    ("submitted_at-bad-date", row("b", submitted_at="2026-13-45"), ", field 'submitted_at': not an ISO 8601 timestamp"),
    *[(f"empty-{c}", {**row("b"), c: " "}, f", field '{c}': must not be empty") for c in RATING_COLUMNS],
    ("too-few-columns", "esnli,b,full_ft,alice,yes", ": expected 10 columns, found 5"),
    ("too-many-columns", _raw(list(row("b").values()) + ["extra"]), ": expected 10 columns, found 11"),
    ("duplicate-row", row("g1", rating="no", tags="empty"),
     ", field 'annotator': second rating of the same item by 'alice' (first on line 2)"),
    ("duplicate-row-spaced", row(" g1 ", annotator=" alice"),
     ", field 'annotator': second rating of the same item by 'alice' (first on line 2)"),
    ("invalid-utf8", _raw(list(row("b").values())).encode().replace(b"alice", b"al\xffice"),
     ": invalid UTF-8 (byte 0xff)"),
    ("huge-line", row("b", comment="x" * 1_000_001), ": line is longer than 1,000,000 characters"),
    ("bad-quoting", _raw(list(row("b", comment='"x"y').values())), ": invalid CSV ("),
    ("other-studys-annotator", row("b", annotator="olga"), ", field 'annotator': annotator 'olga' belongs to another study"),
]


@pytest.fixture
def seeded(store: Store, write_jsonl, tmp_path: Path) -> Store:
    """Study "s" with app ratings and an imported rating; study "t" with annotator olga."""
    store.import_nles(write_jsonl([nle("esnli", "g1"), nle("esnli", "x")], "seed.jsonl"), "s")
    store.import_nles(write_jsonl([nle("esnli", "t1")], "t.jsonl"), "t")
    store.add_annotator("alice", "s", code="a")
    store.add_annotator("olga", "t", code="o")
    aid = annotator_ids(store)["alice"]
    store.submit(aid, next_item(store, aid)["item_id"], "no", ["empty"], "seed")
    store.import_ratings(write_csv(tmp_path / "seed.csv", [row("x", "bob", "weak_yes")]), "s")
    return store


def _write_rows(path: Path, rows: list[dict[str, str] | str | bytes]) -> Path:
    out = [",".join(EXPORT_COLUMNS).encode()]
    for r in rows:
        if isinstance(r, dict):
            buf = __import__("io").StringIO()
            csv.writer(buf, lineterminator="").writerow([r[c] for c in EXPORT_COLUMNS])
            r = buf.getvalue()
        out.append(r if isinstance(r, bytes) else r.encode())
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


@pytest.mark.parametrize(("bad", "expected"), [pytest.param(b, e, id=i) for i, b, e in BAD_ROWS])
def test_bad_ratings_file_is_rejected_whole(seeded: Store, db_path: Path, tmp_path: Path,
                                            bad: dict | str | bytes, expected: str) -> None:
    path = _write_rows(tmp_path / "bad.csv", [GOOD[0], bad, GOOD[1]])
    before, before_hash = dump(db_path), file_hash(seeded)
    with pytest.raises(InputFileError) as info:
        seeded.import_ratings(path, "s")
    message = str(info.value)
    assert f"{path}, line 3{expected}" in message
    assert "\n" not in message
    assert dump(db_path) == before and file_hash(seeded) == before_hash


@pytest.mark.parametrize("column", RATING_COLUMNS)
def test_missing_required_column_names_it_on_line_1(seeded: Store, db_path: Path, tmp_path: Path, column: str) -> None:
    header = [c for c in EXPORT_COLUMNS if c != column]
    path = write_csv(tmp_path / "r.csv", [row()], header=header)
    before = dump(db_path)
    with pytest.raises(InputFileError) as info:
        seeded.import_ratings(path, "s")
    assert str(info.value) == f"{path}, line 1, field '{column}': required column is missing from the header"
    assert dump(db_path) == before


@pytest.mark.parametrize(("content", "expected"), [
    (b"", ": file is empty; expected a header row"),
    ((",".join(EXPORT_COLUMNS) + "\n").encode(), ": file holds no rating rows"),
    ((",".join(EXPORT_COLUMNS) + ",rating\n").encode(), ", line 1, field 'rating': column appears twice in the header"),
    ((",".join(EXPORT_COLUMNS) + '\nesnli,1,full_ft,alice,yes,,,"never closed\n\n').encode(),
     ", line 3: invalid CSV (unexpected end of data)"),
    (None, ": file not found"),
])
def test_bad_ratings_file_shapes(seeded: Store, db_path: Path, tmp_path: Path, content: bytes | None,
                                 expected: str) -> None:
    path = tmp_path / "r.csv"
    if content is not None:
        path.write_bytes(content)
    before = dump(db_path)
    with pytest.raises(InputFileError) as info:
        seeded.import_ratings(path, "s")
    assert str(info.value) == f"{path}{expected}"
    assert dump(db_path) == before


def test_line_numbers_count_physical_lines_after_multiline_fields(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [row("1", comment="one\ntwo\nthree"), row("2", rating="maybe")])
    with pytest.raises(InputFileError) as info:
        store.import_ratings(path, "s")
    assert f"{path}, line 5, field 'rating'" in str(info.value)


# -- parsers on their own ------------------------------------------------------------------------------------------


def test_read_nle_file_returns_records_in_order(write_jsonl) -> None:
    records = read_nle_file(write_jsonl([nle("esnli", "2"), nle("sbic", 1, custom="kept")]))
    assert [(r.dataset, r.sample_id, r.line) for r in records] == [("esnli", "2", 1), ("sbic", "1", 2)]
    assert records[1].metadata == {"custom": "kept"} and records[1].key == ("sbic", "1", "full_ft")


def test_read_ratings_csv_parses_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [row("1", rating="Weak no", tags=" inaccurate ; one word ;", seconds="2")])
    (parsed,) = read_ratings_csv(path, DEFAULT_TAGS)
    assert (parsed.rating, parsed.tags, parsed.seconds, parsed.submitted_at, parsed.line) == (
        "weak_no", ["inaccurate", "one word"], 2.0, TS, 2)
