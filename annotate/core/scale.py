"""The rating scale, shortcoming tags, answer/tag consistency rules and guidelines of a study."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

QUESTION = "Does the explanation justify the answer?"

# Ordered from best to worst; the order is the ordinal scale used by weighted kappa.
RATINGS: tuple[str, ...] = ("yes", "weak_yes", "weak_no", "no")
RATING_LABELS: dict[str, str] = {"yes": "Yes", "weak_yes": "Weak yes", "weak_no": "Weak no", "no": "No"}
SCORES: dict[str, Fraction] = {
    "yes": Fraction(1),
    "weak_yes": Fraction(2, 3),
    "weak_no": Fraction(1, 3),
    "no": Fraction(0),
}

DEFAULT_TAGS: tuple[str, ...] = (
    "nonsensical",
    "contradiction",
    "lack of explanation",
    "incomplete explanation",
    "repeats input",
    "hallucination",
    "extra words at the end",
    "true but irrelevant",
    "inaccurate",
    "one word",
    "irrelevant",
    "empty",
)


def score(rating: str) -> float:
    """The paper's score of an answer: yes 1, weak yes 2/3, weak no 1/3, no 0."""
    return float(SCORES[rating])


def normalize_rating(value: Any) -> str:
    """Map free spellings ("Weak yes", "weak-no", "WEAK_NO") to a canonical rating; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"rating must be a string, got {type(value).__name__}")
    key = re.sub(r"[\s\-_]+", "_", value.strip().lower())
    if key not in SCORES:
        raise ValueError(f"unknown rating {value!r}; expected one of yes, weak yes, weak no, no")
    return key


@dataclass(frozen=True)
class Rules:
    """Answer/tag consistency rules a study enforces on submissions from the app."""

    no_tags_for: tuple[str, ...] = ("yes",)
    tags_required_for: tuple[str, ...] = ("weak_no", "no")
    exclusive_tags: tuple[str, ...] = ("empty",)

    def __post_init__(self) -> None:
        for name in ("no_tags_for", "tags_required_for"):
            for rating in getattr(self, name):
                if rating not in SCORES:
                    raise ValueError(f"rules.{name}: unknown rating {rating!r}")
        both = set(self.no_tags_for) & set(self.tags_required_for)
        if both:
            raise ValueError(f"rules: {sorted(both)} cannot both forbid and require tags")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Rules:
        data = data or {}
        unknown = set(data) - {"no_tags_for", "tags_required_for", "exclusive_tags"}
        if unknown:
            raise ValueError(f"rules: unknown keys {sorted(unknown)}")
        return cls(**{k: tuple(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in asdict(self).items()}

    def violations(self, rating: str, tags: list[str] | tuple[str, ...]) -> list[str]:
        """Messages naming each rule that (rating, tags) breaks; empty when consistent."""
        out = []
        label = RATING_LABELS.get(rating, rating)
        if rating in self.no_tags_for and tags:
            out.append(f'Rule "no tags for {label}": an answer of "{label}" takes no shortcoming tag.')
        if rating in self.tags_required_for and not tags:
            out.append(f'Rule "tags required for {label}": an answer of "{label}" needs at least one shortcoming tag.')
        for tag in self.exclusive_tags:
            if tag in tags and len(tags) > 1:
                out.append(f'Rule "{tag} is exclusive": the tag "{tag}" cannot be combined with other tags.')
        return out


@dataclass(frozen=True)
class Guidelines:
    """What annotators read: the scale and each tag, with one example each. `version` is stored on every rating."""

    version: str = "1"
    intro: str = (
        "Read the task input, the model's predicted answer and its explanation. Judge only whether the "
        "explanation justifies the predicted answer (the answer itself was correct). Use the shortcoming tags "
        "to say what is wrong with an explanation that is not a clear yes."
    )
    scale: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_SCALE_GUIDE))
    tags: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_TAG_GUIDE))


DEFAULT_SCALE_GUIDE: dict[str, dict[str, str]] = {
    "yes": {
        "meaning": "The explanation fully justifies the answer.",
        "example": "Premise: A man plays a guitar on stage. Hypothesis: A man is performing. Answer: entailment "
        "because playing a guitar on stage is performing.",
    },
    "weak_yes": {
        "meaning": "The explanation mostly justifies the answer but is imprecise or slightly incomplete.",
        "example": "Answer: entailment because the man is on stage.",
    },
    "weak_no": {
        "meaning": "The explanation touches on the right reason but does not justify the answer.",
        "example": "Answer: entailment because a guitar has strings.",
    },
    "no": {
        "meaning": "The explanation does not justify the answer at all.",
        "example": "Answer: entailment because the sky is blue.",
    },
}

DEFAULT_TAG_GUIDE: dict[str, dict[str, str]] = {
    "nonsensical": {"meaning": "Does not make sense.", "example": "because the cat is a Tuesday."},
    "contradiction": {"meaning": "Contradicts itself or the input.", "example": "because he is sitting and standing."},
    "lack of explanation": {"meaning": "Restates the answer without a reason.", "example": "because it is entailment."},
    "incomplete explanation": {
        "meaning": "Starts a valid reason but leaves out a needed step.",
        "example": "because the man is on.",
    },
    "repeats input": {"meaning": "Copies the premise, question or post.", "example": "because a man plays a guitar on stage."},
    "hallucination": {"meaning": "Mentions facts not in the input.", "example": "because the man is in Paris."},
    "extra words at the end": {
        "meaning": "A good explanation followed by unrelated trailing words.",
        "example": "because playing is performing. the the and",
    },
    "true but irrelevant": {"meaning": "True, but not a reason for the answer.", "example": "because guitars have six strings."},
    "inaccurate": {"meaning": "States something false.", "example": "because a guitar is a drum."},
    "one word": {"meaning": "A single word.", "example": "because performing."},
    "irrelevant": {"meaning": "Unrelated to the input.", "example": "because bananas are yellow."},
    "empty": {"meaning": "Nothing after 'because' (excludes every other tag).", "example": "because"},
}
