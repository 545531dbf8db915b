#!/usr/bin/env bash
# The GPU check of issue 19 (benchmarks/gpu_check.py says what it runs and where results go).
#   bash benchmarks/gpu_check.sh              on the GPU machine: device tool run with carry [".whl"]
#   bash benchmarks/gpu_check.sh --dry-run    here: the plan, the exact commands, whether .whl/ is complete
# It installs the wheels of .whl/ (bash benchmarks/gpu_wheels.sh makes them) with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
# and runs every part with PYTHONPATH=/tmp/site:<repo>.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE=offline WANDB_SILENT=true PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
