"""The interface every training method implements.

A method is one way of training a base model for the task: which parameters it trains and how, what it saves in
the run directory and how it loads that back, and how it counts what it trains. Each method is one module of
`generation.methods` holding one `Method` object, registered in that package's `METHODS` table (PEFT's
`tuners/` are the model). `TrainConfig` asks the table which method trains a configuration; `train`, `generate`,
`params` and the sweep ask the method.

Two kinds of method:
- gradient methods (`label_only = False`) are trained by `generation.train`'s Trainer loop: they implement
  `wrap` (make trainable what the configuration trains), `save` and `load`; `callbacks` when they need one.
- label-only methods (`label_only = True`) train a classifier over the frozen model and write no explanation:
  they implement `train` and `evaluate` themselves (DecT).

A method receives the run's `TrainConfig` as `cfg` (it reads its own fields of it, such as `lora_r`) and
run.json's contents as `info`. Methods never import
`generation.config`: the config asks the methods, not the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase, TrainerCallback

    from generation.components import ParamCounts
    from generation.modeling import RunResult


class Method:
    """One training method. Class attributes describe it; the functions are called by `train`, `generate`,
    `params` and `TrainConfig`."""

    name: str = ""  # run.json's "kind"
    configurations: tuple[str, ...] = ()  # the configuration names it trains (`train --config`), in listing order
    weights: str = ""  # what a run keeps beside its tokenizer: a file or folder of the run directory
    label_only: bool = False  # a classifier over the frozen model: no explanation, so no NLE file
    learning_rate: float | None = None  # its default when `--lr` is not given (None: the shared 3e-5)

    def accepts(self, configuration: str) -> bool:
        """Whether it trains `configuration` (beyond the names it lists, e.g. SparseFit's '+' combinations)."""
        return configuration in self.configurations

    def listed(self, family: str) -> list[str]:
        """The configurations `nle-gen params` lists for a model family."""
        return list(self.configurations)

    def check(self, cfg) -> None:
        """ValueError for settings of this method that cannot work, before anything is read or written."""

    def count(self, meta_model: torch.nn.Module, configuration: str, settings: Mapping | None = None) -> ParamCounts:
        """What `configuration` trains, counted on a model built on the meta device (shapes, no weights), which
        it leaves unchanged. `settings`: TrainConfig fields that change the count (e.g. lora_r); missing ones
        take their defaults."""
        raise NotImplementedError

    # --- gradient methods -------------------------------------------------------------------------

    def wrap(self, model: torch.nn.Module, cfg, total_steps: int) -> tuple[torch.nn.Module, ParamCounts]:
        """The model to hand to the Trainer (the same one, frozen but for what the configuration trains, or a
        wrapper) and its counts."""
        raise NotImplementedError

    def callbacks(self, model: torch.nn.Module, cfg) -> list[TrainerCallback]:
        """Trainer callbacks the method needs (e.g. AdaLoRA's rank budget)."""
        return []

    def save(self, model: torch.nn.Module, cfg, counts: ParamCounts, run_dir: Path) -> None:
        """Write what was trained into the run directory (its `weights`); the tokenizer is saved by `train`."""
        raise NotImplementedError

    def load(self, run_dir: Path, info: dict, base: str, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
        """The trained model of a run: `base` (a hub name or path) with what `save` wrote."""
        raise NotImplementedError

    # --- label-only methods -----------------------------------------------------------------------

    def train(self, cfg, progress: bool = True, verbose: bool = True) -> RunResult:
        """Train and save a run end to end (run.json written last)."""
        raise NotImplementedError

    def evaluate(self, run_dir: Path, split: str = "validation", batch_size: int = 16, data_dir: str | None = None,
                 base_model: str | None = None, progress: bool = True, precision: str = "fp32") -> dict:
        """Score a run on a split: write its metrics file (with "nle": null) and generations file; return the
        metrics."""
        raise NotImplementedError
