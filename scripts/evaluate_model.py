"""Score model files on a part of the recorded DSB 2018 split: overall, per modality, crowded.

    python scripts/evaluate_model.py runs/final/final.keras --part test --record
    python scripts/evaluate_model.py runs/ablation/*.keras --part validation --json v.json

For each model: the labels of :func:`napari_unet_weights.unet.segment` (the file's
post-processing; ``--tta`` averages the 8 flips / rotations) on every image of the
part, scored against the ground truth with the DSB 2018 metric (per image the mean over
IoU thresholds 0.5:0.95 of TP / (TP + FP + FN), then averaged over images). Printed:
mAP, AP@0.5 / 0.75 / 0.9 (image-averaged accuracy at that threshold), per modality, on
crowded images (>= 20 % of the nuclei touching another) and on the others.

``--record`` stores the figures and the per-image scores in the model file's metadata
(entry ``"test"``, or ``"test_tta"`` with ``--tta``; only for ``--part test``): that is
what the Segment widget and the README quote as the "test mAP". The test part chose
nothing: run this on it only to report a model that validation has already chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from dsb2018_split import CROWDED, DEFAULT_DATA, MODALITIES, SPLIT_FILE, load_split

REPORTED_THRESHOLDS = (0.5, 0.75, 0.9)


def _summary(per_image: list[dict], keep) -> dict:
    chosen = [r for r in per_image if keep(r)]
    if not chosen:
        return {"n_images": 0}
    return {
        "n_images": len(chosen),
        "map": round(float(np.mean([r["map"] for r in chosen])), 4),
        **{f"ap_{t}": round(float(np.mean([r[f"ap_{t}"] for r in chosen])), 4)
           for t in REPORTED_THRESHOLDS},
    }


def score_model(path: Path, ids: list[str], split: dict, data: Path, tta: bool) -> dict:
    """Segment every image of ``ids`` with the model and score it (see the module doc)."""
    from napari_unet_weights.metrics.matching import evaluate
    from napari_unet_weights.unet import load_model, segment

    model = load_model(path)
    per_image, start = [], time.monotonic()
    for sample_id in ids:
        image = tifffile.imread(data / "images" / f"{sample_id}.tif")
        truth = tifffile.imread(data / "labels" / f"{sample_id}.tif")
        labels = segment(image, model, tta=tta)
        result = evaluate(truth, labels)
        accuracy = dict(zip(result.per_threshold["threshold"].round(2),
                            result.per_threshold["accuracy"]))
        per_image.append({
            "image": sample_id, "modality": split["modality"][sample_id],
            "touching": split["touching"][sample_id], "map": round(float(result.map), 4),
            **{f"ap_{t}": round(float(accuracy[t]), 4) for t in REPORTED_THRESHOLDS},
        })
    return {
        **_summary(per_image, lambda r: True),
        "per_modality": {m: _summary(per_image, lambda r, m=m: r["modality"] == m)
                         for m in MODALITIES},
        "crowded": _summary(per_image, lambda r: r["touching"] >= CROWDED),
        "not_crowded": _summary(per_image, lambda r: r["touching"] < CROWDED),
        "tta": tta,
        "seconds": round(time.monotonic() - start, 1),
        "per_image": per_image,
    }


def report_line(name: str, scores: dict) -> str:
    modality = "  ".join(f"{m} {scores['per_modality'][m].get('map', float('nan')):.4f}"
                         f" ({scores['per_modality'][m]['n_images']})" for m in MODALITIES)
    return (f"{name}: mAP {scores['map']:.4f}  AP@0.5 {scores['ap_0.5']:.4f}  AP@0.75 "
            f"{scores['ap_0.75']:.4f}  AP@0.9 {scores['ap_0.9']:.4f} | {modality} | crowded "
            f"{scores['crowded']['map']:.4f} ({scores['crowded']['n_images']}) other "
            f"{scores['not_crowded']['map']:.4f} | {scores['seconds']:.0f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--part", choices=("validation", "test"), required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (8x)")
    parser.add_argument("--record", action="store_true",
                        help="store the test figures in each model file")
    parser.add_argument("--json", type=Path, help="write all figures to this file")
    args = parser.parse_args(argv)
    if args.record and args.part != "test":
        parser.error("--record stores test figures: use it with --part test")
    split = load_split(args.data)
    results = {}
    for path in args.models:
        scores = score_model(path, split[args.part], split, args.data, args.tta)
        results[str(path)] = scores
        print(report_line(f"{path} [{args.part}{', tta' if args.tta else ''}]", scores),
              flush=True)
        if args.record:
            from napari_unet_weights.unet.model_file import record_metadata

            record = {**scores, "part": "test", "split_file": SPLIT_FILE.name,
                      "definition": "DSB 2018 mAP 0.5:0.95 per image, then averaged"}
            record_metadata(path, **{"test_tta" if args.tta else "test": record})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
