"""One run as the paper times it: `nle-gen train` + `nle-gen generate` of a random-init model on a FEB-sized split.

    python benchmarks/paper_run.py                       # t5-large shape, 48 train / 350 validation, 300 steps
    python benchmarks/paper_run.py --arch t5-base --config full_ft
    python benchmarks/paper_run.py --smoke               # smallest size: checks the script (make bench-smoke)

The paper reports 23.2 minutes per T5-large run on a P100; FEB's 48 training examples at batch 4 for 25 epochs
are its 300 steps. Here: a random-init model of the preset's shape (its vocabulary, layers and heads, printed from
the model built), a word-level tokenizer whose vocabulary is padded to the model's embedding rows (so FEB's resize
to the tokenizer keeps the preset's shape), and a synthetic e-SNLI release (balanced labels) large enough for a
48 / 350 split. Both commands run as a user runs them (fresh processes, the CLI's own device choice: the GPU when
torch sees one); their wall time includes start-up and loading the model, as a run's would. Setting up the model
(initialising and saving it) is timed apart and not counted. --smoke keeps the preset's vocabulary but shrinks the
model to 2 layers of width 64, the split to 12 / 12 and the run to 3 steps; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from sparse_vs_full import shape  # noqa: E402

PAPER_MINUTES = 23.2  # SparseFit: T5-large, one run, on a P100
WORDS = ("man woman child dog cat bird horse car boat street park beach kitchen stage field river city house "
         "red blue green small large old young happy tired runs walks sits plays eats reads sleeps jumps rides "
         "holds watches cooks sings swims climbs guitar ball book bike hat table tree water food music").split()
LABELS = ("entailment", "neutral", "contradiction")


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_esnli(folder: Path, n_train: int, n_val: int, seed: int = 0) -> None:
    """e-SNLI release CSVs (the columns of esnli_train_1.csv / esnli_dev.csv), labels in turn."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for name, n in (("esnli_train_1.csv", n_train), ("esnli_dev.csv", n_val)):
        with (folder / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pairID", "gold_label", "Sentence1", "Sentence2", "Explanation_1", "WorkerId"])
            for i in range(n):
                w.writerow([f"{name[:-4]}-{i}", LABELS[i % 3], sentence(rng, rng.randint(8, 20)),
                            sentence(rng, rng.randint(4, 10)), sentence(rng, rng.randint(6, 14)), "W"])


def make_model(out: Path, arch: str, smoke: bool, device: str) -> dict:
    """A random-init model of the preset's shape and a tokenizer with exactly its embedding rows; returns sizes."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from generation.presets import model_class

    cfg = shape(arch, smoke)
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it will run: t5-large on CPU first takes long
        model = model_class(cfg).from_config(cfg)
    rows = model.get_input_embeddings().weight.shape[0]
    specials = ["<pad>", "</s>", "<unk>"]
    names = specials + sorted(set(WORDS) | set(LABELS) | {"because"})
    names += [f"<filler_{i}>" for i in range(rows - len(names))]
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(names)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    if len(fast) != rows:
        raise SystemExit(f"tokenizer has {len(fast)} tokens, the model {rows} embedding rows")
    fast.save_pretrained(out)
    model.save_pretrained(out)
    params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    return {"vocab": rows, "layers": cfg.num_layers, "decoder_layers": cfg.num_decoder_layers, "heads": cfg.num_heads,
            "d_model": cfg.d_model, "params": params}


def nle_gen(*args: str) -> tuple[float, str]:
    """Wall seconds and stdout of one `nle-gen` command in a fresh process; stops with its stderr if it fails."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "generation.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"nle-gen {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="t5-large", help="preset shape: t5-small, t5-base, t5-large, t5-3b")
    p.add_argument("--config", default="att_q+layer_norm", help="nle-gen train --config")
    p.add_argument("--steps", type=int, default=300, help="training steps (the paper's: 48 examples / 4 x 25 epochs)")
    p.add_argument("--n-train", type=int, default=48)
    p.add_argument("--n-val", type=int, default=350)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where the model is initialised; cuda stops at once without a GPU (nle-gen itself takes the "
                        "GPU whenever torch sees one)")
    p.add_argument("--smoke", action="store_true",
                   help="smallest size (the preset's vocabulary, 2 layers of width 64; 12 / 12 examples, 3 steps)")
    a = p.parse_args()
    if a.smoke:
        a.steps, a.n_train, a.n_val = 3, 12, 12
    import torch

    device = a.device if a.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU visible to torch")
    where = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {where}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="paper-run-") as tmp_dir:
        tmp = Path(tmp_dir)
        # Three times the split per label in each file, so FEB's balanced sampling has rows to choose from.
        write_esnli(tmp / "esnli", 3 * a.n_train, 3 * a.n_val)
        t0 = time.perf_counter()
        s = make_model(tmp / "model", a.arch, a.smoke, device)
        setup = time.perf_counter() - t0
        print(f"{a.arch} shape{' (--smoke size)' if a.smoke else ''}: vocabulary {s['vocab']:,} rows, "
              f"{s['layers']}+{s['decoder_layers']} layers, {s['heads']} heads, d_model {s['d_model']}, "
              f"{s['params'] / 1e6:.1f} M parameters; set-up (initialise and save, not counted) {setup:.1f} s",
              flush=True)
        run = tmp / "run"
        train_s, _ = nle_gen("train", "--model", str(tmp / "model"), "--dataset", "esnli", "--data-dir",
                             str(tmp / "esnli"), "--seed", "0", "--config", a.config, "--out", str(run),
                             "--n-train", str(a.n_train), "--n-val", str(a.n_val), "--batch-size", str(a.batch_size),
                             "--max-steps", str(a.steps), "--quiet")
        info = json.loads((run / "run.json").read_text())
        print(f"nle-gen train {a.config}: {train_s:.1f} s wall ({info['steps']} steps of batch {a.batch_size} on "
              f"{info['device']}, median step {info['step_seconds']:.3f} s, trainer {info['train_seconds']:.1f} s, "
              f"precision {info['precision']}, {info['percent']:.2f} % trainable)", flush=True)
        gen_s, out = nle_gen("generate", "--run", str(run), "--out", str(run / "nles.jsonl"), "--quiet")
        metrics = json.loads((run / "metrics.json").read_text())
        print(f"nle-gen generate: {gen_s:.1f} s wall for {metrics['n']} validation examples (batch 16)")
    total = (train_s + gen_s) / 60
    print(f"one run, train + generate: {total:.2f} min = {total / PAPER_MINUTES:.3f}x the paper's "
          f"{PAPER_MINUTES} min per run on a P100")


if __name__ == "__main__":
    main()
