"""Dataset loaders (real ComVE files, raw-format fixtures), their errors, and few-shot splits."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

import generation.data as data_module
from generation.data import (
    LABELS,
    SBIC_NOT_OFFENSIVE,
    SBIC_PERSONAL_ATTACK,
    approximate_first_token,
    load_split,
    read_id_list,
    sbic_explanations,
)
from generation.errors import InputFileError
from generation.splits import few_shot_split
from tests.helpers import ROOT

FEB_MTURK_SBIC = ROOT.parent / "shared" / "data" / "feb_mturk" / "results" / "sbic"


def test_comve_real_files(comve_dir: Path) -> None:
    train = load_split("comve", comve_dir, "train")
    dev = load_split("comve", comve_dir, "validation")
    assert (len(train), len(dev)) == (30_000, 997)  # FEB: one training row per explanation (x3)
    rows = [e for e in train if e.id == "1"]
    assert [e.explanations for e in rows] == [["Apple can not be drunk"], [
        "An apple is a whole food and unable to be drunk without being juiced."], ["He eats an apple"]]
    ex = rows[0]
    assert ex.inputs == {"sent0": "He drinks apple.", "sent1": "He drinks milk."}
    assert ex.label == "choice1"  # statement 0 is the nonsensical one
    assert len(dev[0].explanations) == 3
    assert next(e for e in train if e.id == "2").label == "choice2"
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


def test_sbic_rows_as_feb_builds_them(fixtures_dir: Path) -> None:
    """FEB preprocess_data.py: training = one row per stereotype annotation, templates by the first word's
    tag, personal attacks kept, a missing whoTarget/offensiveYN value makes the post's average NaN (so 0)."""
    train = load_split("sbic", fixtures_dir / "sbic", "train")
    by_post: dict[str, list] = {}
    for e in train:
        by_post.setdefault(e.inputs["post"], []).append(e)
    lazy = by_post["those people are all lazy"]
    assert [e.explanations for e in lazy] == [["this post implies that black folks are lazy"]] * 2 + [
        ["this post implies that black folks don't work"]]
    assert [e.explanations for e in by_post["women can not drive"]] == [["this post implies that women can't drive"]] * 2
    assert by_post["you are an idiot"][0].explanations == [SBIC_PERSONAL_ATTACK]
    # One annotator left whoTarget empty: FEB's builtin sum gives NaN, so the post "targets no group".
    assert by_post["old folks smell funny"][0].explanations == [SBIC_PERSONAL_ATTACK]
    # Every rule that applies adds a sentence ("is" is both VBZ and AUX), joined in the target with " [SEP] ".
    assert by_post["they are always complaining"][0].explanations == [
        "this post is always complaining", "this post implies that women are always complaining"]
    assert by_post["immigrants steal jobs"][0].explanations == [
        "this post is taking our jobs", "this post implies that immigrants is taking our jobs"]
    assert by_post["the game last night was great"][0].label == "not_offensive"  # an empty offensiveYN -> NaN
    assert by_post["what a lovely morning"][0].explanations == [SBIC_NOT_OFFENSIVE]
    assert "nobody cares about that group" not in by_post  # group attack without an implied statement
    assert Counter(e.label for e in train) == {"offensive": 9, "not_offensive": 5}
    dev = {e.inputs["post"]: e for e in load_split("sbic", fixtures_dir / "sbic", "validation")}
    assert dev["dev: those people are all lazy"].explanations == [
        "this post implies that black folks are lazy", "this post implies that black folks are lazy",
        "this post implies that black folks don't work"]
    assert "dev: nobody cares about that group" not in dev
    assert len(dev) == 3


def test_sbic_reads_febs_modified_files(tmp_path: Path) -> None:
    (tmp_path / "SBIC.v2.dev.csv").write_text("not,used\n")
    (tmp_path / "SBIC.v2.dev.modified.csv").write_text(
        ",post,offensiveYN,whoTarget,targetMinority,targetStereotype\n"
        "0,a post,offensive,1.0,women,this post implies that women x [SEP] this post y\n"
        "1,\"other\npost\",not offensive,0.0,,this post does not imply anything offensive\n")
    rows = load_split("sbic", tmp_path, "validation")
    assert [(e.label, e.explanations) for e in rows] == [
        ("offensive", ["this post implies that women x", "this post y"]),
        ("not_offensive", [SBIC_NOT_OFFENSIVE])]
    assert rows[1].inputs == {"post": "other\npost"}


@pytest.mark.parametrize(
    ("minority", "inference", "expected"),
    [
        ("women", "can't drive", ["this post implies that women can't drive"]),
        ("black folks", "is lazy", ["this post is lazy", "this post implies that black folks are lazy"]),
        ("jews", "being greedy", ["this post implies that being greedy"]),
        ("jews", "implying they are greedy", ["this post is implying they are greedy"]),
        ("women", "rape is ok", ["this post implies that women rape is ok"]),
        ("women", "all are bad", ["this post implies that women are all are bad"]),
        ("women", "belong in the kitchen", ["this post implies that belong in the kitchen"]),
        ("women", "claims women are weak", ["this post claims women are weak"]),
        ("men", "used to rule", ["this post used to rule"]),
    ],
)
def test_sbic_templates(minority: str, inference: str, expected: list[str]) -> None:
    assert sbic_explanations(minority, inference) == expected


@pytest.mark.parametrize(
    ("inference", "expected"),
    [
        # FEB's comment on its VBD/VBZ rule names these first words; its published explanations read
        # "this post trivializes harm to victims", "this post makes light of slavery", "this post uses ..."
        ("trivializes rape", "this post trivializes rape"),
        ("says women are weak", "this post says women are weak"),
        ("calls them animals", "this post calls them animals"),
        ("makes light of slavery", "this post makes light of slavery"),
        ("uses a slur", "this post uses a slur"),
        ("implies that women are weak", "this post implies that women are weak"),
        ("advocates violence", "this post advocates violence"),
        ("encourages hate", "this post encourages hate"),
        ("refers to a shooting", "this post refers to a shooting"),
        ("said they deserve it", "this post said they deserve it"),
        ("marginalized women", "this post marginalized women"),
        ("minimizes the holocaust", "this post minimizes the holocaust"),
        # a first word in -s is mostly a group, a noun for spaCy too
        ("jews are greedy", "this post implies that jews are greedy"),
        ("muslims are terrorists", "this post implies that muslims are terrorists"),
        # "need" is no past tense; FEB's published "this post implies that need money"
        ("need money", "this post implies that need money"),
    ],
)
def test_builtin_tagger_gives_febs_template_for_its_listed_verbs(inference: str, expected: str) -> None:
    assert sbic_explanations("women", inference, approximate_first_token) == [expected]


def _feb_published_sbic_explanations() -> list[str]:
    """The gold SBIC explanations of FEB's MTurk study (built by FEB's rules with spaCy), one template each."""
    import csv

    if not FEB_MTURK_SBIC.is_dir():
        pytest.skip(f"FEB's MTurk files not found at {FEB_MTURK_SBIC}")
    gold: set[str] = set()
    for path in sorted(FEB_MTURK_SBIC.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                for k in range(1, 11):
                    side = "i" if row[f"Input.{k}_gt_idx"] == "0" else "j"
                    gold.update(" ".join(p.split()) for p in row[f"Input.explanation_{k}_{side}"].split(" [SEP] "))
    return sorted(gold - {SBIC_NOT_OFFENSIVE, SBIC_PERSONAL_ATTACK})


def _stereotype_of(explanation: str) -> tuple[str, str]:
    """The stereotype a template came from, and the template's kind: "this post implies that X" (X, or a
    stereotype "implies that X"), "this post is implying/calling ...", or "this post <verb> ..."."""
    words = explanation.split()
    if words[2:4] == ["implies", "that"]:
        return " ".join(words[4:]), "implies that"
    if words[2] == "is" and words[3:4] in (["implying"], ["calling"]):
        return " ".join(words[3:]), "is"
    return " ".join(words[2:]), "verb"


def test_builtin_tagger_against_febs_published_sbic_explanations() -> None:
    """How close the built-in tagger comes to spaCy, measured on FEB's own output: for each published gold
    explanation, does the built-in rule rebuild it from its stereotype? (docs/reproducing.md)"""
    agree: dict[str, list[int]] = {"implies that": [0, 0], "is": [0, 0], "verb": [0, 0]}
    misses = []
    for gold in _feb_published_sbic_explanations():
        stereotype, kind = _stereotype_of(gold)
        ok = gold in sbic_explanations("GROUP", stereotype, approximate_first_token)
        agree[kind][0] += ok
        agree[kind][1] += 1
        if not ok:
            misses.append(gold)
    assert agree == {"implies that": [311, 314], "is": [1, 1], "verb": [13, 15]}, misses
    assert misses == ["this post implies that died in the holocaust.",
                      "this post implies that disabled people are inferior",
                      "this post implies that disabled people can't do martial arts",
                      "this post smells bad", "this post smells like curry"]


def _sbic_only(tmp_path: Path, fixtures_dir: Path) -> Path:
    return Path(shutil.copytree(fixtures_dir / "sbic", tmp_path / "sbic"))


def test_builtin_tagger_warns_once_when_spacy_is_absent(monkeypatch, fixtures_dir: Path) -> None:
    monkeypatch.setattr(data_module, "_spacy_nlp", lambda: "spaCy is not installed")
    monkeypatch.setattr(data_module, "_warned_builtin", False)
    with pytest.warns(UserWarning, match="SBIC explanation templates: spaCy is not installed, so a built-in") as got:
        load_split("sbic", fixtures_dir / "sbic", "train")
        load_split("sbic", fixtures_dir / "sbic", "validation")
    assert len([w for w in got if "SBIC explanation templates" in str(w.message)]) == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # builtin chosen on purpose: no warning
        load_split("sbic", fixtures_dir / "sbic", "train", sbic_tagger_mode="builtin")


def test_cli_says_once_in_one_line_that_the_builtin_tagger_is_used(fixtures_dir: Path) -> None:
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("spacy") is not None:
        pytest.skip("spaCy is installed here")
    done = subprocess.run([sys.executable, "-m", "generation.cli", "splits", "--dataset", "sbic", "--data-dir",
                           str(fixtures_dir / "sbic"), "--seed", "0", "--n-train", "4", "--n-val", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "nle-gen: warning: SBIC explanation templates: spaCy is not installed (pip install spacy, then python -m "
        "spacy download en_core_web_sm), so a built-in approximation of its tagger is used (docs/reproducing.md "
        "says how close it is); --sbic-tagger spacy requires spaCy"]


def test_spacy_tagger_is_used_when_asked(monkeypatch, fixtures_dir: Path) -> None:
    """--sbic-tagger spacy takes spaCy's tags (a stand-in nlp here: spaCy's model is not installable offline)."""

    class Token:
        def __init__(self, text: str) -> None:
            self.text, self.pos_, self.tag_ = text, "VERB", "VBZ"  # every first word a VBZ verb

    monkeypatch.setattr(data_module, "_spacy_nlp", lambda: (lambda text: [Token(text.split()[0])]))
    train = load_split("sbic", fixtures_dir / "sbic", "train", sbic_tagger_mode="spacy")
    lazy = [e.explanations for e in train if e.inputs["post"] == "those people are all lazy"]
    assert lazy[0] == ["this post are lazy"]  # VBZ rule only (pos VERB, not AUX)
    assert data_module.sbic_templates_by(fixtures_dir / "sbic", "spacy") == "spacy"


def test_spacy_tagger_required_but_missing_is_one_line(monkeypatch, fixtures_dir: Path, tmp_path: Path,
                                                       capsys) -> None:
    from generation.cli import main

    data_module._spacy_nlp.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "spacy", None)  # `import spacy` fails as when not installed
    out = tmp_path / "split"
    code = main(["splits", "--dataset", "sbic", "--data-dir", str(fixtures_dir / "sbic"), "--seed", "0",
                 "--n-train", "4", "--n-val", "2", "--sbic-tagger", "spacy", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == (
        "nle-gen: error: --sbic-tagger spacy: spaCy is not installed (pip install spacy, then python -m spacy "
        "download en_core_web_sm); or --sbic-tagger builtin for the built-in approximation\n")
    data_module._spacy_nlp.cache_clear()


def test_ecqa_uses_the_authors_split_and_positives(fixtures_dir: Path) -> None:
    train = load_split("ecqa", fixtures_dir / "ecqa", "train")
    assert [e.id for e in train] == ["q1", "q2", "q3", "q4", "q5"]  # author_split/train_ids.txt order
    q1 = train[0]
    assert q1.inputs == {"question": "Where are plates kept?", "choices": ["cupboard", "sea", "car", "sky", "shoe"]}
    # positives joined with ". " plus "." and ".." made "." (FEB preprocess_data.process_ecqa_data)
    assert q1.label == "cupboard"
    assert q1.explanations == ["Plates are kept in a cupboard. A cupboard has shelves for dishes."]
    assert [e.id for e in load_split("ecqa", fixtures_dir / "ecqa", "validation")] == ["v1", "v2", "q6"]
    assert [e.id for e in load_split("ecqa", fixtures_dir / "ecqa", "test")] == ["v3"]


def test_ecqa_without_the_author_split_is_an_error(fixtures_dir: Path, tmp_path: Path) -> None:
    d = Path(shutil.copytree(fixtures_dir / "ecqa", tmp_path / "ecqa"))
    shutil.rmtree(d / "author_split")
    with pytest.raises(InputFileError, match="train_ids.txt: ECQA author split not found"):
        load_split("ecqa", d, "train")


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
        ("sbic", "SBIC.v2.dev.csv", "post,offensiveYN,targetStereotype,whoTarget,targetMinority\nhello,yes,,,\n",
         "line 2, field 'offensiveYN'"),
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


@pytest.mark.parametrize(("dataset", "n_train", "n_val", "per_label"), [
    ("esnli", 6, 6, 2), ("esnli", 12, 3, 4), ("sbic", 8, 2, 4), ("comve", 2, 2, 1),
])
def test_split_class_balance(dataset: str, n_train: int, n_val: int, per_label: int, fixtures_dir: Path) -> None:
    split = few_shot_split(dataset, fixtures_dir / dataset, seed=0, n_train=n_train, n_val=n_val)
    assert Counter(e.label for e in split.validation) == {lab: n_val // len(LABELS[dataset]) for lab in LABELS[dataset]}
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
