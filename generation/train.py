"""Fine-tune a seq2seq (T5/UnifiedQA) or decoder-only (Llama) model on a few-shot NLE split: one run, read top
to bottom in `train`.

The configuration's method (generation.methods) decides what trains and what is saved; this module is the loop
every gradient method shares (Hugging Face's Trainer, AdamW at a constant learning rate) and the run.json it
writes last. A label-only method (DecT) trains in its own module.

A run directory holds: run.json (written last: base model, resolved TrainConfig, counts, loss history),
split.json (train/validation ids), tokenizer/, and the method's weights: trainable.safetensors for a sparse
configuration (only the trained tensors), model/ for full_ft, adapter/ for a PEFT baseline, reft.safetensors
for LoReFT, dect.safetensors for DecT.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from pathlib import Path

import torch
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase, TrainerCallback, TrainingArguments

from generation.config import TrainConfig
from generation.data import Example
from generation.flops import FORMULA, forward_flops, stack_sizes, train_step_flops
from generation.modeling import (
    RunResult,
    add_authors_pad_token,
    is_decoder_only,
    prepare_run,
    resolve_precision,
    run_model_name,
    sbic_record,
    set_tf32,
)
from generation.prompts import prompt, target
from generation.rundir import RUN_FILE, TOKENIZER_DIR, provenance, write_json

# --- features -------------------------------------------------------------------------------------


def encode(example: Example, tokenizer: PreTrainedTokenizerBase, decoder_only: bool,
           max_input: int = 512, max_target: int = 128, llama_format: str = "project") -> dict[str, list[int]]:
    """Token ids of prompt and target; decoder-only: prompt + target with the prompt masked to -100 in labels.

    llama_format="authors" (decoder-only; SanniM3/predicitons_with_explanations input_to_label_and_rationale.py
    `process_data_split`): input = tokens of the prompt + tokens of the target, each with the tokenizer's BOS,
    no EOS; labels = the pad token id at every prompt position (so they are trained on, as the authors did)
    followed by the target tokens."""
    if decoder_only and llama_format == "authors":
        source = tokenizer(prompt(example), truncation=True, max_length=max_input)["input_ids"]
        tgt = tokenizer(target(example), truncation=True, max_length=max_target)["input_ids"]
        ids = source + tgt
        return {"input_ids": ids, "attention_mask": [1] * len(ids),
                "labels": [tokenizer.pad_token_id] * len(source) + tgt}
    source = tokenizer(prompt(example), truncation=True, max_length=max_input)["input_ids"]
    tgt_text = (" " if decoder_only else "") + target(example)
    tgt = tokenizer(tgt_text, add_special_tokens=not decoder_only, truncation=True, max_length=max_target)["input_ids"]
    if tokenizer.eos_token_id is not None and (not tgt or tgt[-1] != tokenizer.eos_token_id):
        tgt = tgt + [tokenizer.eos_token_id]
    if decoder_only:
        ids = source + tgt
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(source) + tgt}
    return {"input_ids": source, "attention_mask": [1] * len(source), "labels": tgt}


class FeatureDataset(torch.utils.data.Dataset):
    """Pre-tokenized examples for the Trainer."""

    def __init__(self, features: list[dict[str, list[int]]]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.features[i]


# --- Trainer callbacks and arguments -------------------------------------------------------------


class _StepTimer(TrainerCallback):
    """Wall time of each optimizer step, recorded in run.json so `sweep --plan` can estimate a sweep's cost."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # kernels are asynchronous: count the step's own work
        self.seconds.append(time.perf_counter() - self._t0)

    def typical(self) -> float | None:
        """Median step, leaving out the first (allocations, kernel selection) when there are more."""
        steps = self.seconds[1:] or self.seconds
        return statistics.median(steps) if steps else None


FAIL_ENV = "NLE_GEN_INJECT_FAILURE"


class _InjectedFailure(TrainerCallback):
    """Test hook for sweep retries: NLE_GEN_INJECT_FAILURE=once:TEXT or always:TEXT (comma-separated) makes
    the first training step of every run whose directory contains TEXT raise (once: only on the first attempt)."""

    def __init__(self, run_dir: Path, once: bool) -> None:
        self.marker = run_dir / ".injected-failure" if once else None

    def on_step_end(self, args, state, control, **kwargs):
        if self.marker is not None:
            if self.marker.exists():
                return
            self.marker.touch()
        raise RuntimeError(f"injected failure ({FAIL_ENV})")


def _injected_failure(run_dir: Path) -> _InjectedFailure | None:
    for spec in filter(None, os.environ.get(FAIL_ENV, "").split(",")):
        mode, _, text = spec.partition(":")
        if mode in ("once", "always") and text and text in str(run_dir):
            return _InjectedFailure(run_dir, once=mode == "once")
    return None


def _checkpointing_args(on: bool) -> dict:
    """Gradient (activation) checkpointing under the TrainingArguments name of this transformers version."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    prefix = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    # non-reentrant checkpointing needs no input that requires grad (sparse configs freeze the embeddings)
    return {prefix: on, f"{prefix}_kwargs": {"use_reentrant": False} if on else None}


# --- training ------------------------------------------------------------------------------------


def train(cfg: TrainConfig, progress: bool = True, verbose: bool = True) -> RunResult:
    """Run one configuration end to end and save it to cfg.out; returns the trained model too.

    Everything that can fail on bad input (data files, split ids, the model) is checked before the run
    directory is created or touched."""
    method = cfg.method
    if method.label_only:  # no gradient into the model: the method's own loop
        return method.train(cfg, progress, verbose)
    say = print if verbose else (lambda *a, **k: None)
    precision = resolve_precision(cfg.precision)  # before any file is written: an impossible setting changes nothing
    bf16 = precision == "bf16"
    tf32 = set_tf32(precision in ("tf32", "bf16"))
    run_dir, split, model, tokenizer, started = prepare_run(cfg)
    decoder_only = is_decoder_only(model)
    if decoder_only and cfg.llama_format == "authors":
        add_authors_pad_token(model, tokenizer)
    features = [encode(e, tokenizer, decoder_only, cfg.max_input_tokens, cfg.max_target_tokens, cfg.llama_format)
                for e in split.train]
    steps_per_epoch = math.ceil(math.ceil(len(features) / cfg.batch_size) / cfg.gradient_accumulation_steps)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)

    sizes = stack_sizes(model)  # before any adapter or intervention wraps the model
    embedding_rows = model.get_input_embeddings().weight.shape[0]
    model, counts = method.wrap(model, cfg, total_steps)
    counts.configuration = cfg.configuration
    timer = _StepTimer()
    callbacks: list[TrainerCallback] = [timer, *method.callbacks(model, cfg)]
    if (fail := _injected_failure(run_dir)) is not None:
        callbacks.append(fail)
    extra = (f"; {counts.percent_of_base:.2f} % of the base model's {counts.base_total:,}"
             if counts.base_total is not None else "")
    say(f"[nle-gen] {cfg.configuration}: trainable {counts.trainable:,} / frozen {counts.frozen:,} "
        f"({counts.percent:.2f} % of {counts.total:,}{extra})")
    for note in counts.notes:
        say(f"[nle-gen] note: {note}")

    args = TrainingArguments(
        output_dir=str(run_dir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        optim="adamw_torch",
        weight_decay=0.0,
        bf16=bf16,
        **_checkpointing_args(cfg.gradient_checkpointing),
        use_cpu=not torch.cuda.is_available(),
        seed=cfg.seed,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=cfg.logging_steps,
        report_to="none",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    tokenizer.padding_side = "right"  # training batches: prompt positions start at 0 for every row
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    # transformers.Trainer imports `datasets`, and with it pandas, when installed: only when training.
    from transformers import Trainer

    trainer = Trainer(model=model, args=args, train_dataset=FeatureDataset(features), data_collator=collator,
                      processing_class=tokenizer, callbacks=callbacks)
    if not verbose:  # without tqdm the Trainer prints every logged metrics dict
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    output = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    optimizer_numel = sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"])
    trainer_dir = run_dir / "trainer"
    if trainer_dir.is_dir() and not any(trainer_dir.iterdir()):
        trainer_dir.rmdir()  # checkpoints are off; don't leave an empty folder behind
    model = trainer.model
    model.eval()

    tokenizer.save_pretrained(run_dir / TOKENIZER_DIR)
    method.save(model, cfg, counts, run_dir)
    if decoder_only:  # input_ids hold prompt + target; labels mark the target
        per_example = [forward_flops(sizes, len(f["input_ids"]), 0, True) for f in features]
    else:
        per_example = [forward_flops(sizes, len(f["input_ids"]), len(f["labels"]), False) for f in features]
    mean_forward = sum(per_example) / len(per_example)
    write_json(run_dir / RUN_FILE, {
        "complete": True,
        "base_model": cfg.model,
        "model_name": run_model_name(cfg),
        "decoder_only": decoder_only,
        "kind": method.name,
        "config": cfg.configuration,
        "train_config": cfg.to_dict(),
        **counts.record(),
        "notes": counts.notes,
        "train_loss": output.training_loss,
        "losses": losses,
        "steps": trainer.state.global_step,
        "train_seconds": output.metrics.get("train_runtime"),
        "step_seconds": timer.typical(),
        "precision": precision,
        "bf16_used": bf16,
        "tf32_used": tf32,
        "forward_flops_per_example": mean_forward,
        "train_flops_per_step": train_step_flops(mean_forward, cfg.batch_size * cfg.gradient_accumulation_steps,
                                                 counts.trainable, counts.total),
        "flops_formula": FORMULA,
        "embedding_rows": embedding_rows,
        **sbic_record(cfg),
        **provenance(run_dir, started),
    })
    return RunResult(run_dir, counts, output.training_loss, losses, optimizer_numel, model, tokenizer)
