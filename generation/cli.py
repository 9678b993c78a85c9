"""`nle-gen`: params | train | generate | sweep (thin wrapper over the generation package)."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from generation.baselines import add_baseline_arguments
from generation.errors import InputFileError


def paper_round(percent: float) -> str:
    """Two decimals as the paper printed them: to three decimals first, then half up to two."""
    three = Decimal(repr(percent)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return str(three.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _peft_counts(config, name: str):
    """Adapter parameters of a PEFT baseline, as a share of the base model's parameters."""
    import torch

    from generation.components import ParamCounts, count_parameters
    from generation.presets import build_meta_model
    from generation.train import apply_peft

    base = build_meta_model(config)
    total = count_parameters(base, "full_ft").total
    with torch.device("meta"):
        wrapped = apply_peft(base, name, total_steps=100)
    trainable = sum(p.numel() for p in {id(p): p for p in wrapped.parameters() if p.requires_grad}.values())
    return ParamCounts(name, total, trainable, notes=[f"PEFT baselines: adapter parameters as a percent of the base model's {total:,}"])


def cmd_params(args: argparse.Namespace) -> int:
    from generation.baselines import baseline_counts
    from generation.components import OTHER_BASELINES, PEFT_BASELINES, all_configurations, count_parameters
    from generation.presets import build_meta_model, load_config, preset_config

    config = preset_config(args.arch) if args.arch else load_config(args.model)
    model = build_meta_model(config)
    names = args.config or [*all_configurations(), "full_ft", *PEFT_BASELINES, *OTHER_BASELINES]
    rows = {}
    notes: list[str] = []
    for name in names:
        try:
            if name in OTHER_BASELINES:
                counts = baseline_counts(config, name)
            else:
                counts = _peft_counts(config, name) if name in PEFT_BASELINES else count_parameters(model, name)
        except ValueError as exc:
            if args.config:
                raise
            notes.append(f"{name}: {exc}")  # e.g. 'encoder' on a decoder-only model
            continue
        rows[name] = {"trainable": counts.trainable, "percent": round(counts.percent, 4)}
        notes += counts.notes
        total = count_parameters(model, "full_ft").total
    arch = args.arch or args.model
    if args.json:
        print(json.dumps({"arch": arch, "total": total, "configs": rows}, indent=2))
        return 0
    print(f"{arch}: {total:,} parameters (distinct tensors; tied weights counted once)")
    width = max(len(n) for n in rows)
    print(f"{'configuration':<{width}}  {'trainable':>15}  {'percent':>7}")
    for name, r in rows.items():
        print(f"{name:<{width}}  {r['trainable']:>15,}  {paper_round(r['percent']):>7}")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from generation.baselines import baseline_kwargs
    from generation.config import TrainConfig
    from generation.data import read_id_list
    from generation.train import train

    # Local paths are stored absolute in run.json, so `generate` works from any directory later.
    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    cfg = TrainConfig(
        model=model, dataset=args.dataset, data_dir=str(Path(args.data_dir).resolve()), seed=args.seed, config=args.config,
        out=args.out, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        n_train=args.n_train, n_val=args.n_val,
        train_ids=read_id_list(args.train_ids) if args.train_ids else None,
        val_ids=read_id_list(args.val_ids) if args.val_ids else None,
        max_steps=args.max_steps, bf16=args.bf16, **baseline_kwargs(args),
    )
    result = train(cfg, progress=not args.quiet)
    print(f"saved {cfg.config} run to {result.run_dir} (mean training loss {result.train_loss:.4f})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from generation.generate import bertscore_scorer, evaluate_run

    scorer = bertscore_scorer(args.bertscore_model) if args.bertscore_model else None
    m = evaluate_run(args.run, args.out, split=args.split, first=args.first, batch_size=args.batch_size,
                     data_dir=args.data_dir, base_model=args.base_model, scorer=scorer, progress=not args.quiet)
    if m.get("nle", "") is None:  # label-only baseline (DecT)
        print(f"{m['config']}: accuracy {m['accuracy']:.3f} on {m['n']} (zero-shot prior {m['prior_accuracy']:.3f})")
        print(f"nle-gen: {m['nle_note']}; nothing written to {args.out}", file=sys.stderr)
        return 0
    extra = f", BERTScore {m['bertscore_normalized']:.3f}" if "bertscore_normalized" in m else ""
    print(f"{m['config']}: accuracy {m['accuracy']:.3f} on {m['n']}, {m['no_because']} without 'because'"
          f"{extra}; wrote {m['selected']} NLEs to {args.out}")
    if m["selected"] == 0:
        print("nle-gen: warning: no correct prediction, so the NLE file is empty (nle-annotate import "
              "will reject it)", file=sys.stderr)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from generation.sweep import plan, run_jobs

    jobs = plan(args.model, args.datasets, args.seeds, args.configs, args.data_root, args.out_root,
                train_args=args.train_arg, first=args.first)
    if args.run:
        return 1 if run_jobs(jobs) else 0
    for job in jobs:
        print(job.shell)
    print(f"# {len(jobs)} job(s) to run", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nle-gen", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("params", help="trainable parameters per configuration, on the meta device")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="preset: t5-small, t5-base, t5-large, t5-3b, llama-2-7b")
    src.add_argument("--model", help="local model directory or config.json")
    s.add_argument("--config", action="append", help="a configuration (repeatable); default: all")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_params)

    s = sub.add_parser("train", help="fine-tune one configuration on one few-shot split")
    s.add_argument("--model", required=True, help="hub name or local path of the base model")
    s.add_argument("--dataset", required=True, choices=["esnli", "ecqa", "sbic", "comve"])
    s.add_argument("--data-dir", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--config", required=True, help="e.g. att_q+layer_norm, full_ft, lora, lora_qkvo_r4, adalora, ia3, loreft, dect")
    s.add_argument("--out", required=True, help="run directory")
    s.add_argument("--epochs", type=float, default=25)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--lr", type=float, default=3e-5)
    s.add_argument("--n-train", type=int, default=48)
    s.add_argument("--n-val", type=int, default=350)
    s.add_argument("--train-ids", help="file with one training id per line (reuse a published split)")
    s.add_argument("--val-ids", help="file with one validation id per line")
    s.add_argument("--max-steps", type=int, default=-1)
    s.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    add_baseline_arguments(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("generate", help="generate NLEs for a run's validation split")
    s.add_argument("--run", required=True)
    s.add_argument("--out", required=True, help="NLE JSONL for nle-annotate import")
    s.add_argument("--split", default="validation", choices=["validation", "test", "train"])
    s.add_argument("--first", type=int, default=30, help="how many correct predictions to keep (balanced)")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--data-dir", help="override the run's data directory")
    s.add_argument("--base-model", help="override the run's base model path")
    s.add_argument("--bertscore-model", help="local encoder model directory for BERTScore (skipped when absent)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("sweep", help="print (or run) the jobs for datasets x seeds x configurations")
    s.add_argument("--model", required=True)
    s.add_argument("--datasets", nargs="+", default=["esnli", "ecqa", "sbic", "comve"])
    s.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    s.add_argument("--configs", nargs="+", default=["all", "full_ft"], help="names, 'all' or 'peft'")
    s.add_argument("--data-root", required=True, help="holds one folder per dataset")
    s.add_argument("--out-root", required=True)
    s.add_argument("--first", type=int, default=30)
    s.add_argument("--train-arg", action="append", default=[], help="extra argument passed to train (repeatable)")
    s.add_argument("--run", action="store_true", help="run the jobs here, one after another")
    s.set_defaults(func=cmd_sweep)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputFileError, ValueError) as exc:
        print(f"nle-gen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
