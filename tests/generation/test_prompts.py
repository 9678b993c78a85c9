"""FEB prompts and targets, and parsing generated text back into label and explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.data import Example, load_split
from generation.prompts import is_correct, parse, prompt, target, target_explanation

# FEB feature_conversion_methods.py: e-SNLI 'standard' as written; UnifiedQA formats lowercased, whitespace
# collapsed, "</s>" appended to the text.
EXPECTED_PROMPTS = {
    "esnli": "explain nli hypothesis: A man makes music. premise: A man plays a guitar on stage.",
    "ecqa": "explain where are plates kept? \\n (A) cupboard (B) sea (C) car (D) sky (E) shoe</s>",
    "sbic": "explain what is this? \\n post: those people are all lazy</s>",
    "comve": "explain what is more nonsensical? \\n choice1: he poured orange juice on his cereal. "
             "choice2: he poured milk on his cereal.</s>",
}
EXPECTED_TARGETS = {
    "esnli": "entailment because playing a guitar is making music",
    "ecqa": "cupboard because plates are kept in a cupboard. a cupboard has shelves for dishes.",
    "sbic": "offensive because this post implies that black folks are lazy",
    "comve": "choice1 because orange juice does not go on cereal",
}


@pytest.mark.parametrize("dataset", ["esnli", "ecqa", "sbic", "comve"])
def test_prompt_target_parse_round_trip(dataset: str, fixtures_dir: Path) -> None:
    examples = load_split(dataset, fixtures_dir / dataset, "train")
    assert prompt(examples[0]) == EXPECTED_PROMPTS[dataset]
    assert target(examples[0]) == EXPECTED_TARGETS[dataset]
    for ex in examples:
        parsed = parse(target(ex))
        assert parsed.well_formed
        assert parsed.explanation == target_explanation(ex).split(" because ")[0]
        assert is_correct(parsed, ex.label, dataset)


def test_targets_join_several_explanations_as_feb() -> None:
    comve = Example("1", "comve", {"sent0": "a", "sent1": "b"}, "choice2", ["X  y", " Z"])
    assert target(comve) == "choice2 because x y[sep] z"  # ComVE validation: "[SEP]", then lowercased
    # FEB esnli_formatting: each explanation lowercased, then joined: " [SEP] " keeps its case
    esnli = Example("1", "esnli", {"premise": "P", "hypothesis": "H"}, "neutral", ["One.", "Two.", "THREE"])
    assert target(esnli) == "neutral because one. [SEP] two. [SEP] three"
    # SBIC: FEB joins in preprocess_data.py, then its formatting lowercases the joined string
    sbic = Example("1", "sbic", {"post": "p"}, "offensive", ["This post A", "this post B"])
    assert target(sbic) == "offensive because this post a [sep] this post b"
    assert prompt(Example("1", "ecqa", {"question": "Q  Up?", "choices": list("ABCDE")}, "A", ["e"]), "plain") == (
        "explain Q Up? \\n (A) A (B) B (C) C (D) D (E) E")


@pytest.mark.parametrize(
    ("text", "label", "explanation", "well_formed"),
    [
        ("entailment because a man plays", "entailment", "a man plays", True),
        ("neutral because because it is", "neutral", "because it is", True),  # str.split: no second " because "
        ("neutral because x because y", "neutral", "x", True),
        ("  contradiction because  x  ", "contradiction", "x", True),
        ("entailment", "entailment", "", False),
        ("entailment, since a man plays", "entailment, since a man plays", "", False),
        ("", "", "", False),
        ("not_offensive because this post does not imply anything offensive", "not_offensive",
         "this post does not imply anything offensive", True),
    ],
)
def test_parse(text: str, label: str, explanation: str, well_formed: bool) -> None:
    parsed = parse(text)
    assert (parsed.label, parsed.explanation, parsed.well_formed) == (label, explanation, well_formed)


@pytest.mark.parametrize(
    ("text", "gold", "dataset", "correct"),
    [
        ("entailment because x", "entailment", "esnli", True),
        ("Entailment because x", "entailment", "esnli", True),
        ("neutral because x", "entailment", "esnli", False),
        ("entailment", "entailment", "esnli", True),  # label only: correct, empty explanation (FEB)
        ("Choice2", "choice2", "comve", True),
        ("a pen", "a pen", "ecqa", True),
        ("entailment  x", "entailment", "esnli", False),
        # SBIC: 'offensive'/'yes' -> offensive, anything else -> not_offensive; label only is wrong
        ("yes because x", "offensive", "sbic", True),
        ("Offensive because x", "offensive", "sbic", True),
        ("not_offensive because x", "not_offensive", "sbic", True),
        ("whatever because x", "not_offensive", "sbic", True),
        ("no because x", "offensive", "sbic", False),
        ("offensive", "offensive", "sbic", False),
        ("not_offensive", "not_offensive", "sbic", False),
    ],
)
def test_correctness_as_feb_metrics(text: str, gold: str, dataset: str, correct: bool) -> None:
    assert is_correct(parse(text), gold, dataset) is correct
