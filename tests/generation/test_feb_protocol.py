"""The paper's protocol end to end on tiny models: label-only correct predictions reach the app with an empty
explanation shown as "(empty)", `train --split-files` reuses FEB split files, and the SparseFit authors' Llama
format (a "[PAD]" token, prompt positions labelled with it, no EOS) trains, saves and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotate.core.formats import read_nle_file
from generation.cli import main
from generation.config import TrainConfig
from generation.data import Example
from generation.generate import Scored, load_run, nle_record, select_balanced
from generation.modeling import AUTHORS_PAD, load_base
from generation.prompts import is_correct, parse, prompt, target
from generation.splits import feb_split, few_shot_split, write_split_files
from generation.train import encode, train


def _scored(k: int, label: str, output: str) -> Scored:
    ex = Example(f"s{k}", "comve", {"sent0": "a", "sent1": "b"}, label, ["because"])
    parsed = parse(output)
    return Scored(ex, prompt(ex), output, parsed, is_correct(parsed, label, "comve"))


def test_label_only_prediction_reaches_the_app_as_empty(tmp_path: Path) -> None:
    rows = [_scored(0, "choice1", "choice1"), _scored(1, "choice2", "choice2 because it is odd"),
            _scored(2, "choice1", "choice2")]
    chosen = select_balanced(rows, "comve", first=2)
    assert [s.example.id for s in chosen] == ["s0", "s1"]
    out = tmp_path / "nles.jsonl"
    out.write_text("".join(json.dumps(nle_record(s, "layer_norm", "m", 7004)) + "\n" for s in chosen))
    records = read_nle_file(out)  # the app's validator accepts an empty explanation
    assert [(r.predicted_label, r.explanation) for r in records] == [("choice1", ""), ("choice2", "it is odd")]


def _show_item_script() -> None:
    from annotate.app.render import show_item

    show_item({"dataset": "comve", "input": {"sent0": "a", "sent1": "b"}, "predicted_label": "choice1",
               "explanation": ""})


def test_app_shows_an_empty_explanation_as_empty() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_show_item_script).run(timeout=30)
    assert not at.exception
    assert "(empty)" in [c.value for c in at.caption]


def test_train_reuses_feb_split_files(tiny_t5: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    split = feb_split("comve", fixtures_dir / "comve", 21, n_train=2, n_val=2)
    write_split_files(split, tmp_path / "feb_data" / "sensemaking")
    run = tmp_path / "run"
    args = ["train", "--model", str(tiny_t5), "--dataset", "comve", "--data-dir", str(fixtures_dir / "comve"),
            "--seed", "21", "--config", "layer_norm", "--out", str(run), "--split-files", str(tmp_path / "feb_data"),
            "--max-steps", "1", "--quiet"]
    assert main(args) == 0
    saved = json.loads((run / "split.json").read_text())
    assert saved["train"] == [e.id for e in split.train]
    assert saved["validation"] == [e.id for e in split.validation]
    assert len(saved["train_explanations"]) == 2


def test_split_files_and_id_lists_are_alternatives() -> None:
    with pytest.raises(ValueError, match="split_files and train_ids/val_ids are alternatives"):
        TrainConfig(model="m", dataset="comve", data_dir="d", seed=0, configuration="layer_norm", out="o",
                    split_files="x", train_ids=["1"])
    with pytest.raises(ValueError, match="llama_format must be"):
        TrainConfig(model="m", dataset="comve", data_dir="d", seed=0, configuration="layer_norm", out="o",
                    llama_format="chat")


def test_authors_llama_encoding(tiny_llama: Path, esnli_dir: Path) -> None:
    model, tok = load_base(str(tiny_llama))
    from generation.modeling import add_authors_pad_token

    n_before = model.get_input_embeddings().weight.shape[0]
    add_authors_pad_token(model, tok)
    assert tok.pad_token == AUTHORS_PAD and model.get_input_embeddings().weight.shape[0] == n_before + 1
    ex = few_shot_split("esnli", esnli_dir, 1, 6, 6).train[0]
    feats = encode(ex, tok, decoder_only=True, llama_format="authors")
    src = tok(prompt(ex))["input_ids"]
    tgt = tok(target(ex))["input_ids"]
    assert feats["input_ids"] == src + tgt
    assert feats["labels"] == [tok.pad_token_id] * len(src) + tgt  # prompt positions trained to predict [PAD]
    assert tgt[0] == tok.bos_token_id and tgt[-1] != tok.eos_token_id  # BOS before the answer, no EOS


def test_authors_llama_format_trains_and_reloads(tiny_llama: Path, esnli_dir: Path, tmp_path: Path) -> None:
    import torch

    cfg = TrainConfig(model=str(tiny_llama), dataset="esnli", data_dir=str(esnli_dir), seed=0,
                      configuration="att_q+layer_norm", out=str(tmp_path / "run"), n_train=6, n_val=6, max_steps=2,
                      llama_format="authors", logging_steps=1)
    result = train(cfg, progress=False)
    model, tok, info = load_run(tmp_path / "run")
    assert info["train_config"]["llama_format"] == "authors" and tok.pad_token == AUTHORS_PAD
    trained = dict(result.model.named_parameters())
    for name, p in model.named_parameters():
        assert torch.equal(p, trained[name]), name  # resized embeddings rebuilt identically
    # the authors' batch 1 x 8 accumulation: an optimizer step sees 8 examples (6 here: the split's end)
    assert (info["train_config"]["batch_size"], info["train_config"]["gradient_accumulation_steps"]) == (1, 8)
    assert info["steps"] == 2
    assert info["train_flops_per_step"] > 7 * info["forward_flops_per_example"]
    from generation.generate import evaluate_run

    metrics = evaluate_run(tmp_path / "run", tmp_path / "nles.jsonl", progress=False)
    assert metrics["generation"]["max_length"] == 300  # the authors' generate(max_length=300)


def test_authors_format_takes_the_authors_batch_accumulation_and_steps() -> None:
    """SanniM3/predicitons_with_explanations scripts/exp.py: --per_device_train_batch_size 1
    --gradient_accumulation_steps 8, max_steps 300; given values still win."""
    from generation.cli import build_parser, train_config_from_args

    base = dict(model="m", dataset="esnli", data_dir="d", seed=0, configuration="att_q", out="o")
    cfg = TrainConfig(**base, llama_format="authors")
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.max_steps) == (1, 8, 300)
    cfg = TrainConfig(**base, llama_format="authors", batch_size=2, max_steps=-1)
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.max_steps) == (2, 8, -1)
    cfg = TrainConfig(**base)
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.max_steps, cfg.epochs) == (4, 1, -1, 25)
    args = build_parser().parse_args(["train", "--model", "m", "--dataset", "esnli", "--data-dir", "d", "--seed", "0",
                                      "--config", "att_q", "--out", "o", "--llama-format", "authors",
                                      "--gradient-accumulation-steps", "4"])
    cfg = train_config_from_args(args)
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.max_steps) == (1, 4, 300)


def test_authors_format_on_an_encoder_decoder_is_one_line(tiny_t5: Path, esnli_dir: Path, tmp_path: Path,
                                                          capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(esnli_dir), "--seed", "0",
                 "--config", "att_q", "--out", str(out), "--n-train", "6", "--n-val", "6", "--llama-format",
                 "authors", "--max-steps", "1", "--quiet"])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == (
        f"nle-gen: error: --llama-format authors is the SparseFit authors' Llama-2 set-up; {tiny_t5} is an "
        "encoder-decoder model (use --llama-format project)\n")
