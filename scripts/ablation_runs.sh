#!/usr/bin/env bash
# The ablation behind the bundled model (issue 10): each lever added to the previous
# configuration, same budget (20 epochs x 80 steps x batch 8 of 128^2 patches), same
# split; scored on validation only. Usage: bash scripts/ablation_runs.sh [OUTDIR]
set -euo pipefail
out=${1:-runs/ablation}
run() { python scripts/train_bundled_model.py --outdir "$out" "$@"; }
run --name A0-previous
run --name A1-cosine-map --lr-schedule cosine --select-by val_map
run --name A2-hematoxylin --lr-schedule cosine --select-by val_map --colour hematoxylin
run --name A3-oversample-he --lr-schedule cosine --select-by val_map --colour hematoxylin \
    --oversample-he 3
run --name A4-no-class-weights --lr-schedule cosine --select-by val_map --colour hematoxylin \
    --oversample-he 3 --class-weights none
