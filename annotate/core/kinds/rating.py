"""The rating study: each explanation on its own, answered on the paper's 4-point scale with shortcoming tags.

Its items and ratings are the Store's `Items` and `Ratings`; a study that no other kind claims is a rating study.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from annotate.core.exporting import EXPORT_COLUMNS
from annotate.core.kinds.base import ParquetRows, StudyKind
from annotate.core.publish import RATING_FIELDS, split_tags


class RatingKind(StudyKind):
    name = "rating"
    answers_noun = "ratings"
    parquet_split = "ratings"
    parquet_fields = RATING_FIELDS
    refusals: dict[str, str] = {}  # the rating study's imports are its own

    def setup(self, store: Any, study_id: int) -> dict[str, Any] | None:
        return {}

    def import_file(self, store: Any, args: argparse.Namespace) -> tuple[str, list[str]]:
        result = store.import_nles(args.file, args.study, with_gold=args.with_gold, allow_mixed=args.allow_mixed)
        lines = [f"imported {args.file}: {result.summary()}"]
        lines += [f"warning: {line} (merged under one name: --allow-mixed)" for line in result.mixed_sources]
        return result.study, lines

    def import_answers(self, store: Any, args: argparse.Namespace) -> list[str]:
        result = store.import_ratings(args.file, args.study, raw=args.raw)
        lines = [f"imported {args.file}: {result.summary()}"]
        if result.rule_violations:
            lines.append(f"note: {result.rule_violations} imported ratings break the study's answer/tag rules "
                         "(kept as given), e.g.:")
            lines += [f"  {example}" for example in result.violation_examples]
        return lines

    def export_frame(self, store: Any, study: str) -> tuple[pd.DataFrame, list[str]]:
        return store.ratings_frame(study), EXPORT_COLUMNS

    def parquet_rows(self, store: Any, study: dict[str, Any], items: pd.DataFrame) -> ParquetRows:
        rows = store.ratings_frame(study["name"], extra=True)
        rows["tags"] = rows["tags"].map(split_tags)
        per_item = rows.groupby("item_id").size()
        items["explanation_a"] = None
        items["explanation_b"] = None
        return ParquetRows(rows[list(RATING_FIELDS)], per_item)


KIND = RatingKind()
