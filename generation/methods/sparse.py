"""SparseFit (Solano et al., 2023): train only the tensors of a configuration of components (`att_q+layer_norm`),
keep the rest of the model frozen, and save only the trained tensors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from generation.components import (
    FULL_FT,
    ParamCounts,
    all_configurations,
    count_parameters,
    parse_configuration,
    select_trainable_parameters,
)
from generation.methods.base import Method
from generation.modeling import base_as_trained

SPARSE_FILE = "trainable.safetensors"


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


class Sparse(Method):
    name = "sparse"
    weights = SPARSE_FILE

    def accepts(self, configuration: str) -> bool:
        try:
            return parse_configuration(configuration) != (FULL_FT,)
        except ValueError:
            return False

    def listed(self, family: str) -> list[str]:
        return all_configurations(family)

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        return count_parameters(meta_model, configuration)

    def wrap(self, model: torch.nn.Module, cfg, total_steps: int) -> tuple[torch.nn.Module, ParamCounts]:
        return model, select_trainable_parameters(model, cfg.configuration)

    def save(self, model: torch.nn.Module, cfg, counts: ParamCounts, run_dir: Path) -> None:
        params = dict(model.named_parameters())
        save_file({n: params[n].detach().to("cpu", torch.float32).contiguous() for n in counts.trainable_names},
                  run_dir / SPARSE_FILE, metadata={"base_model": cfg.model, "config": cfg.configuration})

    def load(self, run_dir: Path, info: dict, base: str, tokenizer) -> torch.nn.Module:
        model = base_as_trained(base, info, tokenizer)
        load_sparse(model, run_dir / SPARSE_FILE, base)
        return model


METHOD = Sparse()
