"""Parsing and validation of the two input files: NLE JSONL (from generation) and ratings CSV.

Both parsers read the whole file and raise `InputFileError` on the first bad line, so callers can
reject the file before touching the database.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from annotate.core.auth import name_key
from annotate.core.errors import InputFileError
from annotate.core.limits import MAX_COMMENT_CHARS  # the readers cap comments as the app and the store do
from annotate.core.scale import RATINGS, normalize_rating, score
from annotate.core.spreadsheet import unescape_cell

MAX_LINE_CHARS = 1_000_000
MAX_METRIC_NAME_CHARS = 100  # a label in the report's tables, not a text

REQUIRED_KEYS = ("dataset", "sample_id", "config", "input", "predicted_label", "explanation")
OPTIONAL_KEYS = ("model", "split_seed", "gold_label", "gold_explanations", "prompt", "study", "expected_rating",
                 "metrics")

RATING_COLUMNS = ("dataset", "sample_id", "config", "annotator", "rating")
OPTIONAL_RATING_COLUMNS = ("score", "tags", "comment", "seconds", "submitted_at", "input", "predicted_label",
                           "explanation")


@dataclass
class NLE:
    """One explanation to rate, as imported from a JSONL line."""

    dataset: str
    sample_id: str
    config: str
    input: dict[str, Any]
    predicted_label: str
    explanation: str
    model: str | None = None
    split_seed: int | None = None
    gold_label: str | None = None
    gold_explanations: list[str] | None = None
    prompt: str | None = None
    study: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    # An attention check: the answers that pass it (canonical ratings); None for an ordinary item.
    expected_rating: tuple[str, ...] | None = None
    # Automatic metric scores of the item by name (the file's `metrics` object); never shown to annotators.
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dataset, self.sample_id, self.config)


@dataclass
class RatingRow:
    """One rating from a ratings CSV (the export's columns)."""

    dataset: str
    sample_id: str
    config: str
    annotator: str
    rating: str
    tags: list[str]
    comment: str
    seconds: float | None
    submitted_at: str | None
    predicted_label: str | None = None
    explanation: str | None = None
    line: int = 0
    input: dict[str, Any] | None = None

    @property
    def has_content(self) -> bool:
        """Whether the row carries everything an annotator needs to rate its item: input, label, explanation."""
        return bool(self.input) and bool(self.predicted_label) and bool(self.explanation)


def _decode_lines(path: Path, data: bytes | None = None) -> list[str]:
    """Read a file as UTF-8 and split it at '\\n' only (str.splitlines would also split inside a JSON string
    at U+2028, U+0085 and other characters that JSON allows raw)."""
    return [line[:-1] if line.endswith("\r") else line for line in _decode_text(path, data).split("\n")]


def _decode_text(path: Path, data: bytes | None = None) -> str:
    """Read a file (or `data`, an upload named `path`) as UTF-8, naming the line of the first undecodable byte."""
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputFileError(path, None, None, "file not found") from None
        except OSError as exc:
            raise InputFileError(path, None, None, f"cannot read file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputFileError(path, line, None, f"invalid UTF-8 (byte 0x{data[exc.start]:02x})") from None
    return text


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _nonempty_str(path: Path, line: int, obj: dict, key: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise InputFileError(path, line, key, f"must be a non-empty string, got {_describe(value)}")
    return value


def _one_line(text: str) -> str:
    """Text from a file as it may appear in a one-line error message (control characters escaped)."""
    return text if text.isprintable() else repr(text)[1:-1]


def _has_surrogate(value: Any) -> bool:
    # JSON escapes such as "\\ud800" decode to lone surrogates, which SQLite (UTF-8) cannot store.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


class _NonFinite:
    """A NaN, Infinity, -Infinity or out-of-range number (1e999) read from a JSON line, held until its field is
    known. Python's json reads them, but JSON has no such values, and SQLite's JSON functions call the stored text
    malformed."""

    def __init__(self, text: str) -> None:
        self.text = text


def _non_finite_field(obj: Any) -> tuple[str, str] | None:
    """(field path such as 'input.premise' or 'scores[2]', the number as written) of the first _NonFinite in `obj`;
    walked with a stack, since the line may be nested as deeply as the parser allows."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _NonFinite):
            return where, value.text
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}" if where else k, v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return None


def _load_json_object(path: Path, line: int, text: str) -> dict[str, Any]:
    """The line's JSON object, with duplicate keys, bad JSON, NaN/Infinity and lone surrogates refused."""
    found: list[_NonFinite] = []

    def non_finite(number: str) -> _NonFinite:
        found.append(_NonFinite(number))
        return found[-1]

    def finite_float(number: str) -> float | _NonFinite:
        value = float(number)
        return value if math.isfinite(value) else non_finite(number)

    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=non_finite,
                         parse_float=finite_float)
    except _DuplicateKey as dup:
        raise InputFileError(path, line, _one_line(dup.key), "key appears twice in the same object") from None
    except (ValueError, RecursionError) as exc:
        # Plain ValueError: an integer longer than Python's int_max_str_digits (4300 digits).
        msg = (exc.msg if isinstance(exc, json.JSONDecodeError)
               else "nested too deeply" if isinstance(exc, RecursionError) else "number too long")
        raise InputFileError(path, line, None, f"invalid JSON ({msg})") from None
    if found:
        field, number = _non_finite_field(obj) or ("", found[0].text)
        raise InputFileError(path, line, _one_line(field) or None,
                             f"{_one_line(number[:40])} is not a finite number, and JSON has no NaN or Infinity: "
                             "write a finite number, null or a string")
    if not isinstance(obj, dict):
        raise InputFileError(path, line, None, f"expected a JSON object, got {_describe(obj)}")
    for key, value in obj.items():
        try:
            bad_text = _has_surrogate(key) or _has_surrogate(value)
        except RecursionError:  # parsed just under the nesting limit, but one call deeper is over it
            raise InputFileError(path, line, None, "invalid JSON (nested too deeply)") from None
        if bad_text:
            raise InputFileError(path, line, _one_line(key.encode("utf-8", "backslashreplace").decode()),
                                 "contains an unpaired surrogate escape (\\ud800-\\udfff); text must be valid Unicode")
    return obj


def _check_identity(path: Path, line: int, obj: dict[str, Any]) -> tuple[str, str, str]:
    """(dataset, sample_id, config) of a line, every field present and well typed."""
    for key in REQUIRED_KEYS:
        if key not in obj:
            raise InputFileError(path, line, key, "required field is missing")
    dataset = _nonempty_str(path, line, obj, "dataset")
    config = _nonempty_str(path, line, obj, "config")
    sample_id = obj["sample_id"]
    if isinstance(sample_id, bool) or not isinstance(sample_id, (str, int)) or str(sample_id).strip() == "":
        raise InputFileError(path, line, "sample_id", f"must be a non-empty string or an integer, got {_describe(sample_id)}")
    # Identity parts are stripped, as the ratings CSV strips them: an export -> import-ratings round trip
    # must find the same item, not create a second one without its padding.
    return dataset.strip(), str(sample_id).strip(), config.strip()


def _check_content(path: Path, line: int, obj: dict[str, Any]) -> None:
    """Input fields, texts and the optional fields have the documented types."""
    inp = obj["input"]
    if not isinstance(inp, dict) or not inp:
        raise InputFileError(path, line, "input", f"must be a non-empty object of named strings, got {_describe(inp)}")
    for name, value in inp.items():
        ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not ok:
            raise InputFileError(path, line, f"input.{_one_line(name)}", f"must be a string or a list of strings, got {_describe(value)}")
    for key in ("predicted_label", "explanation"):
        if not isinstance(obj[key], str):
            raise InputFileError(path, line, key, f"must be a string, got {_describe(obj[key])}")
    for key in ("model", "gold_label", "prompt", "study"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise InputFileError(path, line, key, f"must be a string, got {_describe(obj[key])}")
    seed = obj.get("split_seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InputFileError(path, line, "split_seed", f"must be an integer, got {_describe(seed)}")
    if seed is not None and not -(2**63) <= seed < 2**63:
        raise InputFileError(path, line, "split_seed", "must fit in a signed 64-bit integer")
    gold = obj.get("gold_explanations")
    if gold is not None and (not isinstance(gold, list) or not all(isinstance(g, str) for g in gold)):
        raise InputFileError(path, line, "gold_explanations", f"must be a list of strings, got {_describe(gold)}")


def parse_nle_line(path: Path, line: int, text: str) -> NLE | None:
    """Validate one JSONL line; None for a blank line."""
    if len(text) > MAX_LINE_CHARS:
        raise InputFileError(path, line, None, f"line is longer than {MAX_LINE_CHARS:,} characters")
    if not text.strip():
        return None
    obj = _load_json_object(path, line, text)
    dataset, sample_id, config = _check_identity(path, line, obj)
    _check_content(path, line, obj)
    known = set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
    return NLE(
        dataset=dataset, sample_id=sample_id, config=config, input=obj["input"],
        predicted_label=obj["predicted_label"], explanation=obj["explanation"], model=obj.get("model"),
        split_seed=obj.get("split_seed"), gold_label=obj.get("gold_label"),
        gold_explanations=obj.get("gold_explanations"), prompt=obj.get("prompt"), study=obj.get("study"),
        metadata={k: v for k, v in obj.items() if k not in known}, line=line,
        expected_rating=_expected_rating(path, line, obj.get("expected_rating")),
        metrics=_metrics(path, line, obj.get("metrics")),
    )


def _metrics(path: Path, line: int, value: Any) -> dict[str, float]:
    """The optional `metrics` object: printable names without surrounding spaces, finite numbers as values.
    (NaN and Infinity never get here: the JSON reader refuses them with the field's path.)"""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputFileError(path, line, "metrics", f"must be an object of named numbers, got {_describe(value)}")
    out: dict[str, float] = {}
    for name, number in value.items():
        if not name.strip():
            raise InputFileError(path, line, "metrics", "a metric's name must be a non-empty string")
        if len(name) > MAX_METRIC_NAME_CHARS:
            raise InputFileError(path, line, "metrics", f"metric name {_one_line(name[:40])}... is longer than "
                                 f"{MAX_METRIC_NAME_CHARS} characters")
        if not name.isprintable() or name != name.strip():
            raise InputFileError(path, line, "metrics", f"metric name {name!r} must be printable, without control "
                                 "characters or surrounding spaces")
        where = f"metrics.{name}"
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise InputFileError(path, line, where, f"must be a number, got {_describe(number)}")
        try:
            out[name] = float(number)
        except OverflowError:  # an integer beyond a double's range
            raise InputFileError(path, line, where, "is too large to be a finite number") from None
    return out


def _expected_rating(path: Path, line: int, value: Any) -> tuple[str, ...] | None:
    """An attention check's accepted answers: one rating or a non-empty list of them, spelled as anywhere else."""
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InputFileError(path, line, "expected_rating", "must be a rating or a non-empty list of ratings")
    try:
        ratings = {normalize_rating(v) for v in values}
    except ValueError as exc:
        raise InputFileError(path, line, "expected_rating", str(exc)) from None
    return tuple(r for r in RATINGS if r in ratings)


def read_nle_file(path: str | Path, data: bytes | None = None) -> list[NLE]:
    """Parse and validate a whole NLE JSONL file (or `data`, an upload named `path`); raises InputFileError
    naming file, line and field."""
    path = Path(path)
    records: list[NLE] = []
    seen: dict[tuple[str, str, str], NLE] = {}
    for number, text in enumerate(_decode_lines(path, data), start=1):
        record = parse_nle_line(path, number, text)
        if record is None:
            continue
        earlier = seen.get(record.key)
        if earlier is not None:
            if (earlier.explanation, earlier.input, earlier.predicted_label) != (
                record.explanation,
                record.input,
                record.predicted_label,
            ):
                raise InputFileError(
                    path, number, "sample_id",
                    f"{record.key!r} already appears on line "
                    f"{earlier.line} with different content",
                )
            if earlier.metrics != record.metrics:
                raise InputFileError(path, number, "metrics", f"{record.key!r} already appears on line "
                                     f"{earlier.line} with other metric scores")
            continue
        seen[record.key] = record
        records.append(record)
    if not records:
        raise InputFileError(path, None, None, "file holds no NLE lines")
    return records


def _parse_submitted_at(path: Path, line: int, value: str) -> str | None:
    if not value:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Kept as written: re-formatting (e.g. ".123" -> ".123000") would make an export/import round trip differ.
        return value
    except ValueError:
        raise InputFileError(path, line, "submitted_at", f"not an ISO 8601 timestamp: {value[:40]!r}") from None


def _read_header(path: Path, reader: Any, required: tuple[str, ...] = RATING_COLUMNS) -> list[str]:
    """The CSV's header row, with every required column present once."""
    try:
        header = next(reader)
    except StopIteration:
        raise InputFileError(path, None, None, "file is empty; expected a header row") from None
    except csv.Error as exc:
        raise InputFileError(path, 1, None, f"invalid CSV ({exc})") from None
    header = [h.strip() for h in header]
    for col in required:
        if col not in header:
            raise InputFileError(path, 1, col, "required column is missing from the header")
    dup = {h for h in header if header.count(h) > 1}
    if dup:
        raise InputFileError(path, 1, sorted(dup)[0], "column appears twice in the header")
    return header


def _records(path: Path, reader: Any, width: int) -> Iterator[tuple[int, list[str]]]:
    """(first line number, values) of each non-blank record; a quoted field may span lines."""
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputFileError(path, reader.line_num, None, f"invalid CSV ({exc})") from None
        # A record starts right after the previous one ended.
        number, start = start + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != width:
            raise InputFileError(path, number, None, f"expected {width} columns, found {len(values)}")
        yield number, values


def _parse_rating(path: Path, number: int, row: dict[str, str]) -> str:
    """The row's rating, normalised, checked against its score column when that is given."""
    try:
        rating = normalize_rating(row["rating"])
    except ValueError as exc:
        raise InputFileError(path, number, "rating", str(exc)) from None
    if row.get("score", "").strip():
        try:
            # "2/3" as well as "0.6667": the documented scores are 1, 2/3, 1/3, 0.
            given = float(Fraction(row["score"].strip()))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise InputFileError(path, number, "score", f"not a number: {row['score'][:40]!r}") from None
        if not math.isclose(given, score(rating), abs_tol=1e-3):
            raise InputFileError(
                path, number, "score", f"{given} does not match rating {rating!r} (expected {score(rating):.4f})"
            )
    return rating


def _parse_tags(path: Path, number: int, row: dict[str, str], allowed: set[str], column: str = "tags") -> list[str]:
    """The `a;b` tags of a ratings file's `column` (a preferences file has one per side), each one of `allowed`."""
    tags = [t.strip() for t in row.get(column, "").split(";") if t.strip()]
    for tag in tags:
        if tag not in allowed:
            raise InputFileError(path, number, column, f"unknown shortcoming tag {tag!r}")
    return tags


def _parse_seconds(path: Path, number: int, row: dict[str, str]) -> float | None:
    if not row.get("seconds", "").strip():
        return None
    try:
        seconds = float(row["seconds"])
    except ValueError:
        raise InputFileError(path, number, "seconds", f"not a number: {row['seconds'][:40]!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InputFileError(path, number, "seconds", "must be a non-negative number")
    return seconds


def _parse_input(path: Path, number: int, row: dict[str, str]) -> dict[str, Any] | None:
    """The optional `input` column: the item's input as a JSON object, as in the NLE file."""
    text = row.get("input", "").strip()
    if not text:
        return None
    try:
        inp = json.loads(text)
    except ValueError:
        inp = None
    ok = isinstance(inp, dict) and bool(inp) and all(
        isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in inp.values())
    if not ok:
        raise InputFileError(path, number, "input", "must be a JSON object of named strings (or lists of strings), "
                                                    'e.g. {"premise": "...", "hypothesis": "..."}')
    return inp


def _parse_comment(path: Path, number: int, row: dict[str, str]) -> str:
    comment = row.get("comment", "")
    if len(comment) > MAX_COMMENT_CHARS:
        raise InputFileError(path, number, "comment", f"longer than {MAX_COMMENT_CHARS:,} characters")
    return comment


def _parse_rating_row(path: Path, number: int, row: dict[str, str], allowed: set[str]) -> RatingRow:
    """One validated rating row."""
    for col in RATING_COLUMNS:
        if not row[col].strip():
            raise InputFileError(path, number, col, "must not be empty")
    key = (row["dataset"].strip(), row["sample_id"].strip(), row["config"].strip(), row["annotator"].strip())
    return RatingRow(
        *key,
        rating=_parse_rating(path, number, row),
        tags=_parse_tags(path, number, row, allowed),
        comment=_parse_comment(path, number, row),
        seconds=_parse_seconds(path, number, row),
        submitted_at=_parse_submitted_at(path, number, row.get("submitted_at", "").strip()),
        predicted_label=row.get("predicted_label") or None,
        explanation=row.get("explanation") or None,
        line=number,
        input=_parse_input(path, number, row),
    )


def csv_rows(path: Path, data: bytes | None, required: tuple[str, ...], *,
             raw: bool = False) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) of each non-blank record of a CSV export file (or `data`, an upload named
    `path`), the header checked for `required`; each cell loses the quote the export puts before formula
    characters, unless `raw`."""
    text = _decode_text(path, data)
    for number, line_text in enumerate(text.split("\n"), start=1):
        if len(line_text) > MAX_LINE_CHARS:
            raise InputFileError(path, number, None, f"line is longer than {MAX_LINE_CHARS:,} characters")
    # The raw text, not re-joined lines: a quoted comment keeps its "\r", U+2028 and other line separators.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _read_header(path, reader, required)
    for number, values in _records(path, reader, len(header)):
        if not raw:
            values = [unescape_cell(v) for v in values]
        yield number, dict(zip(header, values, strict=True))


def read_ratings_csv(path: str | Path, tags_allowed: tuple[str, ...] | list[str],
                     data: bytes | None = None, *, raw: bool = False) -> list[RatingRow]:
    """Parse and validate a ratings CSV with the export's columns (or `data`, an upload named `path`);
    raises InputFileError. Each cell loses the quote the export puts before formula characters, unless `raw`."""
    path = Path(path)
    allowed = set(tags_allowed)
    rows: list[RatingRow] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for number, cells in csv_rows(path, data, RATING_COLUMNS, raw=raw):
        row = _parse_rating_row(path, number, cells, allowed)
        who = (row.dataset, row.sample_id, row.config, name_key(row.annotator))  # the store's rule for names
        if who in seen:
            raise InputFileError(path, number, "annotator",
                                 f"second rating of the same item by {row.annotator!r} (first on line {seen[who]})")
        seen[who] = number
        rows.append(row)
    if not rows:
        raise InputFileError(path, None, None, "file holds no rating rows")
    return rows
