"""Component rules, configuration lists and parameter counts (the paper's T5-large percentages)."""

from __future__ import annotations

import json

import pytest

from generation.cli import main
from generation.components import (
    COMPONENTS,
    all_configurations,
    component_matches,
    count_parameters,
    distinct_configurations,
    parse_configuration,
    select_trainable_parameters,
)
from generation.methods import method_for, named_configurations
from generation.presets import build_meta_model, preset_architecture


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
    return build_meta_model(preset_architecture("t5-large"))


# The paper's T5-large figures (percent of trainable parameters), to two decimals.
PAPER_T5_LARGE = [
    ("encoder", "40.95"), ("decoder", "54.60"), ("dense_wo", "27.29"), ("self_attention", "20.47"),
    ("lm_head+att_q", "11.28"), ("lm_head", "4.46"), ("att_q+layer_norm", "6.84"), ("att_q", "6.82"),
    ("att_k", "6.82"), ("att_v", "6.82"), ("layer_norm", "0.02"),
]


@pytest.mark.parametrize(("config", "percent"), PAPER_T5_LARGE)
def test_t5_large_percentages_match_the_paper_by_ordinary_rounding(t5_large, config: str, percent: str) -> None:
    counts = count_parameters(t5_large, config)
    # FEB resizes the embeddings to the tokenizer's 32,100 rows: 737,668,096 - 28 x 1024, tied lm_head once
    assert counts.total == 737_639_424
    assert f"{counts.percent:.2f}" == percent


def test_decoder_percentage_needs_the_resize() -> None:
    """With the checkpoint's 32,128 rows the decoder is 54.5946 % (54.59); FEB's resize makes it 54.5969 %."""
    from transformers import T5Config

    cfg = preset_architecture("t5-large")
    unresized = build_meta_model(T5Config(**{**cfg.to_dict(), "vocab_size": 32128}))
    assert f"{count_parameters(unresized, 'decoder').percent:.2f}" == "54.59"
    assert count_parameters(build_meta_model(cfg), "decoder").percent == pytest.approx(54.5969, abs=1e-4)


def test_params_cli_json(capsys) -> None:
    assert main(["params", "--arch", "t5-large", "--json", "--config", "att_q+layer_norm", "--config", "lm_head"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["arch"] == "t5-large" and data["total"] == 737_639_424
    row = data["configs"]["att_q+layer_norm"]
    assert row["trainable"] == 50_456_576 and row["percent"] == row["percent_of_base"] == 6.8403
    assert data["configs"]["lm_head"]["trainable"] == 32_100 * 1024


# PEFT baselines on T5-large: (name, trainable, % PEFT convention trainable/(base+adapter), % of base)
PEFT_T5_LARGE = [
    # LoRA r 128 on q, v of 48 self- and 24 cross-attention blocks: 144 x 128 x (1024 + 1024)
    ("lora", 144 * 128 * 2048, "4.87", "5.12"),
    # AdaLoRA r 8 on q, k, v, o (288 of 1024 x 1024) and wi, wo (96 of 1024 x 4096): A, B and the r singular values
    ("adalora", 288 * 8 * (2048 + 1) + 96 * 8 * (5120 + 1), "1.16", "1.17"),
    # Table 2's 4.48 % row: the same modules at init r 32 (the authors' setting 3)
    ("adalora_r32", 288 * 32 * (2048 + 1) + 96 * 32 * (5120 + 1), "4.48", "4.69"),
    # (IA)3: k, v output scales (144 x 1024), wi output (48 x 4096), wo input (48 x 4096)
    ("ia3", 144 * 1024 + 48 * 4096 + 48 * 4096, "0.07", "0.07"),
    ("lora_qkvo_r4", 288 * 4 * 2048, "0.32", "0.32"),
]


@pytest.mark.parametrize(("name", "trainable", "peft_percent", "base_percent"), PEFT_T5_LARGE)
def test_params_cli_counts_peft_adapters_in_both_conventions(name, trainable, peft_percent, base_percent,
                                                             capsys) -> None:
    assert main(["params", "--arch", "t5-large", "--json", "--config", name]) == 0
    row = json.loads(capsys.readouterr().out)["configs"][name]
    assert row["trainable"] == trainable and row["base_total"] == 737_639_424
    assert f"{row['percent']:.2f}" == peft_percent and f"{row['percent_of_base']:.2f}" == base_percent
    assert "PEFT" in row["percent_convention"]


def test_params_prints_no_library_deprecation_warning(capsys) -> None:
    """PEFT reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model: that FutureWarning
    is for PEFT, not for someone counting parameters; other warnings still show."""
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["params", "--arch", "t5-small", "--config", "lora", "--config", "adalora"]) == 0
        warnings.warn("another library warning", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another library warning"]


def test_params_table_labels_both_conventions(capsys) -> None:
    assert main(["params", "--arch", "t5-large", "--config", "lora", "--config", "att_q"]) == 0
    out = capsys.readouterr().out
    lora = next(line for line in out.splitlines() if line.startswith("lora"))
    assert lora.split()[-2:] == ["4.87", "5.12"]
    assert "% of base" in out and "print_trainable_parameters" in out


def test_lora_rank_option_scales_the_adapter(capsys) -> None:
    assert main(["params", "--arch", "t5-large", "--json", "--config", "lora", "--lora-r", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["configs"]["lora"]["trainable"] == 144 * 8 * 2048


def test_llama_adalora_is_the_authors_configuration(capsys) -> None:
    assert main(["params", "--arch", "llama-2-7b", "--json", "--config", "adalora"]) == 0
    row = json.loads(capsys.readouterr().out)["configs"]["adalora"]
    # init_r 8 on q, k, v, o (4096 x 4096) and gate, up, down (4096 x 11008), 32 layers
    assert row["trainable"] == 32 * (4 * 8 * (8192 + 1) + 3 * 8 * (4096 + 11008 + 1))
    assert f"{row['percent']:.2f}" == "0.30"


def test_params_cli_table_notes_tied_lm_head(capsys) -> None:
    assert main(["params", "--arch", "t5-small", "--config", "lm_head+att_q"]) == 0
    out = capsys.readouterr().out
    assert "lm_head+att_q" in out and "tied" in out


def test_params_cli_reads_local_config(tiny_t5, capsys) -> None:
    assert main(["params", "--model", str(tiny_t5 / "config.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["configs"]["full_ft"]["percent"] == 100.0
    assert set(data["configs"]) == {*all_configurations(), *named_configurations()}
    assert set(named_configurations()) == {"full_ft", "lora", "lora_qkvo_r4", "adalora", "adalora_r32", "ia3",
                                           "loreft", "dect"}
    assert data["configs"]["lora"]["trainable"] > data["configs"]["lora_qkvo_r4"]["trainable"] > 0


def test_llama_preset_counts() -> None:
    model = build_meta_model(preset_architecture("llama-2-7b"))
    assert count_parameters(model, "full_ft").total == 6_738_415_616  # Llama-2-7B's published size
    assert count_parameters(model, "att_q").trainable == 32 * 4096 * 4096


def test_the_paper_has_62_configurations_on_t5(t5_large) -> None:
    configs = all_configurations()
    assert len(configs) == len(set(configs)) == 62
    assert configs[: len(COMPONENTS)] == list(COMPONENTS)
    pairs = [c for c in configs if "+" in c]
    assert "encoder+att_q" in pairs and "decoder+layer_norm" in pairs and "encoder+decoder" not in pairs
    assert "self_attention+att_q" not in pairs  # selects exactly self_attention's tensors
    # the deduplication recomputed from T5-large's parameter names gives the same list
    assert distinct_configurations(t5_large) == configs


def test_pairs_selecting_the_same_tensors_are_left_out(t5_large) -> None:
    for left_out in ("self_attention+att_q", "self_attention+att_k", "self_attention+att_v"):
        assert set(count_parameters(t5_large, left_out).trainable_names) == \
            set(count_parameters(t5_large, "self_attention").trainable_names)
    assert set(count_parameters(t5_large, "self_attention+att_o").trainable_names) != \
        set(count_parameters(t5_large, "self_attention").trainable_names)


def test_llama_list_drops_decoder_pairs_inside_the_decoder() -> None:
    model = build_meta_model(preset_architecture("llama-2-7b"))
    configs = all_configurations("llama")
    assert distinct_configurations(model) == configs and len(configs) == 44
    assert "decoder+lm_head" in configs and "decoder+att_q" not in configs and "encoder" not in configs


@pytest.mark.parametrize("name", ["full-ft", "Full_FT", "loRA"])
def test_unknown_configuration_lists_every_valid_name(name: str) -> None:
    with pytest.raises(ValueError) as err:
        method_for(name)
    message = str(err.value)
    assert "\n" not in message
    for valid in ("full_ft", "lora", "lora_qkvo_r4", "adalora", "adalora_r32", "ia3", "loreft", "dect", *COMPONENTS):
        assert valid in message


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


def test_forward_flops_hand_worked_on_t5_large(t5_large) -> None:
    from generation.flops import forward_flops, stack_sizes, train_step_flops

    sizes = stack_sizes(t5_large)
    assert sizes == {"encoder": 302_040_576, "decoder": 402_728_448, "lm_head": 32_100 * 1024}
    forward = forward_flops(sizes, input_tokens=60, target_tokens=20, decoder_only=False)
    assert forward == 2 * (302_040_576 * 60 + (402_728_448 + 32_870_400) * 20)
    step = train_step_flops(forward, batch_size=4, trainable=50_456_576, total=737_639_424)
    assert step == pytest.approx(4 * forward * (2 + 50_456_576 / 737_639_424))


def test_full_ft_step_flops_equal_transformers_estimate_on_llama(tiny_llama) -> None:
    """Decoder-only, full fine-tuning: 3 x forward = 6 x tokens x transformers' non-embedding parameter count
    (the estimate transformers 4's floating_point_ops made)."""
    from transformers import AutoModelForCausalLM

    from generation.flops import forward_flops, stack_sizes, train_step_flops

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    n = sum(p.numel() for p in model.parameters())
    forward = forward_flops(stack_sizes(model), input_tokens=17, target_tokens=0, decoder_only=True)
    assert train_step_flops(forward, 1, n, n) == 6 * 17 * model.num_parameters(exclude_embeddings=True)
