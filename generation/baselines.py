"""CLI options, validation and parameter counts of the LoReFT and DecT baselines (kept out of cli.py/config.py).

Imports torch only inside functions, so `nle-gen --help` stays fast.
"""

from __future__ import annotations

import argparse


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    """--reft-* and --dect-* options of `nle-gen train` (defaults: docs/baselines.md)."""
    g = parser.add_argument_group("loreft", "LoReFT options (--config loreft)")
    g.add_argument("--reft-rank", type=int, default=4, help="rank r of R, W (default 4)")
    g.add_argument("--reft-layers", default="all", help="'all' (default) or layer numbers such as 0,2,5")
    g.add_argument("--reft-positions", default="f1+l1",
                   help="prompt positions: f<n>+l<m> = first n and last m prompt tokens (default f1+l1)")
    g.add_argument("--reft-share-weights", action="store_true",
                   help="one intervention per layer for first and last positions (default: separate)")
    g = parser.add_argument_group("dect", "DecT options (--config dect; label only)")
    g.add_argument("--dect-lambda", type=float, default=1.0, help="λ, weight of the calibrated prior (default 1)")
    g.add_argument("--dect-proto-dim", type=int, default=128, help="projection size (default 128)")
    g.add_argument("--dect-epochs", type=int, default=30, help="full-batch training steps (default 30)")
    g.add_argument("--dect-lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    g.add_argument("--dect-calibration", choices=["empty", "train_mean", "none"], default="empty",
                   help="divide the prior by a content-free input's (default), the training mean, or nothing")
    g.add_argument("--dect-train-prototypes", action="store_true",
                   help="also learn the prototypes (thunlp/DecT keeps them fixed)")
    g.add_argument("--dect-prior", choices=["logits", "probs"], default="logits",
                   help="the prior: raw label-word logits as thunlp/DecT (default), or softmax probabilities "
                   "over the labels")


def baseline_kwargs(args: argparse.Namespace) -> dict:
    """TrainConfig fields from the parsed --reft-* / --dect-* options."""
    return {k: getattr(args, k) for k in (
        "reft_rank", "reft_layers", "reft_positions", "reft_share_weights", "dect_lambda", "dect_proto_dim",
        "dect_epochs", "dect_lr", "dect_calibration", "dect_train_prototypes", "dect_prior") if hasattr(args, k)}


def validate(cfg) -> None:
    """ValueError for impossible LoReFT / DecT settings in a TrainConfig."""
    from generation import dect, reft

    if cfg.config == "loreft":
        settings = reft.settings_of(cfg)
        try:  # a local model's config tells whether rank and layers fit, before anything is written
            from transformers import AutoConfig

            model_config = AutoConfig.from_pretrained(cfg.model, local_files_only=True)
        except (OSError, ValueError):
            return
        reft.count_loreft(model_config, settings)
    else:
        dect.settings_of(cfg)


def baseline_counts(config, name: str, **options):
    """ParamCounts of LoReFT (defaults, or options such as rank=1) or DecT on a model config, no weights."""
    from generation.components import ParamCounts, count_parameters
    from generation.presets import build_meta_model

    total = count_parameters(build_meta_model(config), "full_ft").total
    if name == "loreft":
        from generation.reft import ReftSettings, count_loreft

        s = ReftSettings(**options)
        return ParamCounts(name, total, count_loreft(config, s), notes=[
            f"loreft: R, W, b at every {'chosen ' if s.layers != 'all' else ''}layer, rank {s.rank}, "
            f"positions {s.positions} ({len(s.groups)} intervention(s) per layer)"])
    if name == "dect":
        from generation.dect import DectSettings, count_dect

        s = DectSettings(**options)
        return ParamCounts(name, total, count_dect(config, s, 3), notes=[
            f"dect: projection d x {s.proto_dim} + one radius per class (3 counted, as e-SNLI); label only"])
    raise ValueError(f"unknown baseline {name!r}")
