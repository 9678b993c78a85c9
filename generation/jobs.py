"""`train` and `generate` as the command line and every sweep engine run them: one library call each
(`generation.train.train`, `generation.generate.evaluate_run`) with the lines `nle-gen` prints around it.

`python -m generation.jobs STEP` runs one step in a child process (the local engine): it reads the step's
settings as JSON on stdin (a TrainConfig's run.json form for `train`, `generate_run`'s keyword arguments for
`generate`) and exits 0, 2 for bad input (one `nle-gen: error:` line), 1 for any other failure (a traceback).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path

from generation.config import TrainConfig, model_family_warning
from generation.errors import InputFileError

STEPS = ("train", "generate")


def quiet_libraries() -> None:
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


def warnings_as_lines() -> None:
    """Warnings raised in this package print as one `nle-gen: warning: ...` line; others keep Python's format."""
    import warnings

    here, original = str(Path(__file__).resolve().parent), warnings.formatwarning
    if getattr(original, "nle_gen", False):  # installed already in this process
        return

    def one_line(message, category, filename, lineno, line=None) -> str:
        if str(filename).startswith(here):
            return f"nle-gen: warning: {message}\n"
        return original(message, category, filename, lineno, line)

    one_line.nle_gen = True
    warnings.formatwarning = one_line


def train_run(cfg: TrainConfig, quiet: bool = False):
    """Train one run (generation.train.train) as `nle-gen train` does: the model is looked up first (one line
    when it is not there), a dataset paired with the other model family than the paper's is warned about."""
    from generation.hub import resolve_model

    if quiet:
        quiet_libraries()
    resolve_model(cfg.model)
    warning = model_family_warning(cfg.model, cfg.dataset)
    if warning:
        print(f"nle-gen: warning: {warning}", file=sys.stderr)
    from generation.train import train

    result = train(cfg, progress=not quiet, verbose=not quiet)
    print(f"saved {cfg.configuration} run to {result.run_dir} (mean training loss {result.train_loss:.4f})")
    return result


def generate_run(run: str, out: str, split: str = "validation", first: int = 30, batch_size: int = 16,
                 data_dir: str | None = None, base_model: str | None = None, bertscore_model: str | None = None,
                 bertscore_layer: int = 17, broken_explanation: str = "empty", precision: str = "run",
                 max_length: int | None = None, max_new_tokens: int | None = None, quiet: bool = False) -> dict:
    """Generate for a run (generation.generate.evaluate_run) as `nle-gen generate` does: nBERTs when a
    BERTScore encoder is given, a summary line, and warnings about a small or one-class NLE file."""
    if quiet:
        quiet_libraries()
    from generation.generate import bertscore_scorer, evaluate_run, selection_warnings
    from generation.rundir import metrics_file

    scorer = bertscore_scorer(bertscore_model, layer=bertscore_layer) if bertscore_model else None
    m = evaluate_run(run, out, split=split, first=first, batch_size=batch_size, data_dir=data_dir,
                     base_model=base_model, scorer=scorer, progress=not quiet, broken_explanation=broken_explanation,
                     precision=precision, max_length=max_length, max_new_tokens=max_new_tokens)
    if m.get("nle", "") is None:  # a label-only method
        print(f"{m['config']}: {split} accuracy {m['accuracy']:.3f} on {m['n']} (zero-shot prior "
              f"{m['prior_accuracy']:.3f}); metrics in {Path(run) / metrics_file(split)}")
        print(f"nle-gen: {m['nle_note']}; nothing written to {out}", file=sys.stderr)
        return m
    extra = f", nBERTs {m['nbertscore']:.2f}" if "nbertscore" in m else ""
    print(f"{m['config']}: {split} accuracy {m['accuracy']:.3f} on {m['n']}, {m['no_because']} without "
          f"'because'{extra}; wrote {m['selected']} NLEs to {out}; metrics in {Path(run) / metrics_file(split)}")
    for w in selection_warnings(m):
        print(f"nle-gen: warning: {w}", file=sys.stderr)
    return m


def encode_step(step: str, settings: TrainConfig | dict) -> str:
    """A step's settings as the JSON `python -m generation.jobs STEP` reads."""
    return json.dumps(settings.to_dict() if isinstance(settings, TrainConfig) else settings)


def run_step(step: str, settings: TrainConfig | dict, quiet: bool = True) -> int:
    """Run one step of a sweep job; the exit status `nle-gen` would give (0, or 2 for bad input)."""
    warnings_as_lines()
    if quiet:
        quiet_libraries()
    try:
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; known: {', '.join(STEPS)}")
        if not isinstance(settings, (dict, TrainConfig)):
            raise ValueError(f"{step} settings: expected a JSON object, got {type(settings).__name__}")
        if step == "train":
            try:
                cfg = settings if isinstance(settings, TrainConfig) else TrainConfig.from_dict(settings)
            except TypeError as exc:  # a required field missing
                raise ValueError(f"train settings: {exc}") from None
            train_run(cfg, quiet=quiet)
        else:
            try:
                inspect.signature(generate_run).bind(**settings)
            except TypeError as exc:  # a field generate does not know, or --run / --out missing
                raise ValueError(f"generate settings: {exc}") from None
            generate_run(**{**settings, "quiet": quiet})
    except (InputFileError, ValueError) as exc:
        print(f"nle-gen: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        print(f"usage: python -m generation.jobs {{{','.join(STEPS)}}} < SETTINGS.json", file=sys.stderr)
        return 2
    try:
        settings = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        print(f"nle-gen: error: the {sys.argv[1]} settings on stdin are not JSON ({exc})", file=sys.stderr)
        return 2
    return run_step(sys.argv[1], settings)


if __name__ == "__main__":
    sys.exit(main())
