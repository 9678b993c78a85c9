"""Training on tiny random-init models: what moves, what stays frozen, what is saved, what loads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from generation.config import TrainConfig
from generation.generate import generate_texts, load_run
from generation.modeling import load_base
from generation.prompts import prompt
from generation.rundir import read_run
from generation.splits import few_shot_split
from generation.train import DataCollatorForSeq2Seq, encode, train


def _cfg(model: Path, data: Path, out: Path, config: str, **over) -> TrainConfig:
    base = dict(model=str(model), dataset="esnli", data_dir=str(data), seed=1, configuration=config, out=str(out),
                n_train=6, n_val=6, max_steps=12, learning_rate=1e-2, batch_size=3, logging_steps=1)
    base.update(over)
    return TrainConfig(**base)


def _loss(model: torch.nn.Module, tokenizer, examples) -> float:
    """Mean loss of the model on examples (eval mode, no grad)."""
    decoder_only = not model.config.is_encoder_decoder
    batch = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(
        [encode(e, tokenizer, decoder_only) for e in examples])
    model.eval()
    with torch.no_grad():
        return float(model(**batch).loss)


def test_sparse_training_moves_only_selected_tensors(tiny_model: Path, esnli_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_model, esnli_dir, tmp_path / "run", "att_q+layer_norm")
    before_model, tok = load_base(str(tiny_model))
    before = {n: p.detach().clone() for n, p in before_model.named_parameters()}
    examples = few_shot_split("esnli", esnli_dir, 1, 6, 6).train
    loss_before = _loss(before_model, tok, examples)

    result = train(cfg, progress=False)

    after = dict(result.model.named_parameters())
    selected = set(result.counts.trainable_names)
    assert selected, "att_q+layer_norm selects something"
    assert all(("SelfAttention.q." in n or "self_attn.q_proj" in n or "norm" in n) for n in selected)
    for name, old in before.items():
        if name in selected:
            assert not torch.equal(after[name], old), f"{name} was selected but did not change"
        else:
            assert torch.equal(after[name], old), f"{name} is frozen but changed"
    assert _loss(result.model, tok, examples) < loss_before
    assert result.counts.trainable == sum(before[n].numel() for n in selected)


def test_sparse_checkpoint_round_trip(tiny_model: Path, esnli_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(_cfg(tiny_model, esnli_dir, run, "att_q+layer_norm"), progress=False)

    saved = load_file(run / "trainable.safetensors")
    assert set(saved) == set(result.counts.trainable_names)
    assert sum(t.numel() for t in saved.values()) == result.counts.trainable < result.counts.total
    assert not (run / "model").exists()

    prompts = [prompt(e) for e in few_shot_split("esnli", esnli_dir, 1, 6, 6).validation]
    fresh, tokenizer, info = load_run(run)
    assert info["config"] == "att_q+layer_norm" and info["base_model"] == str(tiny_model)
    # a local folder has no hub name unless train --model-name gives one; `results` reads the architecture
    assert info["model_name"] is None and info["decoder_only"] == (not fresh.config.is_encoder_decoder)
    assert generate_texts(fresh, tokenizer, prompts, max_new_tokens=12) == \
        generate_texts(result.model, result.tokenizer, prompts, max_new_tokens=12)
    # the checkpoint holds trained values, not the base model's
    base = dict(load_base(str(tiny_model))[0].named_parameters())
    assert all(not torch.equal(base[n], t) for n, t in saved.items())


def test_tied_lm_head_is_saved_once_and_noted(tiny_t5: Path, esnli_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(_cfg(tiny_t5, esnli_dir, run, "lm_head", max_steps=2), progress=False)
    assert len(result.counts.trainable_names) == 1  # shared = lm_head = both embed_tokens: one tensor
    assert any("tied" in n for n in result.counts.notes)
    assert any("tied" in n for n in read_run(run)["notes"])
    assert len(load_file(run / "trainable.safetensors")) == 1


def test_full_ft_saves_whole_model(tiny_t5: Path, esnli_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(_cfg(tiny_t5, esnli_dir, run, "full_ft", max_steps=2), progress=False)
    assert result.counts.trainable == result.counts.total
    assert (run / "model" / "model.safetensors").is_file() and not (run / "trainable.safetensors").exists()
    fresh, _, _ = load_run(run)
    for name, p in result.model.named_parameters():
        assert torch.equal(dict(fresh.named_parameters())[name], p)


def test_lora_trains_and_saves_only_the_adapter(tiny_model: Path, esnli_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(_cfg(tiny_model, esnli_dir, run, "lora", max_steps=3), progress=False)
    adapter = run / "adapter"
    tensors = load_file(adapter / "adapter_model.safetensors")
    assert tensors and all("lora_" in k for k in tensors)
    assert sum(t.numel() for t in tensors.values()) == result.counts.trainable
    assert not (run / "trainable.safetensors").exists() and not (run / "model").exists()
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "peft" and info["trainable"] < info["total"]
    prompts = [prompt(e) for e in few_shot_split("esnli", esnli_dir, 1, 6, 6).validation[:3]]
    fresh, tok, _ = load_run(run)
    assert generate_texts(fresh, tok, prompts, max_new_tokens=8) == \
        generate_texts(result.model, result.tokenizer, prompts, max_new_tokens=8)


@pytest.mark.parametrize("baseline", ["lora_qkvo_r4", "adalora", "adalora_r32", "ia3"])
def test_other_peft_baselines_train(baseline: str, tiny_t5: Path, esnli_dir: Path, tmp_path: Path) -> None:
    result = train(_cfg(tiny_t5, esnli_dir, tmp_path / "run", baseline, max_steps=4), progress=False)
    assert 0 < result.counts.trainable < result.counts.total
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()


def test_decoder_only_labels_mask_the_prompt(tiny_llama: Path, esnli_dir: Path) -> None:
    _, tok = load_base(str(tiny_llama))
    ex = few_shot_split("esnli", esnli_dir, 1, 6, 6).train[0]
    feats = encode(ex, tok, decoder_only=True)
    n_prompt = len(tok(prompt(ex))["input_ids"])
    assert feats["labels"][:n_prompt] == [-100] * n_prompt
    assert feats["labels"][n_prompt:] == feats["input_ids"][n_prompt:]
    assert tok.decode(feats["input_ids"][n_prompt:], skip_special_tokens=True).startswith(f"{ex.label} because ")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"dataset": "mnli"}, "unknown dataset"),
        ({"config": "att_q+lora"}, "unknown component"),
        ({"config": "att_q+att_q"}, "twice"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0, "max_steps": -1}, "epochs"),
        ({"precision": "bf16-maybe"}, "precision must be one of fp32, tf32, bf16, auto"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps"),
        ({"sbic_tagger": "nltk"}, "sbic_tagger must be one of auto, spacy, builtin"),
        ({"config": "lora", "lora_r": 0}, "lora_r must be"),
        ({"config": "att_q", "lora_r": 8}, "lora_r applies to the 'lora' baseline only"),
    ],
)
def test_train_config_rejects_impossible_values(over: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        _cfg(tmp_path, tmp_path, tmp_path / "run", **{"config": "att_q", **over})


def test_lora_rank_reaches_the_adapter(tiny_t5: Path, esnli_dir: Path, tmp_path: Path) -> None:
    result = train(_cfg(tiny_t5, esnli_dir, tmp_path / "run", "lora", lora_r=2, max_steps=1), progress=False)
    config = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 2 and config["lora_alpha"] == 2
    # q and v of 2 encoder self-, 2 decoder self- and 2 cross-attention blocks, d_model 32, inner 32
    assert result.counts.trainable == 6 * 2 * 2 * (32 + 32)
    assert read_run(tmp_path / "run")["train_config"]["lora_r"] == 2
