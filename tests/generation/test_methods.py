"""The method registry: a method is one module behind `Method` and one entry in `METHODS`. A toy method
registered here, at runtime, goes through `params`, `train`, `generate`, `sweep --plan` and `results` with no
other file changed; the built-in methods each have their entry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from generation.cli import main
from generation.components import ParamCounts
from generation.config import TrainConfig
from generation.methods import METHODS, listed, method_for, method_named
from generation.methods.base import Method
from generation.modeling import base_as_trained, count_unique

TOY_FILE = "toy.safetensors"


def _is_norm(name: str) -> bool:
    return "layer_norm" in name or name.endswith("norm.weight")


class Toy(Method):
    """Trains every normalisation weight and nothing else; saves them in a file of its own."""

    name = "toy"
    configurations = ("toy_norms",)
    weights = TOY_FILE
    learning_rate = 1e-2

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        total = sum(p.numel() for p in {id(p): p for p in meta_model.parameters()}.values())
        names = [n for n, _ in meta_model.named_parameters() if _is_norm(n)]
        params = dict(meta_model.named_parameters())
        return ParamCounts(configuration, total, sum(params[n].numel() for n in names), names)

    def wrap(self, model: torch.nn.Module, cfg, total_steps: int) -> tuple[torch.nn.Module, ParamCounts]:
        for n, p in model.named_parameters():
            p.requires_grad_(_is_norm(n))
        return model, count_unique(model)

    def save(self, model: torch.nn.Module, cfg, counts: ParamCounts, run_dir: Path) -> None:
        save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                  run_dir / TOY_FILE)

    def load(self, run_dir: Path, info: dict, base: str, tokenizer) -> torch.nn.Module:
        model = base_as_trained(base, info, tokenizer)
        model.load_state_dict(load_file(run_dir / TOY_FILE), strict=False)
        return model


@pytest.fixture
def toy(monkeypatch) -> Toy:
    method = Toy()
    monkeypatch.setitem(METHODS, method.name, method)
    return method


def test_a_registered_method_runs_through_every_command(toy: Toy, tiny_t5: Path, esnli_dir: Path, tmp_path: Path,
                                                        capsys) -> None:
    # params: listed by default, and counted on the meta device
    assert main(["params", "--model", str(tiny_t5), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["configs"]
    # d_model 32: encoder 2 blocks x 2 norms + final, decoder 2 blocks x 3 norms + final
    assert rows["toy_norms"]["trainable"] == 32 * (2 * 2 + 1 + 2 * 3 + 1)
    assert main(["params", "--arch", "t5-small", "--config", "toy_norms", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["configs"]["toy_norms"]["trainable"] == 512 * (6 * 2 + 1 + 6 * 3 + 1)

    # train: the method's own weights file, its kind and default learning rate in run.json
    runs, data_root = tmp_path / "runs", esnli_dir.parent
    run = runs / "esnli" / "toy_norms" / "seed-0"
    small = ["--n-train", "6", "--n-val", "3", "--max-steps", "2"]
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "toy_norms", "--out", str(run), *small, "--quiet"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "toy" and info["config"] == "toy_norms" and info["train_config"]["learning_rate"] == 1e-2
    assert info["trainable"] == rows["toy_norms"]["trainable"] and (run / TOY_FILE).is_file()

    # generate: the run is rebuilt through the method's load
    assert main(["generate", "--run", str(run), "--out", str(run / "nles.jsonl"), "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"] == "toy_norms" and metrics["n"] == 3
    (run / TOY_FILE).unlink()
    assert main(["generate", "--run", str(run), "--out", str(tmp_path / "again.jsonl"), "--quiet"]) == 2
    assert f"{TOY_FILE} is missing" in capsys.readouterr().err
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "toy_norms", "--out", str(run), *small, "--quiet"]) == 0
    assert main(["generate", "--run", str(run), "--out", str(run / "nles.jsonl"), "--quiet"]) == 0
    capsys.readouterr()

    # sweep --plan: the trained run counts as complete with the settings asked for
    assert main(["sweep", "--model", str(tiny_t5), "--datasets", "esnli", "--seeds", "0", "1", "--configs",
                 "toy_norms", "--data-root", str(data_root), "--out-root", str(runs), "--plan",
                 *(f"--train-arg={a}" for a in small)]) == 0
    out = capsys.readouterr().out
    assert "runs: 2 (1 datasets x 2 seeds x 1 configurations)" in out and "complete: 1, partial: 0, to run: 1" in out

    # results: the run is a row of the tables
    assert main(["results", str(runs), "--out", str(tmp_path / "results")]) == 0
    rows = json.loads((tmp_path / "results" / "results.json").read_text())["rows"]
    assert [(r["config"], r["kind"], r["seeds"]) for r in rows] == [("toy_norms", "toy", [0])]


def test_the_registry_knows_the_paper_s_methods() -> None:
    assert list(METHODS) == ["sparse", "full", "peft", "reft", "dect"]
    assert {c: method_for(c).name for c in ("att_q+layer_norm", "full_ft", "lora", "ia3", "loreft", "dect")} == {
        "att_q+layer_norm": "sparse", "full_ft": "full", "lora": "peft", "ia3": "peft", "loreft": "reft",
        "dect": "dect"}
    assert [m.name for m in METHODS.values() if m.label_only] == ["dect"]
    assert listed("t5")[:2] == ["encoder", "decoder"] and listed("t5")[-3:] == ["ia3", "loreft", "dect"]
    with pytest.raises(ValueError, match="no such training method"):
        method_named("toy")


def test_a_method_decides_its_default_learning_rate_and_checks_its_settings(toy: Toy) -> None:
    base = dict(model="m", dataset="esnli", data_dir="d", seed=0, out="o")
    assert TrainConfig(**base, configuration="toy_norms").learning_rate == 1e-2
    assert TrainConfig(**base, configuration="toy_norms").kind == "toy"
    assert TrainConfig(**base, configuration="att_q").learning_rate == 3e-5

    class Picky(Toy):
        name = "picky"
        configurations = ("picky",)

        def check(self, cfg) -> None:
            if cfg.seed != 7:
                raise ValueError("picky trains seed 7 only")

    METHODS["picky"] = Picky()
    try:
        with pytest.raises(ValueError, match="seed 7 only"):
            TrainConfig(**base, configuration="picky")
        assert TrainConfig(**{**base, "seed": 7}, configuration="picky").kind == "picky"
    finally:
        del METHODS["picky"]
