"""The typed configuration of one training run (validated on construction)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from generation.components import FULL_FT, OTHER_BASELINES, PEFT_BASELINES, parse_configuration
from generation.data import DATASETS, SBIC_TAGGERS

SHARED_LR = 3e-5  # the paper's (SparseFit): AdamW, constant, for every configuration
# fp32: the paper's numerics (FEB's deepspeed_config.json has no fp16/bf16 section; no TF32 either);
# tf32: fp32 weights with TF32 matmuls; bf16: bf16 autocast + TF32; auto: bf16 where the GPU supports it.
PRECISIONS = ("fp32", "tf32", "bf16", "auto")
# The SparseFit authors' Llama-2 runs (SanniM3/predicitons_with_explanations scripts/exp.py): per-device batch 1,
# gradient accumulation 8, max_steps 300.
AUTHORS_LLAMA = {"batch_size": 1, "gradient_accumulation_steps": 8, "max_steps": 300}
PROJECT = {"batch_size": 4, "gradient_accumulation_steps": 1, "max_steps": -1}
# LoReFT follows its own paper: lr 9e-4 is the ReFT recipe for commonsense reasoning (stanfordnlp/pyreft
# examples/loreft/README.md), the closest of its tasks to e-SNLI / ECQA / SBIC / ComVE; at 3e-5 its few
# parameters barely move in 25 epochs of 12 steps. `--lr 3e-5` gives it the shared budget (docs/baselines.md).
LOREFT_LR = 9e-4


def default_learning_rate(config: str) -> float:
    """The learning rate a configuration trains with when none is given."""
    return LOREFT_LR if config == "loreft" else SHARED_LR


@dataclass
class TrainConfig:
    """Everything `nle-gen train` needs; defaults are the paper's (AdamW, lr 3e-5 constant, batch 4, 25 epochs,
    fp32; LoReFT: lr 9e-4 as the ReFT paper). None = resolved here: learning_rate by configuration; batch_size,
    gradient_accumulation_steps and max_steps by llama_format (authors: 1, 8, 300)."""

    model: str
    dataset: str
    data_dir: str
    seed: int
    config: str
    out: str
    epochs: float = 25
    batch_size: int | None = None  # 4; --llama-format authors: 1
    gradient_accumulation_steps: int | None = None  # 1; --llama-format authors: 8
    learning_rate: float | None = None
    n_train: int = 48
    n_val: int = 350
    train_ids: list[str] | None = None
    val_ids: list[str] | None = None
    split_files: str | None = None  # a folder with FEB's <task>_train_<seed>.json / <task>_validation_<seed>.json
    llama_format: str = "project"  # decoder-only models: "project" or "authors" (SanniM3/predicitons_with_explanations)
    max_input_tokens: int = 512
    max_target_tokens: int = 128
    max_steps: int | None = None  # > 0 overrides epochs; -1: epochs; --llama-format authors: 300
    precision: str = "fp32"  # one of PRECISIONS
    sbic_tagger: str = "auto"  # SBIC templates' first-word tagger: auto (spaCy if installed), spacy, builtin
    logging_steps: int = 5
    lora_r: int = 128  # rank of the `lora` baseline (the paper's Table 8 sweeps it)
    resize_embeddings: bool = True  # T5: resize to len(tokenizer) = 32,100 rows, as FEB does
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, one more forward
    model_name: str | None = None  # the name `results` groups the run under; None = the hub id of `model`
    # LoReFT and DecT options (generation/reft.py, generation/dect.py); ignored by other configurations
    reft_rank: int = 4
    reft_layers: str = "all"
    reft_positions: str = "f1+l1"
    reft_share_weights: bool = False
    dect_lambda: float = 1.0
    dect_proto_dim: int = 128
    dect_epochs: int = 30
    dect_lr: float = 0.01
    dect_calibration: str = "empty"
    dect_train_prototypes: bool = False
    dect_prior: str = "logits"

    def __post_init__(self) -> None:
        if self.llama_format not in ("project", "authors"):
            raise ValueError("llama_format must be 'project' or 'authors'")
        for name, value in (AUTHORS_LLAMA if self.llama_format == "authors" else PROJECT).items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if not self.model:
            raise ValueError("model must be a hub name or a local path")
        if self.model_name is not None and (not self.model_name.strip() or not self.model_name.isprintable()):
            raise ValueError(f"model_name must be a non-empty printable name such as t5-large (got {self.model_name!r})")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}")
        if self.config not in PEFT_BASELINES and self.config not in OTHER_BASELINES:
            parse_configuration(self.config)
        if self.lora_r != 128 and self.config != "lora":
            raise ValueError(f"lora_r applies to the 'lora' baseline only, not to {self.config!r}")
        if self.config in OTHER_BASELINES:
            from generation.baselines import validate

            validate(self)
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("epochs must be > 0 (or max_steps > 0)")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.gradient_accumulation_steps < 1:
            raise ValueError("gradient_accumulation_steps must be >= 1")
        if self.learning_rate is None:
            self.learning_rate = default_learning_rate(self.config)
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be > 0")
        if self.n_train < 1 or self.n_val < 1:
            raise ValueError("n_train and n_val must be >= 1")
        if self.max_input_tokens < 8 or self.max_target_tokens < 4:
            raise ValueError("max_input_tokens must be >= 8 and max_target_tokens >= 4")
        if self.split_files and (self.train_ids or self.val_ids):
            raise ValueError("split_files and train_ids/val_ids are alternatives; give one")
        if self.lora_r < 1:
            raise ValueError("lora_r must be >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.sbic_tagger not in SBIC_TAGGERS:
            raise ValueError(f"sbic_tagger must be one of {', '.join(SBIC_TAGGERS)}")

    @property
    def kind(self) -> str:
        """'full', 'peft', 'reft', 'dect' or 'sparse'."""
        if self.config in OTHER_BASELINES:
            return "reft" if self.config == "loreft" else "dect"
        return "full" if self.config == FULL_FT else "peft" if self.config in PEFT_BASELINES else "sparse"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        if "precision" not in data and "bf16" in data:  # run.json written before `precision` replaced `bf16`
            data = {**data, "precision": {"yes": "bf16", "no": "fp32"}.get(data["bf16"], "auto")}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text())["train_config"])
