"""CSV cells safe to open in a spreadsheet: the escape is exactly undone, and only text that a spreadsheet could
evaluate (or that starts with the escape character itself) is touched."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotate.core.spreadsheet import FORMULA_STARTS, escape_cell, escape_frame, unescape_cell

STARTS = st.sampled_from([*FORMULA_STARTS, "'", "''", "'=", "a", ""])


@pytest.mark.parametrize("value, written", [
    ('=cmd|" /C calc"!A0', '\'=cmd|" /C calc"!A0'),
    ("+1", "'+1"), ("-", "'-"), ("@SUM(A1:A2)", "'@SUM(A1:A2)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("'=already", "''=already"), ("'", "''"), ("it's fine", "it's fine"), ("", ""), (" =x", " =x"),
])
def test_escape_by_example(value: str, written: str) -> None:
    assert escape_cell(value) == written and unescape_cell(written) == value


def test_numbers_are_not_text() -> None:
    assert escape_cell(-1.5) == -1.5 and escape_cell(None) is None


@given(prefix=STARTS, text=st.text(max_size=20))
def test_unescape_inverts_escape(prefix: str, text: str) -> None:
    value = prefix + text
    written = escape_cell(value)
    assert unescape_cell(written) == value
    # What a spreadsheet sees never starts with a formula character.
    assert not written.startswith(FORMULA_STARTS)


def test_escape_frame_escapes_text_cells_and_names_only() -> None:
    df = pd.DataFrame({"note": ["=1+1", "ok", None], "score": [-1.0, 0.5, 1.0],
                       "tag": pd.Categorical(["-x", "y", "-x"]), "=alice": ["@a", "", "b"]})
    out = escape_frame(df)
    assert list(out.columns) == ["note", "score", "tag", "'=alice"]
    assert out["note"].tolist()[:2] == ["'=1+1", "ok"] and pd.isna(out["note"].iloc[2])
    assert out["score"].tolist() == [-1.0, 0.5, 1.0] and out["tag"].tolist() == ["'-x", "y", "'-x"]
    assert out["'=alice"].tolist() == ["'@a", "", "b"]
    assert df["note"].iloc[0] == "=1+1"  # the input is not changed
