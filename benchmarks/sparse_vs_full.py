"""Training-step memory and time of full_ft vs att_q+layer_norm vs LoRA, and batched generation throughput.

A t5-base-shaped random-init model (223M distinct parameters; --arch for another preset shape), batch 4,
128 input / 64 target tokens. Token ids are drawn below the built model's own embedding rows, and the header
prints the vocabulary, layers and heads of the model the workers built, so no size here can drift from the presets.
Each (device, configuration, round) runs in a fresh subprocess. CPU peak memory is the process's peak
resident set (VmHWM) during the training steps: the peak is reset (/proc/self/clear_refs) once the model
and batch are built, so the transient of random initialisation does not count, while the resident
weights, gradients, optimizer state and activations do. CUDA: torch.cuda.max_memory_allocated.
Step time is the best of all timed steps over interleaved rounds (robust to other jobs on shared cores); on CPU
the table also gives the best step's CPU time (all threads: the work done, which other jobs do not add to).

    python benchmarks/sparse_vs_full.py                 # CPU (and CUDA when available)
    python benchmarks/sparse_vs_full.py --rounds 3 --steps 2 --threads 2
    python benchmarks/sparse_vs_full.py --devices cuda --arch t5-large --skip-gen   # see benchmarks/gpu_check.sh
    python benchmarks/sparse_vs_full.py --smoke         # smallest size: checks the script (make bench-smoke)

--smoke keeps the preset's vocabulary but shrinks it to 2 layers of width 64 with 2 heads, times the memory
round's single step instead of separate timing rounds, and runs one short generation setting: seconds, not
minutes, and its figures mean nothing.

The step is what the Trainer does per step: forward, backward, AdamW step over the trainable tensors only
(frozen tensors get neither .grad nor optimizer state), zero_grad(set_to_none=True).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = ("full_ft", "att_q+layer_norm", "lora")
BATCH, SRC, TGT = 4, 128, 64
# --smoke: the preset's own vocabulary (what broke once), everything else as small as T5 allows.
SMOKE_SHAPE = {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 2, "d_kv": 32}


def shape(arch: str, smoke: bool = False):
    """The preset's config; with `smoke`, the same vocabulary at 2 layers of width 64 and 2 heads."""
    from generation.presets import preset_architecture

    cfg = preset_architecture(arch)
    if smoke:
        cfg.update(SMOKE_SHAPE)
    return cfg


def build(config: str, device: str, arch: str = "t5-base", smoke: bool = False):
    import torch

    from generation.components import select_trainable_parameters
    from generation.presets import model_class

    torch.manual_seed(0)
    cfg = shape(arch, smoke)
    with torch.device(device):  # initialised where it runs: t5-large on CPU first would take longer than the steps
        model = model_class(cfg).from_config(cfg)
    if config == "lora":
        from generation.methods.peft import apply_peft

        model = apply_peft(model, "lora", total_steps=10)
    elif config != "full_ft":
        select_trainable_parameters(model, config)
    return model


def vocabulary(model) -> int:
    """Rows of the model's input embedding: every token id must be below it."""
    return model.get_input_embeddings().weight.shape[0]


def sizes(model) -> dict[str, int]:
    """What the header prints: the built model's own vocabulary, layers and heads."""
    cfg = model.config
    return {"vocab": vocabulary(model), "layers": cfg.num_layers,
            "decoder_layers": getattr(cfg, "num_decoder_layers", None) or cfg.num_layers,
            "heads": cfg.num_heads, "d_model": cfg.d_model}


def batch(model, device: str):
    """A random training batch of token ids the model can embed (2 and up: 0 and 1 are pad and EOS)."""
    import torch

    vocab = vocabulary(model)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, vocab, (BATCH, SRC), generator=g)
    labels = torch.randint(2, vocab, (BATCH, TGT), generator=g)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device), "labels": labels.to(device)}


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(config: str, device: str, steps: int, threads: int, arch: str = "t5-base", precision: str = "fp32",
           smoke: bool = False) -> dict:
    import contextlib

    import torch

    from generation.modeling import set_tf32

    torch.set_num_threads(threads)
    set_tf32(precision in ("tf32", "bf16"))  # as `nle-gen train --precision` sets it on CUDA
    # bf16 autocast as the Trainer applies it (weights, gradients and optimizer state stay fp32)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    model = build(config, device, arch, smoke)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    opt = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.0, foreach=True)
    data = batch(model, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    reset = _reset_peak_rss()
    rss_model = _peak_rss_bytes()
    times, cpu_times = [], []
    for step in range(steps + 1):  # step 0 warms up (allocates optimizer state)
        if device == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        with autocast:
            loss = model(**data).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else _peak_rss_bytes()
    return {"config": config, "device": device, "trainable": trainable, "total": total, "times": times,
            "cpu_times": cpu_times,
            "peak_bytes": peak, "model_rss_bytes": rss_model, "peak_reset": reset, "loss": float(loss.detach()),
            "sizes": sizes(model)}


def generation_worker(device: str, threads: int, lo: int, hi: int, new_tokens: int, n: int = 16,
                      arch: str = "t5-base", smoke: bool = False) -> dict:
    import torch

    torch.set_num_threads(threads)
    model = build("full_ft", device, arch, smoke).eval()
    vocab = vocabulary(model)
    g = torch.Generator().manual_seed(2)
    # prompts of different lengths, padded per batch as generate_texts does (sorted by length)
    lengths = sorted((int(x) for x in torch.randint(lo, hi + 1, (n,), generator=g)), reverse=True)
    prompts = [torch.randint(2, vocab, (k,), generator=g) for k in lengths]

    def run(bs: int) -> tuple[float, float]:
        """Wall and CPU seconds to generate for all prompts, `bs` at a time."""
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for i in range(0, n, bs):
                chunk = prompts[i:i + bs]
                width = max(len(p) for p in chunk)
                ids = torch.zeros(len(chunk), width, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for r, p in enumerate(chunk):
                    ids[r, :len(p)], mask[r, :len(p)] = p, 1
                # fixed output length: a random model would otherwise stop at a random EOS
                model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                               num_beams=1, use_cache=True, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, time.process_time() - c0

    run(n)  # warm-up
    (batched, batched_cpu), (single, single_cpu) = run(n), run(1)
    return {"device": device, "n": n, "prompt_tokens": f"{lo}-{hi}", "new_tokens": new_tokens, "batched_s": batched, "single_s": single,
            "batched_tok_per_s": n * new_tokens / batched, "single_tok_per_s": n * new_tokens / single,
            "speedup": single / batched, "cpu_speedup": single_cpu / batched_cpu, "sizes": sizes(model)}


def spawn(args: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(sizes: dict[str, int]) -> str:
    return (f"vocabulary {sizes['vocab']:,} rows, {sizes['layers']}+{sizes['decoder_layers']} layers, "
            f"{sizes['heads']} heads, d_model {sizes['d_model']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2, help="timed steps per run (after one warm-up)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of all configurations")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--devices", nargs="+", default=None)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--generation-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--gen", nargs=3, type=int, action="append", metavar=("MIN", "MAX", "NEW"),
                   help="generation setting: prompt tokens MIN-MAX, NEW tokens (repeatable; "
                        "default 64 128 32 and the FEB-like 24 64 48; --smoke: 8 16 4)")
    p.add_argument("--skip-train", action="store_true", help="only the generation benchmark")
    p.add_argument("--skip-gen", action="store_true", help="only the training-step benchmark")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                   help="numerics of the training step, as `nle-gen train --precision` (default fp32, the paper's)")
    p.add_argument("--arch", default="t5-base", help="preset shape: t5-small, t5-base, t5-large, t5-3b")
    p.add_argument("--smoke", action="store_true",
                   help="smallest size (the preset's vocabulary, 2 layers of width 64; 1 round of 1 step): "
                        "checks that the script runs")
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.device, a.steps, a.threads, a.arch, a.precision, a.smoke)))
        return
    if a.generation_worker:
        lo, hi, new = a.gen[0]
        print(json.dumps(generation_worker(a.device, a.threads, lo, hi, new, arch=a.arch, smoke=a.smoke)))
        return
    if a.smoke:
        a.rounds, a.steps = 1, 1
    import torch

    devices = a.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"torch {torch.__version__}, {a.threads} CPU threads, {a.arch} shape{' (--smoke size)' if a.smoke else ''}, "
          f"batch {BATCH}, {SRC}/{TGT} tokens")
    default_gen = [(8, 16, 4)] if a.smoke else [(64, SRC, 32), (24, 64, 48)]
    for device in devices:
        if not a.skip_train:
            train_table(device, a)
        for lo, hi, new in [] if a.skip_gen else a.gen or default_gen:
            g = spawn(["--generation-worker", "--device", device, "--threads", str(a.threads), "--arch", a.arch,
                       "--gen", str(lo), str(hi), str(new), *(["--smoke"] if a.smoke else [])])
            print(f"[{device}] generation, {describe(g['sizes'])}: {g['n']} prompts of {g['prompt_tokens']} tokens "
                  f"x {g['new_tokens']} new tokens: batch 16 {g['batched_tok_per_s']:.1f} tok/s, one by one "
                  f"{g['single_tok_per_s']:.1f} tok/s, speedup {g['speedup']:.1f}x"
                  + (f" (CPU time {g['cpu_speedup']:.1f}x)" if device == "cpu" else ""))


def train_table(device: str, a: argparse.Namespace) -> None:
    """Memory round (CPU), then interleaved timing rounds of every configuration; prints the table."""
    flags = ["--threads", str(a.threads), "--arch", a.arch, "--precision", a.precision,
             *(["--smoke"] if a.smoke else [])]
    # CPU memory round: glibc serves allocations >= 64 KiB by mmap and returns them on free, so the peak
    # resident set follows live tensors instead of the allocator's cache (slower, so not timed). CUDA counts
    # live tensors itself (max_memory_allocated), so there the timing rounds give the memory too.
    mem = {} if device == "cuda" else {
        c: spawn(["--worker", c, "--device", device, "--steps", "1", *flags], env={"MALLOC_MMAP_THRESHOLD_": "65536"})
        for c in CONFIGS}
    # --smoke on CPU: the memory round's one step stands for the timing round (half the processes; no figure counts)
    rows: dict[str, dict] = {c: dict(r) for c, r in mem.items()} if a.smoke else {}
    for _ in range(a.rounds if not rows else 0):  # timing rounds, default allocator, interleaved
        for c in CONFIGS:
            r = spawn(["--worker", c, "--device", device, "--steps", str(a.steps), *flags])
            old = rows.setdefault(c, r | {"times": [], "cpu_times": []})
            old["times"] += r["times"]
            old["cpu_times"] += r["cpu_times"]
            old["peak_bytes"] = max(old["peak_bytes"], r["peak_bytes"])
    full = rows["full_ft"]
    memory = ("live = memory round, cached = default allocator" if mem else "torch.cuda.max_memory_allocated")
    # CPU time per step (all threads) is the work done; wall time also holds what other jobs on shared cores took
    cpu = device == "cpu"
    print(f"\n[{device}] {a.arch}{'' if a.precision == 'fp32' else ' ' + a.precision} training step, {describe(full['sizes'])}: "
          f"best of {a.rounds} x {a.steps} steps{' (wall and CPU time)' if cpu else ''}; peak memory during the "
          f"steps ({memory})")
    print(f"{'config':<18} {'trainable':>12} {'%':>6} {'step s':>8} {'x full':>7}"
          + (f" {'CPU s':>8} {'x full':>7}" if cpu else "")
          + f" {'live MiB':>9} {'x full':>7}" + (f" {'cached MiB':>11} {'x full':>7}" if mem else ""))
    for c, r in rows.items():
        step, live, live_full = min(r["times"]), (mem or rows)[c]["peak_bytes"], (mem or rows)["full_ft"]["peak_bytes"]
        print(f"{c:<18} {r['trainable']:>12,} {100 * r['trainable'] / r['total']:>6.2f} {step:>8.3f} "
              f"{step / min(full['times']):>7.2f}"
              + (f" {min(r['cpu_times']):>8.3f} {min(r['cpu_times']) / min(full['cpu_times']):>7.2f}" if cpu else "")
              + f" {live / 2**20:>9.0f} {live / live_full:>7.2f}"
              + (f" {r['peak_bytes'] / 2**20:>11.0f} {r['peak_bytes'] / full['peak_bytes']:>7.2f}" if mem else ""))
    if device == "cpu":
        print(f"(process with model and batch, before the first step: {full['model_rss_bytes'] / 2**20:.0f} MiB;"
              f" peak reset worked: {full['peak_reset']})")


if __name__ == "__main__":
    main()
