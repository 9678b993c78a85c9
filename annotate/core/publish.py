"""Publishable ratings: a folder of Parquet files plus a dataset card (README.md) that Hugging Face `datasets`
loads with `load_dataset("parquet", data_dir=DIR)`.

Layout: `data/ratings-00000-of-00001.parquet` (split "ratings"; "preferences" for a pairwise study) and
`items/items-00000-of-00001.parquet`. `datasets` names splits from `data/{split}-NNNNN-of-NNNNN` files and reads
only those when they exist, so the items (another schema) stay out of the ratings split; the card's `configs`
header lists both for `load_dataset(DIR)` and the Hub.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from annotate.core.scale import RATING_LABELS, RATINGS, score

SHARD = "00000-of-00001.parquet"

RATING_FIELDS = {
    "dataset": "source dataset of the sample (e.g. esnli, ecqa, sbic, comve)",
    "sample_id": "the sample's id in its dataset",
    "config": "the model configuration that wrote the explanation (annotators never saw it)",
    "annotator": "the annotator's name in the study",
    "rating": "the answer: yes, weak_yes, weak_no or no",
    "score": "the answer's score: yes 1, weak_yes 2/3, weak_no 1/3, no 0",
    "tags": "shortcoming tags the annotator ticked",
    "comment": "the annotator's free-text comment",
    "seconds": "seconds from the item first shown to the answer saved (null when unknown, e.g. imported)",
    "submitted_at": "UTC time of the current answer (ISO 8601)",
    "guidelines_version": "version of the guidelines the annotator answered under",
}
PREFERENCE_FIELDS = {
    "dataset": RATING_FIELDS["dataset"],
    "sample_id": RATING_FIELDS["sample_id"],
    "annotator": RATING_FIELDS["annotator"],
    "preference": "the configuration whose explanation justifies the answer better, or `tie`",
    "tags_a": "shortcoming tags ticked for configuration A's explanation",
    "tags_b": "shortcoming tags ticked for configuration B's explanation",
    "rating_a": "4-point rating of A's explanation (null unless the study asked for it)",
    "rating_b": "4-point rating of B's explanation (null unless the study asked for it)",
    "comment": RATING_FIELDS["comment"],
    "shown_first": "the configuration shown as \"Explanation 1\" to this annotator (empty when unknown)",
    "seconds": RATING_FIELDS["seconds"],
    "submitted_at": RATING_FIELDS["submitted_at"],
}
ITEM_FIELDS = {
    "dataset": RATING_FIELDS["dataset"],
    "sample_id": RATING_FIELDS["sample_id"],
    "config": RATING_FIELDS["config"] + "; `A vs B` for a pair",
    "input": "the task input as a JSON object of named fields",
    "predicted_label": "the model's predicted answer",
    "explanation": "the explanation that was rated (empty for a pair)",
    "explanation_a": "pairs only: configuration A's explanation",
    "explanation_b": "pairs only: configuration B's explanation",
    "gold_label": "the dataset's gold label (null when absent)",
}


@dataclass
class Card:
    """What was written: the number of rows of the main split and what they are."""

    n_rows: int
    unit: str
    path: Path


def split_tags(value: Any) -> list[str]:
    """A stored `a;b` tag list as a list, for Parquet's list columns."""
    return [t for t in str(value or "").split(";") if t]


def _overlap(per_item: pd.Series, study: dict[str, Any]) -> str:
    setting = study.get("overlap") or (study.get("rules") or {}).get("overlap")
    stated = f"k = {setting}" if setting else "all (every annotator is offered every item)"
    if len(per_item) == 0:
        return stated
    return (f"{stated}; observed answers per item: min {int(per_item.min())}, median {float(per_item.median()):g},"
            f" max {int(per_item.max())}")


def _yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def card_text(study: dict[str, Any], split: str, fields: dict[str, str], n_rows: int, n_annotators: int,
              overlap: str, intro: list[str]) -> str:
    """The dataset card: YAML header with both configs, then `intro` (the study kind's paragraph), fields, scale,
    tags and the study's numbers."""
    g = study["guidelines"]
    lines = ["---", f"pretty_name: {_yaml_str('NLE human evaluation — ' + study['name'])}", "configs:",
             f"- config_name: {split}", "  default: true", "  data_files:", f"  - split: {split}",
             f"    path: data/{split}-*.parquet", "- config_name: items", "  data_files:", "  - split: items",
             "    path: items/items-*.parquet", "---", "",
             f"# Human evaluation of natural-language explanations: study `{study['name']}`", "", *intro]
    lines += [f"- Annotators: {n_annotators}", f"- {split.capitalize()}: {n_rows}", f"- Overlap: {overlap}",
              f"- Guidelines version: {study['guidelines_version']}", "",
              "Load with `datasets.load_dataset(\"parquet\", data_dir=DIR)` (the "
              f"`{split}` split), and the items with `data_dir=DIR + \"/items\"`.", "",
              f"## Fields of `{split}`", "", "| field | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in fields.items()]
    lines += ["", "## Fields of `items`", "", "| field | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in ITEM_FIELDS.items()]
    lines += ["", "## Scale and scores", "", "| answer | label | score | meaning |", "|---|---|---|---|"]
    for r in RATINGS:
        meaning = g.get("scale", {}).get(r, {}).get("meaning", "")
        lines.append(f"| `{r}` | {RATING_LABELS[r]} | {score(r):.4g} | {meaning} |")
    lines += ["", "## Shortcoming tags", "", "| tag | meaning |", "|---|---|"]
    for t in study["tags"]:
        lines.append(f"| {t} | {g.get('tags', {}).get(t, {}).get('meaning', '')} |")
    if g.get("intro"):
        lines += ["", "## Guidelines given to annotators", "", g["intro"]]
    return "\n".join(lines).replace("\r", " ") + "\n"


def export_parquet(store: Any, out: str | Path, study: str | None = None) -> Card:
    """Write the study's answers (ratings, or its kind's: pairwise answers) and items as Parquet with a dataset
    card into `out`."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError("--format parquet needs pyarrow (pip install 'nle-humaneval[parquet]')") from None
    s = store.resolve_study(study)
    kind = store.study_kind(s["id"])
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; choose a new one")
    items = store.items_frame(s["name"])
    answers = kind.parquet_rows(store, s, items)
    rows, split = answers.rows, kind.parquet_split
    items["input"] = items["input"].map(lambda v: json.dumps(v, ensure_ascii=False))
    items = items[list(ITEM_FIELDS)]
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "items").mkdir(exist_ok=True)
    rows.to_parquet(out / "data" / f"{split}-{SHARD}", index=False)
    items.astype({"explanation_a": "string", "explanation_b": "string", "gold_label": "string"}).to_parquet(
        out / "items" / f"items-{SHARD}", index=False)
    n_annotators = int(rows["annotator"].nunique())
    (out / "README.md").write_text(card_text(s, split, kind.parquet_fields, len(rows), n_annotators,
                                             _overlap(answers.per_item, s), kind.card_intro(store, s)),
                                   encoding="utf-8")
    return Card(len(rows), kind.answers_noun, out)
