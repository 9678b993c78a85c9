"""Loaders for the four NLE datasets' raw releases (FEB-style few-shot splits: generation.splits).

Every loader returns `Example`s; a missing or malformed file raises `InputFileError` naming the file,
the line and what was expected.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from generation.errors import InputFileError

DATASETS = ("esnli", "ecqa", "sbic", "comve")
SPLITS = ("train", "validation", "test")
# Label sets for the class-balanced datasets; ECQA's label is the text of the chosen answer.
LABELS: dict[str, tuple[str, ...] | None] = {
    "esnli": ("entailment", "neutral", "contradiction"),
    "ecqa": None,
    "sbic": ("not_offensive", "offensive"),  # FEB's label strings, in the order FEB samples them
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

_CQA_FILES = ("train_rand_split.jsonl", "dev_rand_split.jsonl")
# FEB preprocess_data.py: "ECQA and CQA have different splits; use ECQA splits" (author_split/*_ids.txt).
_ECQA_SPLIT_FILES = {"train": "train_ids.txt", "validation": "val_ids.txt", "test": "test_ids.txt"}


def ecqa_explanation(positives: list[str]) -> str:
    """FEB preprocess_data.py: the `positives` joined with '. ' plus '.', with '..' made '.'."""
    return (". ".join(positives) + ".").replace("..", ".")


def load_ecqa(data_dir: Path, split: str) -> list[Example]:
    """ECQA in its authors' split (author_split/{train,val,test}_ids.txt, in file order), questions from
    CommonsenseQA's train/dev_rand_split.jsonl (in DIR or DIR/cqa), explanations = ecqa.jsonl `positives`."""
    ids_path = data_dir / "author_split" / _ECQA_SPLIT_FILES[split]
    if not ids_path.is_file():
        raise InputFileError(ids_path, None, None, "ECQA author split not found (the ECQA release's "
                             "author_split/train_ids.txt, val_ids.txt, test_ids.txt)")
    ecqa_path = _find(data_dir, ["ecqa.jsonl"], "ECQA explanations")
    explanations: dict[str, str] = {}
    for line, row in _read_jsonl(ecqa_path):
        pos = row.get("positives")
        if not isinstance(pos, list) or not pos or not all(isinstance(p, str) for p in pos):
            raise InputFileError(ecqa_path, line, "positives", "must be a non-empty list of strings")
        explanations[_need(ecqa_path, line, row, "id")] = ecqa_explanation(pos)
    questions: dict[str, tuple[str, list[str], str]] = {}
    for name in _CQA_FILES:
        cqa_path = _find(data_dir, [name, f"cqa/{name}"], "CommonsenseQA file")
        for line, row in _read_jsonl(cqa_path):
            qid = _need(cqa_path, line, row, "id")
            question = row.get("question")
            if not isinstance(question, dict) or not isinstance(question.get("choices"), list):
                raise InputFileError(cqa_path, line, "question", "expected an object with stem and choices")
            stem = _need(cqa_path, line, question, "stem")
            choices = [c for c in question["choices"] if isinstance(c, dict)]
            texts = [c.get("text", "") for c in choices]
            if len(choices) != 5 or not all(isinstance(t, str) and t.strip() for t in texts):
                raise InputFileError(cqa_path, line, "question.choices", "expected five labelled choices with text")
            answer = next((c["text"] for c in choices if c.get("label") == row.get("answerKey")), None)
            if answer is None:
                raise InputFileError(cqa_path, line, "answerKey", f"{row.get('answerKey')!r} is not one of the choice labels")
            questions[qid] = (stem, texts, answer)
    examples = []
    for number, qid in enumerate(ids_path.read_text(encoding="utf-8").splitlines(), start=1):
        qid = qid.strip()
        if not qid:
            continue
        if qid not in questions:
            raise InputFileError(ids_path, number, None, f"id {qid!r} is in no CommonsenseQA file")
        if qid not in explanations:
            raise InputFileError(ids_path, number, None, f"id {qid!r} has no ECQA explanation in {ecqa_path.name}")
        stem, texts, answer = questions[qid]
        examples.append(Example(qid, "ecqa", {"question": stem, "choices": texts}, answer, [explanations[qid]]))
    return examples


# --- SBIC -----------------------------------------------------------------------------------------

_SBIC_FILES = {"train": "trn", "validation": "dev", "test": "tst"}
_NAN = float("nan")


def _num(path: Path, line: int, row: dict, key: str) -> float:
    value = row[key].strip()
    if not value:
        return _NAN  # pandas reads an empty cell as NaN
    try:
        return float(value)
    except ValueError:
        raise InputFileError(path, line, key, f"not a number: {value[:40]!r}") from None


def _label_of(values: list[float]) -> float:
    """FEB aggregate_sbic_annotations: builtin sum over the post's rows / count >= 0.5; a missing value makes
    the sum NaN and so the label 0.0, as in FEB."""
    frac = sum(values) / float(len(values))
    return 1.0 if frac >= 0.5 else 0.0


SBIC_TAGGERS = ("auto", "spacy", "builtin")
SPACY_MODEL = "en_core_web_sm"  # FEB preprocess_data.py: spacy.load("en_core_web_sm")
_warned_builtin = False


@functools.lru_cache(maxsize=1)
def _spacy_nlp():
    """spaCy's en_core_web_sm, or the reason it cannot be loaded (loaded once per process)."""
    try:
        import spacy
    except ImportError:
        return "spaCy is not installed (pip install spacy, then python -m spacy download en_core_web_sm)"
    try:
        return spacy.load(SPACY_MODEL)
    except OSError:
        return f"spaCy is installed but its model {SPACY_MODEL} is not (python -m spacy download {SPACY_MODEL})"


def sbic_tagger(mode: str = "auto") -> tuple[str, Callable[[str], tuple[str, str, str]]]:
    """(name, tagger) of the first word of an SBIC stereotype: "spacy" = en_core_web_sm as FEB, required;
    "builtin" = `approximate_first_token`; "auto" = spaCy when it loads, else the built-in one with a warning
    (once per process)."""
    global _warned_builtin
    if mode not in SBIC_TAGGERS:
        raise ValueError(f"unknown SBIC tagger {mode!r}; known: {', '.join(SBIC_TAGGERS)}")
    if mode == "builtin":
        return "builtin", approximate_first_token
    nlp = _spacy_nlp()
    if isinstance(nlp, str):
        if mode == "spacy":
            raise ValueError(f"--sbic-tagger spacy: {nlp}; or --sbic-tagger builtin for the built-in approximation")
        if not _warned_builtin:
            _warned_builtin = True
            warnings.warn(f"SBIC explanation templates: {nlp}, so a built-in approximation of its tagger is used "
                          "(docs/reproducing.md says how close it is); --sbic-tagger spacy requires spaCy",
                          stacklevel=2)
        return "builtin", approximate_first_token

    def first(text: str) -> tuple[str, str, str]:
        tok = nlp(text)[0]
        return tok.text, tok.pos_, tok.tag_

    return "spacy", first


_AUX = {"is": "VBZ", "has": "VBZ", "does": "VBZ", "was": "VBD", "were": "VBD", "had": "VBD", "did": "VBD",
        "are": "VBP", "have": "VBP", "do": "VBP", "am": "VBP", "be": "VB", "being": "VBG", "been": "VBN"}
_MODALS = {"can", "could", "will", "would", "should", "shall", "may", "might", "must", "cannot", "ca", "wo"}
# FEB's comment on its VBD/VBZ rule lists the first words it is for: "said, calls, makes, uses, implies,
# marginalized, advocates, encourages, trivializes, refers" ("marginalized" is caught by -ed).
_VERBS = {"said": "VBD", "says": "VBZ", "calls": "VBZ", "makes": "VBZ", "uses": "VBZ", "implies": "VBZ",
          "advocates": "VBZ", "encourages": "VBZ", "trivializes": "VBZ", "refers": "VBZ"}


def approximate_first_token(text: str) -> tuple[str, str, str]:
    """(token, coarse POS, Penn tag) of the first word, approximating spaCy for FEB's SBIC rules: auxiliaries
    and modals by list; FEB's listed verbs and -izes words as VBZ (-ed: VBD); -ing as VBG; anything else a
    noun (a first word in -s is far more often a group such as "jews" or "muslims" than a verb)."""
    words = text.split()
    word = words[0] if words else ""
    if word.lower().endswith("n't") and len(word) > 3:
        word = word[:-3]  # spaCy splits "don't" into "do" + "n't", "can't" into "ca" + "n't"
    low = word.lower()
    if low in _AUX:
        return word, "AUX", _AUX[low]
    if low in _MODALS:
        return word, "AUX", "MD"
    if low in _VERBS:
        return word, "VERB", _VERBS[low]
    if low.endswith("izes") and len(low) > 6:
        return word, "VERB", "VBZ"
    if low.endswith("ing") and len(low) > 4:
        return word, "VERB", "VBG"
    if low.endswith("ed") and len(low) > 3 and not low.endswith("eed"):  # not "need", "feed"
        return word, "VERB", "VBD"
    return word, "NOUN", "NN"


def sbic_explanations(minority: str, inference: str, first_token=approximate_first_token) -> list[str]:
    """FEB preprocess_data.turn_implied_statements_to_explanations for one (targetMinority, targetStereotype)
    pair: every rule that applies adds a sentence, as in FEB."""
    token, pos, tag = first_token(inference)
    out: list[str] = []
    if token == "claims" and tag not in ("VBD", "VBZ"):
        out.append(f"this post {inference}")
    if tag in ("VBD", "VBZ"):
        out.append(f"this post {inference}")
    if (tag == "VBG" and token not in ("implying", "calling")) or token == "being":
        out.append(f"this post implies that {inference}")
    if token in ("implying", "calling"):
        out.append(f"this post is {inference}")
    if token == "rape":
        out.append(f"this post implies that {minority} {inference}")
    if tag in ("MD", "VB") or (pos == "AUX" and token != "being"):
        plural = minority in ("women", "men") or "folks" in minority or len(minority.split(",")) > 1
        if plural and token == "is":
            out.append(f"this post implies that {minority} are {' '.join(inference.split(' ')[1:])}")
        else:
            out.append(f"this post implies that {minority} {inference}")
    if token == "all":
        out.append(f"this post implies that {minority} are {inference}")
    if not out:
        out.append(f"this post implies that {inference}")
    return out


SBIC_PERSONAL_ATTACK = "this post is a personal attack"


def _sbic_from_modified(path: Path) -> list[Example]:
    """FEB's own preprocessed SBIC.v2.<split>.modified.csv (exactly what FEB samples from)."""
    examples = []
    for line, row in _read_csv(path, ("post", "offensiveYN", "targetStereotype")):
        label = row["offensiveYN"].strip()
        if label not in ("offensive", "not offensive"):
            raise InputFileError(path, line, "offensiveYN", f"expected 'offensive' or 'not offensive', got {label[:40]!r}")
        post = row["post"]
        stereotype = row["targetStereotype"]
        if not stereotype.strip():
            raise InputFileError(path, line, "targetStereotype", "must be a non-empty string")
        pid = "sbic-" + hashlib.sha1(post.encode()).hexdigest()[:12]
        examples.append(Example(pid, "sbic", {"post": post}, label.replace("not offensive", "not_offensive"),
                                stereotype.split(" [SEP] ")))
    return examples


def load_sbic(data_dir: Path, split: str, sbic_tagger_mode: str = "auto") -> list[Example]:
    """SBIC as FEB builds it (preprocess_data.py): FEB's SBIC.v2.<split>.modified.csv when present, else the
    raw SBIC.v2.<split>.csv aggregated by post (offensive / targets a group when >= half the annotators say
    so; training: one row per annotated stereotype, evaluation: one row per post) and turned into FEB's
    explanation templates; offensive posts aimed at an individual get "this post is a personal attack".
    `sbic_tagger_mode` picks the first-word tagger of the templates (`sbic_tagger`)."""
    code = _SBIC_FILES[split]
    modified = data_dir / f"SBIC.v2.{code}.modified.csv"
    if modified.is_file():
        return _sbic_from_modified(modified)
    path = _find(data_dir, [f"SBIC.v2.{code}.csv"], f"SBIC {split} CSV")
    rows = _read_csv(path, ("post", "offensiveYN", "targetStereotype", "whoTarget", "targetMinority"))
    by_post: dict[str, list[tuple[int, dict]]] = {}
    for line, row in rows:
        if not row["post"].strip():
            raise InputFileError(path, line, "post", "must be a non-empty string")
        by_post.setdefault(row["post"], []).append((line, row))
    _, first_token = sbic_tagger(sbic_tagger_mode)
    examples = []
    for post, group in by_post.items():  # posts in order of first appearance, as FEB's loop visits them
        offensive = _label_of([_num(path, ln, r, "offensiveYN") for ln, r in group]) == 1.0
        group_target = _label_of([_num(path, ln, r, "whoTarget") for ln, r in group]) == 1.0
        pid = "sbic-" + hashlib.sha1(post.encode()).hexdigest()[:12]
        label = "offensive" if offensive else "not_offensive"
        pairs = [(r["targetMinority"], r["targetStereotype"]) for _, r in group if r["targetStereotype"].strip()]
        if group_target:
            # Training: one row per stereotype annotation; evaluation: one row with all of them.
            # A post without any annotated stereotype: no training row; in evaluation FEB drops it when
            # offensive and keeps it (empty statement, replaced below) when not.
            units = [[p] for p in pairs] if split == "train" else [pairs] if pairs or not offensive else []
        else:
            units = [[]]
        for unit in units:
            if not offensive:
                expl = [SBIC_NOT_OFFENSIVE]
            elif not group_target:
                expl = [SBIC_PERSONAL_ATTACK]
            else:
                expl = [e for m, s in unit for e in sbic_explanations(m, s, first_token)]
            examples.append(Example(pid, "sbic", {"post": post}, label, expl))
    return examples


def sbic_templates_by(data_dir: str | Path, mode: str = "auto") -> str:
    """What builds the SBIC explanations read from `data_dir`: FEB's own modified files ("feb_modified_csv"),
    or the first-word tagger ("spacy" / "builtin")."""
    if (Path(data_dir) / "SBIC.v2.trn.modified.csv").is_file():
        return "feb_modified_csv"
    return sbic_tagger(mode)[0]


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
        texts = [v for v in values[1:] if v.strip()]  # unstripped, as FEB's pandas reads them
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
        inputs = {"sent0": _need(data_path, line, row, "sent0"), "sent1": _need(data_path, line, row, "sent1")}
        if split == "train":
            # FEB preprocess_data.process_senmaking_data: one training row per human explanation (x3).
            examples += [Example(cid, "comve", inputs, label, [e]) for e in expl[cid]]
        else:
            examples.append(Example(cid, "comve", inputs, label, expl[cid]))
    return examples


_LOADERS = {"esnli": load_esnli, "ecqa": load_ecqa, "sbic": load_sbic, "comve": load_comve}


def load_split(dataset: str, data_dir: str | Path, split: str, sbic_tagger_mode: str = "auto") -> list[Example]:
    """All examples of one split of one dataset, from its raw files in `data_dir` (SBIC: templates by
    `sbic_tagger_mode`, see `sbic_tagger`)."""
    if dataset not in _LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputFileError(data_dir, None, None, "data directory not found")
    if dataset == "sbic":
        return load_sbic(data_dir, split, sbic_tagger_mode)
    return _LOADERS[dataset](data_dir, split)


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
