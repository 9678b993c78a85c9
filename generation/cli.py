"""`nle-gen`: params | train | generate | splits | sweep | results (thin wrapper over the generation package)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from generation.baselines import add_baseline_arguments
from generation.engines import add_engine_arguments
from generation.errors import InputFileError

DEFAULT_SWEEP_JOBS = 1  # `sweep --run` runs one job at a time on this machine


def _quiet_libraries() -> None:
    """--quiet: no library warnings or progress bars (transformers, huggingface_hub, Python warnings)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    for name in ("transformers", "peft", "huggingface_hub", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


# --- params ---------------------------------------------------------------------------------------


def cmd_params(args: argparse.Namespace) -> int:
    import torch

    from generation.baselines import baseline_counts
    from generation.components import (
        OTHER_BASELINES,
        PEFT_BASELINES,
        all_configurations,
        count_parameters,
        family,
    )
    from generation.presets import build_meta_model, load_config, preset_config
    from generation.train import counts_record, wrap_and_count

    config = preset_config(args.arch) if args.arch else load_config(args.model)
    model = build_meta_model(config)
    total = count_parameters(model, "full_ft").total
    names = args.config or [*all_configurations(family(model)), "full_ft", *PEFT_BASELINES, *OTHER_BASELINES]
    rows: dict[str, dict] = {}
    notes: list[str] = []
    for name in names:
        try:
            if name in PEFT_BASELINES:
                with torch.device("meta"):
                    _, counts = wrap_and_count(build_meta_model(config), name, lora_r=args.lora_r)
            elif name in OTHER_BASELINES:
                counts = baseline_counts(config, name)
            else:
                counts = count_parameters(model, name)
        except ValueError as exc:
            if args.config:
                raise
            notes.append(f"{name}: {exc}")  # e.g. 'encoder' on a decoder-only model
            continue
        rows[name] = counts_record(counts)
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


def model_family_warning(model: str, dataset: str) -> str | None:
    """A warning when a dataset is paired with the other model family than FEB/the paper use (§4)."""
    from generation.sweep import PROTOCOL_MODELS

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


def train_config_from_args(args: argparse.Namespace):
    """The TrainConfig a `train` command line asks for (validated; nothing is read or written)."""
    from generation.baselines import baseline_kwargs
    from generation.config import TrainConfig
    from generation.data import read_id_list

    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    return TrainConfig(
        model=model, dataset=args.dataset, data_dir=str(Path(args.data_dir).resolve()), seed=args.seed,
        config=args.config, out=str(Path(args.out).resolve()), epochs=args.epochs, batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, learning_rate=args.lr, n_train=args.n_train, n_val=args.n_val,
        train_ids=read_id_list(args.train_ids) if args.train_ids else None,
        val_ids=read_id_list(args.val_ids) if args.val_ids else None,
        split_files=args.split_files, llama_format=args.llama_format,
        max_steps=args.max_steps, precision=args.precision, sbic_tagger=args.sbic_tagger, lora_r=args.lora_r,
        resize_embeddings=args.resize_embeddings == "tokenizer",
        gradient_checkpointing=args.gradient_checkpointing, model_name=args.model_name, **baseline_kwargs(args),
    )


def cmd_train(args: argparse.Namespace) -> int:
    from generation.hub import resolve_model

    if args.quiet:
        _quiet_libraries()
    _threads(args.threads)
    cfg = train_config_from_args(args)
    resolve_model(cfg.model)  # one line, before anything is written, when the model is not there
    warning = model_family_warning(cfg.model, cfg.dataset)
    if warning:
        print(f"nle-gen: warning: {warning}", file=sys.stderr)
    from generation.train import train

    result = train(cfg, progress=not args.quiet, verbose=not args.quiet)
    print(f"saved {cfg.config} run to {result.run_dir} (mean training loss {result.train_loss:.4f})")
    return 0


# --- generate -------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    if args.quiet:
        _quiet_libraries()
    _threads(args.threads)
    from generation.generate import bertscore_scorer, evaluate_run, selection_warnings
    from generation.layout import metrics_file

    scorer = bertscore_scorer(args.bertscore_model, layer=args.bertscore_layer) if args.bertscore_model else None
    m = evaluate_run(args.run, args.out, split=args.split, first=args.first, batch_size=args.batch_size,
                     data_dir=args.data_dir, base_model=args.base_model, scorer=scorer, progress=not args.quiet,
                     broken_explanation=args.broken_explanation, precision=args.precision,
                     max_length=args.max_length, max_new_tokens=args.max_new_tokens)
    if m.get("nle", "") is None:  # label-only baseline (DecT)
        print(f"{m['config']}: {args.split} accuracy {m['accuracy']:.3f} on {m['n']} (zero-shot prior "
              f"{m['prior_accuracy']:.3f}); metrics in {Path(args.run) / metrics_file(args.split)}")
        print(f"nle-gen: {m['nle_note']}; nothing written to {args.out}", file=sys.stderr)
        return 0
    extra = f", nBERTs {m['nbertscore']:.2f}" if "nbertscore" in m else ""
    print(f"{m['config']}: {args.split} accuracy {m['accuracy']:.3f} on {m['n']}, {m['no_because']} without "
          f"'because'{extra}; wrote {m['selected']} NLEs to {args.out}; metrics in "
          f"{Path(args.run) / metrics_file(args.split)}")
    for w in selection_warnings(m):
        print(f"nle-gen: warning: {w}", file=sys.stderr)
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
    report = plan_sweep(args.model, args.datasets, parse_seeds(args.seeds), args.configs, args.data_root,
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
    s.add_argument("--config", action="append", help="a configuration (repeatable); default: the paper's list, "
                   "full_ft and the PEFT baselines")
    s.add_argument("--lora-r", type=_positive, default=128, help="rank of the lora baseline")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_params)

    s = add("train", "fine-tune one configuration on one few-shot split")
    s.add_argument("--model", required=True, help="hub name or local path of the base model")
    s.add_argument("--model-name", default=None,
                   help="the model's hub name (e.g. t5-large) when --model is a local copy: run.json records it and "
                        "`results` groups the run with that model's runs (default: the hub name of --model)")
    s.add_argument("--dataset", required=True, choices=list(DATASETS), help="which dataset")
    s.add_argument("--data-dir", required=True, help="the dataset's folder (raw release files)")
    s.add_argument("--seed", type=int, required=True, help="split and training seed")
    s.add_argument("--config", required=True, help="e.g. att_q+layer_norm, full_ft, lora, lora_qkvo_r4, adalora, "
                   "adalora_r32, ia3, loreft, dect")
    s.add_argument("--out", required=True, help="run directory")
    s.add_argument("--epochs", type=float, default=25, help="training epochs (the paper's)")
    s.add_argument("--batch-size", type=_positive, default=None,
                   help="training batch size per device; default 4 (the paper's), --llama-format authors: 1")
    s.add_argument("--gradient-accumulation-steps", type=_positive, default=None,
                   help="batches per optimizer step; default 1, --llama-format authors: 8")
    s.add_argument("--lr", type=float, default=None,
                   help="AdamW learning rate (constant); default: 3e-5 (the paper's), loreft 9e-4 (the ReFT "
                        "paper's commonsense recipe; --lr 3e-5 gives it the shared budget)")
    s.add_argument("--n-train", type=_positive, default=48, help="training examples")
    s.add_argument("--n-val", type=_positive, default=350, help="validation examples")
    s.add_argument("--train-ids", help="file with one training id per line (reuse a published split)")
    s.add_argument("--val-ids", help="file with one validation id per line")
    s.add_argument("--split-files", help="folder with FEB's split files <task>_train_<seed>.json and "
                   "<task>_validation_<seed>.json (e.g. FEB's feb_data/ or `nle-gen splits --out`)")
    s.add_argument("--llama-format", choices=["project", "authors"], default="project",
                   help="decoder-only models: this project's prompt/target encoding or the SparseFit authors' "
                   "(SanniM3/predicitons_with_explanations: their encoding, batch 1 x 8 accumulation, 300 steps; "
                   "see docs/reproducing.md)")
    s.add_argument("--max-steps", type=int, default=None,
                   help="> 0: stop after this many optimizer steps (overrides --epochs); -1: train --epochs; "
                   "default -1, --llama-format authors: 300")
    s.add_argument("--precision", choices=["fp32", "tf32", "bf16", "auto"], default="fp32",
                   help="fp32: the paper's (no autocast, no TF32); tf32: TF32 matmuls; bf16: bf16 autocast + TF32 "
                   "(needs a bf16 GPU); auto: bf16 where the GPU supports it")
    s.add_argument("--sbic-tagger", choices=["auto", "spacy", "builtin"], default="auto",
                   help="SBIC templates' first-word tagger: spaCy en_core_web_sm as FEB when installed, else a "
                   "built-in approximation with a warning (auto); spacy: require it; builtin: never spaCy")
    s.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations: less GPU memory")
    s.add_argument("--lora-r", type=_positive, default=128, help="rank of the lora baseline (Table 8 sweeps it)")
    s.add_argument("--resize-embeddings", choices=["tokenizer", "none"], default="tokenizer",
                   help="T5: resize embeddings to the tokenizer's 32,100 rows as FEB does, or keep the checkpoint's")
    s.add_argument("--threads", type=_positive, default=None, help="CPU threads for torch (default: torch's choice)")
    s.add_argument("--quiet", action="store_true", help="no progress bars, metrics dicts or library warnings")
    add_baseline_arguments(s)
    s.set_defaults(func=cmd_train)

    s = add("generate", "generate NLEs for a run's validation (or test) split")
    s.add_argument("--run", required=True, help="run directory written by train")
    s.add_argument("--out", required=True, help="NLE JSONL for nle-annotate import")
    s.add_argument("--split", default="validation", choices=["validation", "test", "train"],
                   help="split to generate for; metrics go to metrics.json (validation) or metrics-SPLIT.json")
    s.add_argument("--first", type=_positive, default=30, help="how many correct predictions to keep (balanced)")
    s.add_argument("--batch-size", type=_positive, default=16, help="generation batch size")
    s.add_argument("--data-dir", help="override the run's data directory")
    s.add_argument("--base-model", help="override the run's base model path")
    s.add_argument("--bertscore-model", help="encoder for nBERTs, FEB: roberta-large (hub name or local path; "
                   "skipped when not given)")
    s.add_argument("--broken-explanation", choices=["empty", "unk"], default="empty",
                   help="nBERTs of an output without ' because ': its empty explanation (the paper: 0) or FEB's 'UNK'")
    s.add_argument("--bertscore-layer", type=int, default=17, help="hidden layer whose embeddings BERTScore matches "
                   "(FEB / bert_score for roberta-large: 17)")
    s.add_argument("--precision", choices=["run", "fp32", "tf32", "bf16"], default="run",
                   help="numerics of generation: the run's (as trained, where this machine can), or fp32, tf32, bf16")
    length = s.add_mutually_exclusive_group()
    length.add_argument("--max-length", type=_positive, default=None,
                        help="generate()'s max_length as FEB and the authors pass it: T5 output tokens + the start "
                        "token, decoder-only prompt + output; default: T5 100 (FEB), --llama-format authors 300")
    length.add_argument("--max-new-tokens", type=_positive, default=None,
                        help="at most this many generated tokens; default for --llama-format project runs: 100")
    s.add_argument("--threads", type=_positive, default=None, help="CPU threads for torch (default: torch's choice)")
    s.add_argument("--quiet", action="store_true", help="no progress bars or library warnings")
    s.set_defaults(func=cmd_generate)

    s = add("splits", "the training and validation items FEB's make_splits selects for a seed")
    s.add_argument("--dataset", required=True, choices=list(DATASETS), help="which dataset")
    s.add_argument("--data-dir", required=True, help="the dataset's folder (raw release files)")
    s.add_argument("--seed", type=int, required=True, help="e.g. one of FEB's seeds (7004, 3639, ...)")
    s.add_argument("--n-train", type=_positive, default=48,
                   help="training rows in all (FEB: 16/24/24 per label, ECQA 48)")
    s.add_argument("--n-val", type=_positive, default=350, help="validation size (per label: int(n_val / labels))")
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
    s.add_argument("--configs", nargs="+", default=["all", "full_ft"],
                   help="names, 'all' (the paper's 62 on T5) or 'peft' (the PEFT baselines)")
    s.add_argument("--data-root", required=True, help="holds one folder per dataset")
    s.add_argument("--out-root", required=True, help="runs go to OUT_ROOT/DATASET/CONFIG/seed-S")
    s.add_argument("--first", type=_positive, default=30, help="NLEs per run (generate --first)")
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


def _own_warnings_as_lines() -> None:
    """Warnings raised in this package print as one `nle-gen: warning: ...` line; others keep Python's format."""
    import warnings

    here, original = str(Path(__file__).resolve().parent), warnings.formatwarning
    if getattr(original, "nle_gen", False):  # main() called again in one process
        return

    def one_line(message, category, filename, lineno, line=None) -> str:
        if str(filename).startswith(here):
            return f"nle-gen: warning: {message}\n"
        return original(message, category, filename, lineno, line)

    one_line.nle_gen = True
    warnings.formatwarning = one_line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _own_warnings_as_lines()
    try:
        return args.func(args)
    except (InputFileError, ValueError) as exc:
        print(f"nle-gen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
