"""Ratings in the shape the analysis works on: one row per rated item, one column per annotator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotate.core.importing import GOLD_CONFIG
from annotate.core.scale import RATINGS

__all__ = ["GOLD_CONFIG", "MISSING", "Prepared", "prepare", "split_export"]

MISSING = -1


@dataclass
class Prepared:
    """Rated items (`items`: item_id, dataset, sample_id, config; sorted by item_id) and, per item × annotator,
    the rating code 0..3 (`codes`, -1 when not rated) and the index of its tag string in `tag_strings`
    (`tag_codes`, -1 when not rated). Datasets and configurations are numbered in order of first appearance
    (`dataset_idx`, `config_idx` per item)."""

    items: pd.DataFrame
    annotators: list[str]
    codes: np.ndarray
    tag_codes: np.ndarray
    tag_strings: list[str]
    tags: list[str]
    datasets: list[str]
    configs: list[str]
    dataset_idx: np.ndarray
    config_idx: np.ndarray

    @property
    def present(self) -> np.ndarray:
        return self.codes >= 0

    def config_mask(self, config: str) -> np.ndarray:
        """Items of one configuration (all False when it has no rated item)."""
        if config not in self.configs:
            return np.zeros(len(self.items), dtype=bool)
        return self.config_idx == self.configs.index(config)

    @property
    def model_configs(self) -> list[str]:
        """The configurations without the gold reference items (what can be compared)."""
        return [c for c in self.configs if c != GOLD_CONFIG]

    def subset(self, keep: np.ndarray) -> Prepared:
        """The items where `keep` is True; annotators, datasets and configurations without a rating there are
        dropped and the rest renumbered in their previous order."""
        keep = np.asarray(keep, dtype=bool)
        codes = self.codes[keep]
        rated = (codes >= 0).any(axis=0)
        d_used, d_idx = np.unique(self.dataset_idx[keep], return_inverse=True)
        c_used, c_idx = np.unique(self.config_idx[keep], return_inverse=True)
        return Prepared(items=self.items[keep].reset_index(drop=True),
                        annotators=[a for a, r in zip(self.annotators, rated, strict=True) if r],
                        codes=codes[:, rated], tag_codes=self.tag_codes[keep][:, rated],
                        tag_strings=self.tag_strings, tags=self.tags,
                        datasets=[self.datasets[i] for i in d_used], configs=[self.configs[i] for i in c_used],
                        dataset_idx=d_idx.astype(np.int64).ravel(), config_idx=c_idx.astype(np.int64).ravel())

    def string_masks(self) -> list[int]:
        """For each of `tag_strings`, a bit mask over `tags` (bit t set when the string holds tag t)."""
        return [_mask(s, self.tags) for s in self.tag_strings]

    def has_tag(self) -> np.ndarray:
        """0/1 matrix, one row per `tag_strings` entry and one column per `tags` entry: does the string hold it."""
        masks = np.array(self.string_masks(), dtype=np.int64).reshape(-1, 1)
        return (masks >> np.arange(len(self.tags), dtype=np.int64)) & 1

    def tag_masks(self) -> np.ndarray:
        """Per item × annotator, a bit mask over `tags` (bit t set when tag t was given); 0 when not rated."""
        masks = np.array([*self.string_masks(), 0], dtype=np.int64)
        return masks[self.tag_codes]  # -1 indexes the trailing 0


def _mask(tag_string: str, tags: list[str]) -> int:
    given = {t.strip() for t in str(tag_string).split(";") if t.strip()}
    return sum(1 << i for i, t in enumerate(tags) if t in given)


def split_export(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, ratings) from export-shaped ratings (dataset, sample_id, config, annotator, rating[, tags]).

    Items get ids by first appearance unless the frame has an item_id column.
    """
    missing = [c for c in ("dataset", "sample_id", "config", "annotator", "rating") if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings are missing column(s): {', '.join(missing)}")
    df = ratings
    if "item_id" in df.columns:
        ids = df["item_id"].to_numpy(dtype=np.int64)
    else:
        ids = df.groupby(["dataset", "sample_id", "config"], sort=False, observed=True).ngroup().to_numpy() + 1
    items = (pd.DataFrame({"item_id": ids, "dataset": df["dataset"].astype(str).to_numpy(),
                           "sample_id": df["sample_id"].astype(str).to_numpy(),
                           "config": df["config"].astype(str).to_numpy()})
             .drop_duplicates("item_id").reset_index(drop=True))
    tags = df["tags"].fillna("").astype(str) if "tags" in df.columns else pd.Series([""] * len(df))
    out = pd.DataFrame({"item_id": ids, "annotator": df["annotator"].astype(str).to_numpy(),
                        "rating": df["rating"].astype(str).to_numpy(),
                        "tags": pd.Categorical(tags.to_numpy())})
    return items, out


def prepare(items: pd.DataFrame, ratings: pd.DataFrame, tags: list[str] | tuple[str, ...] | None = None) -> Prepared:
    """Join ratings (item_id, annotator, rating, tags) to their items; keep only items with a rating.

    `tags`: the study's shortcoming tags in display order (tags found in the data but not listed are appended).
    """
    # Checked before building the Categorical: pandas deprecates (and will refuse) values outside the categories.
    given = ratings["rating"]
    if isinstance(given.dtype, pd.CategoricalDtype) and list(given.cat.categories) == list(RATINGS):
        rating = pd.Categorical(given)
    else:
        known = given.astype(object).isin(RATINGS)
        if not known.all():
            bad = given[~known.to_numpy()].iloc[0]
            raise ValueError(f"unknown rating {bad!r}; expected one of {', '.join(RATINGS)}")
        rating = pd.Categorical(given, categories=list(RATINGS))
    # Annotators without a rating are left out: they would make "rated by all" empty.
    annot = pd.Categorical(ratings["annotator"]).remove_unused_categories()
    annotators = [str(a) for a in annot.categories]
    tag_cat = pd.Categorical(ratings["tags"]) if "tags" in ratings.columns else pd.Categorical([""] * len(ratings))
    tag_strings = [str(t) for t in tag_cat.categories]

    ids = ratings["item_id"].to_numpy(dtype=np.int64)
    items = items.sort_values("item_id", kind="stable").reset_index(drop=True)
    all_ids = items["item_id"].to_numpy(dtype=np.int64)
    pos = np.minimum(np.searchsorted(all_ids, ids), max(len(all_ids) - 1, 0))
    found = all_ids[pos] == ids if len(all_ids) else np.zeros(len(ids), dtype=bool)
    if not found.all():
        raise ValueError(f"ratings refer to item_id {int(ids[~found][0])}, which is not among the items")
    rated = np.zeros(len(items), dtype=bool)
    rated[pos] = True
    # Renumber rows so only rated items remain, in item_id order.
    new_row = np.cumsum(rated) - 1
    items = items[rated].reset_index(drop=True)
    row = new_row[pos]
    col = annot.codes.astype(np.int64)
    n_ann = len(annotators)
    if len(ids) and np.bincount(row * n_ann + col).max() > 1:
        raise ValueError("an annotator rated the same item twice")
    codes = np.full((len(items), n_ann), MISSING, dtype=np.int8)
    codes[row, col] = rating.codes
    tag_codes = np.full((len(items), n_ann), MISSING, dtype=np.int32)
    tag_codes[row, col] = tag_cat.codes
    dataset_idx, datasets = pd.factorize(items["dataset"])
    config_idx, configs = pd.factorize(items["config"])

    listed = list(tags) if tags is not None else []
    seen = {t.strip() for s in tag_strings for t in s.split(";") if t.strip()}
    ordered = listed + sorted(seen - set(listed))
    return Prepared(items=items, annotators=annotators, codes=codes, tag_codes=tag_codes,
                    tag_strings=tag_strings, tags=ordered, datasets=[str(d) for d in datasets],
                    configs=[str(c) for c in configs], dataset_idx=dataset_idx.astype(np.int64),
                    config_idx=config_idx.astype(np.int64))
