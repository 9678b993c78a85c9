"""A run folder: its file names, writing them whole, what run.json records about where and when a run was made,
and reading a completed run back.

The bottom floor of `generation`: it imports nothing else of the package and no torch at import, so `results`,
`sweep` and the parser read run folders without loading a model library.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

RUN_FILE, SPLIT_FILE, TOKENIZER_DIR = "run.json", "split.json", "tokenizer"


def metrics_file(split: str) -> str:
    """metrics.json for the validation split (what the sweep and `results` read), metrics-<split>.json else,
    so a test evaluation never overwrites the validation metrics."""
    return "metrics.json" if split == "validation" else f"metrics-{split}.json"


def generations_file(split: str) -> str:
    return "generations.jsonl" if split == "validation" else f"generations-{split}.jsonl"


def nles_file(split: str) -> str:
    """The NLE JSONL a sweep's `generate` writes into the run directory."""
    return "nles.jsonl" if split == "validation" else f"nles-{split}.jsonl"


def write_json(path: Path, data: dict) -> None:
    """Write `data` as indented JSON through a temporary file, so a reader never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_out(run_dir: str | Path) -> Path:
    """The run directory a training writes to; ValueError when the path is a file."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir}: exists and is not a directory")
    return run_dir


def prepare(run_dir: Path) -> None:
    """Create the run directory, or empty it of an earlier run's results: without run.json an interrupted
    re-run cannot look complete, and metrics and generations of an earlier training would describe another
    model (a retrained run must be generated again before the sweep or `results` count it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).unlink(missing_ok=True)
    for pattern in ("metrics*.json", "generations*.jsonl", "nles*.jsonl"):
        for stale in run_dir.glob(pattern):
            stale.unlink()


@dataclass
class Started:
    """When a run began (UTC clock and a monotonic one for its wall time)."""

    utc: dt.datetime
    clock: float

    @classmethod
    def now(cls) -> Started:
        return cls(dt.datetime.now(dt.timezone.utc), time.perf_counter())


def provenance(run_dir: Path, started: Started) -> dict:
    """run.json's record of where, when and with what a run was made (docs/generation.md, "run.json")."""
    return {"run_dir": str(run_dir.resolve()),
            "started": started.utc.isoformat(timespec="seconds"),
            "ended": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - started.clock, 3),
            **environment_info()}


def _git_commit() -> str | None:
    """The project's git commit when run from a checkout (None otherwise)."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def environment_info() -> dict:
    """Package versions, git commit and device, recorded in run.json."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers", "huggingface_hub",
                "nle-humaneval"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})"
    return {"versions": versions, "python": platform.python_version(), "git_commit": _git_commit(),
            "device": device, "torch_threads": torch.get_num_threads()}


def read_run(run_dir: str | Path) -> dict:
    """The run.json of a completed run; ValueError when the run is missing or incomplete."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir}: not a completed run (no {RUN_FILE})")
    info = json.loads(path.read_text(encoding="utf-8"))
    if not info.get("complete"):
        raise ValueError(f"{path}: run is not complete")
    return info


def check_weights(run_dir: Path, weights: str) -> None:
    """ValueError (one line) when a completed run lacks its tokenizer or its method's weights."""
    for rel in (weights, TOKENIZER_DIR):
        if not (run_dir / rel).exists():
            raise ValueError(f"{run_dir}: run.json says complete but {rel} is missing (the weights were moved or "
                             "deleted; train again)")
