"""The paper's PEFT baselines (LoRA, AdaLoRA, (IA)³) through the `peft` library; a run saves the adapter."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import TrainerCallback

from generation.components import ParamCounts, family_of
from generation.methods.base import Method
from generation.modeling import base_as_trained, count_unique, is_decoder_only
from generation.presets import build_meta_model

PEFT_BASELINES = ("lora", "lora_qkvo_r4", "adalora", "adalora_r32", "ia3")
ADAPTER_DIR = "adapter"
LORA_R = 128  # the `lora` baseline's rank (the paper's Table 8 sweeps it: `--lora-r`)


def adapter_spec(model: torch.nn.Module, name: str, total_steps: int, lora_r: int = LORA_R):
    """The paper's PEFT baselines as peft's configuration objects (see docs/generation.md, "PEFT baselines").

    lora: q, v, r = `lora_r` (128), alpha = r. lora_qkvo_r4: q, k, v, o, r 4. adalora: q, k, v, o and the
    feed-forward (T5 wi, wo; Llama gate, up, down) with r 8 as the paper, and the authors' other settings
    (SanniM3/predicitons_with_explanations scripts/input_to_label_and_rationale.py: init_r 8 -> target_r 4,
    alpha 32, dropout 0.1, deltaT 10, orth_reg_weight 0.1). adalora_r32: init r 32 -> target r 4 on the same
    modules (Table 2's 4.48 % on T5-large). ia3: k, v and the feed-forward (wo's input scaled)."""
    from peft import AdaLoraConfig, IA3Config, LoraConfig, TaskType

    names = family_of(model).linear
    task = TaskType.CAUSAL_LM if is_decoder_only(model) else TaskType.SEQ_2_SEQ_LM
    present = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    ff = [n for n in names["ff"] if n in present]
    qv, qkvo, kv = list(names["qv"]), list(names["qkvo"]), list(names["kv"])
    if name == "lora":
        return LoraConfig(task_type=task, r=lora_r, lora_alpha=lora_r, lora_dropout=0.0, target_modules=qv)
    if name == "lora_qkvo_r4":
        return LoraConfig(task_type=task, r=4, lora_alpha=4, lora_dropout=0.0, target_modules=qkvo)
    if name == "adalora":
        # AdaLoRA's budget schedule needs tinit + tfinal < total_step; the authors' 500/1000 of 1600 steps
        # is kept as a proportion of the run's length.
        total = max(total_steps, 10)
        common = dict(task_type=task, target_modules=qkvo + ff, total_step=total,
                      tinit=total * 5 // 16, tfinal=total * 10 // 16)
        return AdaLoraConfig(init_r=8, target_r=4, lora_alpha=32, lora_dropout=0.1, deltaT=10, orth_reg_weight=0.1,
                             **common)
    if name == "adalora_r32":
        # Table 2's 4.48 % row: the authors' T5 set-up (SanniM3/predicitons_with_explanations d9b9185,
        # "attn and ffn adalora setting3"), init r 32 -> target r 4 on the same modules, PEFT's defaults otherwise.
        return AdaLoraConfig(task_type=task, target_modules=qkvo + ff, total_step=max(total_steps, 10),
                             init_r=32, target_r=4, lora_alpha=32, lora_dropout=0.1, tinit=0, tfinal=0, deltaT=1,
                             orth_reg_weight=0.5)
    if name == "ia3":
        return IA3Config(task_type=task, target_modules=kv + ff,
                         feedforward_modules=[n for n in names["ff_out"] if n in present])
    raise ValueError(f"unknown PEFT baseline {name!r}; known: {', '.join(PEFT_BASELINES)}")


@contextlib.contextmanager
def quiet_peft_deprecation():
    """Hide only transformers' FutureWarning about `is_gradient_checkpointing`: PEFT asks the model for the old
    name when it wraps or loads an adapter, and the warning is for PEFT's authors, not for our users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def apply_peft(model: torch.nn.Module, name: str, total_steps: int, lora_r: int = LORA_R) -> torch.nn.Module:
    """Wrap the model with a PEFT baseline (`adapter_spec`)."""
    from peft import get_peft_model

    with quiet_peft_deprecation():
        return get_peft_model(model, adapter_spec(model, name, total_steps, lora_r))


def wrap_and_count(model: torch.nn.Module, name: str, total_steps: int = 100,
                   lora_r: int = LORA_R) -> tuple[torch.nn.Module, ParamCounts]:
    """Wrap `model` (meta or real) with a PEFT baseline and count it: the one count behind params, train and
    run.json."""
    base_total = count_unique(model).total
    wrapped = apply_peft(model, name, total_steps, lora_r)
    counts = count_unique(wrapped, base_total=base_total)
    counts.configuration = name
    return wrapped, counts


class _AdaLoraBudget(TrainerCallback):
    """AdaLoRA reallocates ranks after each optimizer step, before gradients are zeroed."""

    def __init__(self, model) -> None:
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


class Peft(Method):
    name = "peft"
    configurations = PEFT_BASELINES
    weights = f"{ADAPTER_DIR}/adapter_config.json"

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        with torch.device("meta"):  # its own copy: wrapping changes the model
            fresh = build_meta_model(meta_model.config)
            return wrap_and_count(fresh, configuration, lora_r=(settings or {}).get("lora_r", LORA_R))[1]

    def wrap(self, model: torch.nn.Module, cfg, total_steps: int) -> tuple[torch.nn.Module, ParamCounts]:
        return wrap_and_count(model, cfg.configuration, total_steps, cfg.lora_r)

    def callbacks(self, model: torch.nn.Module, cfg) -> list[TrainerCallback]:
        return [_AdaLoraBudget(model)] if cfg.configuration in ("adalora", "adalora_r32") else []

    def save(self, model: torch.nn.Module, cfg, counts: ParamCounts, run_dir: Path) -> None:
        model.save_pretrained(run_dir / ADAPTER_DIR)

    def load(self, run_dir: Path, info: dict, base: str, tokenizer) -> torch.nn.Module:
        from peft import PeftModel

        model = base_as_trained(base, info, tokenizer)
        with quiet_peft_deprecation():
            return PeftModel.from_pretrained(model, run_dir / ADAPTER_DIR)


METHOD = Peft()
