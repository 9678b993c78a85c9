"""One source for the options: `nle-gen train`'s options are TrainConfig's fields (name, type, default, help), and
a sweep job's TrainConfig is what its printed `nle-gen train` line asks for."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from generation.cli import build_parser, main
from generation.config import TrainConfig, setting
from generation.jobs import generate_run
from generation.options import (
    add_train_options,
    generate_fields,
    positive,
    train_config_from_args,
    train_fields,
)
from generation.sweep import plan_sweep

REQUIRED = ["--model", "m", "--dataset", "esnli", "--data-dir", "d", "--seed", "0", "--config", "att_q", "--out", "o"]


def _train_parser() -> argparse.ArgumentParser:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices["train"]


def test_train_keeps_every_option_name() -> None:
    names = {a.option_strings[0] for a in _train_parser()._actions if a.option_strings and a.dest != "help"}
    assert names == {
        "--model", "--model-name", "--dataset", "--data-dir", "--seed", "--config", "--out", "--epochs", "--batch-size",
        "--gradient-accumulation-steps", "--lr", "--n-train", "--n-val", "--train-ids", "--val-ids", "--split-files",
        "--llama-format", "--max-steps", "--precision", "--sbic-tagger", "--gradient-checkpointing", "--lora-r",
        "--resize-embeddings", "--threads", "--quiet", "--reft-rank", "--reft-layers", "--reft-positions",
        "--reft-share-weights", "--dect-lambda", "--dect-proto-dim", "--dect-epochs", "--dect-lr",
        "--dect-calibration", "--dect-train-prototypes", "--dect-prior"}


def test_every_field_with_a_help_line_is_an_option_with_its_type_and_default() -> None:
    actions = {a.dest: a for a in _train_parser()._actions}
    for f in fields(TrainConfig):
        if f.metadata.get("help") is None:
            assert f.name not in actions  # e.g. logging_steps: a setting without an option
            continue
        action = actions[f.name]
        assert action.help == f.metadata["help"]
        assert action.required if f.default is MISSING else action.default == f.metadata.get("option_default", f.default)
    assert actions["epochs"].type is float and actions["seed"].type is int and actions["batch_size"].type is positive
    assert actions["gradient_checkpointing"].const is True and actions["precision"].choices == ["fp32", "tf32", "bf16",
                                                                                                  "auto"]
    args = _train_parser().parse_args([*REQUIRED, "--resize-embeddings", "none", "--lr", "1e-4"])
    cfg = train_config_from_args(args)
    assert cfg.resize_embeddings is False and cfg.learning_rate == 1e-4 and cfg.configuration == "att_q"
    assert Path(cfg.out).is_absolute() and Path(cfg.data_dir).is_absolute() and cfg.model == "m"


def test_a_new_setting_is_written_once() -> None:
    @dataclass
    class WithWarmup(TrainConfig):
        warmup_steps: int = setting(0, "optimizer steps of linear warm-up before the constant rate")

    parser = argparse.ArgumentParser()
    add_train_options(parser, settings=WithWarmup)
    assert "optimizer steps of linear warm-up" in parser.format_help()
    cfg = WithWarmup(**train_fields(parser.parse_args([*REQUIRED, "--warmup-steps", "12"]), WithWarmup))
    assert cfg.warmup_steps == 12 and cfg.to_dict()["warmup_steps"] == 12


def test_sweep_rejects_a_bad_generate_arg_before_printing_jobs(tmp_path: Path, capsys) -> None:
    assert main(["sweep", "--data-root", str(tmp_path), "--out-root", str(tmp_path / "r"), "--seeds", "0",
                 "--configs", "att_q", "--generate-arg=--no-such-flag"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "generate does not know --no-such-flag" in err


def test_a_sweep_job_carries_what_its_command_lines_ask_for(tmp_path: Path, monkeypatch) -> None:
    """The engines call the library with the job's TrainConfig; Slurm runs the job's command lines: both the same."""
    monkeypatch.chdir(tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("a\nb\n")
    train_args = ["--lr", "1e-4", "--resize-embeddings", "none", "--train-ids", str(ids), "--val-ids", "ids.txt",
                  "--reft-share-weights", "--max-steps", "7", "--precision", "tf32", "--llama-format", "authors"]
    jobs = plan_sweep("t5-large", ["esnli", "ecqa"], [3], ["att_q", "loreft"], "data", "runs", train_args=train_args,
                      generate_args=["--bertscore-model", "roberta-large", "--max-new-tokens", "20"],
                      split="test").jobs
    assert len(jobs) == 4
    defaults = {k: p.default for k, p in inspect.signature(generate_run).parameters.items()}
    for job in jobs:
        train_line, generate_line = job.argv
        assert train_config_from_args(build_parser().parse_args(list(train_line[1:]))) == job.train
        asked = generate_fields(build_parser().parse_args(list(generate_line[1:])))
        assert asked == {**{k: defaults[k] for k in asked}, **job.generate}
    assert jobs[1].train.learning_rate == 1e-4 and jobs[1].train.train_ids == ["a", "b"]
    assert jobs[0].generate["max_new_tokens"] == 20 and jobs[0].generate["split"] == "test"
