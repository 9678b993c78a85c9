"""LoReFT (Wu et al., 2024, "ReFT: Representation Finetuning for Language Models"), written with forward hooks.

The frozen model's hidden state h at chosen layers and prompt positions becomes h + Rᵀ(W h + b − R h), R having
orthonormal rows (rank r). This follows stanfordnlp/pyreft: pyreft/interventions.py (LoreftIntervention,
LowRankRotateLayer: R under torch's orthogonal parametrization, W h + b a Linear) and pyreft/dataset.py
(parse_positions / get_intervention_locations: "f<n>+l<m>" = the first n and last m prompt tokens, each capped at
half the prompt, separate interventions for the first and the last positions unless weights are shared).
pyreft itself does not fit this project (see docs/baselines.md): it pins transformers==4.45.1 and its
pyvene backend has no T5 support, so the intervention is re-implemented here (no code copied).

Where: T5 edits the encoder's residual stream (the output of encoder block i); Llama edits the decoder's
(the output of decoder layer i) at prompt positions only, so generated tokens are never intervened on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from generation.components import FULL_FT, ParamCounts, count_parameters, family_of, hidden_size
from generation.methods.base import Method
from generation.modeling import base_as_trained

REFT_FILE = "reft.safetensors"  # R, W, b of every intervention
# LoReFT follows its own paper: lr 9e-4 is the ReFT recipe for commonsense reasoning (stanfordnlp/pyreft
# examples/loreft/README.md), the closest of its tasks to e-SNLI / ECQA / SBIC / ComVE; at 3e-5 its few
# parameters barely move in 25 epochs of 12 steps. `--lr 3e-5` gives it the shared budget (docs/baselines.md).
LOREFT_LR = 9e-4

_POSITIONS = re.compile(r"^(?:f(\d+))?\+?(?:l(\d+))?$")


def parse_positions(spec: str) -> tuple[int, int]:
    """'f1+l1' -> (1, 1); 'f3' -> (3, 0); 'l2' -> (0, 2), as pyreft's parse_positions."""
    m = _POSITIONS.match(spec.strip()) if isinstance(spec, str) else None
    if not m or (m.group(1) is None and m.group(2) is None):
        raise ValueError(f"reft positions {spec!r}: expected f<n>+l<m>, f<n> or l<m> (e.g. f1+l1)")
    first, last = int(m.group(1) or 0), int(m.group(2) or 0)
    if (m.group(1) is None or m.group(2) is None) == ("+" in spec):  # '+' exactly when both sides are given
        raise ValueError(f"reft positions {spec!r}: expected f<n>+l<m>, f<n> or l<m> (e.g. f1+l1)")
    if first + last == 0:
        raise ValueError(f"reft positions {spec!r}: intervene on at least one position")
    return first, last


def parse_layers(spec: str, n_layers: int | None = None) -> list[int] | None:
    """'all' -> every layer (None before the model is known); '0,2,5' -> [0, 2, 5]."""
    if spec.strip() == "all":
        return list(range(n_layers)) if n_layers is not None else None
    try:
        layers = sorted({int(x) for x in spec.split(",")})
    except ValueError:
        raise ValueError(f"reft layers {spec!r}: expected 'all' or comma-separated layer numbers such as 0,2,5") from None
    if any(x < 0 for x in layers):
        raise ValueError(f"reft layers {spec!r}: layer numbers start at 0")
    if n_layers is not None and layers[-1] >= n_layers:
        raise ValueError(f"reft layers {spec!r}: the model has layers 0..{n_layers - 1}")
    return layers


@dataclass
class ReftSettings:
    """LoReFT hyperparameters; rank 4 and f1+l1 by default (the ReFT paper tunes both per task)."""

    rank: int = 4
    layers: str = "all"
    positions: str = "f1+l1"
    share_weights: bool = False  # pyreft's default: separate interventions for first and last positions

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError("reft rank must be >= 1")
        parse_positions(self.positions)
        parse_layers(self.layers)

    @property
    def groups(self) -> list[str]:
        """Intervention groups per layer: 'f' and 'l' separately, or one shared 'fl'."""
        first, last = parse_positions(self.positions)
        if self.share_weights or first == 0 or last == 0:
            return ["fl"]
        return ["f", "l"]


class LoreftIntervention(torch.nn.Module):
    """h + Rᵀ(W h + b − R h) with R (rank x dim) kept row-orthonormal by torch's orthogonal parametrization."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        if rank > dim:
            raise ValueError(f"reft rank {rank} exceeds the hidden size {dim}")
        rotate = torch.nn.Linear(dim, rank, bias=False)
        torch.nn.init.orthogonal_(rotate.weight)
        self.rotate = torch.nn.utils.parametrizations.orthogonal(rotate)
        self.learned_source = torch.nn.Linear(dim, rank)

    @property
    def R(self) -> torch.Tensor:  # noqa: N802 - the paper's name
        return self.rotate.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        R = self.R
        return h + (self.learned_source(h.to(R.dtype)) - h.to(R.dtype) @ R.T) @ R

    def n_parameters(self) -> int:
        """R, W and b: what the paper (and pyreft's state_dict) counts and what a run saves."""
        return self.R.numel() + self.learned_source.weight.numel() + self.learned_source.bias.numel()


def locations(prompt_mask: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """Per row, the indices of the first `first` and last `last` prompt tokens (each capped at half the prompt,
    as pyreft does); -1 where a short prompt leaves a slot empty. Shape (batch, first + last)."""
    rows = []
    for mask in prompt_mask.bool():
        idx = mask.nonzero().flatten().tolist()
        f, la = min(len(idx) // 2, first), min(len(idx) // 2, last)
        row = idx[:f] + [-1] * (first - f) + (idx[len(idx) - la:] if la else []) + [-1] * (last - la)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long, device=prompt_mask.device)


def intervene(h: torch.Tensor, locs: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """h with `module` applied at positions `locs` (batch, k) of each row; -1 entries are skipped."""
    valid = (locs >= 0).unsqueeze(-1)
    idx = locs.clamp(min=0).unsqueeze(-1).expand(-1, -1, h.shape[-1])
    picked = h.gather(1, idx)
    delta = (module(picked).to(h.dtype) - picked) * valid
    return h.scatter_add(1, idx, delta)


class ReftModel(torch.nn.Module):
    """A frozen base model plus LoReFT interventions; forward and generate take the base model's arguments."""

    accepts_loss_kwargs = False  # the Trainer must not pass num_items_in_batch through to the base model

    def __init__(self, base: torch.nn.Module, settings: ReftSettings, seed: int = 0) -> None:
        super().__init__()
        self.base = base
        self.settings = settings
        for p in base.parameters():
            p.requires_grad_(False)
        blocks = family_of(base).blocks_of(base)  # T5's encoder blocks, Llama's decoder layers
        self.layers = parse_layers(settings.layers, len(blocks))
        dim = hidden_size(base.config)
        self.first, self.last = parse_positions(settings.positions)
        gen = torch.random.fork_rng()
        with gen:  # the interventions' init depends on the seed only, not on what ran before
            torch.manual_seed(seed)
            self.interventions = torch.nn.ModuleDict({
                f"layer{i}_{g}": LoreftIntervention(dim, settings.rank) for i in self.layers for g in settings.groups})
        self._armed: tuple[torch.Tensor, int] | None = None
        self._handles = [blocks[i].register_forward_hook(self._hook(i)) for i in self.layers]

    @property
    def config(self):  # transformers' name for the architecture, which generation asks the model for
        return self.base.config

    @property
    def decoder_only(self) -> bool:
        return not getattr(self.base.config, "is_encoder_decoder", False)

    def n_parameters(self) -> int:
        return sum(m.n_parameters() for m in self.interventions.values())

    def gradient_checkpointing_enable(self, **kwargs) -> None:
        """Checkpoint the frozen base; its embeddings' output must require grad for gradients to reach R, W, b."""
        enable = getattr(self.base, "activation_checkpointing_enable", None) or self.base.gradient_checkpointing_enable
        enable(**kwargs)  # transformers 5.x renamed it; 4.x has only the old name
        self.base.enable_input_require_grads()

    activation_checkpointing_enable = gradient_checkpointing_enable

    def _hook(self, layer: int):
        def hook(module, args, output):
            if self._armed is None:
                return None
            locs, seq_len = self._armed
            hidden = output[0] if isinstance(output, tuple) else output
            if hidden.shape[1] != seq_len:  # a decoding step after the prompt: generated tokens stay untouched
                return None
            groups = self.settings.groups
            if groups == ["fl"]:
                hidden = intervene(hidden, locs, self.interventions[f"layer{layer}_fl"])
            else:
                hidden = intervene(hidden, locs[:, :self.first], self.interventions[f"layer{layer}_f"])
                hidden = intervene(hidden, locs[:, self.first:], self.interventions[f"layer{layer}_l"])
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
        return hook

    def _arm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor | None) -> None:
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        if self.decoder_only and labels is not None:  # training rows are prompt + target: prompt = unlabelled part
            mask = mask * (labels == -100)
        self._armed = (locations(mask, self.first, self.last), input_ids.shape[1])

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        self._arm(input_ids, attention_mask, labels)
        try:
            return self.base(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        finally:
            self._armed = None

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, **kwargs):
        self._arm(input_ids, attention_mask, None)
        try:
            return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        finally:
            self._armed = None

    # --- saving: only R, W, b --------------------------------------------------------------------

    def reft_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for key, m in self.interventions.items():
            out[f"{key}.R"] = m.R.detach().to("cpu", torch.float32).contiguous()
            out[f"{key}.W"] = m.learned_source.weight.detach().to("cpu", torch.float32).contiguous()
            out[f"{key}.b"] = m.learned_source.bias.detach().to("cpu", torch.float32).contiguous()
        return out

    def save(self, run_dir: Path, base_model: str) -> None:
        s = self.settings
        save_file(self.reft_tensors(), Path(run_dir) / REFT_FILE,
                  metadata={"base_model": base_model, "rank": str(s.rank), "layers": s.layers,
                            "positions": s.positions, "share_weights": str(s.share_weights)})

    def load_tensors(self, path: Path) -> None:
        tensors = load_file(path)
        if set(tensors) != set(self.reft_tensors()):
            raise ValueError(f"{path}: interventions do not match the run's settings and base model")
        with torch.no_grad():
            for key, m in self.interventions.items():
                m.rotate.weight = tensors[f"{key}.R"]  # the parametrization's right inverse keeps R exactly
                m.learned_source.weight.copy_(tensors[f"{key}.W"])
                m.learned_source.bias.copy_(tensors[f"{key}.b"])


def count_loreft(arch, settings: ReftSettings) -> int:
    """LoReFT's trainable parameters for an architecture: per intervention r·d (R) + r·d (W) + r (b)."""
    dim = hidden_size(arch)
    layers = parse_layers(settings.layers, getattr(arch, family_of(arch).depth))
    if settings.rank > dim:
        raise ValueError(f"reft rank {settings.rank} exceeds the hidden size {dim}")
    return len(layers) * len(settings.groups) * (2 * settings.rank * dim + settings.rank)


def settings_of(cfg) -> ReftSettings:
    """The LoReFT settings held by a TrainConfig."""
    return ReftSettings(cfg.reft_rank, cfg.reft_layers, cfg.reft_positions, cfg.reft_share_weights)


def load_reft(base: torch.nn.Module, run_dir: Path, train_config: dict) -> ReftModel:
    """The base model with a run's saved interventions."""
    s = ReftSettings(train_config.get("reft_rank", 4), train_config.get("reft_layers", "all"),
                     train_config.get("reft_positions", "f1+l1"), train_config.get("reft_share_weights", False))
    model = ReftModel(base, s)
    model.load_tensors(Path(run_dir) / REFT_FILE)
    model.eval()
    return model


def wrap(model: torch.nn.Module, cfg) -> tuple[ReftModel, ParamCounts]:
    """Freeze `model` and add the interventions of a TrainConfig; counts as a share of the base model."""
    reft = ReftModel(model, settings_of(cfg), seed=cfg.seed)
    total = count_parameters(model, FULL_FT).total
    return reft, ParamCounts("loreft", total, reft.n_parameters(), list(reft.interventions),
                             notes=["LoReFT: R, W, b of every intervention as a percent of the frozen base model"])


class Reft(Method):
    name = "reft"
    configurations = ("loreft",)
    weights = REFT_FILE
    learning_rate = LOREFT_LR

    def check(self, cfg) -> None:
        settings = settings_of(cfg)
        try:  # a local model's architecture tells whether rank and layers fit, before anything is written
            from transformers import AutoConfig

            arch = AutoConfig.from_pretrained(cfg.model, local_files_only=True)
        except (OSError, ValueError):
            return
        count_loreft(arch, settings)

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        s = ReftSettings(**{k.removeprefix("reft_"): v for k, v in (settings or {}).items() if k.startswith("reft_")})
        return ParamCounts(configuration, count_parameters(meta_model, FULL_FT).total,
                           count_loreft(meta_model.config, s), notes=[
            f"loreft: R, W, b at every {'chosen ' if s.layers != 'all' else ''}layer, rank {s.rank}, "
            f"positions {s.positions} ({len(s.groups)} intervention(s) per layer)"])

    def wrap(self, model: torch.nn.Module, cfg, total_steps: int) -> tuple[torch.nn.Module, ParamCounts]:
        return wrap(model, cfg)

    def save(self, model: torch.nn.Module, cfg, counts: ParamCounts, run_dir: Path) -> None:
        model.save(run_dir, cfg.model)  # only R, W, b

    def load(self, run_dir: Path, info: dict, base: str, tokenizer) -> torch.nn.Module:
        return load_reft(base_as_trained(base, info, tokenizer), run_dir, info["train_config"])


METHOD = Reft()
