"""Validation mAP of trained models on crowded vs other images (the README's ablation columns).

    python scripts/score_by_crowding.py runs/ablation/*.keras

Reads each model file's recorded per-image validation scores (no TensorFlow needed) and averages
them over the validation images where at least 10 % / 20 % of the nuclei touch another nucleus
(8-neighbourhood), and over the rest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from napari_unet_weights.unet import read_metadata

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "dsb2018"
SPLIT_FILE = REPO / "scripts" / "dsb2018_split.json"


def touching_fraction(labels: np.ndarray) -> float:
    """Share of the objects that touch another object."""
    grown = ndi.grey_dilation(labels, size=(3, 3))
    contact = (labels > 0) & (grown != labels) & (grown > 0)
    n_objects = len(np.unique(labels)) - 1
    return len(np.unique(labels[contact])) / max(n_objects, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    validation = json.loads(SPLIT_FILE.read_text())["validation"]
    fractions = {name: touching_fraction(tifffile.imread(args.data / "labels" / f"{name}.tif"))
                 for name in validation}
    for threshold in (0.1, 0.2):
        crowded = {name for name, value in fractions.items() if value >= threshold}
        print(f"-- {len(crowded)} of {len(fractions)} validation images have >= "
              f"{threshold:.0%} of their nuclei touching another")
        for path in args.models:
            scores = {r["image"]: r["map"] for r in read_metadata(path)["validation"]["per_image"]}
            inside = np.mean([scores[name] for name in crowded])
            outside = np.mean([score for name, score in scores.items() if name not in crowded])
            print(f"{path}: all {np.mean(list(scores.values())):.4f}  crowded {inside:.4f}  "
                  f"other {outside:.4f}")


if __name__ == "__main__":
    main()
