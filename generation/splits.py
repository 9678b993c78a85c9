"""FEB's few-shot splits, sample for sample: its 60 seeds and the RNG calls of `make_splits`.

allenai/feb `scripts/feb_splits.py` (and the same code in `input_to_label_and_rationale.py`), for one seed:
`transformers.set_seed(seed)` (seeds python `random`, numpy's global RandomState and torch), then per split in
the order train, validation, test:
- SBIC and ComVE: per label (SBIC: not offensive, offensive; ComVE: label 0, label 1) pandas
  `df.sample(frac=k / len(df))`, i.e. numpy's global `choice(len, round(frac * len), replace=False)`, which is
  `permutation(len)[:size]`;
- e-SNLI: per label (entailment, neutral, contradiction) `datasets` `filter(...).shuffle()` without a seed,
  which derives a seed from numpy's global state, steps it once and permutes with `default_rng(seed)`;
- ECQA: `random.sample(rows, k)` for train, then validation.
k: training `n_shots` per label (e-SNLI 16, SBIC and ComVE 24; ECQA 48 in all), validation
`int(fewshot_eval_size / n_labels)` per label with the paper's `fewshot_eval_size=350` (e-SNLI 116 per
label = 348, SBIC and ComVE 175, ECQA 350). FEB's `make_splits` default `gpt3_max_eval_size=18` (18-item
validation sets) is not copied: the paper's runs use `gpt3_max_eval_size=None`.

This module needs numpy (a dependency of torch and transformers), not pandas or `datasets`: it reproduces
their draws from the same numpy generators.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from generation.data import LABELS, Example, load_split
from generation.errors import InputFileError
from generation.prompts import prompt, target_explanation
from generation.rundir import SPLIT_FILE

# FEB scripts/feb_benchmark.py and scripts/exp.py: seeds_fewshot.
FEB_SEEDS: tuple[int, ...] = (
    7004, 3639, 6290, 9428, 7056, 4864, 4273, 7632, 2689, 8219, 4523, 2175, 7356, 8975, 51, 4199, 4182, 1331,
    2796, 6341, 7009, 1111, 1967, 1319, 741, 7740, 1335, 9933, 6339, 3112, 1349, 8483, 2348, 834, 6895, 4823,
    2913, 9962, 178, 2147, 8160, 1936, 9991, 6924, 6595, 5358, 2638, 6227, 8384, 2769, 4512, 2051, 4779, 2498,
    176, 9599, 1181, 5320, 588, 4791,
)
# FEB's task names, used in its split file names (feb_data/<task>/<task>_train_<seed>.json).
FEB_TASK = {"esnli": "esnli", "ecqa": "ecqa", "sbic": "sbic", "comve": "sensemaking"}
# datasets' seedless shuffle: "v2" = datasets >= 2 (`key[pos] if pos < 624 else key[0]`), "v1" = `key[0]`.
# Both agree on the first shuffle after seeding; FEB pinned no datasets version (requirements.txt).
ShuffleRule = Literal["v2", "v1"]


def parse_seeds(specs: list[str]) -> list[int]:
    """'feb' = FEB's 60 seeds, 'feb:N' = the first N of them, integers as given; order kept, repeats dropped."""
    seeds: list[int] = []
    for spec in specs:
        spec = spec.strip()
        if spec == "feb":
            seeds += FEB_SEEDS
        elif spec.startswith("feb:"):
            n = spec[4:]
            if not n.isdigit() or not 1 <= int(n) <= len(FEB_SEEDS):
                raise ValueError(f"seed list {spec!r}: N in feb:N must be 1..{len(FEB_SEEDS)}")
            seeds += FEB_SEEDS[:int(n)]
        else:
            try:
                seed = int(spec)
            except ValueError:
                raise ValueError(f"seed {spec!r} is not an integer, 'feb' or 'feb:N'") from None
            if seed < 0:
                raise ValueError(f"seed {seed} must be >= 0")
            seeds.append(seed)
    return list(dict.fromkeys(seeds))


@dataclass
class FebSplit:
    """The training rows and validation rows FEB selects for one seed, in FEB's order."""

    dataset: str
    seed: int
    train: list[Example]
    validation: list[Example]


def per_label_counts(dataset: str, n_train: int, n_val: int) -> tuple[int, int]:
    """(training rows per label, validation rows per label); ECQA: totals."""
    labels = LABELS[dataset]
    if labels is None:
        return n_train, n_val
    if n_train % len(labels):
        raise ValueError(f"{dataset}: {n_train} training examples cannot be split evenly over {len(labels)} labels")
    if n_val < len(labels):  # int(n_val / labels) would be 0: an empty validation set, nothing to generate
        raise ValueError(f"{dataset}: {n_val} validation examples give none per label ({len(labels)} labels)")
    return n_train // len(labels), int(n_val / len(labels))


def _pandas_sample(rs: np.random.RandomState, rows: list[Example], k: int, what: str) -> list[Example]:
    """pandas `sample(frac=k / len, replace=False)` drawing from numpy's global RandomState `rs`."""
    n = len(rows)
    if n == 0:
        raise ValueError(f"{what}: no examples to sample from")
    size = round(k / n * n)
    if size > n:
        raise ValueError(f"{what}: {k} examples asked, only {n} available")
    return [rows[i] for i in rs.permutation(n)[:size]]


def _datasets_shuffle(rs: np.random.RandomState, rows: list[Example], k: int, rule: ShuffleRule,
                      what: str) -> list[Example]:
    """datasets `Dataset.shuffle()` without a seed, then `.select(range(k))`."""
    if len(rows) < k:
        raise ValueError(f"{what}: {k} examples asked, only {len(rows)} available")
    _, key, pos, *_ = rs.get_state()
    seed = int(key[pos] if rule == "v2" and pos < 624 else key[0])
    rs.random_sample()  # datasets: "do 1 step of rng"
    perm = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i] for i in perm[:k]]


def feb_split(dataset: str, data_dir: str | Path, seed: int, n_train: int = 48, n_val: int = 350,
              shuffle_rule: ShuffleRule = "v2", sbic_tagger_mode: str = "auto") -> FebSplit:
    """The rows FEB's make_splits selects for `seed` from the dataset's files (see the module docstring)."""
    train_rows = load_split(dataset, data_dir, "train", sbic_tagger_mode)
    val_rows = load_split(dataset, data_dir, "validation", sbic_tagger_mode)
    k_train, k_val = per_label_counts(dataset, n_train, n_val)
    if dataset == "ecqa":
        rnd = random.Random(seed)  # transformers.set_seed -> random.seed(seed)
        for rows, k, what in ((train_rows, k_train, "train"), (val_rows, k_val, "validation")):
            if len(rows) < k:
                raise ValueError(f"ecqa {what}: {k} examples asked, only {len(rows)} available")
        return FebSplit(dataset, seed, rnd.sample(train_rows, k_train), rnd.sample(val_rows, k_val))
    rs = np.random.RandomState(seed)  # transformers.set_seed -> np.random.seed(seed)
    chosen: dict[str, list[Example]] = {}
    for split, rows, k in (("train", train_rows, k_train), ("validation", val_rows, k_val)):
        chosen[split] = []
        for label in LABELS[dataset]:
            group = [e for e in rows if e.label == label]
            what = f"{dataset} {split}, label {label!r}"
            if dataset == "esnli":
                chosen[split] += _datasets_shuffle(rs, group, k, shuffle_rule, what)
            else:
                chosen[split] += _pandas_sample(rs, group, k, what)
    return FebSplit(dataset, seed, chosen["train"], chosen["validation"])


# --- FEB split files (feb_data/<task>/<task>_<split>_<seed>.json, JSON lines) -----------------------------


def split_file_names(dataset: str, seed: int) -> dict[str, str]:
    task = FEB_TASK[dataset]
    return {split: f"{task}_{split}_{seed}.json" for split in ("train", "validation")}


def feb_row(example: Example) -> dict:
    """An example in the fields of FEB's split files, plus its `sample_id`."""
    x, ds = example.inputs, example.dataset
    if ds == "esnli":
        row = {"premise": x["premise"], "hypothesis": x["hypothesis"],
               "label": LABELS["esnli"].index(example.label)}
        row.update({f"explanation_{k + 1}": (example.explanations[k] if k < len(example.explanations) else "")
                    for k in range(3)})
    elif ds == "ecqa":
        row = {"question": x["question"], "answer": example.label, "choices": list(x["choices"]),
               "explanation": example.explanations[0]}
    elif ds == "sbic":
        row = {"post": x["post"], "offensiveYN": example.label.replace("not_offensive", "not offensive"),
               "targetStereotype": " [SEP] ".join(example.explanations)}
    else:
        row = {"sent0": x["sent0"], "sent1": x["sent1"], "label": LABELS["comve"].index(example.label),
               "explanation": "[SEP]".join(example.explanations)}
    return {"sample_id": example.id, **row}


def _example_from_row(dataset: str, row: dict, path: Path, line: int) -> Example:
    def need(key: str):
        if key not in row or row[key] is None:
            raise InputFileError(path, line, key, "missing")
        return row[key]

    try:
        if dataset == "esnli":
            expl = [str(row[k]) for k in ("explanation_1", "explanation_2", "explanation_3") if row.get(k)]
            label = need("label")
            label = LABELS["esnli"][label] if isinstance(label, int) else str(label)
            return Example(str(row.get("sample_id", "")), "esnli",
                           {"premise": str(need("premise")), "hypothesis": str(need("hypothesis"))}, label, expl)
        if dataset == "ecqa":
            return Example(str(row.get("sample_id", "")), "ecqa",
                           {"question": str(need("question")), "choices": [str(c) for c in need("choices")]},
                           str(need("answer")), [str(need("explanation"))])
        if dataset == "sbic":
            post = str(need("post"))
            pid = row.get("sample_id") or "sbic-" + hashlib.sha1(post.encode()).hexdigest()[:12]
            return Example(str(pid), "sbic", {"post": post},
                           str(need("offensiveYN")).replace("not offensive", "not_offensive"),
                           str(need("targetStereotype")).split(" [SEP] "))
        label = int(need("label"))
        return Example(str(row.get("sample_id", "")), "comve", {"sent0": str(need("sent0")), "sent1": str(need("sent1"))},
                       LABELS["comve"][label], str(need("explanation")).split("[SEP]"))
    except (TypeError, ValueError, IndexError) as exc:
        raise InputFileError(path, line, None, f"not a FEB {FEB_TASK[dataset]} row ({exc})") from None


def _input_key(example: Example) -> str:
    """The example's input with whitespace collapsed (FEB's rows keep the release's spacing, our loaders strip)."""
    def norm(v):
        return [" ".join(x.split()) for x in v] if isinstance(v, list) else " ".join(str(v).split())

    return json.dumps({k: norm(v) for k, v in example.inputs.items()}, sort_keys=True)


def read_split_files(directory: str | Path, dataset: str, seed: int, data_dir: str | Path | None = None,
                     sbic_tagger_mode: str = "auto") -> FebSplit:
    """FEB's `<task>_train_<seed>.json` / `<task>_validation_<seed>.json` from `directory` (or its `<task>/`
    folder). Rows without a `sample_id` (FEB's own files) get the dataset's id by matching their input
    against `data_dir`'s examples."""
    directory = Path(directory)
    if (directory / FEB_TASK[dataset]).is_dir():
        directory = directory / FEB_TASK[dataset]
    index: dict[str, str] | None = None
    out: dict[str, list[Example]] = {}
    for split, name in split_file_names(dataset, seed).items():
        path = directory / name
        if not path.is_file():
            raise InputFileError(path, None, None, "FEB split file not found")
        examples = []
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)  # FEB's files may hold NaN, which json reads
            except json.JSONDecodeError as exc:
                raise InputFileError(path, number, None, f"invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputFileError(path, number, None, "expected a JSON object")
            ex = _example_from_row(dataset, row, path, number)
            if not ex.id:
                if index is None:
                    if data_dir is None:
                        raise InputFileError(path, number, "sample_id", "missing, and no data directory to match the input against")
                    index = {}
                    for s in ("train", "validation"):
                        for e in load_split(dataset, data_dir, s, sbic_tagger_mode):
                            index.setdefault(_input_key(e), e.id)
                ex.id = index.get(_input_key(ex), "")
                if not ex.id:
                    raise InputFileError(path, number, None, f"input not found in the data directory {data_dir}")
            examples.append(ex)
        if not examples:
            raise InputFileError(path, None, None, "file holds no rows")
        out[split] = examples
    return FebSplit(dataset, seed, out["train"], out["validation"])


def write_split_files(split: FebSplit, directory: str | Path) -> list[Path]:
    """Write the split in FEB's file layout (JSON lines, FEB's fields plus `sample_id`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name_split, name in split_file_names(split.dataset, split.seed).items():
        path = directory / name
        rows = split.train if name_split == "train" else split.validation
        path.write_text("".join(json.dumps(feb_row(e), ensure_ascii=False) + "\n" for e in rows), encoding="utf-8")
        paths.append(path)
    return paths


def split_json(split: FebSplit) -> dict:
    """`nle-gen splits --json`: dataset, seed, and per split the rows' sample_id, label, explanation (the
    training target's explanation) and input (FEB's input string)."""
    def rows(examples: list[Example]) -> list[dict]:
        return [{"sample_id": e.id, "label": e.label, "explanation": target_explanation(e), "input": prompt(e)}
                for e in examples]

    return {"dataset": split.dataset, "seed": split.seed, "train": rows(split.train),
            "validation": rows(split.validation)}


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


def few_shot_split(dataset: str, data_dir: str | Path, seed: int, n_train: int = 48, n_val: int = 350,
                   train_ids: list[str] | None = None, val_ids: list[str] | None = None,
                   sbic_tagger_mode: str = "auto") -> FewShotSplit:
    """FEB's split for a seed (`feb_split`), or the given id lists (to reuse published splits)."""
    def load(split: str) -> list[Example]:
        return load_split(dataset, data_dir, split, sbic_tagger_mode)

    train = _by_ids(load("train"), train_ids, "train ids") if train_ids else None
    val = _by_ids(load("validation"), val_ids, "validation ids") if val_ids else None
    if train is None or val is None:
        split = feb_split(dataset, data_dir, seed, n_train, n_val, sbic_tagger_mode=sbic_tagger_mode)
        train, val = train if train is not None else split.train, val if val is not None else split.validation
    return FewShotSplit(seed, train, val)


def training_split(cfg) -> FewShotSplit:
    """The split a TrainConfig asks for: FEB's split files (`split_files`), else FEB's draw for its seed or the
    given id lists."""
    if cfg.split_files:
        split = read_split_files(cfg.split_files, cfg.dataset, cfg.seed, cfg.data_dir, cfg.sbic_tagger)
        return FewShotSplit(split.seed, split.train, split.validation)
    return few_shot_split(cfg.dataset, cfg.data_dir, cfg.seed, cfg.n_train, cfg.n_val, cfg.train_ids, cfg.val_ids,
                          cfg.sbic_tagger)


def run_examples(run_dir: Path, train_config: dict, split: str, data_dir: str | None = None) -> list[Example]:
    """The examples a run is evaluated on: its own validation items (split.json), or the whole other split."""
    pool = load_split(train_config["dataset"], data_dir or train_config["data_dir"], split,
                      train_config.get("sbic_tagger", "auto"))
    if split != "validation":
        return pool
    ids = json.loads((run_dir / SPLIT_FILE).read_text())["validation"]
    index = {e.id: e for e in pool}
    examples = [index[i] for i in ids if i in index]
    if len(examples) != len(ids):
        raise ValueError(f"{run_dir / SPLIT_FILE}: {len(ids) - len(examples)} validation ids not in the data")
    return examples
