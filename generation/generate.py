"""A trained run rebuilt, greedy generation, accuracy, and the NLE JSONL (the annotation app's import format) of
correct predictions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from generation.bertscore import FEB_LAYER, BertScorer, nbertscore
from generation.data import LABELS, Example
from generation.methods import method_named
from generation.modeling import resolve_precision, set_tf32
from generation.prompts import Parsed, is_correct, parse, prompt
from generation.rundir import TOKENIZER_DIR, check_weights, generations_file, metrics_file, read_run
from generation.splits import run_examples


def load_run(run_dir: str | Path, base_model: str | None = None) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, dict]:
    """Rebuild a trained model (its method loads what the run saved onto the base model) and its tokenizer;
    returns them with run.json's contents."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    method = method_named(info["kind"])
    check_weights(run_dir, method.weights)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / TOKENIZER_DIR)
    model = method.load(run_dir, info, base_model or info["base_model"], tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    return model, tokenizer, info


@torch.no_grad()
def generate_texts(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                   batch_size: int = 16, max_new_tokens: int | None = 100, max_input_tokens: int = 512,
                   progress: bool = False, max_length: int | None = None) -> list[str]:
    """Greedy decoding in batches of similar length (longest first); outputs in the order of `prompts`.

    Length: `max_new_tokens` generated tokens, or (when given) `max_length` as `generate(max_length=...)` counts
    it for one unpadded input, which is how FEB and the SparseFit authors call it (scripts/metrics.py):
    encoder-decoder: the output with its start token (max_length - 1 new tokens); decoder-only: prompt +
    output, so each prompt gets max_length minus its own length (at least 1). Newlines become spaces, as there."""
    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    lengths = [len(ids) for ids in tokenizer(prompts, truncation=True, max_length=max_input_tokens)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    # Decoder-only models continue the prompt, so pad on the left to keep prompts adjacent to the output.
    side = tokenizer.padding_side
    tokenizer.padding_side = "left" if decoder_only else "right"
    device = next(model.parameters()).device
    out: list[str] = [""] * len(prompts)
    try:
        for start in tqdm(range(0, len(order), batch_size), disable=not progress, desc="generate"):
            idx = order[start:start + batch_size]
            if max_length is None:
                budgets = [max_new_tokens] * len(idx)
            elif decoder_only:
                budgets = [max(1, max_length - lengths[i]) for i in idx]
            else:
                budgets = [max(1, max_length - 1)] * len(idx)
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_input_tokens).to(device)
            # Only ids and mask: some tokenizers add token_type_ids, which generate() rejects (transformers 4.x).
            ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 max_new_tokens=max(budgets), do_sample=False, num_beams=1,
                                 use_cache=True, pad_token_id=tokenizer.pad_token_id)
            if decoder_only:  # strip the prompt; greedy rows are independent, so a shorter budget is a cut
                rows = [row[:budget].tolist() for row, budget in zip(ids[:, enc["input_ids"].shape[1]:], budgets,
                                                                      strict=True)]
            else:  # one budget for the batch
                rows = ids.tolist()
            for i, text in zip(idx, tokenizer.batch_decode(rows, skip_special_tokens=True), strict=True):
                out[i] = text.replace("\n", " ").strip()
    finally:
        tokenizer.padding_side = side
    return out


def generation_length(decoder_only: bool, llama_format: str | None) -> tuple[int | None, int | None]:
    """(max_length, max_new_tokens) of `generate` when neither is given: T5 max_length 100 as FEB
    (allenai/feb scripts/metrics.py); the authors' Llama-2 max_length 300 (SanniM3/predicitons_with_explanations
    scripts/metrics.py); this project's Llama format 100 new tokens (it ends its targets with EOS)."""
    if not decoder_only:
        return 100, None
    return (300, None) if llama_format == "authors" else (None, 100)


def generation_precision(requested: str, info: dict) -> str:
    """The numerics `generate` uses: "run" = as the run trained (run.json `precision`, or its bf16/TF32 flags)
    where this machine can (bf16 needs a bf16 GPU, TF32 CUDA), else the named one (`resolve_precision`)."""
    if requested != "run":
        return resolve_precision(requested, "--precision")
    trained = info.get("precision") or ("bf16" if info.get("bf16_used") else "tf32" if info.get("tf32_used")
                                        else "fp32")
    cuda = torch.cuda.is_available()
    if trained == "bf16" and not (cuda and torch.cuda.is_bf16_supported()):
        trained = "tf32"
    return trained if trained == "fp32" or cuda else "fp32"


@dataclass
class Scored:
    example: Example
    prompt: str
    output: str
    parsed: Parsed
    correct: bool
    bertscore_f1: float | None = None  # the F1 nBERTs counts for this item (0..1), when nBERTs is computed


def select_balanced(scored: list[Scored], dataset: str, first: int) -> list[Scored]:
    """The first `first` correct predictions in validation order, split evenly over the labels
    (remainder to the labels listed first); ECQA (no fixed labels): simply the first correct ones."""
    correct = [s for s in scored if s.correct]
    labels = LABELS.get(dataset)
    if not labels:
        return correct[:first]
    quota = {lab: first // len(labels) + (1 if k < first % len(labels) else 0) for k, lab in enumerate(labels)}
    taken = {lab: 0 for lab in labels}
    chosen = []
    for s in correct:
        if taken.get(s.example.label, 0) < quota.get(s.example.label, 0):
            taken[s.example.label] += 1
            chosen.append(s)
    return chosen


def nle_record(s: Scored, configuration: str, model_name: str, seed: int) -> dict:
    """One line of the app's NLE JSONL (its `config` field names the configuration; `metrics` only when scored)."""
    record = {
        "dataset": s.example.dataset, "sample_id": s.example.id, "config": configuration, "input": s.example.inputs,
        "predicted_label": s.parsed.label, "explanation": s.parsed.explanation, "model": model_name,
        "split_seed": seed, "gold_label": s.example.label, "gold_explanations": s.example.explanations,
        "prompt": s.prompt,
    }
    if s.bertscore_f1 is not None:
        record["metrics"] = {"bertscore_f1": s.bertscore_f1}
    return record


def score_examples(examples: list[Example], outputs: list[str]) -> list[Scored]:
    scored = []
    for ex, text in zip(examples, outputs, strict=True):
        p = parse(text)
        scored.append(Scored(ex, prompt(ex), text, p, is_correct(p, ex.label, ex.dataset)))
    return scored


def metrics_of(scored: list[Scored]) -> dict:
    """Accuracy, outputs without ' because ', and per-label accuracy."""
    n = len(scored)
    per_label: dict[str, list[int]] = {}
    for s in scored:
        per_label.setdefault(s.example.label, [0, 0])
        per_label[s.example.label][0] += s.correct
        per_label[s.example.label][1] += 1
    return {
        "n": n,
        "accuracy": sum(s.correct for s in scored) / n if n else 0.0,
        "no_because": sum(not s.parsed.well_formed for s in scored),
        "per_label_accuracy": {k: c / t for k, (c, t) in sorted(per_label.items())},
    }


def selection_warnings(metrics: dict) -> list[str]:
    """Why the NLE file is smaller or narrower than asked: fewer than `first`, or a single class."""
    per_label = metrics.get("selected_per_label", {})
    correct = metrics.get("correct_per_label", {})
    counts = ", ".join(f"{lab}: {per_label.get(lab, 0)} written of {correct.get(lab, 0)} correct"
                       for lab in sorted(set(per_label) | set(correct)))
    out = []
    n_correct = sum(correct.values())
    if metrics["selected"] == 0 and n_correct == 0:
        out.append(f"no correct prediction among {metrics['n']}, so the NLE file is empty "
                   "(nle-annotate import will reject it)")
    elif metrics["selected"] < metrics["first"]:
        out.append(f"wrote {metrics['selected']} NLEs, fewer than --first {metrics['first']} ({counts})")
    labels = metrics.get("labels")
    if labels and metrics["selected"] > 0 and sum(1 for v in per_label.values() if v) == 1:
        out.append(f"the NLEs cover only one class ({counts})")
    return out


def evaluate_run(run_dir: str | Path, out: str | Path, split: str = "validation", first: int = 30,
                 batch_size: int = 16, data_dir: str | None = None, base_model: str | None = None,
                 scorer: Callable[[list[str], list[list[str]]], list[float]] | None = None,
                 progress: bool = True, broken_explanation: str = "empty", precision: str = "run",
                 max_length: int | None = None, max_new_tokens: int | None = None) -> dict:
    """Generate for the run's validation (or another) split; write the NLE JSONL of the first correct
    predictions balanced by class to `out` and metrics.json beside the run; return the metrics.
    precision: `generation_precision`; max_length / max_new_tokens: `generate_texts` (default:
    `generation_length`)."""
    if first < 1:
        raise ValueError(f"--first must be >= 1 (got {first})")
    if Path(out).is_dir():
        raise ValueError(f"--out {out}: is a directory; give the NLE file's path")
    if max_length is not None and max_new_tokens is not None:
        raise ValueError("--max-length and --max-new-tokens are alternatives; give one")
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    used = generation_precision(precision, info)  # an impossible --precision fails before anything loads
    method = method_named(info["kind"])
    if method.label_only:  # accuracy, "nle": null, no NLE file
        return method.evaluate(run_dir, split, batch_size, data_dir, base_model, progress, used)
    model, tokenizer, info = load_run(run_dir, base_model)
    if torch.cuda.is_available():
        model.to("cuda")
    tf32 = set_tf32(used in ("tf32", "bf16"))
    tc = info["train_config"]
    if max_length is None and max_new_tokens is None:
        max_length, max_new_tokens = generation_length(not getattr(model.config, "is_encoder_decoder", False),
                                                         tc.get("llama_format"))
    dataset, seed = tc["dataset"], tc["seed"]
    examples = run_examples(run_dir, tc, split, data_dir)
    prompts = [prompt(e) for e in examples]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=used == "bf16"):
        outputs = generate_texts(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 max_input_tokens=tc.get("max_input_tokens", 512), progress=progress,
                                 max_length=max_length)
    scored = score_examples(examples, outputs)
    metrics = metrics_of(scored)
    metrics["generation"] = {"precision": used, "tf32": tf32, "max_length": max_length, "max_new_tokens": max_new_tokens}
    if scorer is not None:
        # FEB metrics.py: best BERTScore over the gold explanations, 0 for a wrong prediction, mean over all
        # items (an empty explanation scores 0 by bert_score's rule); nbertscore on FEB's 0-100 scale.
        # An output without " because ": the paper scores its empty explanation (0); FEB's and the authors'
        # metrics.py score the string "UNK" instead (broken_explanation="unk").
        unk = "UNK" if broken_explanation == "unk" else ""
        raw = scorer([s.parsed.explanation if s.parsed.well_formed else unk for s in scored],
                     [s.example.explanations for s in scored])
        metrics["nbertscore"] = nbertscore(raw, [s.correct for s in scored])
        for s, f1 in zip(scored, raw, strict=True):  # the NLE file's per-item `metrics.bertscore_f1`
            s.bertscore_f1 = float(f1)
        metrics["bertscore_normalized"] = metrics["nbertscore"] / 100
        metrics["scoring"] = scoring_settings(scorer, broken_explanation)
    chosen = select_balanced(scored, dataset, first)
    model_name = info["base_model"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for s in chosen:
            f.write(json.dumps(nle_record(s, info["config"], model_name, seed), ensure_ascii=False) + "\n")
    correct_per_label: dict[str, int] = {}
    for s in scored:
        if s.correct:
            correct_per_label[s.example.label] = correct_per_label.get(s.example.label, 0) + 1
    selected_per_label: dict[str, int] = dict.fromkeys(LABELS.get(dataset) or (), 0)
    for s in chosen:
        selected_per_label[s.example.label] = selected_per_label.get(s.example.label, 0) + 1
    metrics.update({"config": info["config"], "model": model_name, "dataset": dataset, "split": split,
                    "split_seed": seed, "selected": len(chosen), "first": first, "nles": str(out.resolve()),
                    "labels": list(LABELS.get(dataset) or ()), "correct_per_label": correct_per_label,
                    "selected_per_label": selected_per_label,
                    "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")})
    (run_dir / metrics_file(split)).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    with (run_dir / generations_file(split)).open("w", encoding="utf-8") as f:
        for s in scored:
            f.write(json.dumps({"sample_id": s.example.id, "output": s.output, "correct": s.correct}) + "\n")
    return metrics


def scoring_settings(scorer: Callable, broken_explanation: str) -> dict:
    """How nBERTs was computed, recorded in metrics.json so that `results` never averages or tests nBERTs
    scored differently: the encoder and layer (a scorer without `settings()` records its type), and what an
    output without ' because ' was scored as."""
    settings = scorer.settings() if callable(getattr(scorer, "settings", None)) else {
        "bertscore_model": f"{type(scorer).__module__}.{type(scorer).__qualname__}", "bertscore_layer": None}
    return {**settings, "broken_explanation": broken_explanation}


def bertscore_scorer(model_path: str, layer: int = FEB_LAYER, batch_size: int = 32) -> Callable:
    """BERTScore F1 as FEB computes it (generation.bertscore): best over the gold explanations, lowercased,
    idf off, no rescaling, hidden states of `layer` (FEB: roberta-large, 17)."""
    return BertScorer(model_path, layer=layer, batch_size=batch_size)
