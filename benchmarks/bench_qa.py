"""Benchmark the model QA: its time over the model's own inference time (issue 22: ≤ 10 %).

On ``--count`` DSB 2018 images (the recorded split's test part, then validation; data in
``../shared/data/dsb2018`` or ``$NAPARI_UNET_WEIGHTS_DSB``), in one process:

1. the bundled model is loaded once (through the model cache) and warmed up on every image
   (a new image shape builds the network's compiled functions once);
2. reference: ``segment(image, model)`` on every image, the images read beforehand (only
   the network and its post-processing are timed);
3. QA: ``evaluate_models(image files, label files, model)``: reading the files, the
   same segmentation, the modality, ``evaluate()`` per image, the tables and the summary's
   bootstrap intervals;
4. the reference again (the two reference runs are averaged, so that a drift of the
   machine's speed over the run counts on both sides).

Printed: both times, the ratio QA / reference and the overhead in percent; then what the
first use of the per-object table, the comparison and the gallery cost (built lazily).
It never asserts times.

Usage::

    python benchmarks/bench_qa.py [--count 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", REPO.parent / "shared" / "data"
                           / "dsb2018"))


def _images(count: int) -> list[str]:
    split = json.loads((REPO / "scripts" / "dsb2018_split.json").read_text())
    return (split["test"] + split["validation"])[:count]


def _reference(images, model) -> float:
    from napari_unet_weights.unet import segment

    start = time.perf_counter()
    for image in images:
        segment(image, model)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="images (default: 100)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"no DSB 2018 data at {DATA}", file=sys.stderr)
        return 1
    import tifffile

    from napari_unet_weights.qa import compare_models, evaluate_models, object_crops
    from napari_unet_weights.unet.model_cache import load_cached

    ids = _images(args.count)
    image_files = [DATA / "images" / f"{i}.tif" for i in ids]
    label_files = [DATA / "labels" / f"{i}.tif" for i in ids]
    images = [tifffile.imread(path) for path in image_files]
    pixels = sum(image.shape[0] * image.shape[1] for image in images)
    model = load_cached(None)
    _reference(images, model)  # warm-up: each new image shape builds the network's functions

    first = _reference(images, model)
    start = time.perf_counter()
    result = evaluate_models(image_files, label_files, {"bundled": model})
    qa = time.perf_counter() - start
    second = _reference(images, model)
    reference = (first + second) / 2

    print(f"{len(ids)} DSB images, {pixels / 1e6:.1f} MP; bundled model on the CPU/GPU that "
          "Keras picks")
    print(f"reference (segment only): {first:.2f} s and {second:.2f} s, mean {reference:.2f} s")
    print(f"evaluate_models: {qa:.2f} s; ratio {qa / reference:.3f} "
          f"(overhead {100 * (qa / reference - 1):+.1f} %; goal <= +10 %)")
    print(f"mean mAP {result.summary['map'].iloc[0]:.4f} "
          f"[{result.summary['map_low'].iloc[0]:.4f}, {result.summary['map_high'].iloc[0]:.4f}]")

    start = time.perf_counter()
    objects = result.per_object
    per_object = time.perf_counter() - start
    kept = [result.arrays(i, models=["bundled"]).predictions["bundled"] for i in result.images]
    twin = evaluate_models(image_files, label_files, {"A": kept, "B": label_files})
    start = time.perf_counter()
    compare_models(twin, "A", "B")
    comparison = time.perf_counter() - start
    start = time.perf_counter()
    crops = object_crops(result)
    gallery = time.perf_counter() - start
    print(f"first use: per-object table ({len(objects)} rows) {per_object:.2f} s, comparison "
          f"{comparison:.2f} s, gallery ({len(crops)} crops) {gallery:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
