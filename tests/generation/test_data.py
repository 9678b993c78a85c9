"""Dataset loaders (real ComVE files, raw-format fixtures), their errors, and few-shot splits."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from generation.data import LABELS, SBIC_NOT_OFFENSIVE, few_shot_split, load_split, read_id_list
from generation.errors import InputFileError


def test_comve_real_files(comve_dir: Path) -> None:
    train = load_split("comve", comve_dir, "train")
    dev = load_split("comve", comve_dir, "validation")
    assert (len(train), len(dev)) == (10_000, 997)
    by_id = {e.id: e for e in train}
    ex = by_id["1"]
    assert ex.inputs == {"sent0": "He drinks apple.", "sent1": "He drinks milk."}
    assert ex.label == "choice1"  # statement 0 is the nonsensical one
    assert ex.explanations[0] == "Apple can not be drunk" and len(ex.explanations) == 3
    assert by_id["2"].label == "choice2"
    assert set(Counter(e.label for e in train)) == {"choice1", "choice2"}


def test_comve_real_split_is_balanced_and_deterministic(comve_dir: Path) -> None:
    a = few_shot_split("comve", comve_dir, seed=3)
    b = few_shot_split("comve", comve_dir, seed=3)
    c = few_shot_split("comve", comve_dir, seed=4)
    assert [e.id for e in a.train] == [e.id for e in b.train]
    assert [e.id for e in a.validation] == [e.id for e in b.validation]
    assert [e.id for e in a.train] != [e.id for e in c.train]
    assert Counter(e.label for e in a.train) == {"choice1": 24, "choice2": 24}
    assert len(a.validation) == 350 == len({e.id for e in a.validation})


def test_esnli_release_format(fixtures_dir: Path) -> None:
    train = load_split("esnli", fixtures_dir / "esnli", "train")
    dev = load_split("esnli", fixtures_dir / "esnli", "validation")
    assert len(train) == 12 and len(dev) == 6
    assert train[0].inputs == {"premise": "A man plays a guitar on stage.", "hypothesis": "A man makes music."}
    assert train[0].id == "t01" and train[0].label == "entailment"
    assert len(dev[0].explanations) == 3


def test_esnli_column_format_with_integer_labels(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(
        "premise,hypothesis,label,explanation_1\nA cat sleeps.,An animal rests.,0,a cat is an animal\n"
        "A cat sleeps.,The cat runs.,2,sleeping is not running\n")
    examples = load_split("esnli", tmp_path, "train")
    assert [e.label for e in examples] == ["entailment", "contradiction"]
    assert examples[1].id == "train-3"


def test_esnli_train_reads_both_release_files(tmp_path: Path, fixtures_dir: Path) -> None:
    shutil.copy(fixtures_dir / "esnli" / "esnli_train_1.csv", tmp_path / "esnli_train_1.csv")
    (tmp_path / "esnli_train_2.csv").write_text(
        "pairID,gold_label,Sentence1,Sentence2,Explanation_1,WorkerId\nx1,neutral,A b.,C d.,e f,W9\n")
    assert len(load_split("esnli", tmp_path, "train")) == 13


def test_sbic_aggregates_annotations_by_post(fixtures_dir: Path) -> None:
    train = {e.inputs["post"]: e for e in load_split("sbic", fixtures_dir / "sbic", "train")}
    lazy = train["those people are all lazy"]
    assert lazy.label == "offensive"
    assert lazy.explanations == ["this post implies that they are lazy", "this post implies that they do not work"]
    assert train["i could kill for a pizza"].label == "not offensive"  # mean 1/6 < 0.5
    assert train["what a lovely morning"].explanations == [SBIC_NOT_OFFENSIVE]
    assert "nobody cares about that group" not in train  # offensive without an implied statement
    assert Counter(e.label for e in train.values()) == {"offensive": 4, "not offensive": 5}
    assert len({e.id for e in train.values()}) == 9


def test_ecqa_joins_explanations_with_commonsenseqa(fixtures_dir: Path) -> None:
    train = load_split("ecqa", fixtures_dir / "ecqa", "train")
    assert [e.id for e in train] == ["q1", "q2", "q3", "q4", "q5", "q6"]  # q7 has no ECQA explanation
    q1 = train[0]
    assert q1.inputs == {"question": "Where are plates kept?", "choices": ["cupboard", "sea", "car", "sky", "shoe"]}
    assert q1.label == "cupboard" and q1.explanations == ["plates are kept in a cupboard"]
    assert len(load_split("ecqa", fixtures_dir / "ecqa", "validation")) == 3


@pytest.mark.parametrize(
    ("dataset", "file", "content", "expected"),
    [
        ("esnli", "esnli_dev.csv", "pairID,gold_label,Sentence1\nd1,entailment,x\n", "expected columns"),
        ("esnli", "esnli_dev.csv",
         "pairID,gold_label,Sentence1,Sentence2,Explanation_1\nd1,maybe,a,b,c\n", "line 2, field 'gold_label'"),
        ("esnli", "esnli_dev.csv",
         "pairID,gold_label,Sentence1,Sentence2,Explanation_1\nd1,neutral,a,b\n", "line 2: expected 5 columns"),
        ("esnli", "esnli_dev.csv", "", "empty file; expected a header row"),
        ("esnli", "esnli_dev.csv", "pairID,gold_label,Sentence1,Sentence2,Explanation_1\n", "no data rows"),
        ("sbic", "SBIC.v2.dev.csv", "post,offensiveYN\nhello,0.0\n", "field 'targetStereotype'"),
        ("sbic", "SBIC.v2.dev.csv", "post,offensiveYN,targetStereotype\nhello,yes,\n", "line 2, field 'offensiveYN'"),
        ("ecqa", "dev_rand_split.jsonl", '{"id": "v1", "answerKey": "A"\n', "line 1: invalid JSON"),
        ("ecqa", "dev_rand_split.jsonl",
         '{"id": "v1", "answerKey": "Z", "question": {"stem": "s", "choices": '
         '[{"label": "A", "text": "a"}, {"label": "B", "text": "b"}, {"label": "C", "text": "c"}, '
         '{"label": "D", "text": "d"}, {"label": "E", "text": "e"}]}}\n', "field 'answerKey'"),
    ],
)
def test_malformed_files_name_file_line_and_field(dataset: str, file: str, content: str, expected: str,
                                                  fixtures_dir: Path, tmp_path: Path) -> None:
    d = Path(shutil.copytree(fixtures_dir / dataset, tmp_path / dataset))
    (d / file).write_text(content)
    with pytest.raises(InputFileError) as err:
        load_split(dataset, d, "validation")
    assert str(d / file) in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize(
    ("dataset", "remove", "expected"),
    [
        ("esnli", "esnli_dev.csv", "e-SNLI validation CSV not found; expected one of: esnli_dev.csv"),
        ("sbic", "SBIC.v2.dev.csv", "SBIC validation CSV not found; expected one of: SBIC.v2.dev.csv"),
        ("ecqa", "ecqa.jsonl", "ECQA explanations not found; expected one of: ecqa.jsonl"),
        ("comve", "dev/subtaskA_dev_data.csv", "expected dev/subtaskA_dev_data.csv"),
        ("comve", "dev/subtaskC_gold_answers.csv", "subtaskC_gold_answers.csv: file not found"),
    ],
)
def test_missing_files_are_named(dataset: str, remove: str, expected: str, fixtures_dir: Path,
                                 tmp_path: Path) -> None:
    d = Path(shutil.copytree(fixtures_dir / dataset, tmp_path / dataset))
    (d / remove).unlink()
    with pytest.raises(InputFileError, match=expected.replace(".", r"\.")):
        load_split(dataset, d, "validation")


def test_comve_answer_without_statement_pair_is_reported(fixtures_dir: Path, tmp_path: Path) -> None:
    d = Path(shutil.copytree(fixtures_dir / "comve", tmp_path / "comve"))
    (d / "dev" / "subtaskA_gold_answers.csv").write_text("10,0\n")  # id 11 has no answer
    with pytest.raises(InputFileError, match=r"subtaskA_gold_answers\.csv: no row for id '11'"):
        load_split("comve", d, "validation")


@pytest.mark.parametrize(("dataset", "n_train", "per_label"), [
    ("esnli", 6, 2), ("esnli", 12, 4), ("sbic", 8, 4), ("comve", 2, 1),
])
def test_split_class_balance(dataset: str, n_train: int, per_label: int, fixtures_dir: Path) -> None:
    split = few_shot_split(dataset, fixtures_dir / dataset, seed=0, n_train=n_train)
    assert Counter(e.label for e in split.train) == {lab: per_label for lab in LABELS[dataset]}


def test_split_determinism_and_seed_dependence(fixtures_dir: Path) -> None:
    ids = {s: [e.id for e in few_shot_split("esnli", fixtures_dir / "esnli", s, n_train=6, n_val=3).train]
           for s in range(6)}
    assert ids[0] == [e.id for e in few_shot_split("esnli", fixtures_dir / "esnli", 0, n_train=6, n_val=3).train]
    assert len({tuple(sorted(v)) for v in ids.values()}) > 1  # different seeds, different examples


def test_ecqa_split_is_unbalanced_sample(fixtures_dir: Path) -> None:
    split = few_shot_split("ecqa", fixtures_dir / "ecqa", seed=0, n_train=4, n_val=2)
    assert len(split.train) == 4 and len(split.validation) == 2


def test_explicit_id_lists(fixtures_dir: Path, tmp_path: Path) -> None:
    ids = tmp_path / "train_ids.txt"
    ids.write_text("t12\nt01\n\n")
    split = few_shot_split("esnli", fixtures_dir / "esnli", 0, train_ids=read_id_list(ids), val_ids=["d02"])
    assert [e.id for e in split.train] == ["t12", "t01"] and [e.id for e in split.validation] == ["d02"]
    with pytest.raises(ValueError, match="'nope'"):
        few_shot_split("esnli", fixtures_dir / "esnli", 0, train_ids=["nope"])


def test_too_few_examples_for_the_split(fixtures_dir: Path) -> None:
    with pytest.raises(ValueError, match="label 'entailment'"):
        few_shot_split("esnli", fixtures_dir / "esnli", 0, n_train=48)
