#!/usr/bin/env bash
# The SynthFood transfer demo of docs/transfer.md, start to end, on the CPU (about 15 CPU minutes):
# draw source and target, pretrain on the source, export its backbone, fine-tune the target five ways
# x 3 seeds, fine-tune once from the exported file, print the table.
#   bash experiments/transfer/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1  # 2 runs at a time on the 2 cores (sweep --jobs 2)
source=runs/synthfood-transfer-source/source
uptime
[ -d data/transfer/source ] || $python data_prep/make_synthfood.py --out data/transfer/source --dishes 32 --per-dish 25 --size 64 --seed 1
[ -d data/transfer/target ] || $python data_prep/make_synthfood.py --out data/transfer/target --dishes 16 --per-dish 15 --size 64 --seed 0 --test-fraction 0.67
start=$SECONDS
[ -f $source/summary.json ] || $python -m foodmtl train experiments/transfer/source.yaml
$python -m foodmtl export $source/checkpoints/best.pt --out $source/backbone.safetensors
echo "source: $((SECONDS - start)) s"; start=$SECONDS
$python -m foodmtl sweep experiments/transfer/synthfood.yaml --jobs 2
echo "15 target runs: $((SECONDS - start)) s"
# the exported file (timm's names) through model.pretrained_file: the backbone alone (init_from, in the sweep,
# also takes the source's category head, whose classes match the target's)
$python -m foodmtl train experiments/transfer/target.yaml experiment=synthfood-transfer-export run=full-s0 \
    model.pretrained_file=$source/backbone.safetensors
$python -m foodmtl table runs/synthfood-transfer --reference scratch
uptime
