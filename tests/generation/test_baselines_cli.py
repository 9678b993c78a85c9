"""LoReFT and DecT through `nle-gen params`, `train`, `generate` and `sweep`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generation.cli import main
from generation.sweep import plan_sweep, resolve_configurations


@pytest.mark.parametrize(("arch", "config", "trainable"), [
    ("t5-large", "loreft", 24 * 2 * (2 * 4 * 1024 + 4)),  # 24 encoder blocks x (first, last) x (R, W, b)
    ("llama-2-7b", "loreft", 32 * 2 * (2 * 4 * 4096 + 4)),
    ("t5-large", "dect", 1024 * 128 + 3),  # projection + one radius per class (3, as e-SNLI)
    ("llama-2-7b", "dect", 4096 * 128 + 3),
])
def test_params_reports_the_baselines(arch, config, trainable, capsys) -> None:
    assert main(["params", "--arch", arch, "--config", config, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = data["configs"][config]
    assert row["trainable"] == trainable
    assert row["percent"] == round(100 * trainable / data["total"], 4)


def test_params_lists_them_by_default(capsys) -> None:
    assert main(["params", "--arch", "t5-small", "--json"]) == 0
    configs = json.loads(capsys.readouterr().out)["configs"]
    assert {"loreft", "dect", "lora", "full_ft"} <= set(configs)


def test_sweep_accepts_comma_separated_baselines(tmp_path: Path) -> None:
    assert resolve_configurations(["loreft,dect", "lora"]) == ["loreft", "dect", "lora"]
    jobs = plan_sweep("m", ["esnli"], [0], ["loreft,dect"], tmp_path / "data", tmp_path / "runs").jobs
    assert [j.configuration for j in jobs] == ["loreft", "dect"]
    assert all("--config" in j.argv[0] for j in jobs)


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "loreft", "--reft-positions", "middle"], "reft positions"),
    (["--config", "loreft", "--reft-rank", "0"], "rank must be >= 1"),
    (["--config", "dect", "--dect-proto-dim", "0"], "dect proto_dim"),
    (["--config", "dect", "--dect-lambda", "-1"], "dect lambda"),
])
def test_train_rejects_impossible_options(args, message, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--model", "m", "--dataset", "esnli", "--data-dir", str(tmp_path), "--seed", "0",
                 "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nle-gen: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_loreft_rank_larger_than_the_model_is_refused(tiny_t5: Path, esnli_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "loreft", "--reft-rank", "64", "--out", str(tmp_path / "run"), "--n-train", "6",
                 "--n-val", "3", "--quiet"]) == 2
    assert "reft rank 64 exceeds the hidden size 32" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything is written
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "loreft", "--reft-layers", "0,2", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "the model has layers 0..1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sweep_runs_loreft_and_dect_and_then_skips_them(tiny_t5: Path, esnli_dir: Path, tmp_path: Path,
                                                        capsys) -> None:
    data_root = tmp_path / "data"
    shutil.copytree(esnli_dir, data_root / "esnli")
    runs = tmp_path / "runs"
    for config, extra in (("loreft", ["--max-steps", "2", "--reft-layers", "1"]), ("dect", ["--dect-epochs", "3"])):
        run = runs / "esnli" / config / "seed-0"
        assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(data_root / "esnli"),
                     "--seed", "0", "--config", config, "--out", str(run), "--n-train", "6", "--n-val", "3",
                     "--quiet", *extra]) == 0
        assert main(["generate", "--run", str(run), "--out", str(run / "nles.jsonl"), "--quiet"]) == 0
    loreft = runs / "esnli" / "loreft" / "seed-0"
    info = json.loads((loreft / "run.json").read_text())
    assert info["kind"] == "reft" and info["train_config"]["reft_layers"] == "1"
    assert info["trainable"] == 2 * (2 * 4 * 32 + 4)  # one layer, first + last
    assert (loreft / "nles.jsonl").is_file() and json.loads((loreft / "metrics.json").read_text())["config"] == "loreft"
    dect = runs / "esnli" / "dect" / "seed-0"
    assert json.loads((dect / "metrics.json").read_text())["nle"] is None and not (dect / "nles.jsonl").exists()
    capsys.readouterr()
    for config, extra in (("loreft", ["--max-steps", "2", "--reft-layers", "1"]), ("dect", ["--dect-epochs", "3"])):
        report = plan_sweep(str(tiny_t5), ["esnli"], [0], [config], data_root, runs,
                            train_args=["--n-train", "6", "--n-val", "3", *extra])
        # complete (DecT without an NLE file) with the settings asked for: skipped, not mismatched
        assert report.jobs == [] and report.complete == [runs / "esnli" / config / "seed-0"]
        assert report.mismatched == []


@pytest.mark.parametrize(("config", "lr", "expected"), [
    ("loreft", None, 9e-4),  # the ReFT paper's commonsense recipe (docs/baselines.md)
    ("loreft", 3e-5, 3e-5),  # the shared SparseFit budget, asked for
    ("att_q+layer_norm", None, 3e-5),  # the paper's
    ("lora", None, 3e-5),
])
def test_learning_rate_defaults_follow_each_paper(config: str, lr: float | None, expected: float,
                                                  tmp_path: Path) -> None:
    from generation.config import TrainConfig

    cfg = TrainConfig(model="m", dataset="esnli", data_dir=str(tmp_path), seed=0, configuration=config,
                      out=str(tmp_path / "run"), learning_rate=lr)
    assert cfg.learning_rate == expected and cfg.to_dict()["learning_rate"] == expected
