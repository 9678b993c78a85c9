"""Greedy generation, accuracy, and the NLE JSONL (the annotation app's import format) of correct predictions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from generation.data import LABELS, Example, load_split
from generation.prompts import Parsed, is_correct, parse, prompt
from generation.train import SPLIT_FILE, load_run


@torch.no_grad()
def generate_texts(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                   batch_size: int = 16, max_new_tokens: int = 100, max_input_tokens: int = 512,
                   progress: bool = False) -> list[str]:
    """Greedy decoding in batches of similar length (longest first); outputs in the order of `prompts`."""
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
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_input_tokens).to(device)
            # Only ids and mask: some tokenizers add token_type_ids, which generate() rejects (transformers 4.x).
            ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=tokenizer.pad_token_id)
            if decoder_only:
                ids = ids[:, enc["input_ids"].shape[1]:]  # strip the prompt
            for i, text in zip(idx, tokenizer.batch_decode(ids, skip_special_tokens=True), strict=True):
                out[i] = text.strip()
    finally:
        tokenizer.padding_side = side
    return out


@dataclass
class Scored:
    example: Example
    prompt: str
    output: str
    parsed: Parsed
    correct: bool


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


def nle_record(s: Scored, config: str, model_name: str, seed: int) -> dict:
    """One line of the app's NLE JSONL."""
    return {
        "dataset": s.example.dataset, "sample_id": s.example.id, "config": config, "input": s.example.inputs,
        "predicted_label": s.parsed.label, "explanation": s.parsed.explanation, "model": model_name,
        "split_seed": seed, "gold_label": s.example.label, "gold_explanations": s.example.explanations,
        "prompt": s.prompt,
    }


def score_examples(examples: list[Example], outputs: list[str]) -> list[Scored]:
    scored = []
    for ex, text in zip(examples, outputs, strict=True):
        p = parse(text)
        scored.append(Scored(ex, prompt(ex), text, p, is_correct(p, ex.label)))
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


def evaluate_run(run_dir: str | Path, out: str | Path, split: str = "validation", first: int = 30,
                 batch_size: int = 16, data_dir: str | None = None, base_model: str | None = None,
                 scorer: Callable[[list[str], list[list[str]]], list[float]] | None = None,
                 progress: bool = True) -> dict:
    """Generate for the run's validation (or another) split; write the NLE JSONL of the first correct
    predictions balanced by class to `out` and metrics.json beside the run; return the metrics."""
    run_dir = Path(run_dir)
    model, tokenizer, info = load_run(run_dir, base_model)
    if torch.cuda.is_available():
        model.to("cuda")
    tc = info["train_config"]
    dataset, seed = tc["dataset"], tc["seed"]
    pool = load_split(dataset, data_dir or tc["data_dir"], split)
    if split == "validation":
        ids = json.loads((run_dir / SPLIT_FILE).read_text())["validation"]
        index = {e.id: e for e in pool}
        examples = [index[i] for i in ids if i in index]
        if len(examples) != len(ids):
            raise ValueError(f"{run_dir / SPLIT_FILE}: {len(ids) - len(examples)} validation ids not in the data")
    else:
        examples = pool
    prompts = [prompt(e) for e in examples]
    outputs = generate_texts(model, tokenizer, prompts, batch_size=batch_size,
                             max_input_tokens=tc.get("max_input_tokens", 512), progress=progress)
    scored = score_examples(examples, outputs)
    metrics = metrics_of(scored)
    if scorer is not None:
        # Normalized BERTScore: 0 for a wrong prediction or an empty explanation.
        raw = scorer([s.parsed.explanation for s in scored], [s.example.explanations for s in scored])
        metrics["bertscore_normalized"] = sum(
            r if s.correct and s.parsed.explanation else 0.0 for r, s in zip(raw, scored, strict=True)) / max(len(scored), 1)
    chosen = select_balanced(scored, dataset, first)
    model_name = info["base_model"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for s in chosen:
            f.write(json.dumps(nle_record(s, info["config"], model_name, seed), ensure_ascii=False) + "\n")
    metrics.update({"config": info["config"], "model": model_name, "dataset": dataset, "split": split,
                    "split_seed": seed, "selected": len(chosen), "first": first, "nles": str(out)})
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    with (run_dir / "generations.jsonl").open("w", encoding="utf-8") as f:
        for s in scored:
            f.write(json.dumps({"sample_id": s.example.id, "output": s.output, "correct": s.correct}) + "\n")
    return metrics


def bertscore_scorer(model_path: str, layer: int | None = None, batch_size: int = 32) -> Callable:
    """BERTScore F1 (greedy cosine matching of contextual token embeddings, best over the gold
    explanations) with a local encoder model; no rescaling."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    enc = AutoModel.from_pretrained(model_path, local_files_only=True).eval()

    @torch.no_grad()
    def embed(texts: list[str]) -> list[torch.Tensor]:
        vecs = []
        for i in range(0, len(texts), batch_size):
            b = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=256)
            out = enc(**b, output_hidden_states=True)
            h = out.hidden_states[layer] if layer is not None else out.last_hidden_state
            h = torch.nn.functional.normalize(h, dim=-1)
            for row, mask in zip(h, b["attention_mask"], strict=True):
                vecs.append(row[mask.bool()])
        return vecs

    def f1(a: torch.Tensor, b: torch.Tensor) -> float:
        sim = a @ b.T
        p, r = sim.max(dim=1).values.mean(), sim.max(dim=0).values.mean()
        return float(2 * p * r / (p + r)) if (p + r) > 0 else 0.0

    def score(candidates: list[str], references: list[list[str]]) -> list[float]:
        flat = [r for refs in references for r in refs]
        cand_v, ref_v = embed([c or " " for c in candidates]), embed(flat)
        scores, k = [], 0
        for c, refs in zip(cand_v, references, strict=True):
            scores.append(max((f1(c, ref_v[k + j]) for j in range(len(refs))), default=0.0))
            k += len(refs)
        return scores

    return score
