"""DecT: calibration and scores by hand, label scores against the model's own loss, and a label-only run
on a synthetic separable task with tiny random-init T5 and Llama."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch

from generation.cli import main
from generation.config import TrainConfig
from generation.data import Example, load_split
from generation.generate import evaluate_run
from generation.methods.dect import (
    DectHead,
    DectSettings,
    calibrate,
    content_free,
    count_dect,
    fit,
    gold_index,
    label_words,
    query,
)
from generation.modeling import load_base
from generation.train import train


def test_calibration_divides_by_the_reference_over_its_mean() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.2]])
    reference = torch.tensor([[0.6, 0.2, 0.2]])  # mean 1/3 -> divisor (1.8, 0.6, 0.6)
    expected = torch.tensor([[0.5 / 1.8, 0.3 / 0.6, 0.2 / 0.6]])
    assert torch.allclose(calibrate(probs, reference), expected)
    assert torch.allclose(calibrate(probs, torch.full((1, 3), 1 / 3)), probs)  # a flat reference changes nothing


def test_score_is_radius_minus_distance_plus_lambda_prior() -> None:
    net = DectHead(2, 2, DectSettings(lam=0.5, proto_dim=2))
    with torch.no_grad():
        net.head.weight.copy_(torch.eye(2))
        net.proto.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        net.radius.copy_(torch.tensor([0.25, 1.0]))
    h = torch.tensor([[3.0, 4.0]])  # normalised: (0.6, 0.8)
    prior = torch.tensor([[0.2, 0.6]])
    # class 0: ‖(−0.4, 0.8)‖ = √0.8; class 1: ‖(0.6, −1.2)‖ = √1.8
    expected = torch.tensor([[0.25 - 0.8 ** 0.5 + 0.1, 1.0 - 1.8 ** 0.5 + 0.3]])
    assert torch.allclose(net(h, prior), expected, atol=1e-6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lam": -1}, "lambda"), ({"proto_dim": 0}, "proto_dim"), ({"epochs": 0}, "epochs"), ({"lr": 0}, "lr"),
    ({"calibration": "mean"}, "calibration"),
])
def test_settings_reject_impossible_values(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        DectSettings(**kwargs)


def test_defaults_are_thunlp_dect_run_script_defaults() -> None:
    s = DectSettings()
    assert (s.lam, s.proto_dim, s.epochs, s.lr, s.calibration, s.train_prototypes) == (1.0, 128, 30, 0.01, "empty", False)
    cfg = TrainConfig(model="m", dataset="esnli", data_dir=".", seed=0, configuration="dect", out="o")
    assert cfg.kind == "dect" and (cfg.dect_lambda, cfg.dect_proto_dim) == (1.0, 128)
    with pytest.raises(ValueError, match="dect proto_dim"):
        TrainConfig(model="m", dataset="esnli", data_dir=".", seed=0, configuration="dect", out="o", dect_proto_dim=0)


def test_ecqa_labels_are_the_questions_choices(fixtures_dir: Path) -> None:
    ex = load_split("ecqa", fixtures_dir / "ecqa", "train")[0]
    assert label_words(ex) == ex.inputs["choices"] and len(label_words(ex)) == 5
    assert label_words(ex)[gold_index(ex)] == ex.label
    cf = content_free(ex)
    assert cf.inputs["question"] == "" and cf.inputs["choices"] == ex.inputs["choices"]
    assert label_words(load_split("esnli", fixtures_dir / "esnli", "train")[0]) == ["entailment", "neutral",
                                                                                   "contradiction"]


def test_count() -> None:
    from transformers import T5Config

    cfg = T5Config(d_model=32)
    assert count_dect(cfg, DectSettings(proto_dim=8), 3) == 32 * 8 + 3
    assert count_dect(cfg, DectSettings(proto_dim=8, train_prototypes=True), 3) == 32 * 8 + 3 + 3 * 8


def test_label_scores_equal_the_models_own_mean_token_loss(tiny_model: Path, fixtures_dir: Path) -> None:
    """Batched, padded scoring against one unpadded forward per (example, label) with the model's loss."""
    model, tok = load_base(str(tiny_model))
    model.eval()
    examples = load_split("sbic", fixtures_dir / "sbic", "train")[:3]  # "offensive" / "not offensive": 1 and 2 tokens
    hidden, scores = query(model, tok, examples, batch_size=2)
    _, logits = query(model, tok, examples, batch_size=2, score="logit")
    decoder_only = not model.config.is_encoder_decoder
    from generation.prompts import prompt

    for i, ex in enumerate(examples):
        src = tok(prompt(ex))["input_ids"]
        for k, word in enumerate(label_words(ex)):
            ids = tok((" " if decoder_only else "") + word, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                if decoder_only:
                    out = model(input_ids=torch.tensor([src + ids]), labels=torch.tensor([[-100] * len(src) + ids]))
                else:
                    out = model(input_ids=torch.tensor([src]), labels=torch.tensor([ids]))
            assert torch.allclose(scores[i, k], -out.loss, atol=1e-5)
            # score="logit": the raw logits of the label's tokens where the model predicts them, averaged
            first = len(src) - 1 if decoder_only else 0
            raw = out.logits[0, torch.arange(first, first + len(ids)), torch.tensor(ids)].mean()
            assert torch.allclose(logits[i, k], raw, atol=1e-5)
    assert hidden.shape == (3, 32)


def test_fit_learns_separable_hidden_states() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 3
    gold = torch.arange(30) % 3
    hidden = centres[gold] + 0.3 * torch.randn(30, 16, generator=g)
    prior = torch.full((30, 3), 1.0)  # an uninformative prior
    net, losses = fit(hidden, prior, gold, DectSettings(proto_dim=8, epochs=100), seed=0)
    assert losses[-1] < losses[0]
    assert (net(hidden, prior).argmax(-1) == gold).float().mean() == 1.0


# --- a synthetic separable task: the label is the hypothesis's keyword --------------------------------

_KEYWORDS = {"entailment": "guitar", "neutral": "dogs", "contradiction": "soup"}
_FILLER = ["A man plays", "The woman reads", "Two kids run", "A girl rides", "The chef cooks", "A child swim",
           "Kids sleep", "A person makes", "The brothers swim", "A woman cooks"]


def _write(path: Path, n_per_label: int, rng: random.Random, prefix: str) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pairID", "gold_label", "Sentence1", "Sentence2", "Explanation_1", "WorkerId"])
        k = 0
        for _ in range(n_per_label):
            for label, word in _KEYWORDS.items():
                k += 1
                w.writerow([f"{prefix}{k:03d}", label, f"{rng.choice(_FILLER)} in the park",
                            f"{rng.choice(_FILLER)} {word}", f"the {word}", "W1"])


@pytest.fixture
def keyword_esnli(tmp_path: Path) -> Path:
    d = tmp_path / "esnli_keyword"
    d.mkdir()
    rng = random.Random(0)
    _write(d / "esnli_train_1.csv", 8, rng, "t")
    _write(d / "esnli_dev.csv", 10, rng, "d")
    return d


def _dect_cfg(model: Path, data: Path, out: Path, **over) -> TrainConfig:
    base = dict(model=str(model), dataset="esnli", data_dir=str(data), seed=0, configuration="dect", out=str(out),
                n_train=24, n_val=30, dect_proto_dim=16, dect_epochs=100)
    base.update(over)
    return TrainConfig(**base)


def test_dect_beats_the_zero_shot_prior_and_leaves_the_model_unchanged(tiny_model: Path, keyword_esnli: Path,
                                                                       tmp_path: Path) -> None:
    run = tmp_path / "run"
    base, _ = load_base(str(tiny_model))
    before = {n: p.detach().numpy().tobytes() for n, p in base.named_parameters()}

    result = train(_dect_cfg(tiny_model, keyword_esnli, run), progress=False)

    after = dict(result.model.named_parameters())
    assert all(after[n].detach().numpy().tobytes() == raw for n, raw in before.items()), "model tensors changed"
    assert result.losses[-1] < result.losses[0]
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "dect" and info["trainable"] == 32 * 16 + 3

    out = tmp_path / "nles.jsonl"
    metrics = evaluate_run(run, out, progress=False)
    assert metrics["n"] == 30
    assert metrics["accuracy"] > metrics["prior_accuracy"]
    assert metrics["accuracy"] >= 0.5  # chance is 1/3 (measured: T5 0.70, Llama 0.87; the prior 0.30 / 0.33)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["nle"] is None and saved["accuracy"] == metrics["accuracy"] and saved["config"] == "dect"
    assert not out.exists()  # label only: never an NLE file for the app
    lines = (run / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 30 and json.loads(lines[0])["output"] in _KEYWORDS


def test_cli_generate_refuses_nle_lines_with_one_line(tiny_t5: Path, keyword_esnli: Path, tmp_path: Path,
                                                      capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--model", str(tiny_t5), "--dataset", "esnli", "--data-dir", str(keyword_esnli),
                 "--seed", "0", "--config", "dect", "--out", str(run), "--n-train", "24", "--n-val", "30",
                 "--dect-proto-dim", "16", "--dect-lambda", "0.5", "--quiet"]) == 0
    assert json.loads((run / "run.json").read_text())["train_config"]["dect_lambda"] == 0.5
    capsys.readouterr()
    out = tmp_path / "nles.jsonl"
    assert main(["generate", "--run", str(run), "--out", str(out), "--quiet"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nle-gen")]
    assert err == [f"nle-gen: dect predicts labels only (no explanation), so it writes no NLE lines for the "
                   f"annotation app; nothing written to {out}"]
    assert not out.exists()


def test_content_free_example_keeps_ids_apart() -> None:
    ex = Example("x1", "esnli", {"premise": "p", "hypothesis": "h"}, "neutral", ["e"])
    cf = content_free(ex)
    assert cf.id != ex.id and cf.inputs == {"premise": "", "hypothesis": ""}


def test_the_prior_is_dects_calibrated_raw_logits(tiny_t5: Path, fixtures_dir: Path) -> None:
    """thunlp/DecT src/dect_verbalizer.py: the label words' logits (no softmax) divided by the content-free
    input's logits over their mean; prior="probs" keeps this project's earlier softmax probabilities."""
    from generation.methods.dect import label_probs, priors

    model, tok = load_base(str(tiny_t5))
    examples = load_split("esnli", fixtures_dir / "esnli", "train")[:5]
    _, prior, reference = priors(model, tok, examples, DectSettings(), None, 4, 512, False)
    _, logits = query(model, tok, examples, score="logit")
    _, cf = query(model, tok, [content_free(examples[0])], score="logit")
    assert torch.allclose(reference, cf)
    assert torch.allclose(prior, logits / (cf / cf.mean()), atol=1e-6)
    _, probs_prior, probs_ref = priors(model, tok, examples, DectSettings(prior="probs"), None, 4, 512, False)
    _, logp = query(model, tok, examples)
    _, cf_logp = query(model, tok, [content_free(examples[0])])
    assert torch.allclose(probs_ref, label_probs(cf_logp))
    assert torch.allclose(probs_prior, calibrate(label_probs(logp), label_probs(cf_logp)), atol=1e-6)
    with pytest.raises(ValueError, match="dect prior must be one of logits, probs"):
        DectSettings(prior="softmax")


def test_train_mean_calibration_evens_out_the_training_prior(tiny_t5: Path, fixtures_dir: Path) -> None:
    from generation.methods.dect import priors

    model, tok = load_base(str(tiny_t5))
    examples = load_split("esnli", fixtures_dir / "esnli", "train")
    _, prior, reference = priors(model, tok, examples, DectSettings(calibration="train_mean"), None, 4, 512, False)
    col = prior.mean(0)  # p / (m / mean(m)) averages to mean(m) in every column
    assert torch.allclose(col, torch.full_like(col, float(reference.mean())), atol=1e-6)
    _, raw, none = priors(model, tok, examples, DectSettings(calibration="none", prior="probs"), None, 4, 512, False)
    assert none is None and torch.allclose(raw.sum(-1), torch.ones(len(examples)), atol=1e-6)


def test_ecqa_run_predicts_one_of_each_questions_choices(tiny_model: Path, fixtures_dir: Path,
                                                         tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig(model=str(tiny_model), dataset="ecqa", data_dir=str(fixtures_dir / "ecqa"), seed=0,
                      configuration="dect", out=str(run), n_train=4, n_val=2, dect_epochs=5), progress=False)
    metrics = evaluate_run(run, tmp_path / "nles.jsonl", progress=False)
    assert metrics["n"] == 2 and metrics["nle"] is None
    pool = {e.id: e for e in load_split("ecqa", fixtures_dir / "ecqa", "validation")}
    for line in (run / "generations.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert row["output"] in pool[row["sample_id"]].inputs["choices"]
        assert row["correct"] == (row["output"] == pool[row["sample_id"]].label)
