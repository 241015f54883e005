#!/usr/bin/env bash
# The ablation behind the bundled model (issue 10): each lever added to the previous
# configuration, same budget (20 epochs x 80 steps x batch 8 of 128^2 patches, depth 4,
# 12 filters), same split, seed 0; scored on validation only.
# Usage: bash scripts/ablation_runs.sh [OUTDIR]
set -euo pipefail
out=${1:-runs/ablation}
run() { python scripts/train_bundled_model.py --outdir "$out" "$@"; }
# A0: the previous bundled model's recipe (constant rate, epoch of lowest validation loss)
run --name A0-previous --val-map-every 2 --lr-schedule constant --select-by val_loss \
    --colour mean --class-weights balanced --oversample ""
# A1-A3 compute the validation mAP every 4 epochs and keep the best of those epochs
levers=(--lr-schedule cosine --select-by val_map --val-map-every 4 --colour mean
        --class-weights balanced --oversample "")
run --name A1-cosine-map "${levers[@]}"
levers+=(--colour hematoxylin)  # later options replace earlier ones
run --name A2-hematoxylin "${levers[@]}"
levers+=(--oversample he=3,brightfield=5)
run --name A3-oversample "${levers[@]}"
levers+=(--class-weights none)
run --name A4-no-class-weights "${levers[@]}"
