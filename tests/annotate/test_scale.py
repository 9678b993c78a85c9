"""The rating scale, rating spellings, answer/tag rules and guidelines (annotate/scale.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from annotate.core.scale import (
    DEFAULT_TAG_GUIDE,
    DEFAULT_TAGS,
    RATINGS,
    SCORES,
    Guidelines,
    Rules,
    normalize_rating,
    score,
)


@pytest.mark.parametrize(
    ("rating", "expected"),
    [("yes", Fraction(1)), ("weak_yes", Fraction(2, 3)), ("weak_no", Fraction(1, 3)), ("no", Fraction(0))],
)
def test_scores_are_the_papers(rating: str, expected: Fraction) -> None:
    assert SCORES[rating] == expected
    assert score(rating) == pytest.approx(float(expected), abs=1e-12)


def test_scale_is_ordered_best_to_worst() -> None:
    assert RATINGS == ("yes", "weak_yes", "weak_no", "no")
    assert [score(r) for r in RATINGS] == sorted((score(r) for r in RATINGS), reverse=True)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("yes", "yes"),
        ("Yes ", "yes"),
        (" NO", "no"),
        ("Weak yes", "weak_yes"),
        ("weak-no", "weak_no"),
        ("WEAK_NO", "weak_no"),
        ("weak   yes", "weak_yes"),
        ("Weak - No", "weak_no"),
        ("weak_yes", "weak_yes"),
    ],
)
def test_normalize_rating_accepts_free_spellings(spelling: str, canonical: str) -> None:
    assert normalize_rating(spelling) == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "unknown rating 'maybe'"),
        ("", "unknown rating ''"),
        ("yes!", "unknown rating 'yes!'"),
        ("weakyes", "unknown rating 'weakyes'"),
        ("very weak yes", "unknown rating"),
        (1, "rating must be a string, got int"),
        (None, "rating must be a string, got NoneType"),
    ],
)
def test_normalize_rating_rejects_others(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_rating(value)
    assert message in str(info.value)


CUSTOM = {"no_tags_for": ["yes", "weak_yes"], "tags_required_for": ["no"], "exclusive_tags": ["one word"]}

# (rating, tags, rules, expected substring of the first violation or None when consistent)
RULE_CASES = [
    ("yes", [], None, None),
    ("yes", ["one word"], None, 'Rule "no tags for Yes"'),
    ("weak_yes", [], None, None),
    ("weak_yes", ["hallucination"], None, None),
    ("weak_no", [], None, 'Rule "tags required for Weak no"'),
    ("weak_no", ["irrelevant", "inaccurate"], None, None),
    ("no", [], None, 'Rule "tags required for No"'),
    ("no", ["empty"], None, None),
    ("no", ["empty", "irrelevant"], None, 'Rule "empty is exclusive"'),
    ("weak_yes", ["inaccurate"], CUSTOM, 'Rule "no tags for Weak yes"'),
    ("weak_no", [], CUSTOM, None),
    ("no", [], CUSTOM, 'Rule "tags required for No"'),
    ("no", ["one word", "inaccurate"], CUSTOM, 'the tag "one word" cannot be combined'),
    ("no", ["empty", "inaccurate"], CUSTOM, None),
]


@pytest.mark.parametrize(("rating", "tags", "rules", "expected"), RULE_CASES)
def test_rules_violations(rating: str, tags: list[str], rules: dict | None, expected: str | None) -> None:
    problems = Rules.from_dict(rules).violations(rating, tags)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


def test_rules_report_every_broken_rule() -> None:
    problems = Rules().violations("yes", ["empty", "one word"])
    assert len(problems) == 2
    assert 'no tags for Yes' in problems[0] and 'empty is exclusive' in problems[1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"no_tags_for": ["perfect"]}, "rules.no_tags_for: unknown rating 'perfect'"),
        ({"tags_required_for": ["Weak no"]}, "rules.tags_required_for: unknown rating 'Weak no'"),
        ({"no_tags_for": ["no"]}, "['no'] cannot both forbid and require tags"),
        ({"exclusive": ["empty"]}, "rules: unknown keys ['exclusive']"),
    ],
)
def test_impossible_rules_are_refused(data: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Rules.from_dict(data)
    assert message in str(info.value)


def test_rules_dict_round_trip() -> None:
    rules = Rules.from_dict(CUSTOM)
    assert Rules.from_dict(rules.to_dict()) == rules
    assert Rules.from_dict(None) == Rules()


def test_guidelines_cover_the_scale_and_every_default_tag() -> None:
    g = Guidelines()
    assert set(g.scale) == set(RATINGS)
    assert set(g.tags) == set(DEFAULT_TAGS) == set(DEFAULT_TAG_GUIDE)
    for entry in [*g.scale.values(), *g.tags.values()]:
        assert entry["meaning"].strip() and entry["example"].strip()
    assert len(DEFAULT_TAGS) == 12
