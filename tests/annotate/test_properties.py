"""Hypothesis properties: malformed NLE JSONL and ratings CSV always give a one-line InputFileError naming the file
and line (and field) and leave the database unchanged; ratings survive export -> import-ratings exactly."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from annotate.cli import main
from annotate.core.errors import InputFileError
from annotate.core.formats import REQUIRED_KEYS
from annotate.core.scale import DEFAULT_TAGS, RATINGS, normalize_rating, score
from annotate.core.spreadsheet import FORMULA_STARTS
from annotate.core.store import EXPORT_COLUMNS, Store
from tests.helpers import dump, next_item, nle, overlap_all

# The database fixture is shared by the examples of one test on purpose: a rejected file must leave it unchanged.
# NLE_HYPOTHESIS_SCALE=10 runs ten times as many examples (a longer soak than CI's).
SCALE = float(os.environ.get("NLE_HYPOTHESIS_SCALE", "1"))
PROPERTY = settings(max_examples=int(150 * SCALE), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])




@pytest.fixture
def seeded(store: Store, write_jsonl) -> Store:
    """Study "s" with items, an annotator, an app rating and an imported rating."""
    store.import_nles(write_jsonl([nle("esnli", "g1"), nle("esnli", "old")], "seed.jsonl"), "s", with_gold=True)
    store.add_annotator("alice", "s", code="alice-code")
    aid = store.authenticate("alice", "alice-code")["id"]
    store.submit(aid, next_item(store, aid)["item_id"], "weak_no", ["inaccurate"], "seed", 4.0)
    return store


def check_rejection(exc: InputFileError, path: Path, line: int | None, field: str | None = None) -> None:
    """The error is one line that names the file, the line and (where known) the field."""
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    where = f"{path}, line {line}" if line is not None else f"{path}, line "
    assert message.startswith(where), message
    if field is not None:
        assert f", field '{field}" in message, message


# -- malformed NLE JSONL -----------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _is_str_or_strs(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))


# What each field accepts; a value failing the predicate must be rejected naming that field.
ACCEPTS = {
    "dataset": lambda v: isinstance(v, str) and bool(v.strip()),
    "config": lambda v: isinstance(v, str) and bool(v.strip()),
    "sample_id": lambda v: (isinstance(v, str) and bool(v.strip())) or (isinstance(v, int) and not isinstance(v, bool)),
    "input": lambda v: isinstance(v, dict) and bool(v) and all(_is_str_or_strs(x) for x in v.values()),
    "predicted_label": lambda v: isinstance(v, str),
    "explanation": lambda v: isinstance(v, str),
    "model": lambda v: v is None or isinstance(v, str),
    "gold_label": lambda v: v is None or isinstance(v, str),
    "prompt": lambda v: v is None or isinstance(v, str),
    "study": lambda v: v is None or v == "s",
    "split_seed": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63),
    "gold_explanations": lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
}
BASE = nle("esnli", "bad")


@st.composite
def wrong_field(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A line whose one field has a value the format refuses; returns (line, field)."""
    key = draw(st.sampled_from(sorted(ACCEPTS)))
    value = draw(st.one_of(JSON_VALUES, st.integers(min_value=2**63, max_value=2**80), st.just({"k": 1}))
                 .filter(lambda v: not ACCEPTS[key](v)))
    return json.dumps({**BASE, key: value}).encode(), key


@st.composite
def missing_field(draw: st.DrawFn) -> tuple[bytes, str | None]:
    key = draw(st.sampled_from(REQUIRED_KEYS))
    return json.dumps({k: v for k, v in BASE.items() if k != key}).encode(), key


@st.composite
def duplicate_key(draw: st.DrawFn) -> tuple[bytes, str | None]:
    key = draw(st.sampled_from(sorted(BASE)))
    value = draw(JSON_VALUES)
    return ('{"' + key + '": ' + json.dumps(value) + ", " + json.dumps(BASE)[1:]).encode(), key


@st.composite
def invalid_utf8(draw: st.DrawFn) -> tuple[bytes, str | None]:
    good = json.dumps(BASE, ensure_ascii=False).encode()
    at = draw(st.integers(0, len(good)))
    junk = draw(st.sampled_from([b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                                 b"\xc0\xaf"]))
    return good[:at] + junk + good[at:], None


@st.composite
def lone_surrogate(draw: st.DrawFn) -> tuple[bytes, str | None]:
    key = draw(st.sampled_from(["explanation", "predicted_label", "dataset", "extra"]))
    code = draw(st.integers(0xD800, 0xDFFF))
    return json.dumps({**BASE, key: "x"}).replace('"x"', f'"a\\u{code:04x}b"', 1).encode(), key


@st.composite
def huge_line(draw: st.DrawFn) -> tuple[bytes, str | None]:
    extra = draw(st.integers(1, 50))
    return json.dumps({**BASE, "explanation": "x" * (1_000_000 + extra)}).encode(), None


def no_newline(b: bytes) -> bytes:
    return b.replace(b"\n", b" ")


STRUCTURED_NLE = st.one_of(wrong_field(), missing_field(), duplicate_key(), invalid_utf8(), lone_surrogate(),
                           huge_line())
RANDOM_LINE = st.one_of(st.binary(max_size=300).map(no_newline),
                        st.text(max_size=300).map(lambda t: no_newline(t.encode("utf-8"))),
                        st.just(b"{}"), st.just(b"[]"), st.just(b"{"))


def nle_file(path: Path, bad: bytes) -> Path:
    good = [json.dumps(nle(ds, f"h{i}")).encode() for i, ds in enumerate(["esnli", "ecqa", "sbic", "comve"])]
    path.write_bytes(b"\n".join([*good[:2], bad, *good[2:]]) + b"\n")
    return path


@PROPERTY
@given(case=STRUCTURED_NLE)
def test_malformed_nle_line_is_always_a_clear_error(seeded: Store, tmp_path: Path, case: tuple[bytes, str | None]) -> None:
    bad, field = case
    path = nle_file(tmp_path / "bad.jsonl", bad)
    before = dump(seeded.path)
    with pytest.raises(InputFileError) as info:
        seeded.import_nles(path, "s")
    check_rejection(info.value, path, 3, field)
    assert dump(seeded.path) == before


@PROPERTY
@given(bad=RANDOM_LINE)
def test_random_nle_line_is_an_error_or_harmless(seeded: Store, tmp_path: Path, bad: bytes) -> None:
    path = nle_file(tmp_path / "random.jsonl", bad)
    before = dump(seeded.path)
    try:
        seeded.import_nles(path, "s")
    except InputFileError as exc:
        event("rejected")
        check_rejection(exc, path, 3)
        assert dump(seeded.path) == before
    else:
        # Only a blank line (str.strip() counts \x1c-\x1f as blank too) or a valid NLE may pass.
        event("accepted")
        assert not bad.decode("utf-8").strip() or json.loads(bad)["dataset"]


@PROPERTY
@given(content=st.binary(max_size=500) | st.text(max_size=500).map(lambda t: t.encode("utf-8")))
def test_random_nle_file_never_raises_anything_else(seeded: Store, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "random.jsonl"
    path.write_bytes(content)
    before = dump(seeded.path)
    with pytest.raises(InputFileError) as info:  # no random file of this size is a valid NLE file
        seeded.import_nles(path, "s")
    message = str(info.value)
    assert message.startswith(f"{path}") and "\n" not in message
    assert dump(seeded.path) == before


@settings(PROPERTY, max_examples=int(60 * SCALE))
@given(case=STRUCTURED_NLE | RANDOM_LINE.map(lambda b: (b, None)))
def test_cli_import_of_malformed_file_is_one_line_exit_2(seeded: Store, tmp_path: Path,
                                                         case: tuple[bytes, str | None]) -> None:
    bad, _ = case
    path = nle_file(tmp_path / "cli.jsonl", bad)
    before = dump(seeded.path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["import", str(path), "--db", seeded.path, "--study", "s"])
    if rc == 0:
        assert not bad.decode("utf-8").strip() or json.loads(bad)  # only a harmless random line passes
        return
    text = err.getvalue()
    assert rc == 2 and out.getvalue() == ""
    assert text.startswith(f"error: {path}, line 3") and text.count("\n") == 1 and "Traceback" not in text
    assert dump(seeded.path) == before


# -- malformed ratings CSV ---------------------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)


def _bad_rating(v: str) -> bool:
    try:
        normalize_rating(v)
    except ValueError:
        return bool(v.strip())
    return False


def _bad_score_for_yes(v: str) -> bool:
    try:
        return not math.isclose(float(Fraction(v.strip())), 1.0, abs_tol=1e-3)
    except (ValueError, ZeroDivisionError, OverflowError):
        return True


def _bad_tags(v: str) -> bool:
    return any(t.strip() and t.strip() not in DEFAULT_TAGS for t in v.split(";"))


def _bad_seconds(v: str) -> bool:
    try:
        x = float(v)
    except ValueError:
        return True
    return not math.isfinite(x) or x < 0


def _bad_timestamp(v: str) -> bool:
    try:
        datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        return True
    return False


RATING_ROW = {"dataset": "esnli", "sample_id": "bad", "config": "full_ft", "annotator": "zoe", "rating": "yes",
              "score": "1", "tags": "", "comment": "c", "seconds": "1.5", "submitted_at": "2026-01-01T00:00:00+00:00"}
FIELD_VALUES = {
    "rating": TEXT.filter(_bad_rating),
    "score": TEXT.filter(lambda v: bool(v.strip()) and _bad_score_for_yes(v)),
    "tags": TEXT.filter(_bad_tags),
    "seconds": (TEXT | st.floats(max_value=-1e-9).map(repr)).filter(lambda v: bool(v.strip()) and _bad_seconds(v)),
    "submitted_at": TEXT.filter(lambda v: bool(v.strip()) and _bad_timestamp(v)),
    **{c: st.text(" \t", max_size=3) for c in ("dataset", "sample_id", "config", "annotator")},
}


def csv_line(values: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue().encode("utf-8")


@st.composite
def bad_rating_row(draw: st.DrawFn) -> tuple[bytes, str | None]:
    key = draw(st.sampled_from(sorted(FIELD_VALUES)))
    row = {**RATING_ROW, key: draw(FIELD_VALUES[key])}
    return csv_line([row[c] for c in EXPORT_COLUMNS]), key


@st.composite
def wrong_column_count(draw: st.DrawFn) -> tuple[bytes, str | None]:
    n = draw(st.integers(1, 15).filter(lambda k: k != len(EXPORT_COLUMNS)))
    return csv_line([draw(st.from_regex(r"[a-z0-9 ,;\"]{0,7}[a-z]", fullmatch=True)) for _ in range(n)]), None


@st.composite
def csv_invalid_utf8(draw: st.DrawFn) -> tuple[bytes, str | None]:
    good = csv_line([RATING_ROW[c] for c in EXPORT_COLUMNS])
    at = draw(st.integers(0, len(good)))
    return good[:at] + draw(st.sampled_from([b"\xff", b"\x80", b"\xc3(", b"\xed\xa0\x80"])) + good[at:], None


@st.composite
def duplicate_rating(draw: st.DrawFn) -> tuple[bytes, str | None]:
    rating = draw(st.sampled_from(RATINGS))
    pad = draw(st.sampled_from(["", " ", "  "]))
    row = {**RATING_ROW, "sample_id": pad + "h0", "annotator": "alice" + pad, "rating": rating, "score": "",
           "tags": "" if rating == "yes" else "empty"}
    return csv_line([row[c] for c in EXPORT_COLUMNS]), "annotator"


def ratings_file(path: Path, bad: bytes) -> Path:
    good = [csv_line([{**RATING_ROW, "sample_id": f"h{i}", "annotator": "alice"}[c] for c in EXPORT_COLUMNS])
            for i in range(4)]
    path.write_bytes(b"\n".join([",".join(EXPORT_COLUMNS).encode(), *good[:1], bad, *good[1:]]) + b"\n")
    return path


STRUCTURED_CSV = st.one_of(bad_rating_row(), wrong_column_count(), csv_invalid_utf8(), duplicate_rating())


@PROPERTY
@given(case=STRUCTURED_CSV)
def test_malformed_ratings_row_is_always_a_clear_error(seeded: Store, tmp_path: Path,
                                                       case: tuple[bytes, str | None]) -> None:
    bad, field = case
    path = ratings_file(tmp_path / "bad.csv", bad)
    before = dump(seeded.path)
    with pytest.raises(InputFileError) as info:
        seeded.import_ratings(path, "s")
    check_rejection(info.value, path, 3, field)
    assert dump(seeded.path) == before


@PROPERTY
@given(bad=RANDOM_LINE)
def test_random_ratings_line_is_an_error_or_harmless(seeded: Store, tmp_path: Path, bad: bytes) -> None:
    path = ratings_file(tmp_path / "random.csv", bad)
    before = dump(seeded.path)
    try:
        seeded.import_ratings(path, "s")
    except InputFileError as exc:
        event("rejected")
        check_rejection(exc, path, None)
        # A stray quote may swallow the lines after it, so the error can come later, never earlier.
        assert int(re.match(rf"{re.escape(str(path))}, line (\d+)", str(exc)).group(1)) >= 3
        assert dump(seeded.path) == before
    else:
        event("accepted")  # only an empty record may pass
        assert all(not v.strip() for r in csv.reader(io.StringIO(bad.decode("utf-8"), newline="")) for v in r)


@PROPERTY
@given(content=st.binary(max_size=500) | st.text(max_size=500).map(lambda t: t.encode("utf-8")))
def test_random_ratings_file_never_raises_anything_else(seeded: Store, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "random.csv"
    path.write_bytes(content)
    before = dump(seeded.path)
    with pytest.raises(InputFileError) as info:
        seeded.import_ratings(path, "s")
    message = str(info.value)
    assert message.startswith(f"{path}") and "\n" not in message
    assert dump(seeded.path) == before


@settings(PROPERTY, max_examples=int(60 * SCALE))
@given(case=STRUCTURED_CSV)
def test_cli_import_ratings_of_malformed_file_is_one_line_exit_2(seeded: Store, tmp_path: Path,
                                                                 case: tuple[bytes, str | None]) -> None:
    path = ratings_file(tmp_path / "cli.csv", case[0])
    before = dump(seeded.path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["import-ratings", str(path), "--db", seeded.path, "--study", "s"])
    text = err.getvalue()
    assert rc == 2 and out.getvalue() == ""
    assert text.startswith(f"error: {path}, line 3") and text.count("\n") == 1 and "Traceback" not in text
    assert dump(seeded.path) == before


# -- ratings round trip ------------------------------------------------------------------------------------------------

ANNOTATORS = ("alice", "bob", "Émile")
N_ITEMS = 6


@pytest.fixture
def template(tmp_path: Path, write_jsonl) -> Store:
    """Study "s" with every tag allowed with every answer, items with awkward ids, three annotators."""
    store = Store(tmp_path / "template.db")
    store.create_study("s", rules={"no_tags_for": [], "tags_required_for": [], "exclusive_tags": []})
    # Ids a spreadsheet would read as formulas, or that start with the escape quote, must round-trip too.
    ids = ["1", "-007", "=a,b", 'q"uote', "@ünï", "'+x y"]
    store.import_nles(write_jsonl([nle(["esnli", "ecqa", "sbic"][i % 3], sid, ["full_ft", "att_q+layer_norm"][i % 2])
                                   for i, sid in enumerate(ids)]), "s")
    overlap_all(store, "s")  # the examples draw any (annotator, queue position) pair
    for name in ANNOTATORS:
        store.add_annotator(name, "s", code=f"code-{len(name)}")
    yield store
    store.close()


ANSWERS = st.lists(
    st.tuples(
        st.integers(0, len(ANNOTATORS) - 1),
        st.integers(0, N_ITEMS - 1),
        st.sampled_from(RATINGS),
        st.lists(st.sampled_from(DEFAULT_TAGS), unique=True, max_size=4),
        st.one_of(st.text(max_size=40), st.sampled_from(['a, "quoted" comment', "two\nlines", "cr\ronly", "crlf\r\n",
                                                           "semi;colon", "\u2028\x85\x00", "  "]),
                  # What a spreadsheet would evaluate, and text that already starts with the escape quote.
                  st.tuples(st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "'=", "''", "'\t"]),
                            st.text(max_size=20)).map("".join),
                  st.sampled_from(['=cmd|" /C calc"!A0', "=HYPERLINK(\"http://x\")", "-1+1", "@SUM(A1)"])),
        st.none() | st.floats(min_value=0, max_value=1e7, allow_nan=False) | st.integers(0, 10_000).map(float),
    ),
    min_size=1, max_size=12,
)


@settings(PROPERTY, max_examples=int(100 * SCALE))
@given(answers=ANSWERS)
def test_export_import_round_trip_property(template: Store, tmp_path: Path, answers: list) -> None:
    with Store(":memory:") as src, Store(":memory:") as fresh:
        template.conn.backup(src.conn)
        ids = {a["name"]: a["id"] for a in src.annotators()}
        for who, pos, rating, tags, comment, seconds in answers:  # a repeat is a revision: the latest counts
            aid = ids[ANNOTATORS[who]]
            src.submit(aid, src.annotator_item(aid, pos)["item_id"], rating, tags, comment, seconds)
        out = tmp_path / "export.csv"
        n = src.export(out, "csv", "s")
        with out.open(newline="", encoding="utf-8") as f:
            cells = [c for row in csv.reader(f) for c in row]
        assert not any(c.startswith(FORMULA_STARTS) for c in cells)  # nothing a spreadsheet would evaluate
        result = fresh.import_ratings(out, "s")
        expected = src.ratings_frame("s")
        assert n == len(expected) == result.ratings_added
        got = fresh.ratings_frame("s")
        pd.testing.assert_frame_equal(got, expected)
        assert got["score"].tolist() == [score(r) for r in got["rating"]]
        again = fresh.import_ratings(out, "s")
        assert again.ratings_unchanged == n and again.ratings_added == again.ratings_updated == 0
