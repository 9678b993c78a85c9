"""Every subcommand and option of `nle-annotate`, `nle-report` and `nle-gen` is documented in docs/*.md.

The list comes from the argparse parsers themselves, so a new option fails this test until the docs mention it.
An option counts as documented for `prog sub` when one docs unit (a table row, or a paragraph / code-block group
between blank lines) names both the invocation (e.g. `nle-annotate annotators add`) and the option.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis.cli import build_parser as report_parser
from annotate.cli import build_parser as annotate_parser
from generation.cli import build_parser as gen_parser

DOCS = Path(__file__).resolve().parents[1] / "docs"
PARSERS = {"nle-annotate": annotate_parser, "nle-report": report_parser, "nle-gen": gen_parser}


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(invocation words, option strings) for every leaf command of the parser."""
    options: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))
            return
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        long = [s for s in action.option_strings if s.startswith("--")]
        options.append((long or action.option_strings)[0])
    yield path, options


def cases() -> list[tuple[str, str]]:
    return [(" ".join(path), option) for prog, build in PARSERS.items()
            for path, options in commands(build(), (prog,)) for option in [None, *options]]


def doc_units() -> list[str]:
    """Table rows one by one; everything else in blank-line separated groups (a code block's command and the
    comment lines under it stay together)."""
    units: list[str] = []
    for doc in sorted(DOCS.glob("*.md")):
        group: list[str] = []
        for line in [*doc.read_text(encoding="utf-8").splitlines(), ""]:
            if line.lstrip().startswith("|"):
                units.append(line)
            elif line.strip() and not line.startswith("```"):
                group.append(line)
            elif group:
                units.append("\n".join(group))
                group = []
    return units


def mentions(text: str, invocation: str) -> bool:
    words = r"\s+".join(re.escape(w) for w in invocation.split())
    return re.search(rf"(?<![\w-]){words}(?![\w-])", text) is not None


def test_the_walk_finds_the_commands_and_options_we_know() -> None:
    found = dict(cases_by_command())
    assert {"nle-annotate import", "nle-annotate annotators add", "nle-annotate serve", "nle-report",
            "nle-gen train", "nle-gen generate", "nle-gen sweep", "nle-gen params"} <= set(found)
    assert "--with-gold" in found["nle-annotate import"] and "--compare" in found["nle-report"]
    assert "--help" not in found["nle-report"] and "--data-dir" in found["nle-gen train"]


def cases_by_command() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for invocation, option in cases():
        out.setdefault(invocation, [])
        if option is not None:
            out[invocation].append(option)
    return out


@pytest.mark.parametrize(("invocation", "option"), cases())
def test_documented(invocation: str, option: str | None) -> None:
    units = [u for u in doc_units() if mentions(u, invocation)]
    assert units, f"`{invocation}` is not mentioned in docs/*.md"
    if option is not None:
        assert any(mentions(u, option) for u in units), \
            f"`{invocation} {option}` is not documented: no table row or paragraph of docs/*.md names both"


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for name, parser in (("nle-annotate", annotate_parser()), ("nle-report", report_parser()),
                         ("nle-gen", gen_parser())):
        todo = [(name, parser)]
        while todo:
            prog, p = todo.pop()
            out.append((prog, p))
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    todo += [(f"{prog} {sub}", sp) for sub, sp in action.choices.items()]
    return out


@pytest.mark.parametrize(("prog", "parser"), _all_parsers(), ids=[p for p, _ in _all_parsers()])
def test_help_renders(prog: str, parser: argparse.ArgumentParser) -> None:
    """`--help` of every command and subcommand prints (a bare % in a help string made `nle-gen --help` crash)."""
    text = parser.format_help()
    assert text.startswith("usage:")
