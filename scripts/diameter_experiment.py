"""The ``diameter`` setting on rescaled DSB 2018 validation images: none, the true one, auto.

    python scripts/diameter_experiment.py --json docs/model-runs/diameter.json
    python scripts/diameter_experiment.py --limit 30          # a quicker subset

Every image of the **validation** part of the recorded split (``dsb2018_split.json``)
is rescaled by each factor of ``--scales`` (the image linearly, anti-aliased when
shrinking: :func:`napari_unet_weights.unet.diameter.resize_plane`; its ground truth by
nearest neighbour, objects that vanish dropped: ``restore_labels``), so that its nuclei
are that many times the size they have in the data the bundled model was trained on.
Each rescaled image is segmented by the bundled model three ways:

- ``none``: ``segment(image)``, the image as it is;
- ``true``: ``segment(image, diameter=d)`` with ``d`` the median diameter of its
  rescaled ground truth (:func:`~napari_unet_weights.unet.diameter.object_diameter`),
  held to the range the model accepts;
- ``auto``: ``segment(image, diameter="auto")``;

and scored against the rescaled ground truth with the DSB 2018 metric
(:func:`napari_unet_weights.metrics.matching.evaluate`: per image the mean over IoU thresholds
0.5:0.95 of TP / (TP + FP + FN)), averaged over the images. Also recorded: how far
auto's estimate is from the true diameter, and how often auto resized.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from dsb2018_split import DEFAULT_DATA, MODALITIES, SPLIT_FILE, load_split

MODES = ("none", "true", "auto")


def rescaled(image: np.ndarray, labels: np.ndarray, scale: float):
    """(image, labels) with both sides × ``scale`` (labels by nearest neighbour)."""
    from napari_unet_weights.unet.diameter import resize_plane, resized_shape, restore_labels

    if scale == 1:
        return image, labels
    shape = resized_shape(labels.shape, scale)
    return resize_plane(image, shape), restore_labels(labels, shape)


def score_image(model, image: np.ndarray, truth: np.ndarray) -> dict:
    """The three ways of segmenting one (rescaled) image, scored, with auto's estimate."""
    from napari_unet_weights.metrics.matching import evaluate
    from napari_unet_weights.unet import segment, segment_at_diameter
    from napari_unet_weights.unet.diameter import (
        MAX_FACTOR,
        MIN_FACTOR,
        model_diameter,
        object_diameter,
    )

    trained = model_diameter(model.metadata)
    true = object_diameter(truth)
    held = min(max(true, trained / MAX_FACTOR), trained / MIN_FACTOR)
    auto = segment_at_diameter(image, model, diameter="auto")
    found = {"none": segment(image, model), "true": segment(image, model, diameter=held),
             "auto": auto.labels}
    record = {mode: round(float(evaluate(truth, labels).map), 4)
              for mode, labels in found.items()}
    estimate = auto.sizing.estimate
    record.update(true_diameter=round(true, 2), true_held=held != true,
                  auto_estimate=None if math.isnan(estimate) else round(estimate, 2),
                  auto_resized=auto.sizing.resized)
    return record


#: Other rules for auto, as (low, high) factors of the model's diameter: the first pass is
#: kept when the estimate is within, else the image is resized as auto does. Computed from
#: the per-image records (auto's own rule, 10 %, resizes whenever these do).
AUTO_KEEP_RANGES = ((1 / 1.1, 1.1), (1 / 1.5, 1.5), (1 / 2, 2.0), (1 / 2, 1.1))


def auto_with_range(records: list[dict], model: float, low: float, high: float) -> float:
    """Mean mAP of auto had it kept the first pass for estimates in [low, high] × model."""
    def kept(r):
        return r["auto_estimate"] is None or low <= r["auto_estimate"] / model <= high

    return round(float(np.mean([r["none"] if kept(r) else r["auto"] for r in records])), 4)


def summary(records: list[dict], model: float) -> dict:
    """Mean mAP per mode (overall and per modality), auto's estimate error, other rules."""
    def means(chosen):
        return {mode: round(float(np.mean([r[mode] for r in chosen])), 4) for mode in MODES}

    ratios = [r["auto_estimate"] / r["true_diameter"] for r in records if r["auto_estimate"]]
    return {
        "n_images": len(records),
        "map": means(records),
        "per_modality": {m: {"n_images": len(chosen), **means(chosen)}
                         for m in MODALITIES
                         if (chosen := [r for r in records if r["modality"] == m])},
        "auto_resized": sum(r["auto_resized"] for r in records),
        "auto_estimate_over_true": {
            "median": round(float(np.median(ratios)), 3) if ratios else None,
            "within_20_percent": sum(abs(x - 1) <= 0.2 for x in ratios),
        },
        "true_held_to_range": sum(r["true_held"] for r in records),
        "auto_if_kept_within": {f"[{low:.2f}, {high:.2f}] x model": auto_with_range(
            records, model, low, high) for low, high in AUTO_KEEP_RANGES},
    }


def table(results: dict) -> str:
    """The README's table: mAP per scale and mode."""
    lines = ["| nuclei scale | images | diameter=None | true diameter | auto | auto resized |",
             "|---|---|---|---|---|---|"]
    for scale, entry in results.items():
        m = entry["map"]
        lines.append(f"| {scale}× | {entry['n_images']} | {m['none']:.3f} | {m['true']:.3f} "
                     f"| {m['auto']:.3f} | {entry['auto_resized']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--part", choices=("validation", "test"), default="validation")
    parser.add_argument("--scales", default="0.5,1,2",
                        help="comma-separated factors (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="the first N images of the part only")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    from napari_unet_weights.unet import load_model
    from napari_unet_weights.unet.model_file import BUNDLED_MODEL

    split = load_split(args.data)
    ids = split[args.part][:args.limit]
    scales = [float(s) for s in args.scales.split(",")]
    model = load_model()
    start = time.perf_counter()
    per_scale: dict[str, list[dict]] = {f"{s:g}": [] for s in scales}
    for number, sample_id in enumerate(ids, start=1):
        image = tifffile.imread(args.data / "images" / f"{sample_id}.tif")
        truth = tifffile.imread(args.data / "labels" / f"{sample_id}.tif")
        for scale in scales:
            record = score_image(model, *rescaled(image, truth, scale))
            record.update(image=sample_id, modality=split["modality"][sample_id])
            per_scale[f"{scale:g}"].append(record)
        print(f"[{number}/{len(ids)}] {sample_id[:12]} "
              + " ".join(f"{s}: " + "/".join(f"{r[-1][m]:.2f}" for m in MODES)
                         for s, r in per_scale.items()), file=sys.stderr, flush=True)
    trained = model.metadata["object_diameter"]["median"]
    results = {scale: summary(records, trained) for scale, records in per_scale.items()}
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({
            "what": __doc__.split("\n\n")[2].replace("\n", " "),
            "model": BUNDLED_MODEL.name,
            "model_diameter": model.metadata["object_diameter"],
            "part": args.part, "split_file": SPLIT_FILE.name, "limit": args.limit,
            "metric": "DSB 2018 mAP 0.5:0.95 per image, then averaged",
            "seconds": round(time.perf_counter() - start),
            "results": results,
            "per_image": per_scale,
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
