"""Speed of the weight-map engine on real DSB 2018 labels, as ratios to references run here.

    python benchmarks/bench_weights.py            # full run (the seed's algorithm takes ~1 min)
    python benchmarks/bench_weights.py --quick    # the seed on a 256x256 image only

References, all run in this process on the same labels:
- per-object full-image EDT: one exact distance transform of the whole image per object,
  keeping the two smallest distances per pixel (tests/reference.py);
- the seed blog's ``make_weight_map`` (brute-force pixel-to-boundary distance matrix);
- one ``np.exp`` over a float32 image of the same size, for re-rendering a new sigma.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from napari_unet_weights import WeightMapCache, weight_map
from reference import (
    brute_force_weight_map,
    dsb_folder,
    labels_to_masks,
    seed_make_weight_map,
)

DSB = dsb_folder()


def best_time(function, repeat: int = 5) -> float:
    """Smallest wall time of ``repeat`` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def pick_samples(index: dict, quick: bool) -> tuple[str, list[str]]:
    """The sample for the seed comparison and a spread of real samples for the others."""
    by_objects = sorted(index, key=lambda k: index[k]["n_objects"])
    if quick:
        seed_id = next(k for k in by_objects if index[k]["shape"] == [256, 256]
                       and index[k]["n_objects"] >= 40)
    else:
        # About the seed's own case: a ~512-pixel image with ~125 nuclei.
        seed_id = min(index, key=lambda k: abs(index[k]["n_objects"] - 125)
                      + 1000 * (index[k]["shape"][0] < 500))
    others = [by_objects[len(by_objects) * q // 10] for q in (5, 9)] + [by_objects[-1]]
    return seed_id, others


def read_labels(sample_id: str) -> np.ndarray:
    return tifffile.imread(DSB / "labels" / f"{sample_id}.tif")


def describe(sample_id: str, labels: np.ndarray) -> str:
    n = len(np.unique(labels)) - 1
    return f"{sample_id} {labels.shape[0]}x{labels.shape[1]}, {n} nuclei"


def bench_against_full_edt(sample_ids: list[str]) -> None:
    print("\nvs per-object full-image EDT (goal >= 20x), w0=10 sigma=5")
    for sample_id in sample_ids:
        labels = read_labels(sample_id)
        ours = best_time(lambda labels=labels: weight_map(labels))
        reference = best_time(lambda labels=labels: brute_force_weight_map(labels), repeat=1)
        error = np.abs(weight_map(labels) - brute_force_weight_map(labels)).max()
        print(f"  {describe(sample_id, labels)}: {reference / ours:7.1f}x "
              f"(max |difference| {error:.1e})")


def bench_against_seed(sample_id: str) -> None:
    print("\nvs the seed's make_weight_map (goal >= 1000x), border='all', w0=10 sigma=5")
    labels = read_labels(sample_id)
    masks = labels_to_masks(labels)
    start = time.perf_counter()
    expected = seed_make_weight_map(masks)
    seed_seconds = time.perf_counter() - start
    ours = best_time(lambda: weight_map(labels, border="all"))
    error = np.abs(weight_map(labels, border="all") - expected).max()
    print(f"  {describe(sample_id, labels)}: seed {seed_seconds:.1f} s, ours {ours * 1e3:.1f} ms: "
          f"{seed_seconds / ours:.0f}x (max |difference| {error:.1e})")


def bench_render(sample_ids: list[str]) -> None:
    print("\nre-render for a new sigma vs one np.exp over the image (goal <= 2x)")
    for sample_id in sample_ids:
        labels = read_labels(sample_id)
        cache = WeightMapCache(labels)
        cache.render(10, 8)
        sigmas = iter(np.linspace(2, 8, 10_000))
        render = best_time(lambda cache=cache, sigmas=sigmas: cache.render(10, next(sigmas)),
                           repeat=50)
        image = np.random.default_rng(0).random(labels.shape, dtype=np.float32)
        exp = best_time(lambda image=image: np.exp(image), repeat=50)
        print(f"  {describe(sample_id, labels)}: {render / exp:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seed comparison on 256x256 only")
    args = parser.parse_args()
    if not (DSB / "index.json").exists():
        sys.exit(f"DSB 2018 data not found at {DSB} (set NAPARI_UNET_WEIGHTS_DSB)")
    index = json.loads((DSB / "index.json").read_text())
    seed_id, others = pick_samples(index, args.quick)
    bench_against_full_edt([seed_id, *others])
    bench_render([seed_id, *others])
    bench_against_seed(seed_id)


if __name__ == "__main__":
    main()
