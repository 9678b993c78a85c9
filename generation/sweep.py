"""Independent jobs for datasets x seeds x configurations, one run directory each, skipped when complete
for the requested split and settings; runs trained with other settings are reported, not silently skipped."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from generation.components import (
    FULL_FT,
    OTHER_BASELINES,
    PEFT_BASELINES,
    all_configurations,
    parse_configuration,
)
from generation.data import DATASETS
from generation.layout import metrics_file, nles_file
from generation.train import read_run


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


# The model per dataset in FEB (scripts/exp.py pairs e-SNLI's 'standard' format with T5 and the 'unifiedqa_*'
# formats of ECQA, SBIC and ComVE with UnifiedQA) and in the paper.
PROTOCOL_MODELS = {"esnli": "t5-large", "ecqa": "allenai/unifiedqa-t5-large", "sbic": "allenai/unifiedqa-t5-large",
                   "comve": "allenai/unifiedqa-t5-large"}


def model_for(dataset: str, protocol: str = "sparsefit", model: str | None = None) -> str:
    """`model` when given (it overrides the protocol for every dataset), else the protocol's choice."""
    if model:
        return model
    if protocol != "sparsefit":
        raise ValueError(f"protocol {protocol!r} picks no model; give --model")
    return PROTOCOL_MODELS[dataset]


def resolve_configs(names: list[str]) -> list[str]:
    """Expand 'all' (every single and pair), 'peft' (the PEFT baselines); validate the rest."""
    out: list[str] = []
    for name in (n for raw in names for n in raw.split(",") if n):  # --configs loreft,dect
        expanded = all_configurations() if name == "all" else list(PEFT_BASELINES) if name == "peft" else [name]
        for c in expanded:
            if c not in PEFT_BASELINES and c not in OTHER_BASELINES and c != FULL_FT:
                parse_configuration(c)
            if c not in out:
                out.append(c)
    return out


def is_complete(run_dir: Path, split: str = "validation") -> bool:
    """Trained (run.json complete) and generated for `split` (its metrics file and NLE file present)."""
    try:
        info = read_run(run_dir)
    except (ValueError, OSError):
        return False
    label_only = info.get("kind") == "dect"  # DecT writes no NLE file
    return (run_dir / metrics_file(split)).is_file() and (label_only or (run_dir / nles_file(split)).is_file())


# --- the sweep with its report: protocol models, per-split completeness, settings mismatches -------------

# Settings that do not change what a run learns, so they never make a run "mismatched".
_IGNORED_SETTINGS = ("out", "logging_steps", "model_name")


@dataclass
class SweepPlan:
    jobs: list[Job] = field(default_factory=list)
    complete: list[Path] = field(default_factory=list)
    mismatched: list[tuple[Path, list[str]]] = field(default_factory=list)  # run dir, differences
    rerun: list[Path] = field(default_factory=list)

    def messages(self) -> list[str]:
        out = [f"{len(self.complete)} run(s) complete, skipped"] if self.complete else []
        for run_dir, diffs in self.mismatched:
            out.append(f"{run_dir}: trained with other settings ({'; '.join(diffs)}); not rerun "
                       "(--rerun-mismatched retrains it)")
        for run_dir in self.rerun:
            out.append(f"{run_dir}: trained with other settings; retraining (--rerun-mismatched)")
        return out


def requested_config(train_argv: tuple[str, ...]):
    """The TrainConfig that a job's `nle-gen train ...` line asks for (parsed as `train` would)."""
    from generation.cli import build_parser, train_config_from_args

    args, unknown = build_parser().parse_known_args(list(train_argv[1:]))
    if unknown:
        raise ValueError(f"--train-arg: train does not know {' '.join(unknown)}")
    return train_config_from_args(args)


def settings_mismatch(run_dir: Path, requested) -> list[str]:
    """'name: run X, requested Y' for every training setting where run.json differs from `requested`."""
    from generation.config import TrainConfig

    stored = read_run(run_dir)["train_config"]
    have = TrainConfig.from_dict(stored).to_dict()  # settings added later read as their defaults
    want = requested.to_dict()
    return [f"{k}: run {have[k]!r}, requested {want[k]!r}" for k in want
            if k not in _IGNORED_SETTINGS and have.get(k) != want[k]]


def plan_sweep(model: str | None, datasets: list[str], seeds: list[int], configs: list[str],
               data_root: str | Path, out_root: str | Path, train_args: list[str] | None = None, first: int = 30,
               protocol: str = "sparsefit", split: str = "validation", rerun_mismatched: bool = False,
               generate_args: list[str] | None = None, include_complete: bool = False) -> SweepPlan:
    """Jobs for every run that is not complete for `split` with the requested settings, and a report of
    the runs skipped because they are complete or were trained with other settings.

    Data for dataset D is read from data_root/D, runs go to out_root/D/CONFIG/seed-S, in a stable order.
    include_complete: complete runs are jobs too (for `--plan`, which reads their step times)."""
    for d in datasets:
        if d not in DATASETS:
            raise ValueError(f"unknown dataset {d!r}; known: {', '.join(DATASETS)}")
    out = SweepPlan()
    names = resolve_configs(configs)
    for d in datasets:
        base = model_for(d, protocol, model)
        for seed in seeds:
            for c in names:
                run_dir = Path(out_root) / d / c / f"seed-{seed}"
                train = ("nle-gen", "train", "--model", base, "--dataset", d, "--data-dir",
                         str(Path(data_root) / d), "--seed", str(seed), "--config", c, "--out", str(run_dir),
                         *(train_args or []))
                gen = ("nle-gen", "generate", "--run", str(run_dir), "--out", str(run_dir / nles_file(split)),
                       "--first", str(first), *(("--split", split) if split != "validation" else ()),
                       *(generate_args or []))
                if seed == seeds[0] and c == names[0]:
                    requested_config(train)  # a bad --train-arg fails here, before any job is printed
                trained = True
                try:
                    read_run(run_dir)
                except (ValueError, OSError):
                    trained = False
                if trained:
                    diffs = settings_mismatch(run_dir, requested_config(train))
                    if diffs and not rerun_mismatched:
                        out.mismatched.append((run_dir, diffs))
                        continue
                    if diffs:
                        out.rerun.append(run_dir)
                        out.jobs.append(Job(d, seed, c, run_dir, (train, gen)))
                        continue
                    if is_complete(run_dir, split):
                        out.complete.append(run_dir)
                        if include_complete:
                            out.jobs.append(Job(d, seed, c, run_dir, (gen,)))
                        continue
                # trained with these settings but not generated for this split: only generate
                out.jobs.append(Job(d, seed, c, run_dir, (gen,) if trained else (train, gen)))
    return out
