"""Component rules, configuration lists and parameter counts (the paper's T5-large percentages)."""

from __future__ import annotations

import json

import pytest

from generation.cli import main, paper_round
from generation.components import (
    COMPONENTS,
    all_configurations,
    component_matches,
    count_parameters,
    parse_configuration,
    select_trainable_parameters,
)
from generation.presets import build_meta_model, preset_config


@pytest.mark.parametrize(
    ("name", "component", "expected"),
    [
        ("encoder.block.0.layer.0.SelfAttention.q.weight", "att_q", True),
        ("decoder.block.3.layer.0.SelfAttention.q.weight", "att_q", True),
        ("decoder.block.3.layer.1.EncDecAttention.q.weight", "att_q", False),  # cross-attention is not att_q
        ("decoder.block.3.layer.1.EncDecAttention.q.weight", "decoder", True),
        ("encoder.block.0.layer.0.SelfAttention.k.weight", "self_attention", True),
        ("encoder.block.0.layer.0.SelfAttention.o.weight", "self_attention", False),
        ("encoder.block.0.layer.0.SelfAttention.o.weight", "att_o", True),
        ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "self_attention", False),
        ("encoder.block.0.layer.1.DenseReluDense.wi.weight", "dense_wi", True),
        ("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", "dense_wi", True),  # T5 v1.1 gated FF
        ("encoder.block.0.layer.1.DenseReluDense.wo.weight", "dense_wi", False),
        ("decoder.block.0.layer.2.DenseReluDense.wo.weight", "dense_wo", True),
        ("encoder.block.0.layer.0.layer_norm.weight", "layer_norm", True),
        ("decoder.final_layer_norm.weight", "layer_norm", True),
        ("encoder.embed_tokens.weight", "encoder", False),
        ("encoder.final_layer_norm.weight", "encoder", True),
        ("lm_head.weight", "lm_head", True),
        ("shared.weight", "lm_head", False),  # selected through its lm_head alias when tied, not by its own name
        ("base_model.model.encoder.block.0.layer.0.SelfAttention.q.weight", "att_q", True),  # PEFT prefix
    ],
)
def test_t5_component_rules(name: str, component: str, expected: bool) -> None:
    assert component_matches(name, component, "t5") is expected


@pytest.mark.parametrize(
    ("name", "component", "expected"),
    [
        ("model.layers.0.self_attn.q_proj.weight", "att_q", True),
        ("model.layers.0.self_attn.k_proj.weight", "att_q", False),
        ("model.layers.5.self_attn.v_proj.weight", "self_attention", True),
        ("model.layers.5.self_attn.o_proj.weight", "self_attention", False),
        ("model.layers.5.self_attn.o_proj.weight", "att_o", True),
        ("model.layers.1.mlp.gate_proj.weight", "dense_wi", True),
        ("model.layers.1.mlp.up_proj.weight", "dense_wi", True),
        ("model.layers.1.mlp.down_proj.weight", "dense_wo", True),
        ("model.layers.1.input_layernorm.weight", "layer_norm", True),
        ("model.layers.1.post_attention_layernorm.weight", "layer_norm", True),
        ("model.norm.weight", "layer_norm", True),
        ("model.norm.weight", "decoder", True),
        ("model.embed_tokens.weight", "decoder", False),
        ("model.embed_tokens.weight", "layer_norm", False),
        ("lm_head.weight", "lm_head", True),
        ("lm_head.weight", "decoder", False),
    ],
)
def test_llama_component_rules(name: str, component: str, expected: bool) -> None:
    assert component_matches(name, component, "llama") is expected


def test_llama_has_no_encoder() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        component_matches("model.layers.0.self_attn.q_proj.weight", "encoder", "llama")


@pytest.fixture(scope="module")
def t5_large():
    return build_meta_model(preset_config("t5-large"))


# The paper's T5-large figures (percent of trainable parameters), to two decimals.
PAPER_T5_LARGE = [
    ("encoder", "40.95"), ("decoder", "54.60"), ("dense_wo", "27.29"), ("self_attention", "20.47"),
    ("lm_head+att_q", "11.28"), ("lm_head", "4.46"), ("att_q+layer_norm", "6.84"), ("att_q", "6.82"),
    ("att_k", "6.82"), ("att_v", "6.82"), ("layer_norm", "0.02"),
]


@pytest.mark.parametrize(("config", "percent"), PAPER_T5_LARGE)
def test_t5_large_percentages_match_the_paper(t5_large, config: str, percent: str) -> None:
    counts = count_parameters(t5_large, config)
    assert counts.total == 737_668_096  # distinct tensors: the tied lm_head/shared embedding once
    assert paper_round(counts.percent) == percent
    assert abs(counts.percent - float(percent)) < 0.006


def test_params_cli_json(capsys) -> None:
    assert main(["params", "--arch", "t5-large", "--json", "--config", "att_q+layer_norm", "--config", "lm_head"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["arch"] == "t5-large" and data["total"] == 737_668_096
    assert data["configs"]["att_q+layer_norm"] == {"trainable": 50_456_576, "percent": 6.84}
    assert paper_round(data["configs"]["lm_head"]["percent"]) == "4.46"


def test_params_cli_table_notes_tied_lm_head(capsys) -> None:
    assert main(["params", "--arch", "t5-small", "--config", "lm_head+att_q"]) == 0
    out = capsys.readouterr().out
    assert "lm_head+att_q" in out and "tied" in out


def test_params_cli_reads_local_config(tiny_t5, capsys) -> None:
    assert main(["params", "--model", str(tiny_t5 / "config.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["configs"]["full_ft"]["percent"] == 100.0
    assert set(data["configs"]) == {*all_configurations(), "full_ft", "lora", "lora_qkvo_r4", "adalora", "ia3",
                                    "loreft", "dect"}
    assert data["configs"]["lora"]["trainable"] > data["configs"]["lora_qkvo_r4"]["trainable"] > 0


def test_params_cli_counts_peft_adapters(capsys) -> None:
    assert main(["params", "--arch", "t5-large", "--json", "--config", "lora", "--config", "ia3"]) == 0
    data = json.loads(capsys.readouterr().out)
    # LoRA r=128 on q and v: 2 matrices (1024x128 + 128x1024) x 2 modules x 48 self-attention + 24 cross-attention
    assert data["configs"]["lora"]["trainable"] == (24 + 24 + 24) * 2 * 2 * 1024 * 128
    assert 0 < data["configs"]["ia3"]["trainable"] < data["configs"]["lora"]["trainable"]


def test_llama_preset_counts() -> None:
    model = build_meta_model(preset_config("llama-2-7b"))
    assert count_parameters(model, "full_ft").total == 6_738_415_616  # Llama-2-7B's published size
    assert count_parameters(model, "att_q").trainable == 32 * 4096 * 4096


def test_configuration_list() -> None:
    configs = all_configurations()
    assert configs[: len(COMPONENTS)] == list(COMPONENTS)
    pairs = [c for c in configs if "+" in c]
    assert "att_q+layer_norm" in pairs and "lm_head+att_q" in pairs
    assert not any("encoder" in p or "decoder" in p for p in pairs)
    assert "self_attention+att_q" not in pairs and "att_q+self_attention" not in pairs  # == self_attention
    assert len(pairs) == len(set(pairs)) == 33


@pytest.mark.parametrize("bad", ["", "att_x", "att_q+", "att_q+att_q", "lora+att_q", "full_ft+att_q"])
def test_bad_configurations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_configuration(bad)


def test_select_freezes_everything_else(tiny_t5) -> None:
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    counts = select_trainable_parameters(model, "att_q+layer_norm")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == counts.trainable_names
    assert all(".SelfAttention.q." in n or "layer_norm" in n for n in trainable)
    assert counts.trainable + counts.frozen == sum(p.numel() for p in model.parameters())
