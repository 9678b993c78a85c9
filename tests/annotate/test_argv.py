"""Option values that argparse would read as options: configuration names that begin with "-"."""

from __future__ import annotations

import pytest

from annotate.core.argv import take_option_values


@pytest.mark.parametrize(("argv", "rest", "values"), [
    (["--db", "x", "--compare", "-x", "full_ft"], ["--db", "x"], ["-x", "full_ft"]),
    (["--compare", "--png", "--db", "--db", "x"], ["--db", "x"], ["--png", "--db"]),
    (["--compare", "a", "b", "--compare", "c", "-d"], [], ["c", "-d"]),  # the last one wins, as with argparse
    (["--db", "x"], ["--db", "x"], None),
    (["--db", "x", "--compare", "a"], ["--db", "x", "--compare", "a"], None),  # too few: argparse says so
    (["--", "--compare", "a", "b"], ["--", "--compare", "a", "b"], None),  # after "--", positional words
])
def test_take_option_values(argv: list[str], rest: list[str], values: list[str] | None) -> None:
    before = list(argv)
    assert take_option_values(argv, "--compare", 2) == (rest, values)
    assert argv == before  # the caller's list is left as it was
