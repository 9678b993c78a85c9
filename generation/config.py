"""`TrainConfig`: everything one training run needs, validated on construction, and the protocol's defaults.

Each field is written once. Its type, its default and the one-line help in its metadata are also its
`nle-gen train` option (`generation.options` derives the options; `flag` names an option that differs from
the field, `only_for` limits a setting to some configurations), so a new setting is one new field here.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generation.data import DATASETS, SBIC_TAGGERS

if TYPE_CHECKING:
    from generation.methods.base import Method

SHARED_LR = 3e-5  # the paper's (SparseFit): AdamW, constant, for every configuration
# fp32: the paper's numerics (FEB's deepspeed_config.json has no fp16/bf16 section; no TF32 either);
# tf32: fp32 weights with TF32 matmuls; bf16: bf16 autocast + TF32; auto: bf16 where the GPU supports it.
PRECISIONS = ("fp32", "tf32", "bf16", "auto")
LLAMA_FORMATS = ("project", "authors")
# The SparseFit authors' Llama-2 runs (SanniM3/predicitons_with_explanations scripts/exp.py): per-device batch 1,
# gradient accumulation 8, max_steps 300.
AUTHORS_LLAMA = {"batch_size": 1, "gradient_accumulation_steps": 8, "max_steps": 300}
PROJECT = {"batch_size": 4, "gradient_accumulation_steps": 1, "max_steps": -1}
# The model per dataset in FEB (scripts/exp.py pairs e-SNLI's 'standard' format with T5 and the 'unifiedqa_*'
# formats of ECQA, SBIC and ComVE with UnifiedQA) and in the paper.
PROTOCOL_MODELS = {"esnli": "t5-large", "ecqa": "allenai/unifiedqa-t5-large", "sbic": "allenai/unifiedqa-t5-large",
                   "comve": "allenai/unifiedqa-t5-large"}
# Option groups of `nle-gen train --help`, for the settings of one method.
GROUPS = {"loreft": "LoReFT options (--config loreft)", "dect": "DecT options (--config dect; label only)"}
# run.json's train_config keeps the key its first version wrote for the configuration.
_FILE_KEYS = {"configuration": "config"}


def setting(default: Any = MISSING, help: str | None = None, **option: Any) -> Any:
    """A TrainConfig field and its option: `help` (None: no command-line option) and what generation.options
    reads besides type and default: flag, choices, positive, convert, option_default, group, only_for."""
    return field(default=default, metadata={"help": help, **option})


@dataclass
class TrainConfig:
    """Everything `nle-gen train` needs; defaults are the paper's (AdamW, lr 3e-5 constant, batch 4, 25 epochs,
    fp32; LoReFT: lr 9e-4 as the ReFT paper). None = resolved here: learning_rate by the configuration's method;
    batch_size, gradient_accumulation_steps and max_steps by llama_format (authors: 1, 8, 300)."""

    model: str = setting(help="hub name or local path of the base model", convert="model")
    dataset: str = setting(help="which dataset", choices=DATASETS)
    data_dir: str = setting(help="the dataset's folder (raw release files)", convert="path")
    seed: int = setting(help="split and training seed")
    configuration: str = setting(help="e.g. att_q+layer_norm, full_ft, lora, lora_qkvo_r4, adalora, adalora_r32, "
                                "ia3, loreft, dect", flag="--config")
    out: str = setting(help="run directory", convert="path")
    epochs: float = setting(25, "training epochs (the paper's)")
    batch_size: int | None = setting(None, "training batch size per device; default 4 (the paper's), --llama-format "
                                    "authors: 1", positive=True)
    gradient_accumulation_steps: int | None = setting(None, "batches per optimizer step; default 1, --llama-format "
                                                     "authors: 8", positive=True)
    learning_rate: float | None = setting(None, "AdamW learning rate (constant); default: 3e-5 (the paper's), loreft "
                                         "9e-4 (the ReFT paper's commonsense recipe; --lr 3e-5 gives it the shared "
                                         "budget)", flag="--lr")
    n_train: int = setting(48, "training examples", positive=True)
    n_val: int = setting(350, "validation examples", positive=True)
    train_ids: list[str] | None = setting(None, "file with one training id per line (reuse a published split)",
                                         convert="ids")
    val_ids: list[str] | None = setting(None, "file with one validation id per line", convert="ids")
    split_files: str | None = setting(None, "folder with FEB's split files <task>_train_<seed>.json and "
                                     "<task>_validation_<seed>.json (e.g. FEB's feb_data/ or `nle-gen splits --out`)")
    llama_format: str = setting("project", "decoder-only models: this project's prompt/target encoding or the "
                               "SparseFit authors' (SanniM3/predicitons_with_explanations: their encoding, batch 1 x "
                               "8 accumulation, 300 steps; see docs/reproducing.md)", choices=LLAMA_FORMATS)
    max_input_tokens: int = setting(512)
    max_target_tokens: int = setting(128)
    max_steps: int | None = setting(None, "> 0: stop after this many optimizer steps (overrides --epochs); -1: train "
                                   "--epochs; default -1, --llama-format authors: 300")
    precision: str = setting("fp32", "fp32: the paper's (no autocast, no TF32); tf32: TF32 matmuls; bf16: bf16 "
                            "autocast + TF32 (needs a bf16 GPU); auto: bf16 where the GPU supports it",
                            choices=PRECISIONS)
    sbic_tagger: str = setting("auto", "SBIC templates' first-word tagger: spaCy en_core_web_sm as FEB when "
                              "installed, else a built-in approximation with a warning (auto); spacy: require it; "
                              "builtin: never spaCy", choices=SBIC_TAGGERS)
    logging_steps: int = setting(5)
    lora_r: int = setting(128, "rank of the lora baseline (Table 8 sweeps it)", positive=True, only_for=("lora",))
    resize_embeddings: bool = setting(True, "T5: resize embeddings to the tokenizer's 32,100 rows as FEB does, or "
                                     "keep the checkpoint's", choices=("tokenizer", "none"),
                                     option_default="tokenizer", convert="tokenizer")
    gradient_checkpointing: bool = setting(False, "recompute activations: less GPU memory")
    model_name: str | None = setting(None, "the model's hub name (e.g. t5-large) when --model is a local copy: "
                                    "run.json records it and `results` groups the run with that model's runs "
                                    "(default: the hub name of --model)")
    # LoReFT (generation/methods/reft.py) and DecT (generation/methods/dect.py); ignored by other configurations
    reft_rank: int = setting(4, "rank r of R, W (default 4)", group="loreft")
    reft_layers: str = setting("all", "'all' (default) or layer numbers such as 0,2,5", group="loreft")
    reft_positions: str = setting("f1+l1", "prompt positions: f<n>+l<m> = first n and last m prompt tokens "
                                 "(default f1+l1)", group="loreft")
    reft_share_weights: bool = setting(False, "one intervention per layer for first and last positions (default: "
                                      "separate)", group="loreft")
    dect_lambda: float = setting(1.0, "λ, weight of the calibrated prior (default 1)", group="dect")
    dect_proto_dim: int = setting(128, "projection size (default 128)", group="dect")
    dect_epochs: int = setting(30, "full-batch training steps (default 30)", group="dect")
    dect_lr: float = setting(0.01, "Adam learning rate (default 0.01)", group="dect")
    dect_calibration: str = setting("empty", "divide the prior by a content-free input's (default), the training "
                                   "mean, or nothing", choices=("empty", "train_mean", "none"), group="dect")
    dect_train_prototypes: bool = setting(False, "also learn the prototypes (thunlp/DecT keeps them fixed)",
                                         group="dect")
    dect_prior: str = setting("logits", "the prior: raw label-word logits as thunlp/DecT (default), or softmax "
                             "probabilities over the labels", choices=("logits", "probs"), group="dect")

    def __post_init__(self) -> None:
        if self.llama_format not in LLAMA_FORMATS:
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
        method = self.method  # an unknown configuration fails here, naming every valid one
        for f in fields(self):
            only = f.metadata.get("only_for")
            if only and getattr(self, f.name) != f.default and self.configuration not in only:
                raise ValueError(f"{f.name} applies to the {' / '.join(map(repr, only))} baseline only, not to "
                                 f"{self.configuration!r}")
        method.check(self)
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("epochs must be > 0 (or max_steps > 0)")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.gradient_accumulation_steps < 1:
            raise ValueError("gradient_accumulation_steps must be >= 1")
        if self.learning_rate is None:
            self.learning_rate = method.learning_rate or SHARED_LR
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
    def method(self) -> Method:
        """The training method of the configuration (generation.methods)."""
        from generation.methods import method_for

        return method_for(self.configuration)

    @property
    def kind(self) -> str:
        """The method's name as run.json records it: 'sparse', 'full', 'peft', 'reft', 'dect', ..."""
        return self.method.name

    def to_dict(self) -> dict:
        """The fields as run.json's train_config holds them."""
        return {_FILE_KEYS.get(k, k): v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A TrainConfig from run.json's train_config (settings added later take their defaults)."""
        data = {next((k for k, v in _FILE_KEYS.items() if v == key), key): v for key, v in data.items()}
        known = {f.name for f in fields(cls)}
        if "precision" not in data and "bf16" in data:  # run.json written before `precision` replaced `bf16`
            data = {**data, "precision": {"yes": "bf16", "no": "fp32"}.get(data["bf16"], "auto")}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text())["train_config"])


def model_family_warning(model: str, dataset: str) -> str | None:
    """A warning when a dataset is paired with the other model family than FEB/the paper use (§4)."""
    name = model.lower()
    if Path(model).is_dir() and (Path(model) / "config.json").is_file():
        name += " " + json.loads((Path(model) / "config.json").read_text()).get("_name_or_path", "").lower()
    if "t5" not in name:
        return None  # Llama and others: no paper pairing to check
    expected = PROTOCOL_MODELS[dataset]
    is_uqa = "unifiedqa" in name
    if is_uqa != ("unifiedqa" in expected):
        fam = "UnifiedQA" if is_uqa else "plain T5"
        return (f"{dataset} is paired with a {fam} model ({model}); FEB (scripts/exp.py) and the paper use "
                f"{expected} for {dataset}")
    return None
