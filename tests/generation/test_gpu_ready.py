"""GPU-ready training on tiny models (on CPU here): an impossible --precision bf16 changes nothing, gradient checkpointing
trains the same, the optimizer holds only trainable tensors, sparse checkpoints load into the base model's storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from generation.cli import main
from generation.config import TrainConfig
from generation.methods.sparse import SPARSE_FILE, load_sparse
from generation.modeling import load_base
from generation.train import train


def _cfg(model: Path, data: Path, out: Path, config: str, **over) -> TrainConfig:
    base = dict(model=str(model), dataset="esnli", data_dir=str(data), seed=1, configuration=config, out=str(out),
                n_train=6, n_val=6, max_steps=3, learning_rate=1e-2, batch_size=3, logging_steps=1)
    return TrainConfig(**{**base, **over})


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.is_bf16_supported(), reason="this GPU has bf16")
def test_bf16_without_support_is_one_line_and_writes_nothing(tiny_t5: Path, esnli_dir: Path, tmp_path: Path,
                                                                 capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "att_q", "--out", str(out), "--precision", "bf16", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("nle-gen: error: --precision bf16 needs a CUDA GPU with bf16 support (no CUDA GPU found); "
                   "use --precision fp32\n")
    assert not out.exists()


def test_gradient_checkpointing_trains_the_same(tiny_model: Path, esnli_dir: Path, tmp_path: Path) -> None:
    plain = train(_cfg(tiny_model, esnli_dir, tmp_path / "plain", "att_q+layer_norm"), progress=False)
    ckpt = train(_cfg(tiny_model, esnli_dir, tmp_path / "ckpt", "att_q+layer_norm", gradient_checkpointing=True),
                 progress=False)
    on = "is_activation_checkpointing" if hasattr(ckpt.model, "is_activation_checkpointing") else "is_gradient_checkpointing"
    assert getattr(ckpt.model, on) and not getattr(plain.model, on)
    assert ckpt.losses == pytest.approx(plain.losses, rel=1e-5)
    a, b = load_file(tmp_path / "plain" / SPARSE_FILE), load_file(tmp_path / "ckpt" / SPARSE_FILE)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    info = json.loads((tmp_path / "ckpt" / "run.json").read_text())
    assert info["train_config"]["gradient_checkpointing"] is True
    assert info["step_seconds"] > 0 and info["steps"] == 3 and info["device"].startswith("cpu")
    assert info["precision"] == "fp32" and info["bf16_used"] is False and info["tf32_used"] is False


@pytest.mark.parametrize("config", ["att_q+layer_norm", "layer_norm", "full_ft", "lora"])
def test_optimizer_holds_only_trainable_tensors(config: str, tiny_t5: Path, esnli_dir: Path, tmp_path: Path) -> None:
    result = train(_cfg(tiny_t5, esnli_dir, tmp_path / "run", config, max_steps=1), progress=False)
    assert result.optimizer_numel == result.counts.trainable
    if config != "full_ft":
        assert result.optimizer_numel < result.counts.total


def test_sparse_checkpoint_loads_into_the_base_model_storage(tiny_t5: Path, esnli_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_cfg(tiny_t5, esnli_dir, run, "att_q+layer_norm", max_steps=1), progress=False)
    model, _ = load_base(str(tiny_t5))
    params = dict(model.named_parameters())
    pointers = {n: p.data_ptr() for n, p in params.items()}
    load_sparse(model, run / SPARSE_FILE, str(tiny_t5))
    saved = load_file(run / SPARSE_FILE)
    assert {n: p.data_ptr() for n, p in model.named_parameters()} == pointers  # written in place, no copy
    for name, value in saved.items():
        assert torch.equal(params[name], value)

    wrong = tmp_path / "wrong.safetensors"
    name = next(iter(saved))
    save_file({name: torch.zeros(3, 3)}, wrong)
    with pytest.raises(ValueError, match=f"wrong.safetensors: tensor {name} does not fit base model"):
        load_sparse(model, wrong, str(tiny_t5))


class _Stop(Exception):
    pass


@pytest.fixture
def fake_bf16_gpu(monkeypatch):
    """torch reporting an Ampere-class GPU (CUDA, bf16), with the TF32 flags as a bf16 run would leave them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "NVIDIA A100 (fake)")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_the_papers_fp32_by_default_even_on_a_bf16_gpu(fake_bf16_gpu, monkeypatch, tiny_t5: Path, esnli_dir: Path,
                                                        tmp_path: Path) -> None:
    """No bf16 autocast and no TF32 unless asked: the Trainer gets bf16=False and both TF32 flags go off."""
    import generation.train as train_module

    seen: dict = {}

    class Recorded(train_module.TrainingArguments):
        def __init__(self, **kwargs) -> None:
            seen.update(kwargs)
            raise _Stop

    monkeypatch.setattr(train_module, "TrainingArguments", Recorded)
    with pytest.raises(_Stop):
        train(_cfg(tiny_t5, esnli_dir, tmp_path / "run", "att_q"), progress=False)
    assert seen["bf16"] is False
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    with pytest.raises(_Stop):
        train(_cfg(tiny_t5, esnli_dir, tmp_path / "run", "att_q", precision="bf16"), progress=False)
    assert seen["bf16"] is True and torch.backends.cuda.matmul.allow_tf32 is True


def test_precision_names(fake_bf16_gpu) -> None:
    from generation.generate import generation_precision
    from generation.modeling import resolve_precision

    assert [resolve_precision(p) for p in ("fp32", "tf32", "bf16", "auto")] == ["fp32", "tf32", "bf16", "bf16"]
    # generate follows the run: run.json's precision, or its flags before `precision` was recorded
    assert generation_precision("run", {"precision": "fp32", "tf32_used": False}) == "fp32"
    assert generation_precision("run", {"bf16_used": True, "tf32_used": True}) == "bf16"
    assert generation_precision("run", {"bf16_used": False, "tf32_used": True}) == "tf32"
    assert generation_precision("fp32", {"precision": "bf16"}) == "fp32"


def test_precision_without_a_gpu() -> None:
    from generation.generate import generation_precision
    from generation.modeling import resolve_precision

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallbacks")
    assert [resolve_precision(p) for p in ("fp32", "tf32", "auto")] == ["fp32", "fp32", "fp32"]
    assert generation_precision("run", {"precision": "bf16"}) == "fp32"  # as trained where this machine can
    with pytest.raises(ValueError, match="--precision bf16 needs a CUDA GPU"):
        generation_precision("bf16", {"precision": "fp32"})


def test_runs_trained_before_precision_read_as_their_bf16_setting() -> None:
    base = dict(model="m", dataset="esnli", data_dir="d", seed=0, config="att_q", out="o", batch_size=4,
                max_steps=-1)
    assert TrainConfig.from_dict({**base, "bf16": "auto"}).precision == "auto"  # the old default
    assert TrainConfig.from_dict({**base, "bf16": "no"}).precision == "fp32"
    assert TrainConfig.from_dict({**base, "bf16": "yes"}).precision == "bf16"
    assert TrainConfig.from_dict({**base, "precision": "tf32", "bf16": "auto"}).precision == "tf32"
