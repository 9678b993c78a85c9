"""Components (named parameter groups) and configurations: which tensors a SparseFit run trains.

A configuration is one component, several joined by '+' (`att_q+layer_norm`), or `full_ft`.
Counting rule (reproduces the paper's T5-large percentages): the denominator is every *distinct*
parameter tensor of the model, so tied tensors count once; a component selects a tensor when *any*
of its names matches, so `lm_head` of T5 v1.0 selects the shared embedding matrix (which is tied to
lm_head), while `encoder` / `decoder` mean the transformer stacks without that embedding.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from itertools import combinations

import torch

FULL_FT = "full_ft"
PEFT_BASELINES = ("lora", "lora_qkvo_r4", "adalora", "adalora_r32", "ia3")
# Issue 14: LoReFT (generation/reft.py) and DecT (generation/dect.py, label-only).
OTHER_BASELINES = ("loreft", "dect")
COMPONENTS = (
    "encoder", "decoder", "lm_head", "att_q", "att_k", "att_v", "att_o", "self_attention",
    "dense_wi", "dense_wo", "layer_norm",
)
# A name is matched with re.search, so prefixes such as PEFT's "base_model.model." do not matter.
RULES: dict[str, dict[str, str | None]] = {
    "t5": {
        "encoder": r"(^|\.)encoder\.(?!embed_tokens)",
        "decoder": r"(^|\.)decoder\.(?!embed_tokens)",  # includes the cross-attention (EncDecAttention)
        "lm_head": r"(^|\.)lm_head\.",
        "att_q": r"\.SelfAttention\.q\.",
        "att_k": r"\.SelfAttention\.k\.",
        "att_v": r"\.SelfAttention\.v\.",
        "att_o": r"\.SelfAttention\.o\.",
        "self_attention": r"\.SelfAttention\.[qkv]\.",
        "dense_wi": r"\.DenseReluDense\.wi(_[01])?\.",
        "dense_wo": r"\.DenseReluDense\.wo\.",
        "layer_norm": r"layer_norm\.",
    },
    "llama": {
        "encoder": None,
        "decoder": r"(^|\.)model\.(layers|norm)\.",
        "lm_head": r"(^|\.)lm_head\.",
        "att_q": r"\.self_attn\.q_proj\.",
        "att_k": r"\.self_attn\.k_proj\.",
        "att_v": r"\.self_attn\.v_proj\.",
        "att_o": r"\.self_attn\.o_proj\.",
        "self_attention": r"\.self_attn\.[qkv]_proj\.",
        "dense_wi": r"\.mlp\.(gate|up)_proj\.",
        "dense_wo": r"\.mlp\.down_proj\.",
        "layer_norm": r"(input_layernorm|post_attention_layernorm)\.|(^|\.)model\.norm\.",
    },
}
# The paper's configuration list (SparseFit, Table 1 and appendix): every single component and every pair,
# encoder+X and decoder+X included, except encoder+decoder (almost full fine-tuning) and the pairs whose
# tensor set equals one already listed: self_attention+att_q/k/v == self_attention on T5. On T5 that leaves
# 11 + 55 - 1 - 3 = 62; `distinct_configurations` recomputes the deduplication on any model (on Llama,
# decoder+X == decoder for every X inside the layers, so it gives fewer).
_EXCLUDED_PAIRS = {frozenset({"encoder", "decoder"})}
_SAME_AS_SINGLE = {frozenset({"self_attention", a}) for a in ("att_q", "att_k", "att_v")}


def all_configurations(fam: str = "t5") -> list[str]:
    """The paper's SparseFit configurations: every single component and every pair (62 on T5)."""
    singles = [c for c in COMPONENTS if RULES[fam][c] is not None]
    pairs = [f"{a}+{b}" for a, b in combinations(singles, 2)
             if frozenset({a, b}) not in _EXCLUDED_PAIRS | _SAME_AS_SINGLE]
    if fam == "llama":  # decoder = model.layers.* + model.norm: it contains every inner component
        pairs = [p for p in pairs if not (p.startswith("decoder+") and p != "decoder+lm_head")]
    return singles + pairs


def distinct_configurations(model: torch.nn.Module) -> list[str]:
    """Singles and pairs (minus encoder+decoder) whose selected tensor sets are pairwise different,
    first occurrence kept; computed from the model's parameter names (the check behind `all`)."""
    fam = family(model)
    singles = [c for c in COMPONENTS if RULES[fam][c] is not None]
    candidates = singles + [f"{a}+{b}" for a, b in combinations(singles, 2)
                            if frozenset({a, b}) not in _EXCLUDED_PAIRS]
    seen: set[frozenset[str]] = set()
    out = []
    for c in candidates:
        key = frozenset(count_parameters(model, c).trainable_names)
        if key and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def known_configuration_names() -> list[str]:
    """Every name `train --config` accepts besides arbitrary a+b combinations (for error messages)."""
    return [*all_configurations(), FULL_FT, *PEFT_BASELINES]


def parse_configuration(config: str) -> tuple[str, ...]:
    """Split `a+b` into components; `full_ft` gives ('full_ft',). ValueError for unknown or repeated names."""
    if not isinstance(config, str) or not config.strip():
        raise ValueError("a configuration must be a non-empty string such as 'att_q+layer_norm' or 'full_ft'")
    if config == FULL_FT:
        return (FULL_FT,)
    parts = tuple(p.strip() for p in config.split("+"))
    for p in parts:
        if p not in COMPONENTS:
            hint = (" (full_ft and the baselines cannot be combined with components)"
                    if p in PEFT_BASELINES or p in OTHER_BASELINES or p == FULL_FT else "")
            close = difflib.get_close_matches(config, [FULL_FT, *PEFT_BASELINES, *OTHER_BASELINES, *COMPONENTS], n=1)
            if close and not hint:
                hint = f" (did you mean {close[0]!r}?)"
            raise ValueError(f"unknown component {p!r} in configuration {config!r}{hint}; valid configurations: "
                             f"{FULL_FT}, the PEFT baselines {', '.join(PEFT_BASELINES)}, the baselines "
                             f"{', '.join(OTHER_BASELINES)}, or components joined "
                             f"by '+' from {', '.join(COMPONENTS)} (nle-gen params lists all "
                             f"{len(all_configurations())} of the paper's)")
    if len(set(parts)) != len(parts):
        raise ValueError(f"configuration {config!r} names a component twice")
    return parts


def family(model_or_config) -> str:
    """'t5' for T5/UnifiedQA-style encoder-decoders, 'llama' for Llama-style decoder-only models."""
    cfg = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(cfg, "model_type", "")
    if model_type in ("t5", "mt5", "umt5"):
        return "t5"
    if not getattr(cfg, "is_encoder_decoder", False) and model_type in ("llama", "mistral", "qwen2", "qwen3"):
        return "llama"
    raise ValueError(f"no component rules for model type {model_type!r} (supported: T5 and Llama-style models)")


def component_matches(name: str, component: str, fam: str) -> bool:
    """Whether parameter `name` belongs to `component` under the rules of model family `fam`."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")
    rule = RULES[fam][component]
    if rule is None:
        raise ValueError(f"component {component!r} does not exist in {fam} models")
    return re.search(rule, name) is not None


@dataclass
class ParamCounts:
    """Distinct-tensor parameter counts of one configuration on one model."""

    config: str
    total: int
    trainable: int
    trainable_names: list[str] = field(default_factory=list)  # canonical names (first alias)
    notes: list[str] = field(default_factory=list)
    # PEFT adapters: the base model's size; `total` is then base + adapter (PEFT's print_trainable_parameters
    # convention), and `percent_of_base` the share of the base model.
    base_total: int | None = None

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def percent(self) -> float:
        """trainable / total: for adapters total includes them (PEFT's convention), else the model's size."""
        return 100.0 * self.trainable / self.total if self.total else 0.0

    @property
    def percent_of_base(self) -> float:
        """trainable / the base model's parameters (the same as `percent` for sparse and full runs)."""
        base = self.base_total or self.total
        return 100.0 * self.trainable / base if base else 0.0


def _aliases(model: torch.nn.Module) -> dict[int, list[str]]:
    """id(parameter) -> all its names, canonical (first) name first; tied tensors have several."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return names


def count_parameters(model: torch.nn.Module, config: str) -> ParamCounts:
    """Count what `config` would train, without changing the model."""
    parts = parse_configuration(config)
    fam = None if parts == (FULL_FT,) else family(model)
    params = {id(p): p for p in model.parameters()}
    total = trainable = 0
    chosen: list[str] = []
    notes: list[str] = []
    for pid, names in _aliases(model).items():
        n = params[pid].numel()
        total += n
        hit = parts == (FULL_FT,) or any(component_matches(nm, c, fam) for c in parts for nm in names)
        if hit:
            trainable += n
            chosen.append(names[0])
            if len(names) > 1 and parts != (FULL_FT,):
                notes.append(f"{' = '.join(names)} are one tied tensor: training it changes all of them "
                             "(counted once)")
    return ParamCounts(config, total, trainable, chosen, notes)


def select_trainable_parameters(model: torch.nn.Module, config: str) -> ParamCounts:
    """Freeze every parameter except those of `config`; return the counts (tied weights counted once)."""
    counts = count_parameters(model, config)
    keep = set(counts.trainable_names)
    for name, param in model.named_parameters():  # deduplicated: canonical names only
        param.requires_grad_(name in keep)
    if counts.trainable == 0:
        raise ValueError(f"configuration {config!r} selects no parameter of this model")
    return counts
