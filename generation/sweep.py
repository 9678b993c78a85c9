"""Independent jobs for datasets x seeds x configurations, one run directory each, skipped when complete
for the requested split and settings; runs trained with other settings are reported, not silently skipped."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from generation.components import all_configurations
from generation.config import PROTOCOL_MODELS, TrainConfig
from generation.data import DATASETS
from generation.methods import METHODS, method_for
from generation.options import convert, parse_generate_args, parse_train_args
from generation.rundir import metrics_file, nles_file, read_run


@dataclass(frozen=True)
class Job:
    """One run of the sweep: train (unless trained already with these settings), then generate."""

    dataset: str
    seed: int
    configuration: str
    run_dir: Path
    # the same steps as `nle-gen` command lines: printed without --engine, written to each run's log, and
    # Slurm's job list (docs/sweeps.md, "Slurm")
    argv: tuple[tuple[str, ...], ...]
    train: TrainConfig | None = None  # what generation.train.train() trains; None: only generate
    generate: dict | None = None  # generation.jobs.generate_run's keyword arguments

    @property
    def shell(self) -> str:
        return " && ".join(shlex.join(a) for a in self.argv)

    def steps(self) -> list[tuple[str, TrainConfig | dict, tuple[str, ...]]]:
        """(name, what the library call takes, the equivalent command line) of each step, in order."""
        out: list[tuple[str, TrainConfig | dict, tuple[str, ...]]] = []
        if self.train is not None:
            out.append(("train", self.train, self.argv[0]))
        if self.generate is not None:
            out.append(("generate", self.generate, self.argv[-1]))
        return out


def model_for(dataset: str, protocol: str = "sparsefit", model: str | None = None) -> str:
    """`model` when given (it overrides the protocol for every dataset), else the protocol's choice."""
    if model:
        return model
    if protocol != "sparsefit":
        raise ValueError(f"protocol {protocol!r} picks no model; give --model")
    return PROTOCOL_MODELS[dataset]


def resolve_configurations(names: list[str]) -> list[str]:
    """Expand 'all' (every single and pair), 'peft' (the PEFT baselines); validate the rest."""
    out: list[str] = []
    for name in (n for raw in names for n in raw.split(",") if n):  # --configs loreft,dect
        expanded = (all_configurations() if name == "all" else list(METHODS["peft"].configurations)
                    if name == "peft" else [name])
        for c in expanded:
            method_for(c)
            if c not in out:
                out.append(c)
    return out


def is_complete(run_dir: Path, split: str = "validation") -> bool:
    """Trained (run.json complete) and generated for `split` (its metrics file and NLE file present)."""
    try:
        info = read_run(run_dir)
    except (ValueError, OSError):
        return False
    method = METHODS.get(info.get("kind"))
    label_only = method is not None and method.label_only  # it writes no NLE file
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


def settings_mismatch(run_dir: Path, requested: TrainConfig) -> list[str]:
    """'name: run X, requested Y' for every training setting where run.json differs from `requested`."""
    stored = read_run(run_dir)["train_config"]
    have = TrainConfig.from_dict(stored).to_dict()  # settings added later read as their defaults
    want = requested.to_dict()
    return [f"{k}: run {have[k]!r}, requested {want[k]!r}" for k in want
            if k not in _IGNORED_SETTINGS and have.get(k) != want[k]]


def plan_sweep(model: str | None, datasets: list[str], seeds: list[int], configurations: list[str],
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
    names = resolve_configurations(configurations)
    overrides = parse_train_args(train_args or [])  # a bad --train-arg fails here, before any job is printed
    generate_overrides = parse_generate_args(generate_args or [])
    for d in datasets:
        base = model_for(d, protocol, model)
        for seed in seeds:
            for c in names:
                run_dir = Path(out_root) / d / c / f"seed-{seed}"
                data_dir = str(Path(data_root) / d)
                train_line = ("nle-gen", "train", "--model", base, "--dataset", d, "--data-dir", data_dir,
                              "--seed", str(seed), "--config", c, "--out", str(run_dir), *(train_args or []))
                gen_line = ("nle-gen", "generate", "--run", str(run_dir), "--out", str(run_dir / nles_file(split)),
                            "--first", str(first), *(("--split", split) if split != "validation" else ()),
                            *(generate_args or []))
                # the TrainConfig `train` makes of train_line (paths made absolute the same way), without the text
                grid = {"model": base, "dataset": d, "data_dir": data_dir, "seed": seed, "configuration": c,
                        "out": str(run_dir)}
                train = TrainConfig(**{**{k: convert(k, v) for k, v in grid.items()}, **overrides})
                gen = {"run": str(run_dir), "out": str(run_dir / nles_file(split)), "first": first, "split": split,
                       **generate_overrides}
                trained = True
                try:
                    read_run(run_dir)
                except (ValueError, OSError):
                    trained = False
                if trained:
                    diffs = settings_mismatch(run_dir, train)
                    if diffs and not rerun_mismatched:
                        out.mismatched.append((run_dir, diffs))
                        continue
                    if diffs:
                        out.rerun.append(run_dir)
                        out.jobs.append(Job(d, seed, c, run_dir, (train_line, gen_line), train, gen))
                        continue
                    if is_complete(run_dir, split):
                        out.complete.append(run_dir)
                        if include_complete:
                            out.jobs.append(Job(d, seed, c, run_dir, (gen_line,), None, gen))
                        continue
                    # trained with these settings but not generated for this split: only generate
                    out.jobs.append(Job(d, seed, c, run_dir, (gen_line,), None, gen))
                else:
                    out.jobs.append(Job(d, seed, c, run_dir, (train_line, gen_line), train, gen))
    return out
