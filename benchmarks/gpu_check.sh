#!/usr/bin/env bash
# The GPU check for one lease (about 6-7 minutes on one H200, under 8):
#   1. benchmarks/gpu_throughput.py: trainer images/s for resnet34_cifar and mobilenet_v2 at
#      32x32, batch 128/256/512, bf16 + channels-last, eager and compiled; % of the bf16 matmul
#      peak measured in the same run; trainer vs a minimal loop; 4 packed MobileNetV2 trainers.
#   2. benchmarks/gpu_trial_check.py: cifar100-10split-shaped lwf under none / kd /
#      prepruning@0.4 through the in-process trial runner (no Ray), on generated
#      CIFAR-100-format data, with the full-budget trial time extrapolated.
# Usage, from the repository root on the GPU machine:  bash benchmarks/gpu_check.sh [OUT_DIR]
# That machine's Python must have torch, torchvision, numpy, pyyaml and scikit-learn; the
# harness's other needs (torch-pruning, ptflops) travel as wheels in .whl/ (`make gpu-wheels`
# here). Smoke-test it on a CPU: CILBENCH_CHECK_DEVICE=cpu CILBENCH_CHECK_QUICK=1 bash ...
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${1:-${OUT:-/tmp/cilbench-gpu-check}}"
mkdir -p "$out_dir"
python="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/cilbench-site .whl/*.whl
    export PYTHONPATH="/tmp/cilbench-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
device="${CILBENCH_CHECK_DEVICE:-cuda}"
quick=()
if [ -n "${CILBENCH_CHECK_QUICK:-}" ]; then quick=(--quick --pack 2); fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
started=$(date +%s)
timeout 330 "$python" benchmarks/gpu_throughput.py --device "$device" "${quick[@]}" \
    --json "$out_dir/throughput.json" 2>&1 | tee "$out_dir/throughput.log"
quick_trials=()
if [ -n "${CILBENCH_CHECK_QUICK:-}" ]; then quick_trials=(--quick); fi
timeout 240 "$python" benchmarks/gpu_trial_check.py --device "$device" "${quick_trials[@]}" \
    --json "$out_dir/trials.json" 2>&1 | tee "$out_dir/trials.log"
echo "gpu check: $(( $(date +%s) - started )) s; summaries in $out_dir"
