"""The same tiny sweep (8 runs: e-SNLI and ECQA fixtures x 2 seeds x att_q, layer_norm; 2 training steps each,
then generation) with `nle-gen sweep --engine local` (one after another) and `--engine ray` (local Ray).
Prints each engine's wall time, Ray's start-up time separately, and the speed-up.

    python benchmarks/sweep_engines.py                       # 8 runs, local then Ray with 2 CPUs
    python benchmarks/sweep_engines.py --engines ray --runs 4 --gpus-per-run 0.25 --num-cpus 0   # GPU check
    python benchmarks/sweep_engines.py --smoke               # smallest size: 1 run of 1 step per engine

The model is a random-init 2-layer T5 (d_model 32) with a word-level tokenizer built from the test fixtures,
so the figures measure the engines (process start, imports, scheduling), not the model.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "generation" / "fixtures"
TINY = ["--train-arg=--n-train", "--train-arg=3",
        "--train-arg=--n-val", "--train-arg=3", "--train-arg=--batch-size", "--train-arg=3", "--first", "2"]


def make_tiny_t5(out: Path) -> Path:
    """A random-init 2-layer T5 and a word-level tokenizer over the fixture texts, saved to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from generation.data import DATASETS, load_split
    from generation.prompts import prompt, target

    texts = [t for name in DATASETS for split in ("train", "validation")
             for ex in load_split(name, FIXTURES / name, split) for t in (prompt(ex), target(ex), *ex.explanations)]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(out)
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(fast), d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16,
                   relative_attention_num_buckets=8, dropout_rate=0.0, tie_word_embeddings=True, pad_token_id=0,
                   eos_token_id=1, decoder_start_token_id=0)
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    return out


def grid(runs: int) -> list[str]:
    if runs == 1:
        return ["--datasets", "esnli", "--seeds", "0", "--configs", "att_q"]
    if runs == 8:
        return ["--datasets", "esnli", "ecqa", "--seeds", "0", "1", "--configs", "att_q", "layer_norm"]
    if runs == 4:
        return ["--datasets", "esnli", "--seeds", "0", "1", "--configs", "att_q", "layer_norm"]
    raise SystemExit("--runs must be 1, 4 or 8")


def sweep(engine: str, model: Path, out: Path, a: argparse.Namespace) -> tuple[float, str]:
    """Wall time of one `nle-gen sweep` (a fresh process, as a user runs it) and its output."""
    steps = ["--train-arg=--max-steps", f"--train-arg={1 if a.smoke else 2}"]
    cmd = [sys.executable, "-m", "generation.cli", "sweep", "--model", str(model), "--data-root", str(FIXTURES),
           "--out-root", str(out), *TINY, *steps, *grid(a.runs), "--engine", engine, "--no-progress"]
    if engine == "ray":
        cmd += ["--cpus-per-run", str(a.cpus_per_run)]
        cmd += ["--num-cpus", str(a.num_cpus)] if a.num_cpus else []
        cmd += ["--gpus-per-run", str(a.gpus_per_run)] if a.gpus_per_run is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{engine} sweep failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    done = sum(1 for _ in out.glob("*/*/seed-*/nles.jsonl"))
    if done != a.runs:
        raise SystemExit(f"{engine}: {done} of {a.runs} runs complete")
    return wall, proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    p.add_argument("--runs", type=int, default=None,
                   help="8 (2 datasets x 2 seeds x 2 configurations, the default), 4 or 1 (the --smoke default)")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray (0: all)")
    p.add_argument("--cpus-per-run", type=float, default=1.0)
    p.add_argument("--gpus-per-run", type=float, help="default: 1 when there are GPUs, else 0")
    p.add_argument("--smoke", action="store_true", help="smallest size: 1 run of 1 training step per engine")
    a = p.parse_args()
    a.runs = a.runs or (1 if a.smoke else 8)
    sys.path.insert(0, str(ROOT))
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {a.runs} tiny runs per engine", flush=True)
    walls = {}
    with tempfile.TemporaryDirectory(prefix="sweep-engines-") as tmp:
        model = make_tiny_t5(Path(tmp) / "tiny_t5")
        for engine in a.engines:
            wall, out = sweep(engine, model, Path(tmp) / engine, a)
            walls[engine] = wall
            startup = re.search(r"Ray start-up: ([\d.]+) s", out)
            extra = f" (of which Ray start-up {startup.group(1)} s)" if startup else ""
            print(f"{engine:>5}: {wall:6.1f} s for {a.runs} runs{extra}", flush=True)
            if engine == "ray" and startup:
                walls["ray_startup"] = float(startup.group(1))
    if "local" in walls and "ray" in walls:
        print(f"speed-up of Ray over local: {walls['local'] / walls['ray']:.2f}x "
              f"({walls['local'] / (walls['ray'] - walls.get('ray_startup', 0.0)):.2f}x without Ray's start-up)")


if __name__ == "__main__":
    main()
