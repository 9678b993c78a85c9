"""Blind pairwise comparison of two configurations: building pair items from NLE records, and the preferences
file (`import-ratings` / `export` of a pairwise study). Pure functions; the store writes what they return."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from annotate.core.auth import name_key
from annotate.core.errors import InputFileError
from annotate.core.formats import (
    NLE,
    _parse_comment,
    _parse_seconds,
    _parse_submitted_at,
    _parse_tags,
    csv_rows,
)
from annotate.core.scale import normalize_rating

PAIR_QUESTION = "Which explanation justifies the answer better?"
# What the annotator answers, as shown: the left/first explanation, the second, or a tie (keys 1, 2, 3).
CHOICES: tuple[str, ...] = ("1", "2", "tie")
CHOICE_LABELS = {"1": "Explanation 1", "2": "Explanation 2", "tie": "Tie"}
PREFERENCES: tuple[str, ...] = ("a", "b", "tie")
TIE = "tie"

PREFERENCE_COLUMNS = ("dataset", "sample_id", "annotator", "preference")
OPTIONAL_PREFERENCE_COLUMNS = ("tags_a", "tags_b", "comment", "rating_a", "rating_b", "shown_first", "seconds",
                               "submitted_at")
EXPORT_PREFERENCE_COLUMNS = [*PREFERENCE_COLUMNS, *OPTIONAL_PREFERENCE_COLUMNS]


def pair_config(a: str, b: str) -> str:
    """The `config` of a pair item (researchers see it; annotators never do)."""
    return f"{a} vs {b}"


def to_preference(choice: str, a_first: bool) -> str:
    """The configuration side ("a", "b" or "tie") of an answer given on screen ("1", "2" or "tie")."""
    if choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}; expected one of {', '.join(CHOICES)}")
    if choice == TIE:
        return TIE
    return "a" if (choice == "1") == a_first else "b"


def to_choice(preference: str, a_first: bool) -> str:
    """The on-screen answer ("1", "2", "tie") of a stored preference, for the annotator who saw `a_first`."""
    if preference == TIE:
        return TIE
    return "1" if (preference == "a") == a_first else "2"


@dataclass
class Pair:
    """One sample both configurations predicted correctly: the pair item to build."""

    a: NLE
    b: NLE

    @property
    def key(self) -> tuple[str, str]:
        return (self.a.dataset, self.a.sample_id)


@dataclass
class PairSelection:
    """Pairs to build and the samples left out, each with the reason."""

    pairs: list[Pair] = field(default_factory=list)
    excluded: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset, sample_id, reason)

    def excluded_summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, reason in self.excluded:
            counts[reason] = counts.get(reason, 0) + 1
        return counts


def _correct(rec: NLE) -> bool | None:
    """Whether the prediction matches the gold label (None when the line carries no gold label)."""
    if rec.gold_label is None:
        return None
    return rec.predicted_label.strip().lower() == rec.gold_label.strip().lower()


def select_pairs(path: str | Path, records: list[NLE], a: str, b: str) -> PairSelection:
    """One pair per sample that both configurations predicted correctly (prediction equals `gold_label`), as in
    the paper's human evaluation (only correctly predicted samples are rated); the others are listed with why."""
    if a == b:
        raise ValueError("--pairwise needs two different configurations")
    configs = {r.config for r in records}
    for c in (a, b):
        if c not in configs:
            raise InputFileError(path, None, "config", f"no line has config {c!r} (the file has: "
                                 f"{', '.join(sorted(configs))})")
    by_sample: dict[tuple[str, str], dict[str, NLE]] = {}
    for r in records:
        if r.config in (a, b):
            by_sample.setdefault((r.dataset, r.sample_id), {})[r.config] = r
    out = PairSelection()
    where: dict[str, tuple[str, list[int]]] = {}  # reason -> (the field at fault, its lines), for the error below

    def exclude(dataset: str, sample_id: str, reason: str, field_name: str, line: int) -> None:
        out.excluded.append((dataset, sample_id, reason))
        where.setdefault(reason, (field_name, []))[1].append(line)

    for (dataset, sample_id), recs in by_sample.items():
        if a not in recs or b not in recs:
            only = a if a in recs else b
            exclude(dataset, sample_id, f"only {only} has this sample", "sample_id", recs[only].line)
            continue
        ra, rb = recs[a], recs[b]
        if ra.input != rb.input:
            raise InputFileError(path, rb.line, "input", f"sample {(dataset, sample_id)!r} has a different input "
                                 f"under {a!r} (line {ra.line}) and {b!r}")
        ok_a, ok_b = _correct(ra), _correct(rb)
        if ok_a is None or ok_b is None:
            exclude(dataset, sample_id, "no gold_label", "gold_label", (ra if ok_a is None else rb).line)
        elif not ok_a and not ok_b:
            exclude(dataset, sample_id, "both predicted wrongly", "predicted_label", ra.line)
        elif not ok_a:
            exclude(dataset, sample_id, f"{a} predicted wrongly", "predicted_label", ra.line)
        elif not ok_b:
            exclude(dataset, sample_id, f"{b} predicted wrongly", "predicted_label", rb.line)
        else:
            out.pairs.append(Pair(ra, rb))
    if not out.pairs:  # an empty pairwise study is never what was meant: refuse, saying why for each sample
        reasons = "; ".join(
            f"{reason}: {len(lines)} {'sample' if len(lines) == 1 else 'samples'} (field '{field_name}', "
            f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, sorted(lines)[:5]))}"
            f"{', ...' if len(lines) > 5 else ''})" for reason, (field_name, lines) in where.items())
        raise InputFileError(path, None, None, f"nothing to import: no sample of {a!r} and {b!r} makes a pair "
                             f"(both must predict the gold_label): {reasons}")
    return out


@dataclass
class PreferenceRow:
    """One pairwise answer from a preferences CSV (configuration names resolved to "a", "b" or "tie")."""

    dataset: str
    sample_id: str
    annotator: str
    preference: str
    tags_a: list[str]
    tags_b: list[str]
    comment: str
    rating_a: str | None
    rating_b: str | None
    a_first: bool | None
    seconds: float | None
    submitted_at: str | None
    line: int = 0


def is_preferences_header(data: bytes) -> bool:
    """Whether a CSV's header names a `preference` column (a pairwise file rather than ratings)."""
    first = data.decode("utf-8-sig", errors="replace").split("\n", 1)[0]
    try:
        header = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return False
    return "preference" in [h.strip() for h in header]


def _side(path: Path, number: int, value: str, column: str, a: str, b: str, allow_tie: bool) -> str:
    v = value.strip()
    if allow_tie and v.lower() == TIE:
        return TIE
    if v == a:
        return "a"
    if v == b:
        return "b"
    expected = f"{a!r}, {b!r}" + (" or 'tie'" if allow_tie else "")
    raise InputFileError(path, number, column, f"{v[:40]!r} is not one of {expected}")


def _tags(path: Path, number: int, row: dict[str, str], column: str, allowed: set[str]) -> list[str]:
    return list(dict.fromkeys(_parse_tags(path, number, row, allowed, column)))  # a tag given twice counts once


def _optional_rating(path: Path, number: int, row: dict[str, str], column: str) -> str | None:
    if not row.get(column, "").strip():
        return None
    try:
        return normalize_rating(row[column])
    except ValueError as exc:
        raise InputFileError(path, number, column, str(exc)) from None


def read_preferences_csv(path: str | Path, a: str, b: str, tags_allowed: tuple[str, ...] | list[str],
                         data: bytes | None = None, *, raw: bool = False) -> list[PreferenceRow]:
    """Parse a preferences CSV (columns dataset, sample_id, annotator, preference = `a`, `b` or tie; optional
    tags_a, tags_b, comment, rating_a, rating_b, shown_first, seconds, submitted_at); raises InputFileError.
    Each cell loses the quote the export puts before formula characters, unless `raw`."""
    path = Path(path)
    allowed = set(tags_allowed)
    rows: list[PreferenceRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for number, row in csv_rows(path, data, PREFERENCE_COLUMNS, raw=raw):
        for col in PREFERENCE_COLUMNS:
            if not row[col].strip():
                raise InputFileError(path, number, col, "must not be empty")
        shown = row.get("shown_first", "").strip()
        rec = PreferenceRow(
            dataset=row["dataset"].strip(), sample_id=row["sample_id"].strip(), annotator=row["annotator"].strip(),
            preference=_side(path, number, row["preference"], "preference", a, b, allow_tie=True),
            tags_a=_tags(path, number, row, "tags_a", allowed), tags_b=_tags(path, number, row, "tags_b", allowed),
            comment=_parse_comment(path, number, row), rating_a=_optional_rating(path, number, row, "rating_a"),
            rating_b=_optional_rating(path, number, row, "rating_b"),
            a_first=(_side(path, number, shown, "shown_first", a, b, allow_tie=False) == "a") if shown else None,
            seconds=_parse_seconds(path, number, row),
            submitted_at=_parse_submitted_at(path, number, row.get("submitted_at", "").strip()), line=number)
        who = (rec.dataset, rec.sample_id, name_key(rec.annotator))  # the store's rule for names
        if who in seen:
            raise InputFileError(path, number, "annotator",
                                 f"second answer to the same pair by {rec.annotator!r} (first on line {seen[who]})")
        seen[who] = number
        rows.append(rec)
    if not rows:
        raise InputFileError(path, None, None, "file holds no preference rows")
    return rows
