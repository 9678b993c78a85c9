"""Model families and components (named parameter groups): which tensors a SparseFit configuration trains.

A configuration is one component, several joined by '+' (`att_q+layer_norm`), or `full_ft`.
Counting rule (reproduces the paper's T5-large percentages): the denominator is every *distinct*
parameter tensor of the model, so tied tensors count once; a component selects a tensor when *any*
of its names matches, so `lm_head` of T5 v1.0 selects the shared embedding matrix (which is tied to
lm_head), while `encoder` / `decoder` mean the transformer stacks without that embedding.

`FAMILIES` is everything the project knows about T5 and Llama in one table: parameter names, the linear layers
PEFT adapts, the architecture fields of width and depth, the blocks LoReFT edits, and FEB's embedding resize.
Torch is needed only to count a model's tensors, never to import this module.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

FULL_FT = "full_ft"  # every parameter of the model
COMPONENTS = (
    "encoder", "decoder", "lm_head", "att_q", "att_k", "att_v", "att_o", "self_attention",
    "dense_wi", "dense_wo", "layer_norm",
)


@dataclass(frozen=True)
class Family:
    """What the project knows about one model family."""

    name: str
    model_types: tuple[str, ...]  # transformers' `model_type` values of the family
    encoder_decoder: bool
    # component -> parameter-name pattern, matched with re.search (so PEFT's "base_model.model." prefix does not
    # matter); None: the family has no such component
    rules: dict[str, str | None]
    # the linear layers PEFT adapts, by role: qv, qkvo, kv, ff (every feed-forward layer), ff_out (its output)
    linear: dict[str, tuple[str, ...]]
    width: str  # the architecture field holding the hidden size
    depth: str  # ... and the number of blocks
    blocks: str  # attribute path from the model to the blocks whose output LoReFT edits
    # FEB (allenai/feb scripts/input_to_label_and_rationale.py) resizes T5's embeddings to len(tokenizer)
    resize_embeddings: bool

    def blocks_of(self, model):
        return attrgetter(self.blocks)(model)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(
        "t5", ("t5", "mt5", "umt5"), encoder_decoder=True,
        rules={
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
        linear={"qv": ("q", "v"), "qkvo": ("q", "k", "v", "o"), "kv": ("k", "v"), "ff": ("wi", "wi_0", "wi_1", "wo"),
                "ff_out": ("wo",)},
        width="d_model", depth="num_layers", blocks="encoder.block", resize_embeddings=True,
    ),
    Family(
        "llama", ("llama", "mistral", "qwen2", "qwen3"), encoder_decoder=False,
        rules={
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
        linear={"qv": ("q_proj", "v_proj"), "qkvo": ("q_proj", "k_proj", "v_proj", "o_proj"),
                "kv": ("k_proj", "v_proj"), "ff": ("gate_proj", "up_proj", "down_proj"), "ff_out": ("down_proj",)},
        width="hidden_size", depth="num_hidden_layers", blocks="model.layers", resize_embeddings=False,
    ),
)}
RULES: dict[str, dict[str, str | None]] = {name: f.rules for name, f in FAMILIES.items()}


def find_family(model_or_arch) -> Family | None:
    """The family of a model or of its architecture (transformers config); None when the project has no rules
    for it."""
    arch = getattr(model_or_arch, "config", model_or_arch)
    model_type = getattr(arch, "model_type", "")
    for fam in FAMILIES.values():
        if model_type in fam.model_types and fam.encoder_decoder == bool(getattr(arch, "is_encoder_decoder", False)):
            return fam
    return None


def family_of(model_or_arch) -> Family:
    """As `find_family`, with a ValueError for a model the project has no rules for."""
    fam = find_family(model_or_arch)
    if fam is None:
        model_type = getattr(getattr(model_or_arch, "config", model_or_arch), "model_type", "")
        raise ValueError(f"no component rules for model type {model_type!r} (supported: T5 and Llama-style models)")
    return fam


def family(model_or_arch) -> str:
    """'t5' for T5/UnifiedQA-style encoder-decoders, 'llama' for Llama-style decoder-only models."""
    return family_of(model_or_arch).name


def hidden_size(arch) -> int:
    """The width of a model's hidden states, from its architecture."""
    return getattr(arch, family_of(arch).width)


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
    if not FAMILIES[fam].encoder_decoder:  # its decoder stack contains every inner component
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


def parse_configuration(configuration: str, named: Sequence[str] = ()) -> tuple[str, ...]:
    """Split `a+b` into components; `full_ft` gives ('full_ft',). ValueError for unknown or repeated names, listing
    the valid ones: components and `named` (the configurations the training methods offer by name)."""
    if not isinstance(configuration, str) or not configuration.strip():
        raise ValueError("a configuration must be a non-empty string such as 'att_q+layer_norm' or 'full_ft'")
    if configuration == FULL_FT:
        return (FULL_FT,)
    names = list(dict.fromkeys([FULL_FT, *named]))
    parts = tuple(p.strip() for p in configuration.split("+"))
    for p in parts:
        if p not in COMPONENTS:
            hint = " (full_ft and the baselines cannot be combined with components)" if p in names else ""
            close = difflib.get_close_matches(configuration, [*names, *COMPONENTS], n=1)
            if close and not hint:
                hint = f" (did you mean {close[0]!r}?)"
            raise ValueError(f"unknown component {p!r} in configuration {configuration!r}{hint}; valid configurations: "
                             f"{', '.join(names)}, or components joined by '+' from {', '.join(COMPONENTS)} "
                             f"(nle-gen params lists all {len(all_configurations())} of the paper's)")
    if len(set(parts)) != len(parts):
        raise ValueError(f"configuration {configuration!r} names a component twice")
    return parts


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

    configuration: str
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

    def record(self) -> dict:
        """The counts as run.json and `params --json` write them (one convention, labelled)."""
        adapter = self.base_total is not None
        return {
            "trainable": self.trainable,
            "total": self.total,
            "percent": round(self.percent, 4),
            "percent_convention": ("trainable / (base + adapter), PEFT's print_trainable_parameters" if adapter
                                   else "trainable / model parameters (distinct tensors)"),
            "base_total": self.base_total if adapter else self.total,
            "percent_of_base": round(self.percent_of_base, 4),
        }


def _aliases(model: torch.nn.Module) -> dict[int, list[str]]:
    """id(parameter) -> all its names, canonical (first) name first; tied tensors have several."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return names


def count_parameters(model: torch.nn.Module, configuration: str) -> ParamCounts:
    """Count what a SparseFit configuration (or `full_ft`) would train, without changing the model."""
    parts = parse_configuration(configuration)
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
    return ParamCounts(configuration, total, trainable, chosen, notes)


def select_trainable_parameters(model: torch.nn.Module, configuration: str) -> ParamCounts:
    """Freeze every parameter except those of `configuration`; return the counts (tied weights counted once)."""
    counts = count_parameters(model, configuration)
    keep = set(counts.trainable_names)
    for name, param in model.named_parameters():  # deduplicated: canonical names only
        param.requires_grad_(name in keep)
    if counts.trainable == 0:
        raise ValueError(f"configuration {configuration!r} selects no parameter of this model")
    return counts
