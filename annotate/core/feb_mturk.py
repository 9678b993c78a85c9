"""FEB's crowd evaluation on MTurk (allenai/feb `human_eval/results`) read as a rating study: items and ratings.

FEB (Marasović et al., Findings of NAACL 2022) had workers rate, per dataset and model, 360 correctly predicted
samples (allenai/feb scripts/samples_for_human_eval.py: six per few-shot split, balanced by label). A HIT holds ten
of them (tasks k = 1..10) and was done by three workers: one CSV row per worker. For every task a worker saw two
explanations, the dataset's gold one and the model's, in the order `Input.{k}_gt_idx` gives (0: gold first), and
answered yes / w_yes / w_no / no for each (`Answer.{k}-e1`, `Answer.{k}-e2`); FEB's scripts/compute_kappa.py scores
them 1, 2/3, 1/3, 0, which is this project's scale. `Input.{k}_ques_id` numbers the samples within one batch file
only (the same number names different samples in another model's file).

What becomes what (docs/analysis.md, "FEB's crowd evaluation"):
- each batch file `results/<dataset>/<model>_Batch_*.csv`: configuration `<model>` (gpt3, base, large, 3b);
  `sensemaking` is ComVE (`comve` here);
- each task: an item with the model's explanation, sample id `<model>-<ques_id>`, and a gold reference item
  (config "gold") with the gold explanation under the same sample id;
- each answer: a rating by the row's worker, named by a pseudonym (see `pseudonym` and `rater_name`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annotate.core.errors import InputFileError
from annotate.core.formats import NLE, RatingRow, csv_rows
from annotate.core.importing import GOLD_CONFIG, ImportResult
from annotate.core.scale import Guidelines, Rules

if TYPE_CHECKING:
    from annotate.core.store import Store

DEFAULT_STUDY = "feb-mturk"
# FEB's folder names -> this project's dataset names.
FEB_DATASETS: dict[str, str] = {"esnli": "esnli", "ecqa": "ecqa", "sbic": "sbic", "sensemaking": "comve"}
# FEB's answer values (templates/*_MTurk_questionnaire.html) -> this project's ratings; compute_kappa.py's
# label_mapping_plausibility gives them the same scores (1, 2/3, 1/3, 0).
ANSWERS: dict[str, str] = {"yes": "yes", "w_yes": "weak_yes", "w_no": "weak_no", "no": "no"}
# The file-name prefix of each of FEB's batches -> the model that wrote the explanations.
MODELS: dict[str, str] = {"gpt3": "GPT-3", "base": "UnifiedQA-T5-base", "large": "UnifiedQA-T5-large",
                          "3b": "UnifiedQA-T5-3B"}
# Input fields by dataset: this project's field (annotate/app/render.py INPUT_LAYOUT) -> FEB's column(s).
INPUT_COLUMNS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "esnli": {"premise": "Input.question_{k}_i", "hypothesis": "Input.question_{k}_j"},
    "ecqa": {"question": "Input.question_{k}", "choices": tuple(f"Input.answer_{{k}}_{c}" for c in "abcde")},
    "sbic": {"post": "Input.question_{k}"},
    "comve": {"sent0": "Input.question_{k}_i", "sent1": "Input.question_{k}_j"},
}
# `Input.gt_{k}` indexes these (the order of the questionnaires' answer options); ECQA's label is the chosen answer.
LABELS: dict[str, tuple[str, ...] | None] = {
    "esnli": ("entailment", "neutral", "contradiction"),
    "ecqa": None,
    "sbic": ("offensive", "not_offensive"),  # FEB's "Is this post offensive?": 0 Yes, 1 No
    "comve": ("choice1", "choice2"),  # "Which sentence doesn't make sense?": 0 Sentence A, 1 Sentence B
}
TASK_COLUMNS = ("Input.{k}_ques_id", "Input.{k}_gt_idx", "Input.gt_{k}", "Input.explanation_{k}_i",
                "Input.explanation_{k}_j", "Answer.{k}-e1", "Answer.{k}-e2")
# FEB asked for no shortcoming tags (the sensemaking template has the question commented out), so a study made
# here requires none; the other rules are the project's.
FEB_RULES = Rules(tags_required_for=())
FEB_INTRO = (
    "These items come from FEB's crowd evaluation (Marasović et al., 2022; allenai/feb, Apache-2.0). FEB's workers "
    "judged whether each explanation justifies the answer: an explanation that does is easily understood, gives "
    "all important reasons and implications behind the answer, and does not just restate the input."
)
# FEB's own warning (templates/sbic_MTurk_questionnaire.html), for a study that holds SBIC posts.
SBIC_CONTENT_NOTE = (
    "Content note: SBIC posts were found on the uncensored internet and may be offensive, hateful or rude; they "
    "are shown because rating explanations of offensiveness needs them, not because anyone endorses them."
)
KEY_BYTES = 32


@dataclass
class Batch:
    """One batch file read: its dataset and configuration, the items it holds and their ratings."""

    path: Path
    dataset: str
    config: str
    items: list[NLE] = field(default_factory=list)
    ratings: list[RatingRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class FebImportResult:
    """What `import-feb-mturk` did: the import's counts and a note for each column a batch lacks."""

    result: ImportResult
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return "\n".join([self.result.summary(), *(f"note: {n}" for n in self.notes)])


def pseudonym(key: bytes, study: str, worker_id: str) -> str:
    """`worker-` and 16 hex digits of HMAC-SHA256(key, study NUL worker id): the same for the same key, study and
    worker on every import, and without the key nothing links it to the MTurk id (or across studies)."""
    digest = hmac.new(key, f"{study}\0{worker_id}".encode(), hashlib.sha256).hexdigest()
    return f"worker-{digest[:16]}"


def rater_name(study: str, slot: int) -> str:
    """The name of the `slot`-th assignment of every HIT when the file has no worker ids (FEB's published files):
    a position, not a person."""
    return f"{study} rater {slot}"


def load_key(path: str | Path) -> tuple[bytes, bool]:
    """The pseudonym key in `path`, created (random, readable by the owner only) when the file does not exist;
    (key, created)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < 16:
            raise InputFileError(path, None, None, "a pseudonym key file must hold at least 16 bytes") from None
        return key, False
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key, True


def batch_files(root: str | Path) -> list[tuple[Path, str, str]]:
    """(file, dataset, configuration) of every batch file under `root`/results/<dataset>/, in name order."""
    results = Path(root) / "results"
    if not results.is_dir():
        raise InputFileError(results, None, None, "folder not found; expected results/<dataset>/*.csv as in "
                                                  "allenai/feb human_eval/")
    out = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        if folder.name not in FEB_DATASETS:
            raise InputFileError(folder, None, None, "unknown FEB dataset folder; expected one of "
                                                     + ", ".join(FEB_DATASETS))
        seen: dict[str, Path] = {}
        for path in sorted(folder.glob("*.csv")):
            config = path.name.split("_", 1)[0]
            if "_" not in path.name or not config:
                raise InputFileError(path, None, None, "the file name must start with the model and '_', "
                                                       "e.g. gpt3_Batch_4602626_batch_results.csv")
            if config in seen:
                raise InputFileError(path, None, None, f"a second batch of model {config!r} in {folder.name}/ "
                                                       f"(the first is {seen[config].name})")
            seen[config] = path
            out.append((path, FEB_DATASETS[folder.name], config))
    if not out:
        raise InputFileError(results, None, None, "no batch files; expected results/<dataset>/*.csv")
    return out


def _tasks(path: Path, header: list[str], dataset: str) -> tuple[list[int], list[str]]:
    """The task numbers 1..n of a HIT, every column they need present in the header, and a note for each text
    column that is missing (FEB's ECQA large batch, as published, has no `Input.question_1`): those items go
    without that field, while a task left with no input at all is an error."""
    numbers = sorted(int(m.group(1)) for c in header if (m := re.fullmatch(r"Input\.(\d+)_ques_id", c)))
    if not numbers:
        raise InputFileError(path, 1, "Input.1_ques_id", "required column is missing from the header")
    required = list(TASK_COLUMNS) + [c for spec in INPUT_COLUMNS[dataset].values() if not isinstance(spec, str)
                                     for c in spec]
    texts = [spec for spec in INPUT_COLUMNS[dataset].values() if isinstance(spec, str)]
    notes = []
    for k in range(1, max(numbers) + 1):
        for column in required:
            if column.format(k=k) not in header:
                raise InputFileError(path, 1, column.format(k=k), "required column is missing from the header")
        missing = [c.format(k=k) for c in texts if c.format(k=k) not in header]
        if missing and len(missing) == len(INPUT_COLUMNS[dataset]):
            raise InputFileError(path, 1, missing[0], "required column is missing from the header")
        notes += [f"{path.name}: no column {c}, so the items of task {k} have no {name!r} in their input"
                  for name, spec in INPUT_COLUMNS[dataset].items() for c in [str(spec).format(k=k)]
                  if isinstance(spec, str) and c in missing]
    return list(range(1, max(numbers) + 1)), notes


def _need(path: Path, line: int, row: dict[str, str], column: str) -> str:
    value = row[column].strip()
    if not value:
        raise InputFileError(path, line, column, "must not be empty")
    return value


def _inputs(row: dict[str, str], dataset: str, k: int) -> dict[str, Any]:
    """The task's input as published: a text FEB left empty stays empty (two SBIC posts are)."""
    out: dict[str, Any] = {}
    for name, spec in INPUT_COLUMNS[dataset].items():
        if isinstance(spec, str):
            if spec.format(k=k) in row:
                out[name] = row[spec.format(k=k)]
        else:
            out[name] = [row[s.format(k=k)] for s in spec]
    return out


def _label(path: Path, line: int, row: dict[str, str], dataset: str, k: int, inputs: dict[str, Any]) -> str:
    column = f"Input.gt_{k}"
    options = LABELS[dataset] or inputs["choices"]
    value = row[column].strip()
    if not value.isdigit() or int(value) >= len(options):
        raise InputFileError(path, line, column, f"must be an answer index 0..{len(options) - 1}, got {value[:40]!r}")
    return options[int(value)]


def _answer(path: Path, line: int, row: dict[str, str], column: str) -> str:
    value = row[column].strip()
    if value not in ANSWERS:
        raise InputFileError(path, line, column, f"unknown answer {value[:40]!r}; FEB's answers are "
                                                 + ", ".join(ANSWERS))
    return ANSWERS[value]


def _annotators(path: Path, rows: list[tuple[int, dict[str, str]]], tasks: list[int], study: str,
                key: bytes | None) -> Iterator[str]:
    """The annotator name of each row: the worker's pseudonym when the file has MTurk's WorkerId column, else the
    row's place among its HIT's assignments (HITs told apart by HITId, or by the samples they hold)."""
    if rows and "WorkerId" in rows[0][1]:
        if key is None:
            raise InputFileError(path, 1, "WorkerId", "MTurk worker ids are replaced by keyed pseudonyms; "
                                                      "give a key file (--pseudonym-key FILE)")
        for line, row in rows:
            yield pseudonym(key, study, _need(path, line, row, "WorkerId"))
        return
    seen: dict[Any, int] = {}
    for line, row in rows:
        hit = row.get("HITId") or tuple(_need(path, line, row, f"Input.{k}_ques_id") for k in tasks)
        seen[hit] = seen.get(hit, 0) + 1
        yield rater_name(study, seen[hit])


def read_batch(path: Path, dataset: str, config: str, study: str, key: bytes | None = None) -> Batch:
    """One batch file as items (the model's explanation and the gold one per task) and ratings; InputFileError
    naming file, line and column on the first bad value."""
    rows = list(csv_rows(path, None, ("Input.1_ques_id",), raw=True))
    if not rows:
        raise InputFileError(path, None, None, "file holds no assignment rows")
    tasks, notes = _tasks(path, list(rows[0][1]), dataset)
    batch = Batch(path, dataset, config, notes=notes)
    first: dict[str, tuple[int, tuple]] = {}
    rated: dict[tuple[str, str, str], int] = {}
    for (line, row), annotator in zip(rows, _annotators(path, rows, tasks, study, key), strict=True):
        for k in tasks:
            qid_column = f"Input.{k}_ques_id"
            sample_id = f"{config}-{_need(path, line, row, qid_column)}"
            order = row[f"Input.{k}_gt_idx"].strip()
            if order not in ("0", "1"):
                raise InputFileError(path, line, f"Input.{k}_gt_idx", f"must be 0 or 1, got {order[:40]!r}")
            inputs = _inputs(row, dataset, k)
            label = _label(path, line, row, dataset, k, inputs)
            i, j = row[f"Input.explanation_{k}_i"], row[f"Input.explanation_{k}_j"]
            # gt_idx 0: the gold explanation is #1 (explanation_i, answered in e1), as compute_kappa.py reads it.
            gold, model, gold_col, model_col = ((i, j, f"Answer.{k}-e1", f"Answer.{k}-e2") if order == "0"
                                                else (j, i, f"Answer.{k}-e2", f"Answer.{k}-e1"))
            content = (inputs, label, gold, model)
            if sample_id not in first:
                first[sample_id] = (line, content)
                batch.notes += [f"{path.name}, line {line}: {name!r} of sample {sample_id!r} is empty (kept as "
                                "published)" for name, text in inputs.items() if not str(text).strip()]
                source = {"feb_batch": path.name, "feb_ques_id": sample_id.split("-", 1)[1]}
                common = dict(dataset=dataset, sample_id=sample_id, input=inputs, predicted_label=label,
                              gold_label=label, gold_explanations=[gold])
                batch.items.append(NLE(config=config, explanation=model, model=MODELS.get(config, config),
                                       metadata=source, line=line, **common))
                batch.items.append(NLE(config=GOLD_CONFIG, explanation=gold, metadata={"reference": True, **source},
                                       line=-line, **common))
            elif first[sample_id][1] != content:
                raise InputFileError(path, line, qid_column, f"sample {sample_id!r} already appears on line "
                                                             f"{first[sample_id][0]} with other content")
            for item_config, column in ((config, model_col), (GOLD_CONFIG, gold_col)):
                rating = _answer(path, line, row, column)
                where = (annotator, sample_id, item_config)
                if where in rated:
                    raise InputFileError(path, line, qid_column, f"{annotator!r} already rated sample "
                                                                 f"{sample_id!r} on line {rated[where]}")
                rated[where] = line
                batch.ratings.append(RatingRow(dataset, sample_id, item_config, annotator, rating, [], "", None,
                                               None, line=line))
    return batch


def read_feb_mturk(root: str | Path, study: str = DEFAULT_STUDY, key: bytes | None = None) -> list[Batch]:
    """Every batch under `root`/results/, read and checked whole before anything is written."""
    return [read_batch(path, dataset, config, study, key) for path, dataset, config in batch_files(root)]


def feb_guidelines(with_sbic: bool) -> Guidelines:
    """The guidelines of a study made from FEB's batches: FEB's criteria, and its content note when SBIC is in."""
    intro = f"{SBIC_CONTENT_NOTE}\n\n{FEB_INTRO}" if with_sbic else FEB_INTRO
    return Guidelines(version="feb-1", intro=intro)


def import_feb_mturk(store: Store, root: str | Path, study: str | None = None,
                     key: bytes | None = None) -> FebImportResult:
    """Import FEB's batches under `root` into `study` (default "feb-mturk") in one transaction: all or nothing,
    and importing the same files again changes nothing."""
    study = study or DEFAULT_STUDY
    batches = read_feb_mturk(root, study, key)
    result = store.import_rated_items([(b.path, b.items, b.ratings) for b in batches], study, rules=FEB_RULES,
                                      guidelines=feb_guidelines(any(b.dataset == "sbic" for b in batches)))
    return FebImportResult(result, [n for b in batches for n in b.notes])
