"""LoReFT: the intervention's arithmetic by hand, where it acts, and training on tiny random-init T5 and Llama."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from generation.config import TrainConfig
from generation.generate import generate_texts, load_run, metrics_of, score_examples
from generation.methods.reft import (
    REFT_FILE,
    LoreftIntervention,
    ReftModel,
    ReftSettings,
    count_loreft,
    intervene,
    locations,
    parse_layers,
    parse_positions,
)
from generation.modeling import load_base
from generation.prompts import prompt
from generation.splits import few_shot_split
from generation.train import DataCollatorForSeq2Seq, encode, train


def _set(m: LoreftIntervention, R, W, b) -> None:
    with torch.no_grad():
        m.rotate.weight = torch.tensor(R)
        m.learned_source.weight.copy_(torch.tensor(W))
        m.learned_source.bias.copy_(torch.tensor(b))


@pytest.mark.parametrize(("R", "W", "b", "h", "expected"), [
    # rank 1: Wh+b = 6.5, Rh = 1.4, Rᵀ(6.5 − 1.4) = (3.06, 4.08, 0)
    ([[0.6, 0.8, 0.0]], [[1.0, 2.0, 3.0]], [0.5], [1.0, 1.0, 1.0], [4.06, 5.08, 1.0]),
    # rank 2: Wh+b = (1, 6), Rh = (1, 3), Rᵀ(0, 3) = (0, 0, 3)
    ([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [1.0, 0.0], [1.0, 2.0, 3.0],
     [1.0, 2.0, 6.0]),
    # W = R, b = 0: the edit is the identity
    ([[0.0, 1.0, 0.0]], [[0.0, 1.0, 0.0]], [0.0], [7.0, -2.0, 5.0], [7.0, -2.0, 5.0]),
])
def test_loreft_arithmetic_matches_hand_computation(R, W, b, h, expected) -> None:
    m = LoreftIntervention(3, len(R))
    _set(m, R, W, b)
    assert torch.allclose(m.R, torch.tensor(R), atol=1e-6)  # assigning R through the parametrization keeps it
    out = m(torch.tensor([h]))
    assert torch.allclose(out, torch.tensor([expected]), atol=1e-5)


def test_intervene_touches_only_the_given_positions() -> None:
    h = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    plus_one = torch.nn.Module()
    plus_one.forward = lambda x: x + 1  # type: ignore[method-assign]
    out = intervene(h, torch.tensor([[0, 4], [1, -1]]), plus_one)
    changed = (out != h).any(-1)
    assert changed.tolist() == [[True, False, False, False, True], [False, True, False, False, False]]
    assert torch.equal(out[changed], h[changed] + 1)


@pytest.mark.parametrize(("mask", "first", "last", "expected"), [
    ([1, 1, 1, 1, 0], 1, 1, [0, 3]),  # right padding
    ([0, 1, 1, 1, 1], 1, 1, [1, 4]),  # left padding (generation of decoder-only models)
    ([1, 1, 1, 1, 1, 1], 2, 2, [0, 1, 4, 5]),
    ([1, 1, 1, 0], 2, 2, [0, -1, 2, -1]),  # each side capped at half the prompt, as pyreft
    ([1, 0, 0], 1, 1, [-1, -1]),
    ([1, 1, 1, 1], 3, 0, [0, 1, -1]),
    ([1, 1, 1, 1], 0, 1, [3]),
])
def test_locations(mask, first, last, expected) -> None:
    assert locations(torch.tensor([mask]), first, last).tolist() == [expected]


@pytest.mark.parametrize(("spec", "expected"), [("f1+l1", (1, 1)), ("f7+l7", (7, 7)), ("f3", (3, 0)), ("l2", (0, 2))])
def test_parse_positions(spec, expected) -> None:
    assert parse_positions(spec) == expected


@pytest.mark.parametrize("spec", ["", "f", "1+1", "f1+", "+l1", "l1+f1", "f1l1", "f0+l0", "first"])
def test_parse_positions_rejects(spec) -> None:
    with pytest.raises(ValueError, match="reft positions"):
        parse_positions(spec)


@pytest.mark.parametrize(("spec", "n", "expected"), [("all", 3, [0, 1, 2]), ("2,0", 3, [0, 2]), ("1", None, [1])])
def test_parse_layers(spec, n, expected) -> None:
    assert parse_layers(spec, n) == expected


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rank": 0}, "rank must be >= 1"),
    ({"positions": "x"}, "reft positions"),
    ({"layers": "a,b"}, "reft layers"),
    ({"layers": "-1"}, "start at 0"),
])
def test_settings_reject_impossible_values(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ReftSettings(**kwargs)


def test_train_config_validates_reft_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reft positions"):
        TrainConfig(model="m", dataset="esnli", data_dir=".", seed=0, configuration="loreft", out=str(tmp_path),
                    reft_positions="middle")
    cfg = TrainConfig(model="m", dataset="esnli", data_dir=".", seed=0, configuration="loreft", out=str(tmp_path))
    assert cfg.kind == "reft"


def test_count_matches_the_modules(tiny_model: Path) -> None:
    base, _ = load_base(str(tiny_model))
    for s in (ReftSettings(), ReftSettings(rank=2, layers="1", positions="f3"), ReftSettings(share_weights=True)):
        model = ReftModel(base, s)
        assert model.n_parameters() == count_loreft(base.config, s)
        per = 2 * s.rank * 32 + s.rank  # hidden size 32
        assert model.n_parameters() == len(model.layers) * len(s.groups) * per
        for h in model._handles:
            h.remove()


def _accuracy(model, tokenizer, examples) -> float:
    outputs = generate_texts(model, tokenizer, [prompt(e) for e in examples], max_new_tokens=24)
    return metrics_of(score_examples(examples, outputs))["accuracy"]


def _cfg(model: Path, data: Path, out: Path, **over) -> TrainConfig:
    base = dict(model=str(model), dataset="esnli", data_dir=str(data), seed=1, configuration="loreft", out=str(out),
                n_train=3, n_val=3, max_steps=300, learning_rate=5e-2, batch_size=3, logging_steps=50,
                reft_rank=8, reft_positions="f7+l7", precision="fp32")  # the ReFT commonsense recipe's positions
    base.update(over)
    return TrainConfig(**base)


@pytest.fixture
def short_esnli(tmp_path: Path) -> Path:
    """Three e-SNLI rows (real CSV format) with one-word explanations, repeated as the dev file."""
    d = tmp_path / "esnli_short"
    d.mkdir()
    rows = [("t01", "entailment", "A man plays a guitar on stage.", "A man makes music.", "music"),
            ("t02", "neutral", "Two dogs run in the park.", "Animals are outside.", "dogs"),
            ("t03", "contradiction", "A woman reads a book.", "A man sleeps.", "woman")]
    for name in ("esnli_train_1.csv", "esnli_dev.csv"):
        with (d / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pairID", "gold_label", "Sentence1", "Sentence2", "Explanation_1", "WorkerId"])
            w.writerows([*r, "W1"] for r in rows)
    return d


@pytest.fixture(params=["t5", "llama"])
def reft_model(request, tiny_t5: Path, tiny_llama: Path, tmp_path: Path) -> Path:
    """The tiny T5, or the tiny Llama re-initialised with std 0.2: at Llama's default 0.02 a random frozen
    model's logits are nearly uniform (loss stays at ln |V|), which no frozen-model method can move."""
    if request.param == "t5":
        return tiny_t5
    from transformers import AutoConfig, LlamaForCausalLM

    out = Path(shutil.copytree(tiny_llama, tmp_path / "llama_std02"))
    cfg = AutoConfig.from_pretrained(out)
    cfg.initializer_range = 0.2
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.mark.slow
def test_loreft_memorises_a_fixture_and_leaves_the_model_unchanged(reft_model: Path, short_esnli: Path,
                                                                   tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = _cfg(reft_model, short_esnli, run)
    base, tok = load_base(str(reft_model))
    before = {n: p.detach().numpy().tobytes() for n, p in base.named_parameters()}
    examples = few_shot_split("esnli", short_esnli, 1, 3, 3).train
    acc_before = _accuracy(base, tok, examples)

    result = train(cfg, progress=False)

    model = result.model
    assert isinstance(model, ReftModel)
    after = dict(model.base.named_parameters())
    assert set(after) == set(before)
    assert all(after[n].detach().numpy().tobytes() == raw for n, raw in before.items()), "base tensors changed"
    assert not any(p.requires_grad for p in model.base.parameters())
    for m in model.interventions.values():  # R stays row-orthonormal through training
        assert torch.allclose(m.R @ m.R.T, torch.eye(cfg.reft_rank), atol=1e-5)
    assert result.losses[-1] < result.losses[0]
    acc_after = _accuracy(model, result.tokenizer, examples)
    assert acc_after > acc_before

    # the run stores only R, W, b and loads back to the same generations
    saved = load_file(run / REFT_FILE)
    assert {k.rsplit(".", 1)[1] for k in saved} == {"R", "W", "b"}
    assert sum(t.numel() for t in saved.values()) == result.counts.trainable == model.n_parameters()
    assert not (run / "model").exists() and not (run / "adapter").exists()
    assert not (run / "trainable.safetensors").exists()
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "reft" and info["trainable"] == model.n_parameters()
    fresh, tokenizer, _ = load_run(run)
    prompts = [prompt(e) for e in examples]
    assert generate_texts(fresh, tokenizer, prompts, max_new_tokens=24) == \
        generate_texts(model, result.tokenizer, prompts, max_new_tokens=24)


def test_only_r_w_b_receive_gradients(tiny_model: Path, esnli_dir: Path) -> None:
    base, tok = load_base(str(tiny_model))
    model = ReftModel(base, ReftSettings(rank=2))
    decoder_only = not base.config.is_encoder_decoder
    examples = few_shot_split("esnli", esnli_dir, 1, 6, 6).train
    batch = DataCollatorForSeq2Seq(tok, label_pad_token_id=-100)([encode(e, tok, decoder_only) for e in examples])
    model(**batch).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in model.named_parameters() if n.startswith("interventions.")}
    # In a causal model the last layer's edit of the first prompt token reaches no target token: no signal there.
    silent = {f"layer{model.layers[-1]}_f"} if decoder_only else set()
    for n, p in model.named_parameters():
        if n in with_grad:
            assert (p.grad.abs().sum() > 0) == (n.split(".")[1] not in silent), n
    assert {n.split(".", 2)[2] for n in with_grad} == {
        "rotate.parametrizations.weight.original", "learned_source.weight", "learned_source.bias"}


def test_generation_intervenes_at_prompt_positions_only(tiny_llama: Path) -> None:
    """The hook edits the prompt pass (prefill) once; the one-token decoding steps after it pass untouched."""
    base, tok = load_base(str(tiny_llama))
    model = ReftModel(base, ReftSettings(rank=2, layers="1", positions="l1"))
    seen: list[int] = []
    orig = model._hook(1)

    def spy(module, args, output):
        out = orig(module, args, output)
        hidden = output[0] if isinstance(output, tuple) else output
        if out is not None:
            seen.append(hidden.shape[1])
        return out

    model._handles[0].remove()
    model._handles[0] = base.model.layers[1].register_forward_hook(spy)
    enc = tok(["explain nli hypothesis: A man plays. premise: A man makes music."], return_tensors="pt")
    model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert seen == [enc["input_ids"].shape[1]]  # edited once, on the prompt pass; never on a generated token


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model: Path, esnli_dir: Path) -> None:
    base, tok = load_base(str(tiny_model))
    decoder_only = not base.config.is_encoder_decoder
    examples = few_shot_split("esnli", esnli_dir, 1, 6, 6).train
    batch = DataCollatorForSeq2Seq(tok, label_pad_token_id=-100)([encode(e, tok, decoder_only) for e in examples])
    grads = []
    for checkpointing in (False, True):
        model = ReftModel(load_base(str(tiny_model))[0], ReftSettings(rank=2), seed=3)
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])
