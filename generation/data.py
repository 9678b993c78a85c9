"""Loaders for the four NLE datasets' raw releases, and FEB-style few-shot splits.

Every loader returns `Example`s; a missing or malformed file raises `InputFileError` naming the file,
the line and what was expected.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from generation.errors import InputFileError

DATASETS = ("esnli", "ecqa", "sbic", "comve")
SPLITS = ("train", "validation", "test")
# Label sets for the class-balanced datasets; ECQA's label is the text of the chosen answer.
LABELS: dict[str, tuple[str, ...] | None] = {
    "esnli": ("entailment", "neutral", "contradiction"),
    "ecqa": None,
    "sbic": ("offensive", "not offensive"),
    "comve": ("choice1", "choice2"),
}
SBIC_NOT_OFFENSIVE = "this post does not imply anything offensive"


@dataclass
class Example:
    """One normalized NLE example: input fields by name, gold label, gold explanations."""

    id: str
    dataset: str
    inputs: dict[str, str | list[str]]
    label: str
    explanations: list[str] = field(default_factory=list)


# --- file helpers ---------------------------------------------------------------------------------


def _find(data_dir: Path, candidates: list[str], what: str) -> Path:
    for name in candidates:
        if (data_dir / name).is_file():
            return data_dir / name
    raise InputFileError(data_dir, None, None, f"{what} not found; expected one of: {', '.join(candidates)}")


def _read_csv(path: Path, required: tuple[str, ...] | None, header: bool = True) -> list[tuple[int, dict | list]]:
    """Rows with their line numbers; dicts when the file has a header (checked for `required`), else lists."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(path, None, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(path, None, None, f"not UTF-8 text ({exc.reason})") from None
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    rows: list[tuple[int, dict | list]] = []
    try:
        columns = next(reader) if header else None
        if header and columns is None:
            raise InputFileError(path, 1, None, "empty file; expected a header row")
        if columns is not None:
            columns = [c.strip() for c in columns]
            for col in required or ():
                if col not in columns:
                    raise InputFileError(path, 1, col, f"required column is missing (header: {','.join(columns)})")
        line = reader.line_num
        for values in reader:
            if any(v.strip() for v in values):
                if columns is not None:
                    if len(values) != len(columns):
                        raise InputFileError(path, line + 1, None,
                                             f"expected {len(columns)} columns, found {len(values)}")
                    rows.append((line + 1, dict(zip(columns, values, strict=True))))
                else:
                    rows.append((line + 1, values))
            line = reader.line_num
    except StopIteration:
        raise InputFileError(path, None, None, "empty file; expected a header row") from None
    except csv.Error as exc:
        raise InputFileError(path, reader.line_num, None, f"invalid CSV ({exc})") from None
    if not rows:
        raise InputFileError(path, None, None, "file holds no data rows")
    return rows


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise InputFileError(path, None, None, "file not found") from None
    rows = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(path, number, None, f"invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputFileError(path, number, None, "expected a JSON object")
        rows.append((number, obj))
    if not rows:
        raise InputFileError(path, None, None, "file holds no JSON lines")
    return rows


def _need(path: Path, line: int, row: dict, key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputFileError(path, line, key, "must be a non-empty string")
    return value.strip()


# --- e-SNLI ---------------------------------------------------------------------------------------

_ESNLI_FILES = {
    "train": (["esnli_train_1.csv", "esnli_train_2.csv"], ["train.csv"]),
    "validation": (["esnli_dev.csv"], ["validation.csv", "dev.csv"]),
    "test": (["esnli_test.csv"], ["test.csv"]),
}
_ESNLI_INT_LABELS = {"0": "entailment", "1": "neutral", "2": "contradiction"}


def load_esnli(data_dir: Path, split: str) -> list[Example]:
    """e-SNLI release CSVs (pairID, gold_label, Sentence1, Sentence2, Explanation_1..3) or the
    columns premise, hypothesis, label (name or 0/1/2), explanation_1..3."""
    release, other = _ESNLI_FILES[split]
    paths = [data_dir / n for n in release if (data_dir / n).is_file()]
    if not paths:
        paths = [_find(data_dir, release[:1] + other, f"e-SNLI {split} CSV")]
    examples = []
    for path in paths:
        rows = _read_csv(path, None)
        cols = set(rows[0][1])
        if {"Sentence1", "Sentence2", "gold_label", "Explanation_1"} <= cols:
            keys = ("pairID", "Sentence1", "Sentence2", "gold_label", "Explanation_")
        elif {"premise", "hypothesis", "label", "explanation_1"} <= cols:
            keys = (None, "premise", "hypothesis", "label", "explanation_")
        else:
            raise InputFileError(path, 1, None, "expected columns Sentence1,Sentence2,gold_label,Explanation_1 "
                                 "or premise,hypothesis,label,explanation_1")
        id_key, p_key, h_key, l_key, e_key = keys
        for line, row in rows:
            label = _ESNLI_INT_LABELS.get(row[l_key].strip(), row[l_key].strip().lower())
            if label not in LABELS["esnli"]:
                raise InputFileError(path, line, l_key, f"unknown label {row[l_key]!r}; expected "
                                     "entailment/neutral/contradiction or 0/1/2")
            expl = [row[k].strip() for k in (f"{e_key}1", f"{e_key}2", f"{e_key}3") if row.get(k, "").strip()]
            if not expl:
                raise InputFileError(path, line, f"{e_key}1", "must be a non-empty explanation")
            ex_id = row[id_key].strip() if id_key and row.get(id_key, "").strip() else f"{split}-{line}"
            examples.append(Example(ex_id, "esnli", {"premise": _need(path, line, row, p_key),
                                                     "hypothesis": _need(path, line, row, h_key)}, label, expl))
    return examples


# --- ECQA -----------------------------------------------------------------------------------------

_CQA_FILES = {"train": "train_rand_split.jsonl", "validation": "dev_rand_split.jsonl"}
_ECQA_EXPLANATION_KEYS = ("explanation", "taskB", "free_flow", "freeflow")


def load_ecqa(data_dir: Path, split: str) -> list[Example]:
    """ecqa.jsonl (id + free-flow explanation) joined with CommonsenseQA's *_rand_split.jsonl by id."""
    if split not in _CQA_FILES:
        raise ValueError("ECQA: only the train and validation splits (CommonsenseQA train/dev) have labels here")
    ecqa_path = _find(data_dir, ["ecqa.jsonl"], "ECQA explanations")
    explanations: dict[str, str] = {}
    for line, row in _read_jsonl(ecqa_path):
        key = next((k for k in _ECQA_EXPLANATION_KEYS if k in row), None)
        if key is None:
            raise InputFileError(ecqa_path, line, "explanation",
                                 f"missing; expected one of {', '.join(_ECQA_EXPLANATION_KEYS)}")
        explanations[_need(ecqa_path, line, row, "id")] = _need(ecqa_path, line, row, key)
    cqa_path = _find(data_dir, [_CQA_FILES[split]], f"CommonsenseQA {split} file")
    examples = []
    for line, row in _read_jsonl(cqa_path):
        qid = _need(cqa_path, line, row, "id")
        question = row.get("question")
        if not isinstance(question, dict) or not isinstance(question.get("choices"), list):
            raise InputFileError(cqa_path, line, "question", "expected an object with stem and choices")
        stem = _need(cqa_path, line, question, "stem")
        choices = {c.get("label"): c.get("text", "").strip() for c in question["choices"] if isinstance(c, dict)}
        if len(choices) != 5 or not all(choices.values()):
            raise InputFileError(cqa_path, line, "question.choices", "expected five labelled choices with text")
        answer = row.get("answerKey")
        if answer not in choices:
            raise InputFileError(cqa_path, line, "answerKey", f"{answer!r} is not one of the choice labels")
        if qid not in explanations:
            continue  # ECQA has no explanation for this question
        examples.append(Example(qid, "ecqa", {"question": stem, "choices": [choices[k] for k in sorted(choices)]},
                                choices[answer], [explanations[qid]]))
    return examples


# --- SBIC -----------------------------------------------------------------------------------------

_SBIC_FILES = {"train": "SBIC.v2.trn.csv", "validation": "SBIC.v2.dev.csv", "test": "SBIC.v2.tst.csv"}


def load_sbic(data_dir: Path, split: str) -> list[Example]:
    """SBIC v2 annotation rows aggregated by post: offensive when mean(offensiveYN) >= 0.5; explanations
    'this post implies that <targetStereotype>' (offensive posts without one are left out)."""
    path = _find(data_dir, [_SBIC_FILES[split]], f"SBIC {split} CSV")
    scores: dict[str, list[float]] = defaultdict(list)
    stereotypes: dict[str, list[str]] = defaultdict(list)
    for line, row in _read_csv(path, ("post", "offensiveYN", "targetStereotype")):
        post = row["post"].strip()
        if not post:
            raise InputFileError(path, line, "post", "must be a non-empty string")
        value = row["offensiveYN"].strip()
        if value:
            try:
                scores[post].append(float(value))
            except ValueError:
                raise InputFileError(path, line, "offensiveYN", f"not a number: {value[:40]!r}") from None
        else:
            scores.setdefault(post, [])
        st = row["targetStereotype"].strip()
        if st and st not in stereotypes[post]:
            stereotypes[post].append(st)
    examples = []
    for post, values in scores.items():
        if not values:
            continue
        offensive = sum(values) / len(values) >= 0.5
        if offensive and not stereotypes[post]:
            continue
        expl = [f"this post implies that {s}" for s in stereotypes[post]] if offensive else [SBIC_NOT_OFFENSIVE]
        pid = "sbic-" + hashlib.sha1(post.encode()).hexdigest()[:12]
        examples.append(Example(pid, "sbic", {"post": post}, "offensive" if offensive else "not offensive", expl))
    return examples


# --- ComVE ----------------------------------------------------------------------------------------

_COMVE_FILES = {
    "train": (["train", "Training  Data"], "subtaskA_data_all.csv", "subtaskA_answers_all.csv",
              "subtaskC_answers_all.csv"),
    "validation": (["dev", "Dev Data"], "subtaskA_dev_data.csv", "subtaskA_gold_answers.csv",
                   "subtaskC_gold_answers.csv"),
    "test": (["test", "Test Data"], "subtaskA_test_data.csv", "subtaskA_gold_answers.csv",
             "subtaskC_gold_answers.csv"),
}


def load_comve(data_dir: Path, split: str) -> list[Example]:
    """ComVE (SemEval-2020 task 4): statements from subtask A data, the label (index of the nonsensical
    statement) from subtask A answers, explanations from subtask C answers, joined by id."""
    folders, data_name, answers_name, expl_name = _COMVE_FILES[split]
    folder = next((data_dir / f for f in folders if (data_dir / f / data_name).is_file()), None)
    if folder is None:
        raise InputFileError(data_dir, None, None, f"ComVE {split} data not found; expected "
                             f"{' or '.join(f + '/' + data_name for f in folders)}")
    data_path, answers_path, expl_path = folder / data_name, folder / answers_name, folder / expl_name
    answers: dict[str, str] = {}
    for line, values in _read_csv(answers_path, None, header=False):
        if len(values) != 2 or values[1].strip() not in ("0", "1"):
            raise InputFileError(answers_path, line, None, "expected 'id,label' with label 0 or 1")
        answers[values[0].strip()] = values[1].strip()
    expl: dict[str, list[str]] = {}
    for line, values in _read_csv(expl_path, None, header=False):
        texts = [v.strip() for v in values[1:] if v.strip()]
        if len(values) < 2 or not texts:
            raise InputFileError(expl_path, line, None, "expected 'id,explanation1[,explanation2,...]'")
        expl[values[0].strip()] = texts
    examples = []
    for line, row in _read_csv(data_path, ("id", "sent0", "sent1")):
        cid = row["id"].strip()
        for other, table in ((answers_path, answers), (expl_path, expl)):
            if cid not in table:
                raise InputFileError(other, None, None, f"no row for id {cid!r} (from {data_path.name}, line {line})")
        label = "choice1" if answers[cid] == "0" else "choice2"
        examples.append(Example(cid, "comve", {"sent0": _need(data_path, line, row, "sent0"),
                                               "sent1": _need(data_path, line, row, "sent1")}, label, expl[cid]))
    return examples


_LOADERS = {"esnli": load_esnli, "ecqa": load_ecqa, "sbic": load_sbic, "comve": load_comve}


def load_split(dataset: str, data_dir: str | Path, split: str) -> list[Example]:
    """All examples of one split of one dataset, from its raw files in `data_dir`."""
    if dataset not in _LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputFileError(data_dir, None, None, "data directory not found")
    return _LOADERS[dataset](data_dir, split)


# --- few-shot splits ------------------------------------------------------------------------------


@dataclass
class FewShotSplit:
    """The few-shot training set and the validation set of one seed."""

    seed: int
    train: list[Example]
    validation: list[Example]


def _by_ids(examples: list[Example], ids: list[str], what: str) -> list[Example]:
    index = {e.id: e for e in examples}
    missing = [i for i in ids if i not in index]
    if missing:
        raise ValueError(f"{what}: {len(missing)} id(s) not in the data, e.g. {missing[0]!r}")
    return [index[i] for i in ids]


def sample_train(examples: list[Example], dataset: str, seed: int, n: int = 48) -> list[Example]:
    """n examples, n / #labels per label for balanced datasets (ECQA: n at random); deterministic per seed."""
    rng = random.Random(f"{dataset}-train-{seed}")
    pool = sorted(examples, key=lambda e: e.id)
    labels = LABELS[dataset]
    if labels is None:
        if len(pool) < n:
            raise ValueError(f"{dataset}: {n} training examples asked, only {len(pool)} available")
        return rng.sample(pool, n)
    if n % len(labels):
        raise ValueError(f"{dataset}: {n} training examples cannot be split evenly over {len(labels)} labels")
    chosen: list[Example] = []
    for label in labels:
        group = [e for e in pool if e.label == label]
        if len(group) < n // len(labels):
            raise ValueError(f"{dataset}: {n // len(labels)} examples of label {label!r} asked, "
                             f"only {len(group)} available")
        chosen += rng.sample(group, n // len(labels))
    rng.shuffle(chosen)
    return chosen


def sample_validation(examples: list[Example], dataset: str, seed: int, n: int = 350) -> list[Example]:
    """n validation examples drawn at random (all of them when fewer); deterministic per seed."""
    pool = sorted(examples, key=lambda e: e.id)
    return random.Random(f"{dataset}-validation-{seed}").sample(pool, min(n, len(pool)))


def few_shot_split(dataset: str, data_dir: str | Path, seed: int, n_train: int = 48, n_val: int = 350,
                   train_ids: list[str] | None = None, val_ids: list[str] | None = None) -> FewShotSplit:
    """FEB-style split for a seed, or the given id lists (to reuse published splits)."""
    train_pool = load_split(dataset, data_dir, "train")
    val_pool = load_split(dataset, data_dir, "validation")
    train = _by_ids(train_pool, train_ids, "train ids") if train_ids else sample_train(train_pool, dataset, seed, n_train)
    val = _by_ids(val_pool, val_ids, "validation ids") if val_ids else sample_validation(val_pool, dataset, seed, n_val)
    return FewShotSplit(seed, train, val)


def read_id_list(path: str | Path) -> list[str]:
    """One id per line (blank lines ignored)."""
    path = Path(path)
    try:
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise InputFileError(path, None, None, "id list not found") from None
    if not ids:
        raise InputFileError(path, None, None, "id list is empty")
    return ids
