"""The steps of an import, as plain functions over parsed records: which study, gold references, what is new.

The Store calls them in order and writes the result in one transaction, so a bad file changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from annotate.core.errors import InputFileError
from annotate.core.formats import NLE, RatingRow
from annotate.core.pairwise import PairSelection
from annotate.core.scale import Rules

GOLD_CONFIG = "gold"


@dataclass
class ImportResult:
    """What an import did: counts per kind of change."""

    study: str
    added: int = 0
    unchanged: int = 0
    gold_added: int = 0
    gold_skipped: int = 0
    ratings_added: int = 0
    ratings_updated: int = 0
    ratings_unchanged: int = 0
    items_created: int = 0
    annotators_created: int = 0
    rule_violations: int = 0
    violation_examples: list[str] = field(default_factory=list)
    # Of `unchanged`: the gold items, by the file line each came from (a generated reference: its source line).
    gold_unchanged_lines: list[int] = field(default_factory=list)
    # Of `items_created`: those left out of every annotator's queue (the row lacked input, label or explanation).
    items_not_queued: int = 0
    # With --allow-mixed: one line per configuration that now holds NLEs of several models or split seeds.
    mixed_sources: list[str] = field(default_factory=list)
    # Metric scores (item x metric name) stored, on new items or ones already there.
    metrics_added: int = 0

    def summary(self) -> str:
        """One line such as `study 'demo', added: 40, gold added: 20`."""
        parts = [f"study {self.study!r}"]
        for name in ("added", "unchanged", "gold_added", "gold_skipped", "ratings_added", "ratings_updated",
                     "ratings_unchanged", "items_created", "annotators_created", "rule_violations", "metrics_added"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name.replace('_', ' ')}: {value}{self._detail(name)}")
        return ", ".join(parts)

    def _detail(self, name: str) -> str:
        if name == "unchanged" and self.gold_unchanged_lines:
            lines = sorted(set(self.gold_unchanged_lines))
            shown = ", ".join(map(str, lines[:10])) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
            return f" (of them gold items: {len(self.gold_unchanged_lines)}, from lines {shown})"
        if name == "items_created" and self.items_not_queued:
            return f" ({self.items_not_queued} not queued: no input, predicted_label and explanation in the file)"
        return ""


@dataclass
class PairImportResult:
    """What `import --pairwise` did: the usual counts plus the samples left out and why."""

    result: ImportResult
    selection: PairSelection = field(default_factory=PairSelection)

    def summary(self) -> str:
        parts = [self.result.summary(), f"pairs: {len(self.selection.pairs)}"]
        excluded = self.selection.excluded_summary()
        if excluded:
            parts.append("excluded: " + ", ".join(f"{n} {why}" for why, n in sorted(excluded.items())))
        return "; ".join(parts)


def add_counts(total: ImportResult, part: ImportResult) -> None:
    """Add the counts of `part` (an import of one more file) to `total`."""
    for f in fields(ImportResult):
        value = getattr(part, f.name)
        if isinstance(value, int):
            setattr(total, f.name, getattr(total, f.name) + value)


def check_study_fields(path: str | Path, records: list[NLE], study: str, known: set[str]) -> None:
    """Lines that name a study must name the one being imported into."""
    known = known | {study}
    for rec in records:
        if rec.study is not None and rec.study not in known:
            raise InputFileError(path, rec.line, "study", f"unknown rating study {rec.study!r}")
        if rec.study is not None and rec.study != study:
            raise InputFileError(path, rec.line, "study",
                                 f"line belongs to study {rec.study!r} but the import targets {study!r}")


def gold_references(records: list[NLE]) -> list[NLE]:
    """One reference item per sample whose explanation is the dataset's first gold explanation."""
    out: dict[tuple[str, str], NLE] = {}
    for r in records:
        if (r.dataset, r.sample_id) in out or not r.gold_explanations or r.expected_rating:
            continue
        out[(r.dataset, r.sample_id)] = NLE(
            dataset=r.dataset, sample_id=r.sample_id, config=GOLD_CONFIG, input=r.input,
            predicted_label=r.gold_label or r.predicted_label, explanation=r.gold_explanations[0],
            gold_label=r.gold_label, gold_explanations=r.gold_explanations, prompt=r.prompt,
            metadata={"reference": True}, line=-r.line,  # negative line: generated from that line
        )
    return list(out.values())


def with_gold_references(records: list[NLE]) -> tuple[list[NLE], int]:
    """`records` plus generated gold reference items, and the number of samples that had no gold explanation."""
    gold = gold_references(records)
    skipped = len({(r.dataset, r.sample_id) for r in records}) - len(gold)
    # A file's own config-"gold" lines win over generated reference items for the same sample.
    keys = {r.key for r in records}
    return records + [g for g in gold if g.key not in keys], skipped


def diff_items(path: str | Path, records: list[NLE], existing: dict[tuple[str, str, str], dict[str, Any]],
               study: str) -> tuple[ImportResult, list[NLE]]:
    """Counts and the records that are new; an existing item whose content differs is an error."""
    result = ImportResult(study=study)
    new: list[NLE] = []
    for rec in records:
        row = existing.get(rec.key)
        if row is None:
            new.append(rec)
            if rec.config == GOLD_CONFIG and rec.line < 0:
                result.gold_added += 1
            else:
                result.added += 1
            continue
        changed = [k for k, old, now in (("explanation", row["explanation"], rec.explanation),
                                         ("predicted_label", row["predicted_label"], rec.predicted_label),
                                         ("input", json.loads(row["input"]), rec.input)) if old != now]
        if changed:
            where = changed[0]
            raise InputFileError(
                path, abs(rec.line), where,
                f"item {rec.key!r} is already in study {study!r} with a "
                f"different {where}; give the new version another config or sample_id",
            )
        result.unchanged += 1
        if rec.config == GOLD_CONFIG:
            result.gold_unchanged_lines.append(abs(rec.line))
    return result, new


def _source(model: str | None, split_seed: int | None) -> str:
    return f"model {model!r}, split_seed {split_seed}"


def mixed_sources(existing: dict[str, dict[tuple[str | None, int | None], int]], new: list[NLE]) -> list[str]:
    """For each configuration to which `new` adds NLEs of another model or split_seed than the ones it already
    holds (`existing`: config -> (model, split_seed) -> count), one line with the counts. An unknown (None) model
    or seed conflicts with nothing."""
    added: dict[str, dict[tuple[str | None, int | None], int]] = {}
    for r in new:
        if r.config != GOLD_CONFIG:
            counts = added.setdefault(r.config, {})
            counts[(r.model, r.split_seed)] = counts.get((r.model, r.split_seed), 0) + 1

    def differ(a: tuple[str | None, int | None], b: tuple[str | None, int | None]) -> bool:
        return any(x is not None and y is not None and x != y for x, y in zip(a, b, strict=True))

    out = []
    for config, counts in added.items():
        old = existing.get(config, {})
        clash = {s: n for s, n in counts.items() if any(differ(s, o) for o in old)}
        if clash:
            held = "; ".join(f"{n} of {_source(*s)}" for s, n in old.items())
            adds = "; ".join(f"{n} of {_source(*s)}" for s, n in clash.items())
            out.append(f"configuration {config!r} already holds {held}, and this file adds {adds}")
    return out


def item_rows(records: list[NLE], study_id: int, created_at: str) -> list[dict[str, Any]]:
    """`items` rows for new records."""
    return [{
        "study_id": study_id, "dataset": r.dataset, "sample_id": r.sample_id, "config": r.config,
        "input": json.dumps(r.input, ensure_ascii=False), "predicted_label": r.predicted_label,
        "explanation": r.explanation, "model": r.model, "split_seed": r.split_seed, "gold_label": r.gold_label,
        "gold_explanations": (json.dumps(r.gold_explanations, ensure_ascii=False)
                              if r.gold_explanations is not None else None),
        "prompt": r.prompt, "metadata": json.dumps(r.metadata, ensure_ascii=False), "created_at": created_at,
        "expected_rating": json.dumps(list(r.expected_rating)) if r.expected_rating else None,
    } for r in records]


def count_rule_violations(rules: Rules, row: RatingRow, result: ImportResult) -> None:
    """Imported ratings are kept as given; those that break the study's rules are counted, with examples."""
    problems = rules.violations(row.rating, row.tags)
    if problems:
        result.rule_violations += 1
        if len(result.violation_examples) < 5:
            result.violation_examples.append(f"line {row.line}: {problems[0]}")
