"""The command-line options of `nle-gen train` and `generate`, shared by the CLI and the sweep's --train-arg and
--generate-arg.

`train`'s options are derived from `TrainConfig`'s fields: the option is `--` + the field name with dashes
(or the field's `flag`), its type and default are the field's, its help the field's one-line `help`; a field
without help has no option. So a new training setting is written once, in generation/config.py.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path

from generation.config import GROUPS, TrainConfig
from generation.data import read_id_list


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


# How an option's text becomes the field's value (a field's `convert`): paths are made absolute, so run.json
# names them wherever the run is read from; a model path is absolute only when it exists (else a hub name).
CONVERT = {
    "path": lambda text: str(Path(text).resolve()),
    "model": lambda text: str(Path(text).resolve()) if Path(text).exists() else text,
    "ids": read_id_list,
    "tokenizer": lambda text: text == "tokenizer",
}


def _flag(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _option_fields(settings: type = TrainConfig) -> list[Field]:
    return [f for f in fields(settings) if f.metadata.get("help") is not None]


def add_train_options(parser: argparse.ArgumentParser, given_only: bool = False, settings: type = TrainConfig) -> None:
    """One option per field with a help line of TrainConfig (or of `settings`, a dataclass written the same
    way). given_only: no defaults and nothing required, so the parsed namespace holds only the options given
    (the sweep's --train-arg)."""
    hints = typing.get_type_hints(settings)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in _option_fields(settings):
        meta = f.metadata
        target = parser
        if meta.get("group"):
            name = meta["group"]
            if name not in groups:
                groups[name] = parser.add_argument_group(name, GROUPS[name])
            target = groups[name]
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # `int | None` and the like: the option's type is the non-None one
            kind = next(t for t in typing.get_args(kind) if t is not type(None))
        kwargs: dict = {"dest": f.name, "help": meta["help"]}
        if kind is bool and "choices" not in meta:
            kwargs["action"] = "store_true"
        elif "choices" in meta:
            kwargs["choices"] = list(meta["choices"])
        else:
            kwargs["type"] = positive if meta.get("positive") else kind if kind in (int, float) else None
            kwargs["metavar"] = _flag(f)[2:].replace("-", "_").upper()
        if given_only:
            kwargs["default"] = argparse.SUPPRESS
        elif f.default is MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = meta.get("option_default", f.default)
        target.add_argument(_flag(f), **kwargs)


def convert(name: str, value, settings: type = TrainConfig):
    """A train option's value as field `name` holds it (the field's `convert` rule; None stays None)."""
    rule = next(f for f in fields(settings) if f.name == name).metadata.get("convert")
    return CONVERT[rule](value) if rule and value is not None else value


def train_fields(args: argparse.Namespace, settings: type = TrainConfig) -> dict:
    """TrainConfig fields from parsed train options (those present in `args`), converted."""
    return {f.name: convert(f.name, getattr(args, f.name), settings) for f in _option_fields(settings)
            if hasattr(args, f.name)}


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig a `train` command line asks for (validated; nothing is read but --train-ids/--val-ids)."""
    return TrainConfig(**train_fields(args))


def parse_train_args(argv: list[str]) -> dict:
    """The TrainConfig fields a list of `train` options sets (the sweep's --train-arg), parsed as `train` parses
    them; ValueError for an option `train` does not know."""
    parser = argparse.ArgumentParser(prog="nle-gen train", add_help=False)
    add_train_options(parser, given_only=True)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ValueError(f"--train-arg: train does not know {' '.join(unknown)}")
    return train_fields(args)


# --- generate -------------------------------------------------------------------------------------

GENERATE_FIELDS = ("run", "out", "split", "first", "batch_size", "data_dir", "base_model", "bertscore_model",
                   "broken_explanation", "bertscore_layer", "precision", "max_length", "max_new_tokens")


def add_generate_options(s: argparse.ArgumentParser, given_only: bool = False) -> None:
    """`nle-gen generate`'s options: the keyword arguments of generation.jobs.generate_run."""
    def default(value):
        return argparse.SUPPRESS if given_only else value

    required = {"default": argparse.SUPPRESS} if given_only else {"required": True}
    s.add_argument("--run", **required, help="run directory written by train")
    s.add_argument("--out", **required, help="NLE JSONL for nle-annotate import")
    s.add_argument("--split", default=default("validation"), choices=["validation", "test", "train"],
                   help="split to generate for; metrics go to metrics.json (validation) or metrics-SPLIT.json")
    s.add_argument("--first", type=positive, default=default(30),
                   help="how many correct predictions to keep (balanced)")
    s.add_argument("--batch-size", type=positive, default=default(16), help="generation batch size")
    s.add_argument("--data-dir", default=default(None), help="override the run's data directory")
    s.add_argument("--base-model", default=default(None), help="override the run's base model path")
    s.add_argument("--bertscore-model", default=default(None), help="encoder for nBERTs, FEB: roberta-large (hub "
                   "name or local path; skipped when not given)")
    s.add_argument("--broken-explanation", choices=["empty", "unk"], default=default("empty"),
                   help="nBERTs of an output without ' because ': its empty explanation (the paper: 0) or FEB's 'UNK'")
    s.add_argument("--bertscore-layer", type=int, default=default(17), help="hidden layer whose embeddings "
                   "BERTScore matches (FEB / bert_score for roberta-large: 17)")
    s.add_argument("--precision", choices=["run", "fp32", "tf32", "bf16"], default=default("run"),
                   help="numerics of generation: the run's (as trained, where this machine can), or fp32, tf32, bf16")
    length = s.add_mutually_exclusive_group()
    length.add_argument("--max-length", type=positive, default=default(None),
                        help="generate()'s max_length as FEB and the authors pass it: T5 output tokens + the start "
                        "token, decoder-only prompt + output; default: T5 100 (FEB), --llama-format authors 300")
    length.add_argument("--max-new-tokens", type=positive, default=default(None),
                        help="at most this many generated tokens; default for --llama-format project runs: 100")


def generate_fields(args: argparse.Namespace) -> dict:
    """generation.jobs.generate_run's keyword arguments from parsed generate options (those present)."""
    return {k: getattr(args, k) for k in GENERATE_FIELDS if hasattr(args, k)}


def parse_generate_args(argv: list[str]) -> dict:
    """The generate settings a list of `generate` options sets (the sweep's --generate-arg); ValueError for an
    option `generate` does not know."""
    parser = argparse.ArgumentParser(prog="nle-gen generate", add_help=False)
    add_generate_options(parser, given_only=True)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ValueError(f"--generate-arg: generate does not know {' '.join(unknown)}")
    return generate_fields(args)
