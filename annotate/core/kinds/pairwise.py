"""The pairwise study: two configurations' explanations of one sample side by side, "which justifies the answer
better?" (1, 2 or tie), tags per side and, when asked, a 4-point rating of each side.

Its tables are the Store's `Pairwise` noun (annotate/core/store/pairwise.py); pairs and the preferences file are
built by the pure functions of annotate/core/pairwise.py.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from annotate.core.kinds.base import ParquetRows, StudyKind
from annotate.core.pairwise import EXPORT_PREFERENCE_COLUMNS, is_preferences_header
from annotate.core.publish import PREFERENCE_FIELDS, split_tags


class PairwiseKind(StudyKind):
    name = "pairwise"
    answers_noun = "pairwise answers"
    parquet_split = "preferences"
    parquet_fields = PREFERENCE_FIELDS
    name_options = {"--pairwise": 2}
    refusals = {
        "nle_file": "import its NLE file with --pairwise A B",
        "ratings": "its answers need a `preference` column",
        "rated_items": "rated items cannot be imported into it",
    }

    def setup(self, store: Any, study_id: int) -> dict[str, Any] | None:
        return store.pairwise_setup(study_id)

    def add_import_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pairwise", nargs=2, metavar=("A", "B"), default=None,
                            help="build a blind pairwise study of configuration A against B: one pair per sample "
                                 "both predicted correctly (the two words after --pairwise, even one that begins "
                                 "with '-')")
        parser.add_argument("--rate-sides", action="store_true",
                            help="pairwise study: also ask for the 4-point rating of each explanation")

    def chosen_by(self, args: argparse.Namespace) -> bool:
        return args.pairwise is not None

    def import_file(self, store: Any, args: argparse.Namespace) -> tuple[str, list[str]]:
        if args.with_gold:
            raise ValueError("--with-gold does not apply to a pairwise study")
        out = store.import_pairwise(args.file, *args.pairwise, args.study,
                                    rate_sides=True if args.rate_sides else None)
        lines = [f"imported {args.file}: {out.summary()}"]
        lines += [f"  excluded {dataset}/{sample_id}: {reason}"
                  for dataset, sample_id, reason in out.selection.excluded]
        return out.result.study, lines

    def add_answers_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pairwise", nargs=2, metavar=("A", "B"), default=None,
                            help="pairwise answers for a new study comparing A with B (the two words after "
                                 "--pairwise)")

    def reads_answers(self, args: argparse.Namespace, head: bytes) -> bool:
        # A `preference` column marks pairwise answers, with or without --pairwise.
        return args.pairwise is not None or is_preferences_header(head)

    def import_answers(self, store: Any, args: argparse.Namespace) -> list[str]:
        result = store.import_preferences(args.file, args.study, raw=args.raw,
                                          pairwise=tuple(args.pairwise) if args.pairwise else None)
        return [f"imported {args.file}: {result.summary()}"]

    def export_frame(self, store: Any, study: str) -> tuple[pd.DataFrame, list[str]]:
        return store.preferences_export_frame(study), EXPORT_PREFERENCE_COLUMNS

    def parquet_rows(self, store: Any, study: dict[str, Any], items: pd.DataFrame) -> ParquetRows:
        rows = store.preferences_export_frame(study["name"])
        for col in ("tags_a", "tags_b"):
            rows[col] = rows[col].map(split_tags)
        for col in ("rating_a", "rating_b"):
            rows[col] = rows[col].replace("", None)
        pairs = store.pair_explanations(study["name"])
        items["explanation_a"] = items["item_id"].map(lambda i: pairs.get(i, (None, None))[0])
        items["explanation_b"] = items["item_id"].map(lambda i: pairs.get(i, (None, None))[1])
        return ParquetRows(rows, rows.groupby(["dataset", "sample_id"]).size())

    def card_intro(self, store: Any, study: dict[str, Any]) -> list[str]:
        setup = self.setup(store, study["id"]) or {}
        return [f"A blind pairwise comparison of configuration `{setup['a']}` (A) against `{setup['b']}` (B). "
                f"Question: \"{study['question']}\" Answers: Explanation 1, Explanation 2 or Tie; which "
                "configuration each annotator saw first was drawn at random per annotator and pair "
                "(`shown_first`).", ""]


KIND = PairwiseKind()
