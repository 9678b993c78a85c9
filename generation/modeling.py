"""What every training method starts from: the numerics, the base model and its tokenizer, and a prepared run
(its split read, its base model loaded, its folder emptied); and what a training returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase, set_seed

from generation.components import ParamCounts, find_family
from generation.data import sbic_templates_by
from generation.hub import hub_name, resolve_model
from generation.presets import model_class
from generation.prompts import target_explanation
from generation.rundir import SPLIT_FILE, Started, check_out, prepare, write_json
from generation.splits import FewShotSplit, training_split

# --- numerics -------------------------------------------------------------------------------------


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


def set_tf32(on: bool) -> bool:
    """TF32 matmuls and convolutions on or off on CUDA (cuDNN's convolutions default to on, so "off" must be
    said); returns whether TF32 is in use."""
    if not torch.cuda.is_available():
        return False
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    return on


# --- the base model -------------------------------------------------------------------------------


def load_base(name_or_path: str, resize_embeddings: bool = True) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The pretrained model (seq2seq or causal, from its architecture) and its tokenizer, with a pad token.

    T5 embeddings are resized to the tokenizer's length (32,100 rows for T5/UnifiedQA instead of the
    checkpoint's 32,128) as FEB does (allenai/feb scripts/input_to_label_and_rationale.py)."""
    name, local_only = resolve_model(name_or_path)
    try:
        arch = AutoConfig.from_pretrained(name, local_files_only=local_only)
        model = model_class(arch).from_pretrained(name, dtype=torch.float32, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except OSError as exc:  # e.g. a directory with config.json but no weights, or a hub id that does not exist
        raise ValueError(f"model {name_or_path}: cannot be loaded ({str(exc).splitlines()[0]})") from None
    if tokenizer.pad_token is None:  # Llama tokenizers ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    rows = model.get_input_embeddings().weight.shape[0]
    fam = find_family(arch)
    if len(tokenizer) > rows or (resize_embeddings and fam is not None and fam.resize_embeddings
                                 and len(tokenizer) != rows):
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


def base_as_trained(base: str, info: dict, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """The base model of a run as it was before training: embeddings resized as the run resized them, and the
    authors' "[PAD]" token for a run in their Llama format (the run's tokenizer already holds it)."""
    model, _ = load_base(base, resize_embeddings=info["train_config"].get("resize_embeddings", True))
    if info["train_config"].get("llama_format") == "authors" and is_decoder_only(model):
        add_authors_pad_token(model, tokenizer)
    return model


def count_unique(model: torch.nn.Module, base_total: int | None = None) -> ParamCounts:
    """Trainable/total over distinct tensors (for full_ft and PEFT-wrapped models). For an adapter, pass the
    base model's size: `total` then counts base + adapter, PEFT's print_trainable_parameters convention."""
    seen: dict[int, torch.nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return ParamCounts("", total, trainable, names, base_total=base_total)


# --- a run ----------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run_dir: Path
    counts: ParamCounts
    train_loss: float  # mean over the run
    losses: list[float]  # logged every logging_steps
    optimizer_numel: int  # elements of the tensors the optimizer updates (and holds state for)
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase


def prepare_run(cfg) -> tuple[Path, FewShotSplit, torch.nn.Module, PreTrainedTokenizerBase, Started]:
    """The split and base model of a TrainConfig, then its run directory (emptied of an earlier run's results)
    with split.json: everything that can fail on bad input fails before the directory is touched."""
    run_dir = check_out(cfg.out)
    split = training_split(cfg)
    started = Started.now()
    set_seed(cfg.seed)
    model, tokenizer = load_base(cfg.model, resize_embeddings=cfg.resize_embeddings)
    if cfg.llama_format == "authors" and not is_decoder_only(model):
        raise ValueError(f"--llama-format authors is the SparseFit authors' Llama-2 set-up; {cfg.model} is an "
                         "encoder-decoder model (use --llama-format project)")
    prepare(run_dir)
    write_json(run_dir / SPLIT_FILE, {"dataset": cfg.dataset, "seed": cfg.seed,
                                      "train": [e.id for e in split.train],
                                      # ComVE trains on each pair three times, once per explanation
                                      "train_explanations": [target_explanation(e) for e in split.train],
                                      "validation": [e.id for e in split.validation]})
    return run_dir, split, model, tokenizer, started


def sbic_record(cfg) -> dict:
    """run.json's note of what built an SBIC run's explanation templates (nothing for other datasets)."""
    if cfg.dataset != "sbic":
        return {}
    return {"sbic_templates": sbic_templates_by(cfg.data_dir, cfg.sbic_tagger)}


def run_model_name(cfg) -> str | None:
    """The name `results` groups a run under: --model-name, else the hub id of --model (None for a local
    directory that is not a Hugging Face cache snapshot)."""
    return cfg.model_name or hub_name(cfg.model)
