"""Benchmark ``metrics.evaluate`` against ``stardist.matching`` on real DSB 2018 labels.

Each ground-truth label image gets a perturbed "prediction": objects eroded or dilated,
neighbours merged, objects split, dropped and spurious objects, ids shuffled. Both
implementations score the same pairs in the same process; the script prints the
timings, their ratio and how many (image, threshold) TP/FP/FN triples agree. It
never asserts times.

Usage::

    python benchmarks/bench_evaluate.py [--images 50] [--seed 0] [--repeat 3]

The data folder is ``../shared/data/dsb2018`` next to the repository, or
``$NAPARI_UNET_WEIGHTS_DSB``. Needs ``stardist`` (its ``matching`` module needs numba,
not TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk
from skimage.segmentation import expand_labels

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from napari_unet_weights.metrics.matching import DEFAULT_THRESHOLDS, evaluate  # noqa: E402
from reference import dsb_folder  # noqa: E402


def _neighbour_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs (a, b), a < b, of objects within two pixels of each other."""
    grown = expand_labels(labels, 2)
    pairs = []
    for axis in range(labels.ndim):
        a = np.moveaxis(grown, axis, 0)[:-1].ravel()
        b = np.moveaxis(grown, axis, 0)[1:].ravel()
        keep = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], axis=1))
    pairs = np.concatenate(pairs)
    return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


def perturb(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible bad prediction of ``labels`` (2-D), with shuffled, non-sequential ids."""
    pred = labels.astype(np.int64)
    ids = np.unique(pred)
    ids = ids[ids > 0]
    # erode some objects by one pixel, dilate others
    eroded = rng.random(ids.size) < 0.3
    boundary = ndi.maximum_filter(pred, size=3) != ndi.minimum_filter(pred, size=3)
    pred[boundary & np.isin(pred, ids[eroded])] = 0
    grown = expand_labels(pred, int(rng.integers(1, 3)))
    dilated = ids[~eroded & (rng.random(ids.size) < 0.3)]
    pred = np.where((pred == 0) & np.isin(grown, dilated), grown, pred)
    # merge some neighbours (filling the gap between them)
    for a, b in _neighbour_pairs(labels):
        if rng.random() < 0.15:
            gap = (pred == 0) & (expand_labels(np.where(np.isin(pred, (a, b)), pred, 0), 2) > 0)
            pred[(pred == b) | gap] = a
    # split some objects along a line through the centroid
    for value in ids[rng.random(ids.size) < 0.05]:
        coords = np.nonzero(pred == value)
        if coords[0].size > 20:
            axis = int(rng.integers(0, 2))
            half = coords[axis] > coords[axis].mean()
            pred[tuple(c[half] for c in coords)] = pred.max() + 1
    # drop some objects, add spurious ones
    pred[np.isin(pred, ids[rng.random(ids.size) < 0.1])] = 0
    for _ in range(int(rng.integers(0, 4))):
        centre = [rng.integers(0, n) for n in pred.shape]
        rr, cc = disk(centre, int(rng.integers(3, 10)), shape=pred.shape)
        spot = pred[rr, cc] == 0
        pred[rr[spot], cc[spot]] = pred.max() + 1
    # shuffle ids onto a sparse range
    values = np.unique(pred)
    values = values[values > 0]
    new = rng.choice(np.arange(1, 20 * values.size + 2), size=values.size, replace=False)
    lookup = np.zeros(int(pred.max()) + 1, np.int64)
    lookup[values] = new
    return lookup[pred].astype(np.int32)


def load_pairs(n_images: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``n_images`` (name, gt, perturbed prediction) triples from the DSB labels."""
    import tifffile

    files = sorted((dsb_folder() / "labels").glob("*.tif"))[:n_images]
    rng = np.random.default_rng(seed)
    pairs = []
    for path in files:
        gt = tifffile.imread(path).astype(np.int32)
        pairs.append((path.stem, gt, perturb(gt, rng)))
    return pairs


def _time(function, repeat: int) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not (dsb_folder() / "labels").is_dir():
        print(f"no DSB labels at {dsb_folder()}; set NAPARI_UNET_WEIGHTS_DSB", file=sys.stderr)
        return 1
    try:
        from stardist.matching import matching, matching_dataset
    except ImportError as error:
        print(f"stardist.matching is not importable: {error}", file=sys.stderr)
        return 1

    pairs = load_pairs(args.images, args.seed)
    thresholds = DEFAULT_THRESHOLDS
    gts = [gt for _, gt, _ in pairs]
    preds = [pred for _, _, pred in pairs]
    n_pixels = sum(gt.size for gt in gts)
    print(f"{len(pairs)} DSB images, {n_pixels / 1e6:.1f} Mpixel, "
          f"{sum(len(np.unique(g)) - 1 for g in gts)} true objects, "
          f"{sum(len(np.unique(p)) - 1 for p in preds)} predicted objects, "
          f"{len(thresholds)} thresholds")

    matching(gts[0], preds[0], thresh=0.5)  # compile numba before timing
    ours_s, ours = _time(
        lambda: [evaluate(g, p, thresholds) for g, p in zip(gts, preds, strict=True)], args.repeat
    )
    theirs_s, _ = _time(lambda: matching_dataset(gts, preds, thresh=thresholds,
                                                 show_progress=False), args.repeat)
    print(f"evaluate (with per-object tables): {ours_s * 1e3:8.1f} ms")
    print(f"stardist matching_dataset:         {theirs_s * 1e3:8.1f} ms")
    print(f"speed ratio stardist / evaluate:   {theirs_s / ours_s:8.2f}x")

    agree, total, ties = 0, 0, 0
    for (name, gt, pred), evaluation in zip(pairs, ours, strict=True):
        reference = matching(gt, pred, thresh=thresholds)
        for row, stats in zip(evaluation.per_threshold.itertuples(), reference, strict=True):
            total += 1
            same = (row.tp, row.fp, row.fn) == (stats.tp, stats.fp, stats.fn)
            agree += same
            if not same:
                at_threshold = (evaluation.overlaps["iou"] - row.threshold).abs() < 1e-12
                ties += bool(at_threshold.any())
                print(f"  differs: {name} t={row.threshold}: ours {row.tp}/{row.fp}/{row.fn}"
                      f" stardist {stats.tp}/{stats.fp}/{stats.fn}"
                      f"{' (an IoU equals the threshold)' if at_threshold.any() else ''}")
    print(f"TP/FP/FN agree on {agree}/{total} (image, threshold) pairs"
          f"{f'; {ties} of the differences at exact IoU ties' if agree < total else ''}")
    maps = np.array([e.map for e in ours])
    print(f"dataset mAP (mean of image mAPs): {maps.mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
