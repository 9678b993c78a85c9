"""FEB inputs and "<label> because <explanation>" targets, and FEB's parsing and scoring of generated text.

Everything here follows allenai/feb `scripts/feature_conversion_methods.py` (the io_formats FEB's `exp.py`
runs: e-SNLI `standard` for T5, ECQA `unifiedqa_matching`, SBIC `unified_qa_what_with_tags`, ComVE
`unifiedqa_what` for UnifiedQA) and `scripts/metrics.py` (parsing and accuracy). The "\\n" in the UnifiedQA
inputs is the two characters backslash and n, as in FEB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from generation.data import Example

SEPARATOR = " because "  # FEB exp.py: explanation_sep_vals = ['" because "']
_NL = "\\n"
_CHOICE_IDS = ("(A)", "(B)", "(C)", "(D)", "(E)")
# FEB adds "</s>" to the text of every UnifiedQA format ('unified' in io_format), so those inputs end with
# two end-of-sequence tokens once the tokenizer adds its own (feature_conversion_methods.format_instance).
UNIFIEDQA_EOS = "</s>"
# How FEB joins several gold explanations into one target string (feature_conversion_methods /
# preprocess_data.py): e-SNLI and SBIC with " [SEP] ", ComVE validation with "[SEP]".
EXPLANATION_JOIN = {"esnli": " [SEP] ", "ecqa": " [SEP] ", "sbic": " [SEP] ", "comve": "[SEP]"}
# FEB's esnli_formatting lowercases each explanation and then joins them, so its " [SEP] " stays upper case;
# SBIC and ComVE are joined in preprocess_data.py and the joined string is lowercased (" [sep] ", "[sep]").
_LOWERCASE_EACH = {"esnli"}

PromptFormat = Literal["feb", "plain"]


def _ws(text: str) -> str:
    """FEB collapses all whitespace runs to one space (`' '.join(s.split())`)."""
    return " ".join(text.split())


def normalize_label(label: str) -> str:
    """A label lowercased with whitespace collapsed (FEB compares labels lowercased)."""
    return _ws(label.lower())


def prompt(example: Example, fmt: PromptFormat = "feb") -> str:
    """The FEB input string of an example; "plain" leaves out FEB's lowercasing and trailing "</s>"."""
    x, ds = example.inputs, example.dataset
    low = str.lower if fmt == "feb" else str
    eos = UNIFIEDQA_EOS if fmt == "feb" else ""
    if ds == "esnli":  # io_format 'standard' (T5): not lowercased, no "</s>"
        return _ws(f"explain nli hypothesis: {x['hypothesis']} premise: {x['premise']}")
    if ds == "ecqa":  # 'unifiedqa_matching'
        text = f"explain {low(x['question'])} {_NL}"
        for cid, choice in zip(_CHOICE_IDS, x["choices"], strict=False):
            text += f" {cid} {low(choice)}"
        return _ws(text + eos)
    if ds == "sbic":  # 'unified_qa_what_with_tags'
        return _ws(f"explain what is this? {_NL} post: {low(x['post'])}" + eos)
    if ds == "comve":  # 'unifiedqa_what'
        return _ws(f"explain what is more nonsensical? {_NL} choice1: {low(x['sent0'])} choice2: {low(x['sent1'])}"
                   + eos)
    raise ValueError(f"no prompt for dataset {example.dataset!r}")


def target_explanation(example: Example) -> str:
    """The explanation part of FEB's answer string: the gold explanations lowercased and joined as FEB does."""
    join = EXPLANATION_JOIN[example.dataset]
    if example.dataset in _LOWERCASE_EACH:
        return _ws(join.join(e.lower() for e in example.explanations))
    return _ws(join.join(example.explanations).lower())


def target(example: Example) -> str:
    """FEB's answer string '<label> because <explanation>' (ECQA: the answer lowercased too)."""
    label = example.label.lower() if example.dataset == "ecqa" else example.label
    return _ws(f"{label}{SEPARATOR}{target_explanation(example)}")


@dataclass(frozen=True)
class Parsed:
    """A generated text split into label and explanation; well_formed is False when ' because ' is absent."""

    label: str
    explanation: str
    well_formed: bool


def parse(text: str) -> Parsed:
    """FEB metrics.py: split on ' because '; the label is the part before the first, the explanation the part
    between the first and the second; without it the whole text is the label and the explanation is empty."""
    parts = text.split(SEPARATOR)
    if len(parts) > 1:
        return Parsed(parts[0].strip(), parts[1].strip(), True)
    # FEB writes "UNK" as the explanation of such an output; the paper rates it as an empty explanation
    # (its "empty" tag; nBERTs 0), and BERTScore of an empty candidate is 0 (bert_score greedy_cos_idf).
    return Parsed(text.strip(), "", False)


def is_correct(parsed: Parsed, gold_label: str, dataset: str) -> bool:
    """FEB metrics.py accuracy: the label equals the gold label ignoring case (label-only outputs count);
    SBIC maps 'offensive'/'yes' to offensive and anything else to not_offensive, and an output without
    ' because ' is wrong there."""
    if dataset == "sbic":
        if not parsed.well_formed:
            return False
        gold_key = "offensive" if gold_label.lower() in ("offensive", "yes") else "not_offensive"
        pred_key = "offensive" if parsed.label.lower() in ("offensive", "yes") else "not_offensive"
        return gold_key == pred_key
    return gold_label.lower() == parsed.label.lower()
