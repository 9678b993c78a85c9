"""Fine-tune a seq2seq (T5/UnifiedQA) or decoder-only (Llama) model on a few-shot NLE split.

A run directory holds: run.json (written last: base model, resolved config, counts, loss history),
split.json (train/validation ids), tokenizer/, and the weights: trainable.safetensors for a sparse
configuration (only the trained tensors), model/ for full_ft, adapter/ for a PEFT baseline.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from generation.components import FULL_FT, PEFT_BASELINES, ParamCounts, family, select_trainable_parameters
from generation.config import TrainConfig
from generation.data import Example, few_shot_split
from generation.presets import model_class
from generation.prompts import prompt, target

RUN_FILE, SPLIT_FILE, SPARSE_FILE = "run.json", "split.json", "trainable.safetensors"


# --- model, tokenizer, features -------------------------------------------------------------------


def load_base(name_or_path: str) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The pretrained model (seq2seq or causal, from its config) and its tokenizer, with a pad token."""
    config = AutoConfig.from_pretrained(name_or_path)
    model = model_class(config).from_pretrained(name_or_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:  # Llama tokenizers ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer


def is_decoder_only(model: torch.nn.Module) -> bool:
    return not getattr(model.config, "is_encoder_decoder", False)


def encode(example: Example, tokenizer: PreTrainedTokenizerBase, decoder_only: bool,
           max_input: int = 512, max_target: int = 128) -> dict[str, list[int]]:
    """Token ids of prompt and target; decoder-only: prompt + target with the prompt masked to -100 in labels."""
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


# --- PEFT baselines -------------------------------------------------------------------------------


def _linear_names(fam: str) -> dict[str, list[str]]:
    if fam == "t5":
        return {"qv": ["q", "v"], "qkvo": ["q", "k", "v", "o"], "ff": ["wi", "wi_0", "wi_1", "wo"], "ff_in": ["wo"]}
    return {"qv": ["q_proj", "v_proj"], "qkvo": ["q_proj", "k_proj", "v_proj", "o_proj"],
            "ff": ["gate_proj", "up_proj", "down_proj"], "ff_in": ["down_proj"]}


def apply_peft(model: torch.nn.Module, name: str, total_steps: int) -> torch.nn.Module:
    """Wrap the model with a PEFT baseline: lora (q,v r=128), lora_qkvo_r4, adalora, ia3 (all linear layers)."""
    from peft import AdaLoraConfig, IA3Config, LoraConfig, TaskType, get_peft_model

    fam = family(model)
    names = _linear_names(fam)
    task = TaskType.CAUSAL_LM if is_decoder_only(model) else TaskType.SEQ_2_SEQ_LM
    present = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    ff = [n for n in names["ff"] if n in present]
    if name == "lora":
        cfg = LoraConfig(task_type=task, r=128, lora_alpha=128, lora_dropout=0.0, target_modules=names["qv"])
    elif name == "lora_qkvo_r4":
        cfg = LoraConfig(task_type=task, r=4, lora_alpha=4, lora_dropout=0.0, target_modules=names["qkvo"])
    elif name == "adalora":
        cfg = AdaLoraConfig(task_type=task, init_r=12, target_r=8, target_modules=names["qkvo"],
                            total_step=max(total_steps, 1), tinit=total_steps // 10, tfinal=total_steps // 5)
    elif name == "ia3":
        cfg = IA3Config(task_type=task, target_modules=names["qkvo"] + ff,
                        feedforward_modules=[n for n in names["ff_in"] if n in present])
    else:
        raise ValueError(f"unknown PEFT baseline {name!r}; known: {', '.join(PEFT_BASELINES)}")
    return get_peft_model(model, cfg)


class _AdaLoraBudget(TrainerCallback):
    """AdaLoRA reallocates ranks after each optimizer step, before gradients are zeroed."""

    def __init__(self, model) -> None:
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


def count_unique(model: torch.nn.Module) -> ParamCounts:
    """Trainable/total over distinct tensors (for full_ft and PEFT-wrapped models)."""
    seen: dict[int, torch.nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return ParamCounts("", total, trainable, names)


# --- training ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run_dir: Path
    counts: ParamCounts
    train_loss: float  # mean over the run
    losses: list[float]  # logged every logging_steps
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a run.json is never half written


def use_bf16(setting: str) -> bool:
    """bf16 only on a CUDA GPU that supports it (auto), or when forced."""
    gpu_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if setting == "yes" and not gpu_ok:
        raise ValueError("bf16=yes needs a CUDA GPU with bf16 support")
    return setting == "yes" or (setting == "auto" and gpu_ok)


def train(cfg: TrainConfig, progress: bool = True) -> RunResult:
    """Run one configuration end to end and save it to cfg.out; returns the trained model too."""
    if cfg.kind == "dect":  # label-only, no gradient into the model: its own short loop
        from generation.dect import train_dect

        return train_dect(cfg, progress)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).unlink(missing_ok=True)  # an interrupted re-run must not look complete
    split = few_shot_split(cfg.dataset, cfg.data_dir, cfg.seed, cfg.n_train, cfg.n_val, cfg.train_ids, cfg.val_ids)
    _write_json(run_dir / SPLIT_FILE, {"dataset": cfg.dataset, "seed": cfg.seed,
                                       "train": [e.id for e in split.train],
                                       "validation": [e.id for e in split.validation]})
    set_seed(cfg.seed)
    model, tokenizer = load_base(cfg.model)
    decoder_only = is_decoder_only(model)
    features = [encode(e, tokenizer, decoder_only, cfg.max_input_tokens, cfg.max_target_tokens) for e in split.train]
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)

    callbacks = []
    if cfg.kind == "peft":
        model = apply_peft(model, cfg.config, total_steps)
        counts = count_unique(model)
        if cfg.config == "adalora":
            callbacks.append(_AdaLoraBudget(model))
    elif cfg.kind == "reft":
        from generation.reft import wrap

        model, counts = wrap(model, cfg)
    elif cfg.kind == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        counts = count_unique(model)
    else:
        counts = select_trainable_parameters(model, cfg.config)
    counts.config = cfg.config
    print(f"[nle-gen] {cfg.config}: trainable {counts.trainable:,} / frozen {counts.frozen:,} "
          f"({100 * counts.trainable / counts.total:.2f} % of {counts.total:,})")
    for note in counts.notes:
        print(f"[nle-gen] note: {note}")

    args = TrainingArguments(
        output_dir=str(run_dir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        optim="adamw_torch",
        weight_decay=0.0,
        bf16=use_bf16(cfg.bf16),
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
    trainer = Trainer(model=model, args=args, train_dataset=FeatureDataset(features), data_collator=collator,
                      processing_class=tokenizer, callbacks=callbacks)
    output = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trainer_dir = run_dir / "trainer"
    if trainer_dir.is_dir() and not any(trainer_dir.iterdir()):
        trainer_dir.rmdir()  # checkpoints are off; don't leave an empty folder behind
    model = trainer.model
    model.eval()

    save_weights(model, cfg, counts, tokenizer, run_dir)
    _write_json(run_dir / RUN_FILE, {
        "complete": True,
        "base_model": cfg.model,
        "kind": cfg.kind,
        "config": cfg.config,
        "train_config": cfg.to_dict(),
        "trainable": counts.trainable,
        "total": counts.total,
        "percent": round(100 * counts.trainable / counts.total, 4),
        "notes": counts.notes,
        "train_loss": output.training_loss,
        "losses": losses,
        "steps": trainer.state.global_step,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    })
    return RunResult(run_dir, counts, output.training_loss, losses, model, tokenizer)


def save_weights(model: torch.nn.Module, cfg: TrainConfig, counts: ParamCounts,
                 tokenizer: PreTrainedTokenizerBase, run_dir: Path) -> None:
    """Sparse: only the trainable tensors; full_ft: the whole model; PEFT: the adapter."""
    tokenizer.save_pretrained(run_dir / "tokenizer")
    if cfg.kind == "sparse":
        params = dict(model.named_parameters())
        save_file({n: params[n].detach().to("cpu", torch.float32).contiguous() for n in counts.trainable_names},
                  run_dir / SPARSE_FILE, metadata={"base_model": cfg.model, "config": cfg.config})
    elif cfg.kind == "reft":
        model.save(run_dir, cfg.model)  # only R, W, b
    elif cfg.kind == "full":
        model.save_pretrained(run_dir / "model")
    else:
        model.save_pretrained(run_dir / "adapter")


def read_run(run_dir: str | Path) -> dict:
    """The run.json of a completed run; ValueError when the run is missing or incomplete."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir}: not a completed run (no {RUN_FILE})")
    info = json.loads(path.read_text(encoding="utf-8"))
    if not info.get("complete"):
        raise ValueError(f"{path}: run is not complete")
    return info


def load_run(run_dir: str | Path, base_model: str | None = None) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, dict]:
    """Rebuild a trained model: base + saved tensors (sparse), the saved model (full_ft) or base + adapter."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    base = base_model or info["base_model"]
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    if info["kind"] == "full":
        config = AutoConfig.from_pretrained(run_dir / "model")
        model = model_class(config).from_pretrained(run_dir / "model", dtype=torch.float32)
    else:
        model, _ = load_base(base)
        if info["kind"] == "reft":
            from generation.reft import load_reft

            model = load_reft(model, run_dir, info["train_config"])
        elif info["kind"] == "peft":
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, run_dir / "adapter")
        else:
            tensors = load_file(run_dir / SPARSE_FILE)
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, value in tensors.items():
                    if name not in params or params[name].shape != value.shape:
                        raise ValueError(f"{run_dir / SPARSE_FILE}: tensor {name} does not fit base model {base}")
                    params[name].copy_(value)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    return model, tokenizer, info


__all__ = ["FULL_FT", "RunResult", "load_run", "read_run", "train", "encode", "load_base"]
