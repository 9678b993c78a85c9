"""Independent jobs for datasets x seeds x configurations, one run directory each, skipped when complete."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from generation.components import (
    FULL_FT,
    OTHER_BASELINES,
    PEFT_BASELINES,
    all_configurations,
    parse_configuration,
)
from generation.data import DATASETS
from generation.train import RUN_FILE, read_run


@dataclass(frozen=True)
class Job:
    dataset: str
    seed: int
    config: str
    run_dir: Path
    argv: tuple[tuple[str, ...], ...]  # train, then generate

    @property
    def shell(self) -> str:
        return " && ".join(shlex.join(a) for a in self.argv)


def resolve_configs(names: list[str]) -> list[str]:
    """Expand 'all' (every single and pair), 'peft' (the four baselines); validate the rest."""
    out: list[str] = []
    for name in (n for raw in names for n in raw.split(",") if n):  # --configs loreft,dect
        expanded = all_configurations() if name == "all" else list(PEFT_BASELINES) if name == "peft" else [name]
        for c in expanded:
            if c not in PEFT_BASELINES and c not in OTHER_BASELINES and c != FULL_FT:
                parse_configuration(c)
            if c not in out:
                out.append(c)
    return out


def is_complete(run_dir: Path) -> bool:
    """Trained (run.json complete) and generated (metrics.json and nles.jsonl present)."""
    try:
        info = read_run(run_dir)
    except (ValueError, OSError):
        return False
    label_only = info.get("kind") == "dect"  # DecT writes no NLE file
    return (run_dir / "metrics.json").is_file() and (label_only or (run_dir / "nles.jsonl").is_file())


def plan(model: str, datasets: list[str], seeds: list[int], configs: list[str], data_root: str | Path,
         out_root: str | Path, train_args: list[str] | None = None, first: int = 30,
         include_complete: bool = False) -> list[Job]:
    """Jobs in a stable order; data for dataset D is read from data_root/D, runs go to out_root/D/CONFIG/seed-S."""
    for d in datasets:
        if d not in DATASETS:
            raise ValueError(f"unknown dataset {d!r}; known: {', '.join(DATASETS)}")
    jobs = []
    for d in datasets:
        for seed in seeds:
            for c in resolve_configs(configs):
                run_dir = Path(out_root) / d / c / f"seed-{seed}"
                if not include_complete and is_complete(run_dir):
                    continue
                train = ("nle-gen", "train", "--model", model, "--dataset", d, "--data-dir", str(Path(data_root) / d),
                         "--seed", str(seed), "--config", c, "--out", str(run_dir), *(train_args or []))
                gen = ("nle-gen", "generate", "--run", str(run_dir), "--out", str(run_dir / "nles.jsonl"),
                       "--first", str(first))
                # A job whose training finished but whose generation did not only re-runs generation.
                trained = (run_dir / RUN_FILE).is_file()
                jobs.append(Job(d, seed, c, run_dir, (gen,) if trained else (train, gen)))
    return jobs


def run_jobs(jobs: list[Job]) -> int:
    """Run jobs one after another; returns the number that failed."""
    failed = 0
    for k, job in enumerate(jobs, 1):
        print(f"[{k}/{len(jobs)}] {job.shell}", flush=True)
        for argv in job.argv:
            if subprocess.run(list(argv)).returncode != 0:
                failed += 1
                break
    return failed
