"""The one number formatter (analysis.formatting): decimals, significant digits, percentages, ×100, and "n/a" for
an undefined value, for Python and numpy numbers alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.formatting import NA, fmt, x100


@pytest.mark.parametrize(("value", "kw", "text"), [
    (0.12345, {}, "0.123"),
    (0.12345, {"digits": 4}, "0.1235"),
    (-0.5, {}, "-0.500"),
    (2 / 3, {"digits": 1, "scale": 100}, "66.7"),
    (0.0000123, {"style": "g"}, "1.23e-05"),
    (0.0456, {"style": "g"}, "0.0456"),
    (0.75, {"digits": 0, "style": "%"}, "75%"),
    (0.5, {"digits": 2, "style": "%"}, "50.00%"),
    (np.float64(0.25), {}, "0.250"),
    (np.float32(0.25), {}, "0.250"),
    (np.int64(3), {"digits": 1}, "3.0"),
    (7, {"digits": 1}, "7.0"),
])
def test_numbers(value: object, kw: dict, text: str) -> None:
    assert fmt(value, **kw) == text


@pytest.mark.parametrize("undefined", [None, math.nan, float("nan"), np.float64("nan"), np.float32("nan")])
def test_undefined_is_na_with_its_reason_when_given(undefined: object) -> None:
    assert fmt(undefined) == NA == "n/a"
    assert fmt(undefined, 4, scale=100, style="g") == "n/a"
    assert fmt(undefined, reason="every answer is the same") == "n/a (every answer is the same)"
    assert x100(undefined) == "n/a"


def test_a_defined_value_ignores_the_reason_and_text_stays_text() -> None:
    assert fmt(0.5, reason="unused") == "0.500"
    assert fmt("already text") == "already text"
    assert fmt(True) == "True"  # a flag is not a number to round


def test_x100_is_the_reports_score_scale() -> None:
    assert x100(0.5) == "50.0" and x100(1 / 3) == "33.3" and x100(0.12345, 2) == "12.35"
    assert x100(np.float64(2 / 3)) == fmt(2 / 3, 1, scale=100) == "66.7"
