"""Command-line words argparse cannot take as they are: configuration names that begin with "-"."""

from __future__ import annotations


def take_option_values(argv: list[str], option: str, n: int) -> tuple[list[str], list[str] | None]:
    """`argv` without `option` and the `n` words after it, and those words (None when `option` is absent).

    argparse reads a word that begins with "-" (a configuration named "-ablation") as an option, so an option
    whose values are names takes its next `n` words here, whatever they begin with. The last occurrence wins, as
    with argparse; an occurrence with fewer than `n` words after it is left for argparse to reject.
    """
    rest, values = list(argv), None
    i = 0
    while i < len(rest):
        if rest[i] == "--":  # everything after "--" is positional
            break
        if rest[i] == option and i + n < len(rest):
            values = rest[i + 1:i + 1 + n]
            del rest[i:i + 1 + n]
            continue
        i += 1
    return rest, values
