"""Fine-tune a seq2seq (T5/UnifiedQA) or decoder-only (Llama) model on a few-shot NLE split.

A run directory holds: run.json (written last: base model, resolved config, counts, loss history),
split.json (train/validation ids), tokenizer/, and the weights: trainable.safetensors for a sparse
configuration (only the trained tensors), model/ for full_ft, adapter/ for a PEFT baseline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from generation.components import FULL_FT, PEFT_BASELINES, ParamCounts, family, select_trainable_parameters
from generation.config import TrainConfig
from generation.data import Example, FewShotSplit, few_shot_split
from generation.flops import FORMULA, forward_flops, stack_sizes, train_step_flops
from generation.layout import DECT_FILE, REFT_FILE, RUN_FILE, SPARSE_FILE, SPLIT_FILE
from generation.presets import model_class
from generation.prompts import prompt, target, target_explanation

# --- model, tokenizer, features -------------------------------------------------------------------


def load_base(name_or_path: str, resize_embeddings: bool = True) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The pretrained model (seq2seq or causal, from its config) and its tokenizer, with a pad token.

    T5 embeddings are resized to the tokenizer's length (32,100 rows for T5/UnifiedQA instead of the
    checkpoint's 32,128) as FEB does (allenai/feb scripts/input_to_label_and_rationale.py)."""
    from generation.hub import resolve_model

    name, local_only = resolve_model(name_or_path)
    try:
        config = AutoConfig.from_pretrained(name, local_files_only=local_only)
        model = model_class(config).from_pretrained(name, dtype=torch.float32, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except OSError as exc:  # e.g. a directory with config.json but no weights, or a hub id that does not exist
        raise ValueError(f"model {name_or_path}: cannot be loaded ({str(exc).splitlines()[0]})") from None
    if tokenizer.pad_token is None:  # Llama tokenizers ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows or (resize_embeddings and config.model_type == "t5" and len(tokenizer) != rows):
        model.resize_token_embeddings(len(tokenizer))
    return model, tokenizer


def is_decoder_only(model: torch.nn.Module) -> bool:
    return not getattr(model.config, "is_encoder_decoder", False)


AUTHORS_PAD = "[PAD]"


def add_authors_pad_token(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
    """The SparseFit authors' Llama set-up: a new "[PAD]" token and the embeddings resized to it. The new rows
    are the mean of the old ones (not random) so that training and reloading build the same model."""
    if tokenizer.convert_tokens_to_ids(AUTHORS_PAD) in (None, tokenizer.unk_token_id):
        tokenizer.add_special_tokens({"pad_token": AUTHORS_PAD})
    tokenizer.pad_token = AUTHORS_PAD
    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())
                        if e is not None}.values():
                emb.weight[old:] = emb.weight[:old].mean(dim=0)


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


# --- PEFT baselines -------------------------------------------------------------------------------


def _linear_names(fam: str) -> dict[str, list[str]]:
    if fam == "t5":
        return {"qv": ["q", "v"], "qkvo": ["q", "k", "v", "o"], "kv": ["k", "v"],
                "ff": ["wi", "wi_0", "wi_1", "wo"], "ff_out": ["wo"]}
    return {"qv": ["q_proj", "v_proj"], "qkvo": ["q_proj", "k_proj", "v_proj", "o_proj"], "kv": ["k_proj", "v_proj"],
            "ff": ["gate_proj", "up_proj", "down_proj"], "ff_out": ["down_proj"]}


def peft_config(model: torch.nn.Module, name: str, total_steps: int, lora_r: int = 128):
    """The paper's PEFT baselines as peft configs (see docs/generation.md, "PEFT baselines").

    lora: q, v, r = `lora_r` (128), alpha = r. lora_qkvo_r4: q, k, v, o, r 4. adalora: q, k, v, o and the
    feed-forward (T5 wi, wo; Llama gate, up, down) with r 8 as the paper, and the authors' other settings
    (SanniM3/predicitons_with_explanations scripts/input_to_label_and_rationale.py: init_r 8 -> target_r 4,
    alpha 32, dropout 0.1, deltaT 10, orth_reg_weight 0.1). adalora_r32: init r 32 -> target r 4 on the same
    modules (Table 2's 4.48 % on T5-large). ia3: k, v and the feed-forward (wo's input scaled)."""
    from peft import AdaLoraConfig, IA3Config, LoraConfig, TaskType

    fam = family(model)
    names = _linear_names(fam)
    task = TaskType.CAUSAL_LM if is_decoder_only(model) else TaskType.SEQ_2_SEQ_LM
    present = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    ff = [n for n in names["ff"] if n in present]
    if name == "lora":
        return LoraConfig(task_type=task, r=lora_r, lora_alpha=lora_r, lora_dropout=0.0, target_modules=names["qv"])
    if name == "lora_qkvo_r4":
        return LoraConfig(task_type=task, r=4, lora_alpha=4, lora_dropout=0.0, target_modules=names["qkvo"])
    if name == "adalora":
        # AdaLoRA's budget schedule needs tinit + tfinal < total_step; the authors' 500/1000 of 1600 steps
        # is kept as a proportion of the run's length.
        total = max(total_steps, 10)
        common = dict(task_type=task, target_modules=names["qkvo"] + ff, total_step=total,
                      tinit=total * 5 // 16, tfinal=total * 10 // 16)
        return AdaLoraConfig(init_r=8, target_r=4, lora_alpha=32, lora_dropout=0.1, deltaT=10, orth_reg_weight=0.1,
                             **common)
    if name == "adalora_r32":
        # Table 2's 4.48 % row: the authors' T5 set-up (SanniM3/predicitons_with_explanations d9b9185,
        # "attn and ffn adalora setting3"), init r 32 -> target r 4 on the same modules, PEFT's defaults otherwise.
        return AdaLoraConfig(task_type=task, target_modules=names["qkvo"] + ff, total_step=max(total_steps, 10),
                             init_r=32, target_r=4, lora_alpha=32, lora_dropout=0.1, tinit=0, tfinal=0, deltaT=1,
                             orth_reg_weight=0.5)
    if name == "ia3":
        return IA3Config(task_type=task, target_modules=names["kv"] + ff,
                         feedforward_modules=[n for n in names["ff_out"] if n in present])
    raise ValueError(f"unknown PEFT baseline {name!r}; known: {', '.join(PEFT_BASELINES)}")


def apply_peft(model: torch.nn.Module, name: str, total_steps: int, lora_r: int = 128) -> torch.nn.Module:
    """Wrap the model with a PEFT baseline (`peft_config`)."""
    from peft import get_peft_model

    with quiet_peft_deprecation():
        return get_peft_model(model, peft_config(model, name, total_steps, lora_r))


@contextlib.contextmanager
def quiet_peft_deprecation():
    """Hide only transformers' FutureWarning about `is_gradient_checkpointing`: PEFT asks the model for the old
    name when it wraps or loads an adapter, and the warning is for PEFT's authors, not for our users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


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


class _AdaLoraBudget(TrainerCallback):
    """AdaLoRA reallocates ranks after each optimizer step, before gradients are zeroed."""

    def __init__(self, model) -> None:
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


def count_unique(model: torch.nn.Module, base_total: int | None = None) -> ParamCounts:
    """Trainable/total over distinct tensors (for full_ft and PEFT-wrapped models). For an adapter, pass the
    base model's size: `total` then counts base + adapter, PEFT's print_trainable_parameters convention."""
    seen: dict[int, torch.nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return ParamCounts("", total, trainable, names, base_total=base_total)


def wrap_and_count(model: torch.nn.Module, name: str, total_steps: int = 100,
                   lora_r: int = 128) -> tuple[torch.nn.Module, ParamCounts]:
    """Wrap `model` (meta or real) with a PEFT baseline and count it: the one count behind params, train and
    run.json."""
    base_total = count_unique(model).total
    wrapped = apply_peft(model, name, total_steps, lora_r)
    counts = count_unique(wrapped, base_total=base_total)
    counts.config = name
    return wrapped, counts


def peft_counts(model: torch.nn.Module, name: str, total_steps: int = 100, lora_r: int = 128) -> ParamCounts:
    """Counts of a PEFT baseline on `model` (wraps it in place)."""
    return wrap_and_count(model, name, total_steps, lora_r)[1]


# --- training ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run_dir: Path
    counts: ParamCounts
    train_loss: float  # mean over the run
    losses: list[float]  # logged every logging_steps
    optimizer_numel: int  # elements of the tensors the optimizer updates (and holds state for)
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase


def run_model_name(cfg: TrainConfig) -> str | None:
    """The name `results` groups a run under: --model-name, else the hub id of --model (None for a local
    directory that is not a Hugging Face cache snapshot)."""
    from generation.hub import hub_name

    return cfg.model_name or hub_name(cfg.model)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a run.json is never half written


def resolve_precision(setting: str, option: str = "--precision") -> str:
    """The numerics a run uses on this machine: "fp32" (the paper's: no autocast, TF32 off; FEB's
    deepspeed_config.json has no fp16/bf16 section), "tf32" (fp32 weights, TF32 matmuls) or "bf16" (bf16
    autocast over fp32 weights, TF32 on). auto = bf16 on a CUDA GPU that supports it, else tf32 on CUDA, else
    fp32; tf32 without CUDA is fp32; bf16 without a bf16 GPU is an error."""
    cuda = torch.cuda.is_available()
    gpu_bf16 = cuda and torch.cuda.is_bf16_supported()
    if setting == "bf16" and not gpu_bf16:
        found = f"GPU {torch.cuda.get_device_name()} has none" if cuda else "no CUDA GPU found"
        raise ValueError(f"{option} bf16 needs a CUDA GPU with bf16 support ({found}); use {option} fp32")
    if setting == "auto":
        return "bf16" if gpu_bf16 else "tf32" if cuda else "fp32"
    if setting == "tf32" and not cuda:
        return "fp32"
    if setting not in ("fp32", "tf32", "bf16"):
        raise ValueError(f"{option} must be fp32, tf32, bf16 or auto (got {setting!r})")
    return setting


def _git_commit() -> str | None:
    """The project's git commit when run from a checkout (None otherwise)."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def environment_info() -> dict:
    """Package versions, git commit and device, recorded in run.json."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers", "huggingface_hub",
                "nle-humaneval"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})"
    return {"versions": versions, "python": platform.python_version(), "git_commit": _git_commit(),
            "device": device, "torch_threads": torch.get_num_threads()}


def counts_record(counts: ParamCounts) -> dict:
    """The parameter counts as run.json and `params --json` write them (one convention, labelled)."""
    adapter = counts.base_total is not None
    return {
        "trainable": counts.trainable,
        "total": counts.total,
        "percent": round(counts.percent, 4),
        "percent_convention": ("trainable / (base + adapter), PEFT's print_trainable_parameters" if adapter
                               else "trainable / model parameters (distinct tensors)"),
        "base_total": counts.base_total if adapter else counts.total,
        "percent_of_base": round(counts.percent_of_base, 4),
    }


def set_tf32(on: bool) -> bool:
    """TF32 matmuls and convolutions on or off on CUDA (cuDNN's convolutions default to on, so "off" must be
    said); returns whether TF32 is in use."""
    if not torch.cuda.is_available():
        return False
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    return on


def enable_tf32() -> bool:
    """TF32 matmuls and convolutions on CUDA (Ampere and later use them; fp32 accumulation either way)."""
    return set_tf32(True)


def _checkpointing_args(on: bool) -> dict:
    """Gradient (activation) checkpointing under the TrainingArguments name of this transformers version."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    prefix = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    # non-reentrant checkpointing needs no input that requires grad (sparse configs freeze the embeddings)
    return {prefix: on, f"{prefix}_kwargs": {"use_reentrant": False} if on else None}


@dataclass
class Started:
    """When a run began (UTC clock and a monotonic one for its wall time)."""

    utc: dt.datetime
    clock: float


def prepare_run(cfg: TrainConfig) -> tuple[Path, FewShotSplit, torch.nn.Module, PreTrainedTokenizerBase, Started]:
    """The split and base model of a run, then its run directory (emptied of an earlier run's results) with
    split.json: everything that can fail on bad input fails before the directory is touched."""
    run_dir = Path(cfg.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir}: exists and is not a directory")
    if cfg.split_files:
        from generation.splits import read_split_files

        split = read_split_files(cfg.split_files, cfg.dataset, cfg.seed, cfg.data_dir, cfg.sbic_tagger)
    else:
        split = few_shot_split(cfg.dataset, cfg.data_dir, cfg.seed, cfg.n_train, cfg.n_val, cfg.train_ids, cfg.val_ids,
                               cfg.sbic_tagger)
    started = Started(dt.datetime.now(dt.timezone.utc), time.perf_counter())
    set_seed(cfg.seed)
    model, tokenizer = load_base(cfg.model, resize_embeddings=cfg.resize_embeddings)
    if cfg.llama_format == "authors" and not is_decoder_only(model):
        raise ValueError(f"--llama-format authors is the SparseFit authors' Llama-2 set-up; {cfg.model} is an "
                         "encoder-decoder model (use --llama-format project)")

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).unlink(missing_ok=True)  # an interrupted re-run must not look complete
    # Metrics and generations of an earlier training would describe another model: a retrained run must be
    # generated again before the sweep or `results` count it.
    for pattern in ("metrics*.json", "generations*.jsonl", "nles*.jsonl"):
        for stale in run_dir.glob(pattern):
            stale.unlink()
    _write_json(run_dir / SPLIT_FILE, {"dataset": cfg.dataset, "seed": cfg.seed,
                                       "train": [e.id for e in split.train],
                                       # ComVE trains on each pair three times, once per explanation
                                       "train_explanations": [target_explanation(e) for e in split.train],
                                       "validation": [e.id for e in split.validation]})
    return run_dir, split, model, tokenizer, started


def sbic_record(cfg: TrainConfig) -> dict:
    """run.json's note of what built an SBIC run's explanation templates (nothing for other datasets)."""
    if cfg.dataset != "sbic":
        return {}
    from generation.data import sbic_templates_by

    return {"sbic_templates": sbic_templates_by(cfg.data_dir, cfg.sbic_tagger)}


def provenance(run_dir: Path, started: Started) -> dict:
    """run.json's record of where, when and with what a run was made (docs/generation.md, "run.json")."""
    return {"run_dir": str(run_dir.resolve()),
            "started": started.utc.isoformat(timespec="seconds"),
            "ended": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - started.clock, 3),
            **environment_info()}


def train(cfg: TrainConfig, progress: bool = True, verbose: bool = True) -> RunResult:
    """Run one configuration end to end and save it to cfg.out; returns the trained model too.

    Everything that can fail on bad input (data files, split ids, the model) is checked before the run
    directory is created or touched."""
    if cfg.kind == "dect":  # label-only, no gradient into the model: its own short loop
        from generation.dect import train_dect

        return train_dect(cfg, progress, verbose)
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
    timer = _StepTimer()
    callbacks: list[TrainerCallback] = [timer]
    if (fail := _injected_failure(run_dir)) is not None:
        callbacks.append(fail)
    if cfg.kind == "peft":
        model, counts = wrap_and_count(model, cfg.config, total_steps, cfg.lora_r)
        if cfg.config in ("adalora", "adalora_r32"):
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
    extra = (f"; {counts.percent_of_base:.2f} % of the base model's {counts.base_total:,}"
             if counts.base_total is not None else "")
    say(f"[nle-gen] {cfg.config}: trainable {counts.trainable:,} / frozen {counts.frozen:,} "
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

    save_weights(model, cfg, counts, tokenizer, run_dir)
    if decoder_only:  # input_ids hold prompt + target; labels mark the target
        per_example = [forward_flops(sizes, len(f["input_ids"]), 0, True) for f in features]
    else:
        per_example = [forward_flops(sizes, len(f["input_ids"]), len(f["labels"]), False) for f in features]
    mean_forward = sum(per_example) / len(per_example)
    _write_json(run_dir / RUN_FILE, {
        "complete": True,
        "base_model": cfg.model,
        "model_name": run_model_name(cfg),
        "decoder_only": decoder_only,
        "kind": cfg.kind,
        "config": cfg.config,
        "train_config": cfg.to_dict(),
        **counts_record(counts),
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


def load_sparse(model: torch.nn.Module, path: Path, base: str) -> None:
    """Copy the saved tensors into the base model's own storage one at a time, so at most one saved
    tensor is held besides the model (never a second copy of the model or of the whole checkpoint)."""
    params = dict(model.named_parameters())
    with safe_open(path, framework="pt", device="cpu") as f, torch.no_grad():
        for name in f.keys():
            shape = tuple(f.get_slice(name).get_shape())
            if name not in params or tuple(params[name].shape) != shape:
                raise ValueError(f"{path}: tensor {name} does not fit base model {base}")
            params[name].copy_(f.get_tensor(name))


def read_run(run_dir: str | Path) -> dict:
    """The run.json of a completed run; ValueError when the run is missing or incomplete."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir}: not a completed run (no {RUN_FILE})")
    info = json.loads(path.read_text(encoding="utf-8"))
    if not info.get("complete"):
        raise ValueError(f"{path}: run is not complete")
    return info


# The weights each kind of run needs besides its tokenizer.
WEIGHTS = {"sparse": SPARSE_FILE, "full": "model/config.json", "peft": "adapter/adapter_config.json",
           "reft": REFT_FILE, "dect": DECT_FILE}


def check_weights(run_dir: Path, kind: str) -> None:
    """ValueError (one line) when a completed run lacks its tokenizer or weights."""
    for rel in (WEIGHTS[kind], "tokenizer"):
        if not (run_dir / rel).exists():
            raise ValueError(f"{run_dir}: run.json says complete but {rel} is missing (the weights were moved or "
                             "deleted; train again)")


def load_run(run_dir: str | Path, base_model: str | None = None) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, dict]:
    """Rebuild a trained model: base + saved tensors (sparse), the saved model (full_ft) or base + adapter."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    base = base_model or info["base_model"]
    check_weights(run_dir, info["kind"])
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    if info["kind"] == "full":
        config = AutoConfig.from_pretrained(run_dir / "model")
        model = model_class(config).from_pretrained(run_dir / "model", dtype=torch.float32)
    else:
        model, _ = load_base(base, resize_embeddings=info["train_config"].get("resize_embeddings", True))
        if info["train_config"].get("llama_format") == "authors" and is_decoder_only(model):
            add_authors_pad_token(model, tokenizer)  # the run's tokenizer already holds "[PAD]"
        if info["kind"] == "reft":
            from generation.reft import load_reft

            model = load_reft(model, run_dir, info["train_config"])
        elif info["kind"] == "peft":
            from peft import PeftModel

            with quiet_peft_deprecation():
                model = PeftModel.from_pretrained(model, run_dir / "adapter")
        else:
            load_sparse(model, run_dir / SPARSE_FILE, base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.eval()
    return model, tokenizer, info


__all__ = ["FULL_FT", "RunResult", "load_run", "read_run", "train", "encode", "load_base"]
