"""The sweep: one job per dataset x seed x configuration, the protocol's model per dataset, skipping runs that
are complete for the requested split and settings, and reporting runs trained with other settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generation.cli import main
from generation.components import all_configurations
from generation.sweep import PROTOCOL_MODELS, model_for, plan_sweep, resolve_configurations


def test_plan_lists_every_job_with_its_own_run_dir(tmp_path: Path) -> None:
    jobs = plan_sweep("t5-large", ["esnli", "comve"], [0, 1], ["att_q+layer_norm", "full_ft", "lora"],
                      tmp_path / "data", tmp_path / "runs").jobs
    assert len(jobs) == 2 * 2 * 3
    assert len({j.run_dir for j in jobs}) == 12
    job = jobs[0]
    assert job.run_dir == tmp_path / "runs" / "esnli" / "att_q+layer_norm" / "seed-0"
    train, gen = job.argv
    assert train[:2] == ("nle-gen", "train") and "--data-dir" in train
    assert train[train.index("--data-dir") + 1] == str(tmp_path / "data" / "esnli")
    assert gen[:2] == ("nle-gen", "generate") and gen[gen.index("--out") + 1] == str(job.run_dir / "nles.jsonl")
    assert "'att_q+layer_norm'" not in job.shell and "nle-gen train" in job.shell


def test_resolve_all_and_peft() -> None:
    assert resolve_configurations(["all", "full_ft", "peft"]) == [*all_configurations(), "full_ft", "lora", "lora_qkvo_r4",
                                                           "adalora", "adalora_r32", "ia3"]
    assert len(resolve_configurations(["all"])) == 62
    with pytest.raises(ValueError, match="unknown component"):
        resolve_configurations(["att_z"])


@pytest.mark.parametrize(("dataset", "model"), [("esnli", "t5-large"), ("ecqa", "allenai/unifiedqa-t5-large"),
                                                 ("sbic", "allenai/unifiedqa-t5-large"),
                                                 ("comve", "allenai/unifiedqa-t5-large")])
def test_sparsefit_protocol_picks_the_model_per_dataset(dataset: str, model: str, tmp_path: Path) -> None:
    assert PROTOCOL_MODELS[dataset] == model == model_for(dataset)
    job = plan_sweep(None, [dataset], [0], ["att_q"], tmp_path, tmp_path / "runs").jobs[0]
    assert job.argv[0][job.argv[0].index("--model") + 1] == model
    # --model overrides the protocol for every dataset
    job = plan_sweep("my/model", [dataset], [0], ["att_q"], tmp_path, tmp_path / "runs").jobs[0]
    assert job.argv[0][job.argv[0].index("--model") + 1] == "my/model"


def test_sweep_cli_protocol(tmp_path: Path, capsys) -> None:
    assert main(["sweep", "--data-root", str(tmp_path), "--out-root", str(tmp_path / "r"), "--seeds", "0",
                 "--configs", "att_q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "--model t5-large --dataset esnli" in lines[0]
    assert all("--model allenai/unifiedqa-t5-large" in line for line in lines[1:])
    assert main(["sweep", "--protocol", "none", "--data-root", str(tmp_path), "--out-root", str(tmp_path)]) == 2
    assert "--protocol none needs --model" in capsys.readouterr().err


def test_sweep_rejects_a_bad_train_arg_before_printing_jobs(tmp_path: Path, capsys) -> None:
    assert main(["sweep", "--data-root", str(tmp_path), "--out-root", str(tmp_path / "r"), "--seeds", "0",
                 "--configs", "att_q", "--train-arg=--no-such-flag", "--train-arg=3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "train does not know --no-such-flag 3" in err


def test_sweep_help_states_defaults_and_job_count(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "1 at a time" in out and "(default: sparsefit)" in out and "(default: 30)" in out


def test_sweep_skips_complete_reports_mismatched_and_checks_each_split(tiny_t5: Path, esnli_dir: Path,
                                                                     tmp_path: Path, capsys) -> None:
    data_root = esnli_dir.parent
    shutil.copy(esnli_dir / "esnli_dev.csv", esnli_dir / "esnli_test.csv")  # the fixture has no test file
    runs = tmp_path / "runs"
    small = ["--train-arg=--n-train", "--train-arg=6", "--train-arg=--n-val", "--train-arg=3",
             "--train-arg=--max-steps", "--train-arg=2"]
    common = ["--model", str(tiny_t5), "--datasets", "esnli", "--seeds", "0", "--data-root", str(data_root),
              "--out-root", str(runs), "--configs", "att_q", "layer_norm", *small]
    assert main(["sweep", *common]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2

    run = runs / "esnli" / "att_q" / "seed-0"
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "att_q", "--out", str(run), "--n-train", "6", "--n-val", "3", "--max-steps", "2",
                 "--quiet"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["complete"] and info["train_config"]["n_train"] == 6 and info["steps"] == 2
    assert info["train_loss"] > 0 and info["train_config"]["data_dir"] == str(esnli_dir.resolve())
    assert "mean training loss" in capsys.readouterr().out
    assert main(["sweep", *common]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert lines[0].startswith("nle-gen generate") and "att_q/seed-0" in lines[0]  # trained: only generate left

    # a barely trained model may get nothing right: the file is then empty, and the step is still done
    assert main(["generate", "--run", str(run), "--out", str(run / "nles.jsonl"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sweep", *common]) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1 and "layer_norm" in out and "1 run(s) complete" in err

    # the same run asked for with other training settings: reported, not skipped silently, not rerun
    other = [a.replace("=2", "=3") if a == "--train-arg=2" else a for a in common]
    other[-1] = "--train-arg=3"
    assert main(["sweep", *other]) == 3
    out, err = capsys.readouterr()
    assert "att_q/seed-0" not in out
    assert "trained with other settings (max_steps: run 2, requested 3)" in err and "--rerun-mismatched" in err
    assert main(["sweep", *other, "--rerun-mismatched"]) == 0
    out, err = capsys.readouterr()
    job = next(line for line in out.splitlines() if "att_q/seed-0" in line)
    assert job.startswith("nle-gen train") and "retraining" in err

    # completeness is per split: validation done, test not yet -> only `generate --split test`
    assert main(["sweep", *common, "--split", "test"]) == 0
    job = next(line for line in capsys.readouterr().out.splitlines() if "att_q/seed-0" in line)
    assert job.startswith("nle-gen generate") and "--split test" in job and "nles-test.jsonl" in job
    before = (run / "metrics.json").read_text()
    assert main(["generate", "--run", str(run), "--out", str(run / "nles-test.jsonl"), "--split", "test",
                 "--quiet"]) == 0
    assert (run / "metrics.json").read_text() == before  # test metrics beside, never over, validation ones
    assert json.loads((run / "metrics-test.json").read_text())["split"] == "test"
    assert (run / "generations-test.jsonl").is_file()
    capsys.readouterr()
    assert main(["sweep", *common, "--split", "test"]) == 0
    assert "att_q/seed-0" not in capsys.readouterr().out

    # retraining removes the old metrics, so the run is not complete for any split until generated again
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "att_q", "--out", str(run), "--n-train", "6", "--n-val", "3", "--max-steps", "2",
                 "--quiet"]) == 0
    assert not list(run.glob("metrics*.json")) and not list(run.glob("nles*.jsonl"))
    capsys.readouterr()
    assert main(["sweep", *common, "--split", "test"]) == 0
    job = next(line for line in capsys.readouterr().out.splitlines() if "att_q/seed-0" in line)
    assert job.startswith("nle-gen generate")


def test_train_cli_rejects_bad_data_dir(tiny_t5: Path, tmp_path: Path, capsys) -> None:
    code = main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(tmp_path / "none"),
                 "--seed", "0", "--config", "att_q", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2
    assert "data directory not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written
