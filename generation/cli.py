"""`nle-gen`: params | train | generate | splits | sweep | results (thin wrapper over the generation package)."""

from __future__ import annotations

import argparse
import json
import sys

from generation.engines import add_engine_arguments
from generation.errors import InputFileError
from generation.jobs import generate_run, quiet_libraries, train_run, warnings_as_lines
from generation.options import (
    add_generate_options,
    add_train_options,
    generate_fields,
    positive,
    train_config_from_args,
)

DEFAULT_SWEEP_JOBS = 1  # `sweep --run` runs one job at a time on this machine


def _threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


# --- params ---------------------------------------------------------------------------------------


def cmd_params(args: argparse.Namespace) -> int:
    from generation.components import FULL_FT, count_parameters, family
    from generation.methods import listed, method_for
    from generation.presets import build_meta_model, load_architecture, preset_architecture

    model = build_meta_model(preset_architecture(args.arch) if args.arch else load_architecture(args.model))
    total = count_parameters(model, FULL_FT).total
    names = args.configurations or listed(family(model))
    rows: dict[str, dict] = {}
    notes: list[str] = []
    for name in names:
        try:
            counts = method_for(name).count(model, name, {"lora_r": args.lora_r})
        except ValueError as exc:
            if args.configurations:
                raise
            notes.append(f"{name}: {exc}")  # e.g. 'encoder' on a decoder-only model
            continue
        rows[name] = counts.record()
        notes += counts.notes
    arch = args.arch or args.model
    if args.json:
        print(json.dumps({"arch": arch, "total": total, "configs": rows}, indent=2))
        return 0
    print(f"{arch}: {total:,} parameters (distinct tensors; tied weights counted once)")
    width = max(len("configuration"), *(len(n) for n in rows))
    print(f"{'configuration':<{width}}  {'trainable':>15}  {'%':>7}  {'% of base':>9}")
    for name, r in rows.items():
        print(f"{name:<{width}}  {r['trainable']:>15,}  {r['percent']:>7.2f}  {r['percent_of_base']:>9.2f}")
    print("%: trainable / all parameters of the trained model -- for PEFT adapters base + adapter, as PEFT's "
          "print_trainable_parameters (the number train and run.json report); % of base: trainable / base model")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    return 0


# --- train ----------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    if args.quiet:
        quiet_libraries()
    _threads(args.threads)
    train_run(train_config_from_args(args), quiet=args.quiet)
    return 0


# --- generate -------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    if args.quiet:
        quiet_libraries()
    _threads(args.threads)
    generate_run(**generate_fields(args), quiet=args.quiet)
    return 0


# --- splits --------------------------------------------------------------------------------------


def cmd_splits(args: argparse.Namespace) -> int:
    from generation.prompts import target_explanation
    from generation.splits import feb_split, split_json, write_split_files

    split = feb_split(args.dataset, args.data_dir, args.seed, args.n_train, args.n_val, args.esnli_shuffle,
                      sbic_tagger_mode=args.sbic_tagger)
    if args.out:
        for path in write_split_files(split, args.out):
            print(f"wrote {path}")
    elif args.json:
        print(json.dumps(split_json(split), ensure_ascii=False, indent=1))
    else:
        for name, rows in (("train", split.train), ("validation", split.validation)):
            print(f"# {args.dataset} seed {args.seed}: {name} ({len(rows)})")
            for e in rows:
                print(f"{e.id}\t{e.label}\t{target_explanation(e)}")
    return 0


# --- sweep ----------------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    from generation.splits import parse_seeds
    from generation.sweep import plan_sweep

    if args.protocol == "none" and not args.model:
        raise ValueError("--protocol none needs --model")
    if args.run:  # the old flag: the local engine
        args.engine = args.engine or "local"
    if args.plan or args.engine:
        from generation.engines import validate

        validate(args)  # impossible engine options fail before any planning
    report = plan_sweep(args.model, args.datasets, parse_seeds(args.seeds), args.configurations, args.data_root,
                        args.out_root, train_args=args.train_arg, first=args.first, protocol=args.protocol,
                        split=args.split, rerun_mismatched=args.rerun_mismatched, generate_args=args.generate_arg,
                        include_complete=args.plan)
    for line in report.messages():
        print(f"nle-gen: {line}", file=sys.stderr)
    mismatch_status = 3 if report.mismatched else 0
    if args.plan or args.engine:
        from generation.engines import dispatch

        return dispatch(args, report.jobs, split=args.split) or mismatch_status
    for job in report.jobs:
        print(job.shell)
    print(f"# {len(report.jobs)} job(s) to run", file=sys.stderr)
    return 3 if report.mismatched else 0


# --- results --------------------------------------------------------------------------------------


def cmd_results(args: argparse.Namespace) -> int:
    from generation.results import write_results  # pandas/plotly/scipy stay out of train and generate

    summary = write_results(args.runs_dir, args.out, split=args.split, alpha=args.alpha, ddof=args.ddof,
                            test=args.test, marks=args.marks, duplicates=args.duplicates,
                            model_aliases=args.model_alias)
    print(summary)
    return 0


# --- parser ---------------------------------------------------------------------------------------


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help shows its default."""


def build_parser() -> argparse.ArgumentParser:
    from generation.data import DATASETS

    p = argparse.ArgumentParser(prog="nle-gen", description=__doc__, formatter_class=_Help)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        # help is %-formatted by argparse, the description is not: escape it only in the help.
        return sub.add_parser(name, help=help_.replace("%", "%%"), description=help_, formatter_class=_Help)

    s = add("params", "trainable parameters per configuration, counted on the meta device (no weights)")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="preset: t5-small, t5-base, t5-large, t5-3b, llama-2-7b")
    src.add_argument("--model", help="local model directory or config.json")
    s.add_argument("--config", action="append", dest="configurations", metavar="CONFIG",
                   help="a configuration (repeatable); default: the paper's list, full_ft and the PEFT baselines")
    s.add_argument("--lora-r", type=positive, default=128, help="rank of the lora baseline")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_params)

    s = add("train", "fine-tune one configuration on one few-shot split")
    add_train_options(s)  # one per TrainConfig field (generation/config.py)
    s.add_argument("--threads", type=positive, default=None, help="CPU threads for torch (default: torch's choice)")
    s.add_argument("--quiet", action="store_true", help="no progress bars, metrics dicts or library warnings")
    s.set_defaults(func=cmd_train)

    s = add("generate", "generate NLEs for a run's validation (or test) split")
    add_generate_options(s)
    s.add_argument("--threads", type=positive, default=None, help="CPU threads for torch (default: torch's choice)")
    s.add_argument("--quiet", action="store_true", help="no progress bars or library warnings")
    s.set_defaults(func=cmd_generate)

    s = add("splits", "the training and validation items FEB's make_splits selects for a seed")
    s.add_argument("--dataset", required=True, choices=list(DATASETS), help="which dataset")
    s.add_argument("--data-dir", required=True, help="the dataset's folder (raw release files)")
    s.add_argument("--seed", type=int, required=True, help="e.g. one of FEB's seeds (7004, 3639, ...)")
    s.add_argument("--n-train", type=positive, default=48,
                   help="training rows in all (FEB: 16/24/24 per label, ECQA 48)")
    s.add_argument("--n-val", type=positive, default=350, help="validation size (per label: int(n_val / labels))")
    s.add_argument("--esnli-shuffle", choices=["v2", "v1"], default="v2",
                   help="e-SNLI: the seedless datasets.shuffle() of datasets >= 2 (v2) or of datasets 1.x (v1); "
                   "FEB pinned no version (see docs/reproducing.md)")
    s.add_argument("--sbic-tagger", choices=["auto", "spacy", "builtin"], default="auto",
                   help="SBIC templates' first-word tagger (as train --sbic-tagger)")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print {dataset, seed, train, validation} as JSON")
    out.add_argument("--out", help="write <task>_train_<seed>.json / <task>_validation_<seed>.json (FEB's layout) here")
    s.set_defaults(func=cmd_splits)

    s = add("sweep", "print (or run) the jobs for datasets x seeds x configurations; completed runs are skipped, "
                     "runs trained with other settings are reported")
    s.add_argument("--model", help="base model for every dataset (overrides --protocol's per-dataset choice)")
    s.add_argument("--protocol", choices=["sparsefit", "none"], default="sparsefit",
                   help="sparsefit: t5-large for esnli, allenai/unifiedqa-t5-large for ecqa, sbic, comve "
                        "(FEB scripts/exp.py), in fp32 as the paper (train's default --precision); none: --model "
                        "is required")
    s.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS), help="datasets")
    s.add_argument("--seeds", nargs="+", default=["feb"],
                   help="integers, 'feb' (FEB's 60 seeds, feb_benchmark.py: 7004 3639 ...) or 'feb:N' (the first N)")
    s.add_argument("--configs", nargs="+", default=["all", "full_ft"], dest="configurations", metavar="CONFIGS",
                   help="names, 'all' (the paper's 62 on T5) or 'peft' (the PEFT baselines)")
    s.add_argument("--data-root", required=True, help="holds one folder per dataset")
    s.add_argument("--out-root", required=True, help="runs go to OUT_ROOT/DATASET/CONFIG/seed-S")
    s.add_argument("--first", type=positive, default=30, help="NLEs per run (generate --first)")
    s.add_argument("--split", default="validation", choices=["validation", "test"],
                   help="split to generate for; completeness is checked for this split")
    s.add_argument("--train-arg", action="append", default=[],
                   help="extra argument passed to train (repeatable, e.g. --train-arg=--lora-r --train-arg=8)")
    s.add_argument("--generate-arg", action="append", default=[],
                   help="extra argument passed to generate (repeatable), e.g. --generate-arg=--bertscore-model "
                   "--generate-arg=roberta-large for nBERTs")
    s.add_argument("--rerun-mismatched", action="store_true",
                   help="retrain runs whose run.json settings differ from the requested ones")
    s.add_argument("--run", action="store_true",
                   help=f"run the jobs here, {DEFAULT_SWEEP_JOBS} at a time, one after another (= --engine local)")
    add_engine_arguments(s)
    s.set_defaults(func=cmd_sweep)

    s = add("results", "the paper's tables (mean ± std over seeds, % params, trade-off, FLOPs, significance), "
                       "results.csv/.json and results.html with Figure 1 from a sweep's run directories")
    s.add_argument("runs_dir", help="a sweep's --out-root (or any folder holding run directories)")
    s.add_argument("--out", required=True, help="folder for results.csv, results.json, results.html, tables.md")
    s.add_argument("--split", default="validation", choices=["validation", "test"], help="which metrics to read")
    s.add_argument("--alpha", type=float, default=0.01, help="significance level of the ▽ mark (the paper's)")
    s.add_argument("--ddof", type=int, default=0, choices=[0, 1],
                   help="std over seeds: 0 = population std as FEB's exp.py (np.std), 1 = sample std")
    s.add_argument("--test", choices=["paired", "welch"], default="paired",
                   help="t-test of per-seed values against the baseline: paired over common seeds (same seed = "
                        "same split) or Welch's")
    s.add_argument("--marks", choices=["paper", "direction"], default="paper",
                   help="paper: ▽ on every significant difference from the baseline, better or worse (the paper's "
                        "tables); direction: ▽ below, △ above the baseline")
    s.add_argument("--duplicates", choices=["newest", "refuse"], default="newest",
                   help="two run directories for one dataset, model, configuration and seed: count the newest "
                        "(generated last, then trained last) and list the other, or stop with both named")
    s.add_argument("--model-alias", action="append", default=[], metavar="OLD=NEW",
                   help="group runs of model OLD (a path or name in run.json) under NEW, e.g. "
                        "/models/t5-large=t5-large (repeatable)")
    s.set_defaults(func=cmd_results)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings_as_lines()
    try:
        return args.func(args)
    except (InputFileError, ValueError) as exc:
        print(f"nle-gen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
