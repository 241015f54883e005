#!/usr/bin/env bash
# Weighted vs plain loss at the final configuration, three seeds each (issue 10).
# The final configuration is the ablation run with the best validation mAP (runs.json of
# ABLATION_DIR); its seed-0 run is the weighted seed 0. Scores: scripts/evaluate_model.py.
# Usage: bash scripts/seed_runs.sh [ABLATION_DIR] [OUTDIR]
set -euo pipefail
ablation=${1:-runs/ablation}
out=${2:-runs/seeds}
best=$(python -c "import json,sys; rows=json.load(open(sys.argv[1])); \
print(max(rows, key=lambda r: r['val_map'])['file'])" "$ablation/runs.json")
echo "final configuration: $best"
mkdir -p "$out"
cp "$best" "$out/weighted-seed0.keras"
run() { python scripts/train_bundled_model.py --config-from "$best" --outdir "$out" "$@"; }
run --name plain-seed0 --no-weights --seed 0
run --name weighted-seed1 --seed 1
run --name plain-seed1 --no-weights --seed 1
run --name weighted-seed2 --seed 2
run --name plain-seed2 --no-weights --seed 2
