#!/usr/bin/env bash
# The GPU check: one `paper`-preset slice per method (fit, sample and impute throughput, peak GPU
# memory) on the GPU of this machine, in a few minutes; writes bench/gpu_check.md.
#   bash bench/gpu_check.sh                      # set up .venv with a CUDA torch if needed, then run
#   TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash bench/gpu_check.sh   # choose the wheel index
#   ARGS="--scale 50 --precision fp32" bash bench/gpu_check.sh                    # options of gpu_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  make setup TORCH_INDEX="${TORCH_INDEX:-}"
fi
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch: install a CUDA build (TORCH_INDEX=…/whl/cu128) or run on a GPU machine')"
.venv/bin/ldmiss fetch-data
timeout "${LIMIT:-900}" .venv/bin/python bench/gpu_check.py --device cuda ${ARGS:-}
