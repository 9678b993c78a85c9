"""The interface every study kind implements in the core.

A study kind is one way of asking annotators about explanations: a rating study asks for the 4-point answer on
one explanation, a pairwise study for the better of two. Each kind is one module of `annotate.core.kinds` holding
one `StudyKind` object, registered in that package's `KINDS` table. The core's part of a kind is what happens
without a browser: which studies are of the kind, how `nle-annotate import` builds one, how answers collected
elsewhere come in (`import-ratings`), and how its answers go out (`export`, the researcher page's download, the
Parquet folder). The analysis (`analysis.kinds`) and the app (`annotate.app.kinds`) register what the kind adds
there under the same name: its report, and its annotate page and Side by side view.

Kinds receive the `Store` (the facade) as `store` and use its public methods; they never import the store, which
asks them (`Store.study_kind`, `Store.export_bytes`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass
class ParquetRows:
    """What a kind puts in the Parquet export: its answers, one row per answer with the card's `fields` as
    columns, and the number of answers per item (the card's observed overlap)."""

    rows: pd.DataFrame
    per_item: pd.Series


class StudyKind:
    """One study kind. Class attributes describe it; the methods are called by `nle-annotate`, the Store and the
    Parquet export."""

    name: str = ""  # the key of every layer's table, and what error messages call the study ("a pairwise study")
    answers_noun: str = "answers"  # what `export` says it wrote ("ratings", "pairwise answers")
    # The Parquet export: the name of the answers' split and its fields (name -> meaning, in column order).
    parquet_split: str = "answers"
    parquet_fields: dict[str, str] = {}
    # Options of `import` and `import-ratings` whose values are configuration names, taken as they are even when
    # one begins with "-" (option -> number of values), e.g. {"--pairwise": 2}.
    name_options: dict[str, int] = {}
    # What the rating study's own imports say when pointed at a study of this kind, by import ("nle_file": an
    # NLE file, "ratings": a ratings file, "rated_items": items with their ratings); the rating kind has none.
    refusals: dict[str, str] = {
        "nle_file": "its NLE file is imported by its own command",
        "ratings": "its answers have columns of their own",
        "rated_items": "rated items cannot be imported into it",
    }

    def setup(self, store: Any, study_id: int) -> dict[str, Any] | None:
        """The kind's settings of the study with this id (e.g. a pairwise study's two configurations), None when
        the study is of another kind. A study no kind claims is a rating study."""
        return None

    # -- nle-annotate import ----------------------------------------------------------------------------------

    def add_import_options(self, parser: argparse.ArgumentParser) -> None:
        """Add the kind's own options of `nle-annotate import` (after the shared ones)."""

    def chosen_by(self, args: argparse.Namespace) -> bool:
        """Whether `import`'s options ask for a study of this kind."""
        return False

    def import_file(self, store: Any, args: argparse.Namespace) -> tuple[str, list[str]]:
        """`nle-annotate import` of `args.file` into `args.study`: (the study's name, the lines to print). All or
        nothing, like every import."""
        raise NotImplementedError

    # -- nle-annotate import-ratings --------------------------------------------------------------------------

    def add_answers_options(self, parser: argparse.ArgumentParser) -> None:
        """Add the kind's own options of `nle-annotate import-ratings`."""

    def reads_answers(self, args: argparse.Namespace, head: bytes) -> bool:
        """Whether `import-ratings` of a file that begins with `head` (its first bytes; empty when there is no
        file) is an import of this kind's answers."""
        return False

    def import_answers(self, store: Any, args: argparse.Namespace) -> list[str]:
        """`nle-annotate import-ratings` of `args.file`: the lines to print."""
        raise NotImplementedError

    # -- answers out ------------------------------------------------------------------------------------------

    def export_frame(self, store: Any, study: str) -> tuple[pd.DataFrame, list[str]]:
        """The export's rows (one per answer) and its columns in order, for `export` and the page's download."""
        raise NotImplementedError

    def parquet_rows(self, store: Any, study: dict[str, Any], items: pd.DataFrame) -> ParquetRows:
        """The Parquet export's answers; also fills the pair columns of `items` (`explanation_a`,
        `explanation_b`: None where the kind has no pairs)."""
        raise NotImplementedError

    def card_intro(self, store: Any, study: dict[str, Any]) -> list[str]:
        """The dataset card's paragraph under its title: what was asked and how."""
        return [f"Question: \"{study['question']}\"", ""]
