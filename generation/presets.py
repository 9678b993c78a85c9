"""Architecture presets and weight-free model building on PyTorch's meta device (no download)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    LlamaConfig,
    PretrainedConfig,
    T5Config,
)

# T5 v1.0 shapes (UnifiedQA has the same); lm_head tied to the shared embedding. The checkpoints hold 32,128
# embedding rows, but FEB (allenai/feb scripts/input_to_label_and_rationale.py) calls
# `model.resize_token_embeddings(len(tokenizer))` = 32,100 before training, and so does `train` here
# (`load_base`): the presets describe the model as trained, which is what the paper's percentages count.
T5_VOCAB_AFTER_RESIZE = 32100
_T5 = {
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_heads=8, d_kv=64),
    "t5-base": dict(d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64),
    "t5-large": dict(d_model=1024, d_ff=4096, num_layers=24, num_heads=16, d_kv=64),
    "t5-3b": dict(d_model=1024, d_ff=16384, num_layers=24, num_heads=32, d_kv=128),
}
PRESETS = (*_T5, "llama-2-7b")


def preset_architecture(name: str) -> PretrainedConfig:
    """A preset architecture (its transformers config)."""
    if name in _T5:
        return T5Config(vocab_size=T5_VOCAB_AFTER_RESIZE, tie_word_embeddings=True, pad_token_id=0, eos_token_id=1,
                        decoder_start_token_id=0, **_T5[name])
    if name == "llama-2-7b":
        return LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                           rms_norm_eps=1e-5, tie_word_embeddings=False)
    raise ValueError(f"unknown architecture preset {name!r}; known: {', '.join(PRESETS)}")


def load_architecture(path: str | Path) -> PretrainedConfig:
    """A local model's architecture from its config.json (or the model directory holding one), without touching
    the network."""
    path = Path(path)
    directory = path.parent if path.is_file() else path
    if not (directory / "config.json").is_file():
        raise ValueError(f"{path}: no config.json found (give a model directory or its config.json)")
    return AutoConfig.from_pretrained(directory, local_files_only=True)


def model_class(arch: PretrainedConfig):
    """AutoModelForSeq2SeqLM for encoder-decoders, AutoModelForCausalLM otherwise."""
    return AutoModelForSeq2SeqLM if getattr(arch, "is_encoder_decoder", False) else AutoModelForCausalLM


def build_meta_model(arch: PretrainedConfig) -> torch.nn.Module:
    """Instantiate the architecture with meta tensors: shapes and names only, no memory, no weights."""
    with torch.device("meta"):
        return model_class(arch).from_config(arch)
