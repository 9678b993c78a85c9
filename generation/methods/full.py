"""Full fine-tuning: every parameter trains, and the whole model is saved (the paper's baseline `full_ft`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import AutoConfig

from generation.components import FULL_FT, ParamCounts, count_parameters
from generation.methods.base import Method
from generation.modeling import count_unique
from generation.presets import model_class

MODEL_DIR = "model"


class Full(Method):
    name = "full"
    configurations = (FULL_FT,)
    weights = f"{MODEL_DIR}/config.json"

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        return count_parameters(meta_model, FULL_FT)

    def wrap(self, model: torch.nn.Module, cfg, total_steps: int) -> tuple[torch.nn.Module, ParamCounts]:
        for p in model.parameters():
            p.requires_grad_(True)
        return model, count_unique(model)

    def save(self, model: torch.nn.Module, cfg, counts: ParamCounts, run_dir: Path) -> None:
        model.save_pretrained(run_dir / MODEL_DIR)

    def load(self, run_dir: Path, info: dict, base: str, tokenizer) -> torch.nn.Module:
        """The saved model itself; the base model is not read."""
        arch = AutoConfig.from_pretrained(run_dir / MODEL_DIR)
        return model_class(arch).from_pretrained(run_dir / MODEL_DIR, dtype=torch.float32)


METHOD = Full()
