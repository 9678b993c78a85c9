#!/usr/bin/env bash
# One short check for a GPU machine (budget: under 8 minutes on one GPU); run from anywhere in the checkout:
#   1. the GPU: nvidia-smi, torch's view of it, bf16 support
#   2. training step, Att.Q+LN vs full FT vs LoRA: memory and step-time ratios, t5-base and t5-large shapes,
#      random init, bf16 autocast + TF32 as `nle-gen train` uses them (benchmarks/sparse_vs_full.py)
#   3. batched generation throughput with the KV cache, batch 16 vs one by one (t5-large shape)
#   4. a 4-run Ray sweep of tiny models with --gpus-per-run 0.25 (four runs share the GPU)
#
#   benchmarks/gpu_check.sh          # on the GPU machine
#   benchmarks/gpu_check.sh --cpu    # the same commands on CPU with t5-small shapes: checks the script itself
# PYTHON=/path/to/python picks the interpreter (default: python). Each step has its own timeout, so one
# slow step cannot eat the others' time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ "${1:-}" == "--cpu" ]]; then
  DEVICE=cpu ARCHS="t5-small" GEN_ARCH=t5-small GPUS_PER_RUN=0 BF16="" STEPS=1 SCALE=4
else
  DEVICE=cuda ARCHS="t5-base t5-large" GEN_ARCH=t5-large GPUS_PER_RUN=0.25 BF16=--bf16 STEPS=3 SCALE=1
fi
start=$SECONDS
step() { echo; echo "== $1  ($((SECONDS - start)) s so far)"; }

step "1. device"
if [[ $DEVICE == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
fi
timeout $((60 * SCALE)) "$PY" - "$DEVICE" <<'EOF'
import sys

import torch
import transformers

device = sys.argv[1]
print(f"torch {torch.__version__}, transformers {transformers.__version__}, CUDA {torch.version.cuda}")
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

step "2. training step: Att.Q+LN vs full FT (memory and time ratios)"
for arch in $ARCHS; do
  if [[ $arch == t5-large ]]; then limit=$((150 * SCALE)); else limit=$((90 * SCALE)); fi
  timeout "$limit" "$PY" benchmarks/sparse_vs_full.py --devices "$DEVICE" --arch "$arch" --rounds 1 \
    --steps "$STEPS" --skip-gen $BF16
done

step "3. batched generation throughput ($GEN_ARCH shape)"
timeout $((90 * SCALE)) "$PY" benchmarks/sparse_vs_full.py --devices "$DEVICE" --arch "$GEN_ARCH" --skip-train \
  --gen 24 64 48

step "4. Ray sweep: 4 tiny runs, --gpus-per-run $GPUS_PER_RUN"
timeout $((120 * SCALE)) "$PY" benchmarks/sweep_engines.py --engines ray --runs 4 --gpus-per-run "$GPUS_PER_RUN" \
  --num-cpus 0

echo
echo "== gpu_check done in $((SECONDS - start)) s"
