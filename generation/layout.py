"""File names inside a run directory (no heavy imports: `results` and `sweep` read them without torch)."""

from __future__ import annotations

RUN_FILE, SPLIT_FILE, SPARSE_FILE = "run.json", "split.json", "trainable.safetensors"
REFT_FILE, DECT_FILE = "reft.safetensors", "dect.safetensors"  # loreft: R, W, b; dect: the prototype network


def metrics_file(split: str) -> str:
    """metrics.json for the validation split (what the sweep and `results` read), metrics-<split>.json else,
    so a test evaluation never overwrites the validation metrics."""
    return "metrics.json" if split == "validation" else f"metrics-{split}.json"


def generations_file(split: str) -> str:
    return "generations.jsonl" if split == "validation" else f"generations-{split}.jsonl"


def nles_file(split: str) -> str:
    """The NLE JSONL a sweep's `generate` writes into the run directory."""
    return "nles.jsonl" if split == "validation" else f"nles-{split}.jsonl"
