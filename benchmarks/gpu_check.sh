#!/usr/bin/env bash
# One short check for a GPU machine (under 8 minutes on one GPU); run from anywhere in the checkout:
#   1. the GPU: nvidia-smi, torch's view of it, bf16 support
#   2. training step, Att.Q+LN vs full FT vs LoRA: memory and step-time ratios, t5-base and t5-large shapes,
#      random init, in fp32 as `nle-gen train` runs by default (the paper's numerics; benchmarks/sparse_vs_full.py)
#   3. batched generation throughput with the KV cache, batch 16 vs one by one (t5-large shape, FEB-length prompts)
#   4. one run as the paper times it: `nle-gen train` (300 steps) + `generate` of a t5-large-shaped random-init
#      model on a 48 / 350 split, against the paper's 23.2 min on a P100 (benchmarks/paper_run.py)
#   5. a 4-run Ray sweep of tiny models with --gpus-per-run 0.25 (four runs share the GPU)
#
#   benchmarks/gpu_check.sh          # on the GPU machine
#   benchmarks/gpu_check.sh --cpu    # the same parts on CPU at --smoke size, two at a time (they time nothing
#                                    # there), the Ray part with the local engine too: checks the script itself
# PYTHON=/path/to/python picks the interpreter (default: python). A part that fails or runs out of time prints the
# last lines of its error output and one FAILED line, and the next part starts: a lent GPU's minutes are not lost
# to one part. Each part has its own time limit, cut to what is left of the whole budget (GPU_CHECK_BUDGET_S,
# default 470 s; --cpu: limits x3 and 1200 s, for a shared machine); a part that finds the budget spent is
# skipped. The summary at the end lists every part; the exit status is 1 when any part failed or was skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ "${1:-}" == "--cpu" ]]; then
  # --smoke keeps the preset's vocabulary and shrinks only width and depth (t5-base and t5-large shrink alike)
  DEVICE=cpu ARCHS="t5-large" GEN_ARCH=t5-large GEN="" GPUS_PER_RUN=0 STEPS=1 SMOKE=--smoke
  ENGINES="local ray" RUNS=1 JOBS=2 SCALE=3 BUDGET=${GPU_CHECK_BUDGET_S:-1200}
elif [[ -n "${1:-}" ]]; then
  echo "usage: benchmarks/gpu_check.sh [--cpu]" >&2
  exit 2
else
  DEVICE=cuda ARCHS="t5-base t5-large" GEN_ARCH=t5-large GEN="--gen 24 64 48" GPUS_PER_RUN=0.25 STEPS=3
  SMOKE=""
  ENGINES=ray RUNS=4 JOBS=1 SCALE=1 BUDGET=${GPU_CHECK_BUDGET_S:-470}
fi
start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
parts=0

# run_part N NAME LIMIT_S COMMAND...: runs COMMAND under min(LIMIT_S, what is left of BUDGET); its error output is
# kept aside and its last lines shown only when it fails; its summary line goes to $work/N.summary.
run_part() {
  local n=$1 name=$2 limit=$3 left t0 rc reason
  shift 3
  left=$((BUDGET - (SECONDS - start)))
  echo
  if ((left < 15)); then
    echo "== $name: SKIPPED (the ${BUDGET} s budget is spent)"
    echo "SKIPPED  $name" >"$work/$n.summary"
    return
  fi
  limit=$((limit * SCALE))
  ((limit > left)) && limit=$left
  echo "== $name  (limit $limit s; $((SECONDS - start)) s so far)"
  t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>"$work/$n.err"
  rc=$?
  if ((rc == 0)); then
    echo "ok       $name  ($((SECONDS - t0)) s)" >"$work/$n.summary"
    return
  fi
  if ((rc == 124 || rc == 137)); then
    reason="timed out after $limit s"
  else
    reason="exit $rc: $(grep -v '^[[:space:]]*$' "$work/$n.err" | tail -n 1 | cut -c1-200)"
  fi
  tail -n 12 "$work/$n.err" | sed 's/^/  | /'
  echo "FAILED: $name: $reason"
  echo "FAILED   $name  ($((SECONDS - t0)) s): $reason" >"$work/$n.summary"
}

# part NAME LIMIT_S COMMAND...: one part, in order; with JOBS > 1 (--cpu) in the background, its output shown at
# the end.
part() {
  parts=$((parts + 1))
  if ((JOBS == 1)); then
    run_part "$parts" "$@"
    return
  fi
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
  run_part "$parts" "$@" >"$work/$parts.out" 2>&1 &
}

device_check() {
  if [[ $DEVICE == cuda ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv || echo "(no nvidia-smi)"
  fi
  "$PY" - "$DEVICE" <<'EOF'
import sys
from importlib.metadata import version

import torch

device = sys.argv[1]
print(f"torch {torch.__version__}, transformers {version('transformers')}, CUDA {torch.version.cuda}")
if device == "cuda":
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible to torch")
    p = torch.cuda.get_device_properties(0)
    print(f"{p.name}: {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
          f"bf16 {torch.cuda.is_bf16_supported()}, TF32 matmuls {'yes' if p.major >= 8 else 'no (pre-Ampere)'}, "
          f"{torch.cuda.device_count()} GPU(s)")
else:
    print(f"CPU mode: {torch.get_num_threads()} threads")
EOF
}

export -f device_check
export DEVICE PY
part "1. device" 60 bash -c device_check

for arch in $ARCHS; do
  if [[ $arch == t5-large ]]; then limit=180; else limit=120; fi
  part "2. training step, $arch shape: Att.Q+LN vs full FT vs LoRA (memory and time)" "$limit" \
    "$PY" benchmarks/sparse_vs_full.py --devices "$DEVICE" --arch "$arch" --rounds 1 --steps "$STEPS" --skip-gen \
    $SMOKE
done

part "3. batched generation throughput, $GEN_ARCH shape" 120 \
  "$PY" benchmarks/sparse_vs_full.py --devices "$DEVICE" --arch "$GEN_ARCH" --skip-train $GEN $SMOKE

part "4. one paper run: nle-gen train + generate, t5-large shape, 48 / 350, 300 steps" 300 \
  "$PY" benchmarks/paper_run.py --arch t5-large --device "$DEVICE" $SMOKE

# shellcheck disable=SC2086  # ENGINES is a list
part "5. Ray sweep: $RUNS tiny runs, --gpus-per-run $GPUS_PER_RUN" 150 \
  "$PY" benchmarks/sweep_engines.py --engines $ENGINES --runs "$RUNS" --gpus-per-run "$GPUS_PER_RUN" --num-cpus 0 \
  $SMOKE

wait
if ((JOBS > 1)); then
  for n in $(seq "$parts"); do cat "$work/$n.out"; done
fi
echo
echo "== gpu_check summary ($DEVICE), $((SECONDS - start)) s in all (budget $BUDGET s):"
for n in $(seq "$parts"); do echo "  $(cat "$work/$n.summary" 2>/dev/null || echo "FAILED   part $n: no result")"; done
ok=$(cat "$work"/*.summary 2>/dev/null | grep -c '^ok')
echo "gpu_check: $ok of $parts parts ok"
((ok == parts))
