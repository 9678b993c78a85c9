"""DecT (Cui et al., ACL 2023, "Decoder Tuning: Efficient Language Understanding as Decoding"): a label-only baseline.

The model is a frozen black box queried once per input. Its scores over the label words give a zero-shot prior,
calibrated with a content-free input; a prototype network on the hidden state at the answer position adds
posterior knowledge from the few-shot split. Follows thunlp/DecT (re-implemented, no code copied):
- src/dect_verbalizer.py: `head` = Linear(hidden, proto_dim, bias=False); prototypes xavier-uniform and *fixed*
  (requires_grad=False; only the projection and the radii are optimised); radii initialised to each class's mean
  distance to its centre; score = −(‖normalize(head(h)) − p_k‖ − λ·prior_k − r_k); loss = cross-entropy over
  these scores; full-batch Adam steps, one per epoch; the prior is the label words' raw logits (`project`; no
  softmax: `normalize` is commented out in `process_logits`), calibrated by dividing them by the content-free
  input's logits over their mean (`train_proto`: `_calibrate_logits = logits / torch.mean(logits)`; `calibrate`).
- src/run_dect.py: the calibration input is the template with empty text; defaults proto_dim 128, λ
  (model_logits_weight) 1, lr 0.01, 30 epochs.
Adaptations (docs/baselines.md): a label's logit is the mean raw logit of all its tokens, teacher forced (DecT's
label words are single tokens; ours such as "not offensive" and ECQA's answers are not); ECQA's classes are the
five answer slots, its label words each question's own choices. prior="probs" is this project's earlier
variant: a softmax over the labels of each label's mean token log-probability.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from generation.components import FULL_FT, ParamCounts, count_parameters, hidden_size
from generation.data import LABELS, Example
from generation.methods.base import Method
from generation.modeling import RunResult, load_base, prepare_run, resolve_precision, sbic_record, set_tf32
from generation.prompts import normalize_label, prompt
from generation.rundir import (
    RUN_FILE,
    TOKENIZER_DIR,
    generations_file,
    metrics_file,
    provenance,
    read_run,
    write_json,
)
from generation.splits import run_examples

DECT_FILE = "dect.safetensors"  # the prototype network

Calibration = Literal["empty", "train_mean", "none"]
CALIBRATIONS = ("empty", "train_mean", "none")
Prior = Literal["logits", "probs"]
PRIORS = ("logits", "probs")
NLE_NOTE = "dect predicts labels only (no explanation), so it writes no NLE lines for the annotation app"


@dataclass
class DectSettings:
    """DecT hyperparameters; defaults are thunlp/DecT's src/run_dect.py."""

    lam: float = 1.0  # λ, weight of the calibrated prior (run_dect.py --model_logits_weight)
    proto_dim: int = 128  # run_dect.py --proto_dim
    epochs: int = 30  # run_dect.py --max_epochs (full-batch steps)
    lr: float = 0.01  # run_dect.py --lr
    calibration: Calibration = "empty"
    train_prototypes: bool = False  # thunlp/DecT keeps the random prototypes fixed
    prior: Prior = "logits"  # thunlp/DecT: raw label-word logits; "probs": softmax over the labels

    def __post_init__(self) -> None:
        if self.lam < 0:
            raise ValueError("dect lambda must be >= 0")
        if self.proto_dim < 1:
            raise ValueError("dect proto_dim must be >= 1")
        if self.epochs < 1:
            raise ValueError("dect epochs must be >= 1")
        if not self.lr > 0:
            raise ValueError("dect lr must be > 0")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"dect calibration must be one of {', '.join(CALIBRATIONS)}")
        if self.prior not in PRIORS:
            raise ValueError(f"dect prior must be one of {', '.join(PRIORS)}")


def settings_of(cfg) -> DectSettings:
    """The DecT settings held by a TrainConfig (or its dict in run.json)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k, d: getattr(cfg, k, d)
    return DectSettings(get("dect_lambda", 1.0), get("dect_proto_dim", 128), get("dect_epochs", 30),
                        get("dect_lr", 0.01), get("dect_calibration", "empty"), get("dect_train_prototypes", False),
                        get("dect_prior", "logits"))


# --- labels ---------------------------------------------------------------------------------------


def label_words(example: Example) -> list[str]:
    """The candidate labels of an example: the dataset's classes, or ECQA's five choices of this question."""
    fixed = LABELS.get(example.dataset)
    return list(fixed) if fixed else list(example.inputs["choices"])


def gold_index(example: Example) -> int:
    words = [normalize_label(w) for w in label_words(example)]
    gold = normalize_label(example.label)
    if gold not in words:
        raise ValueError(f"{example.dataset} example {example.id}: gold label {example.label!r} is not a candidate")
    return words.index(gold)


def content_free(example: Example) -> Example:
    """The example with its text emptied (DecT's calibration input); ECQA keeps its choices, the label words."""
    inputs = {k: (v if isinstance(v, list) else "") for k, v in example.inputs.items()}
    return Example(f"{example.id}#empty", example.dataset, inputs, example.label, [])


# --- one query per input: hidden state at the answer position and label scores ---------------------


@torch.no_grad()
def query(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, examples: list[Example], batch_size: int = 8,
          max_input_tokens: int = 512, progress: bool = False,
          score: Literal["logprob", "logit"] = "logprob") -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden (N, d), scores (N, C)): T5: the decoder's first-step last hidden state; Llama: the last prompt
    token's. scores[i, k] = mean log-probability (or raw logit) of label k's tokens after the prompt (teacher
    forced)."""
    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    device = next(model.parameters()).device
    hiddens, scores = [], []
    for start in tqdm(range(0, len(examples), batch_size), disable=not progress, desc="dect query"):
        chunk = examples[start:start + batch_size]
        rows, label_ids, prompt_lens = [], [], []
        for ex in chunk:
            src = tokenizer(prompt(ex), truncation=True, max_length=max_input_tokens)["input_ids"]
            for word in label_words(ex):
                ids = tokenizer((" " if decoder_only else "") + word, add_special_tokens=False)["input_ids"]
                rows.append(src + ids if decoder_only else src)
                label_ids.append(ids)
                prompt_lens.append(len(src))
        width = max(len(r) for r in rows)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        if decoder_only:
            out = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
            logp = out.logits.float().log_softmax(-1) if score == "logprob" else out.logits.float()
            last = out.hidden_states[-1]
            row_scores, row_hidden = [], []
            for i, (ids, n) in enumerate(zip(label_ids, prompt_lens, strict=True)):
                pos = torch.arange(n - 1, n - 1 + len(ids), device=device)
                row_scores.append(logp[i, pos, torch.tensor(ids, device=device)].mean())
                row_hidden.append(last[i, n - 1])
        else:
            lw = max(len(ids) for ids in label_ids)
            labels = torch.tensor([ids + [-100] * (lw - len(ids)) for ids in label_ids], device=device)
            out = model(input_ids=input_ids, attention_mask=mask, labels=labels, output_hidden_states=True)
            logp = out.logits.float().log_softmax(-1) if score == "logprob" else out.logits.float()
            valid = labels != -100
            tok = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
            row_scores = list(tok.sum(-1) / valid.sum(-1))
            row_hidden = list(out.decoder_hidden_states[-1][:, 0])
        k = 0
        for ex in chunk:
            c = len(label_words(ex))
            scores.append(torch.stack(row_scores[k:k + c]).cpu())
            hiddens.append(row_hidden[k].float().cpu())  # the same for every label: taken before the label
            k += c
    if len({s.numel() for s in scores}) > 1:
        raise ValueError("dect: examples have different numbers of candidate labels")
    return torch.stack(hiddens), torch.stack(scores)


def label_probs(scores: torch.Tensor) -> torch.Tensor:
    """Label scores as probabilities over the candidate labels."""
    return scores.softmax(-1)


def calibrate(scores: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """DecT's calibration: divide by the reference scores over their mean (dect_verbalizer.py train_proto,
    calibrate); the scores are the prior's (raw logits, or probabilities with prior="probs")."""
    ref = reference / reference.mean(-1, keepdim=True)
    return scores / (ref + 1e-15)


# --- the prototype network ------------------------------------------------------------------------


class DectHead(torch.nn.Module):
    """Projection, one prototype and one radius per class; score = −‖ĥ − p_k‖ + r_k + λ·prior_k."""

    def __init__(self, hidden: int, n_classes: int, settings: DectSettings) -> None:
        super().__init__()
        self.lam = settings.lam
        self.head = torch.nn.Linear(hidden, settings.proto_dim, bias=False)
        proto = torch.empty(n_classes, settings.proto_dim)
        torch.nn.init.xavier_uniform_(proto)
        self.proto = torch.nn.Parameter(proto, requires_grad=settings.train_prototypes)
        self.radius = torch.nn.Parameter(torch.ones(n_classes))

    def forward(self, hidden: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.head(hidden), dim=-1).unsqueeze(-2)
        return -(torch.norm(x - self.proto, dim=-1) - self.lam * prior - self.radius)

    def n_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def fit(hidden: torch.Tensor, prior: torch.Tensor, gold: torch.Tensor, settings: DectSettings,
        seed: int = 0) -> tuple[DectHead, list[float]]:
    """Train the prototype network on (hidden, calibrated prior, gold class); returns it and the loss per epoch."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DectHead(hidden.shape[-1], prior.shape[-1], settings)
    with torch.no_grad():  # radii: each class's mean distance to its centre, as train_proto does
        for k in range(prior.shape[-1]):
            members = hidden[gold == k]
            if len(members):
                net.radius[k] = torch.norm(net.head(members) - net.head(members.mean(0)), dim=-1).mean()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=settings.lr)
    losses = []
    for _ in range(settings.epochs):
        optimizer.zero_grad()
        loss = F.cross_entropy(net(hidden, prior), gold)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    net.eval()
    return net, losses


def priors(model, tokenizer, examples: list[Example], settings: DectSettings, reference: torch.Tensor | None,
           batch_size: int, max_input: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(hidden, calibrated prior, reference) for examples. reference: the calibration divisor's source, per example
    for ECQA (its choices differ), else one row; given for evaluation, computed for training."""
    kind = "logit" if settings.prior == "logits" else "logprob"

    def prior_of(scores: torch.Tensor) -> torch.Tensor:
        return scores if settings.prior == "logits" else label_probs(scores)

    hidden, scores = query(model, tokenizer, examples, batch_size, max_input, progress, kind)
    base = prior_of(scores)
    if settings.calibration == "none":
        return hidden, base, None
    if settings.calibration == "train_mean":
        if reference is None:
            reference = base.mean(0, keepdim=True)
        return hidden, calibrate(base, reference), reference
    if LABELS.get(examples[0].dataset):
        if reference is None:
            _, cf = query(model, tokenizer, [content_free(examples[0])], 1, max_input, score=kind)
            reference = prior_of(cf)
        return hidden, calibrate(base, reference), reference
    _, cf = query(model, tokenizer, [content_free(e) for e in examples], batch_size, max_input, progress, kind)
    return hidden, calibrate(base, prior_of(cf)), None


# --- runs -----------------------------------------------------------------------------------------


def count_dect(arch, settings: DectSettings, n_classes: int) -> int:
    """Trainable parameters: the projection (d x proto_dim) and one radius per class (+ prototypes if trained)."""
    prototypes = settings.proto_dim if settings.train_prototypes else 0
    return hidden_size(arch) * settings.proto_dim + n_classes * (1 + prototypes)


def train_dect(cfg, progress: bool = True, verbose: bool = True):
    """Query the frozen model on the few-shot split, fit the prototype network, save the run (seconds)."""
    settings = settings_of(cfg)
    precision = resolve_precision(cfg.precision)
    tf32 = set_tf32(precision in ("tf32", "bf16"))
    run_dir, split, model, tokenizer, started = prepare_run(cfg)
    model.eval()
    if torch.cuda.is_available():
        model.to("cuda")
    fit_start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        hidden, prior, reference = priors(model, tokenizer, split.train, settings, None, cfg.batch_size,
                                          cfg.max_input_tokens, progress)
    gold = torch.tensor([gold_index(e) for e in split.train])
    net, losses = fit(hidden, prior, gold, settings, cfg.seed)
    total = count_parameters(model, FULL_FT).total
    counts = ParamCounts("dect", total, net.n_trainable(), ["head.weight", "radius"] + (
        ["proto"] if settings.train_prototypes else []))
    if verbose:
        print(f"[nle-gen] dect: trainable {counts.trainable:,} (prototype network) / frozen {total:,} "
              f"({counts.percent:.4f} % of {total:,}); fitted in {time.perf_counter() - fit_start:.1f} s")
    tensors = {"head.weight": net.head.weight.detach().contiguous(), "proto": net.proto.detach().contiguous(),
               "radius": net.radius.detach().contiguous()}
    if reference is not None:
        tensors["reference"] = reference.contiguous()
    save_file(tensors, run_dir / DECT_FILE, metadata={"base_model": cfg.model, "config": "dect"})
    tokenizer.save_pretrained(run_dir / TOKENIZER_DIR)
    write_json(run_dir / RUN_FILE, {
        "complete": True, "base_model": cfg.model, "kind": "dect", "config": "dect", "train_config": cfg.to_dict(),
        **counts.record(),
        "notes": ["DecT trains a prototype network on the frozen model's outputs; the model is unchanged"],
        "train_loss": sum(losses) / len(losses), "losses": losses, "steps": len(losses),
        "train_seconds": round(time.perf_counter() - fit_start, 3),
        "precision": precision, "bf16_used": precision == "bf16", "tf32_used": tf32,
        **sbic_record(cfg),
        **provenance(run_dir, started),
    })
    return RunResult(run_dir, counts, sum(losses) / len(losses), losses, net.n_trainable(), model, tokenizer)


def load_head(run_dir: Path, settings: DectSettings) -> tuple[DectHead, torch.Tensor | None]:
    tensors = load_file(Path(run_dir) / DECT_FILE)
    net = DectHead(tensors["head.weight"].shape[1], tensors["proto"].shape[0], settings)
    with torch.no_grad():
        net.head.weight.copy_(tensors["head.weight"])
        net.proto.copy_(tensors["proto"])
        net.radius.copy_(tensors["radius"])
    net.eval()
    return net, tensors.get("reference")


@torch.no_grad()
def evaluate_dect(run_dir: str | Path, split: str = "validation", batch_size: int = 16, data_dir: str | None = None,
                  base_model: str | None = None, progress: bool = True, precision: str = "fp32") -> dict:
    """Accuracy of a DecT run (and of its calibrated zero-shot prior) on the run's validation split; writes
    metrics.json with "nle": null and generations.jsonl; never an NLE file (DecT writes no explanation)."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    tc = info["train_config"]
    settings = settings_of(tc)
    model, _ = load_base(base_model or info["base_model"], resize_embeddings=tc.get("resize_embeddings", True))
    tokenizer = AutoTokenizer.from_pretrained(run_dir / TOKENIZER_DIR)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    if torch.cuda.is_available():
        model.to("cuda")
    dataset, seed = tc["dataset"], tc["seed"]
    examples = run_examples(run_dir, tc, split, data_dir)
    net, reference = load_head(run_dir, settings)
    tf32 = set_tf32(precision in ("tf32", "bf16"))
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        hidden, prior, _ = priors(model, tokenizer, examples, settings, reference, batch_size,
                                  tc.get("max_input_tokens", 512), progress)
    pred = net(hidden, prior).argmax(-1).tolist()
    prior_pred = prior.argmax(-1).tolist()
    gold = [gold_index(e) for e in examples]
    per_label: dict[str, list[int]] = {}
    for ex, p, g in zip(examples, pred, gold, strict=True):
        per_label.setdefault(ex.label, [0, 0])
        per_label[ex.label][0] += p == g
        per_label[ex.label][1] += 1
    n = len(examples)
    metrics = {
        "n": n,
        "accuracy": sum(p == g for p, g in zip(pred, gold, strict=True)) / n if n else 0.0,
        "prior_accuracy": sum(p == g for p, g in zip(prior_pred, gold, strict=True)) / n if n else 0.0,
        "per_label_accuracy": {k: c / t for k, (c, t) in sorted(per_label.items())},
        "nle": None, "nle_note": NLE_NOTE,
        "config": info["config"], "model": info["base_model"], "dataset": dataset, "split": split,
        "split_seed": seed, "selected": 0, "nles": None,
        "generation": {"precision": precision, "tf32": tf32},
    }
    (run_dir / metrics_file(split)).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    with (run_dir / generations_file(split)).open("w", encoding="utf-8") as f:
        for ex, p, g in zip(examples, pred, gold, strict=True):
            f.write(json.dumps({"sample_id": ex.id, "output": label_words(ex)[p], "correct": p == g},
                               ensure_ascii=False) + "\n")
    return metrics


class Dect(Method):
    name = "dect"
    configurations = ("dect",)
    weights = DECT_FILE
    label_only = True

    def check(self, cfg) -> None:
        settings_of(cfg)

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        s = settings_of(dict(settings or {}))
        return ParamCounts(configuration, count_parameters(meta_model, FULL_FT).total,
                           count_dect(meta_model.config, s, 3), notes=[
            f"dect: projection d x {s.proto_dim} + one radius per class (3 counted, as e-SNLI); label only"])

    def train(self, cfg, progress: bool = True, verbose: bool = True) -> RunResult:
        return train_dect(cfg, progress, verbose)

    def evaluate(self, run_dir: Path, split: str = "validation", batch_size: int = 16, data_dir: str | None = None,
                 base_model: str | None = None, progress: bool = True, precision: str = "fp32") -> dict:
        return evaluate_dect(run_dir, split, batch_size, data_dir, base_model, progress, precision)


METHOD = Dect()
