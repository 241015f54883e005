"""Benchmark the label bookkeeping of post-processing: scikit-image against numpy by hand.

``unet/postprocess.py`` drops small objects and renumbers the labels 1..N on every plane
it segments, in one pass (``_keep_and_renumber``: one ``bincount``, one lookup table).
scikit-image does the same job in two (``morphology.remove_small_objects``, then
``segmentation.relabel_sequential``; ``util.map_array`` also renumbers). This times both on
realistic labels, and checks that they give the same labels:

- a 2048² plane tiled from the bundled ``nuclei_crowded`` ground truth (8 × 8 tiles, ids
  unique), int32 as ``scipy.ndimage.label`` and ``watershed`` return it, with specks of
  1-6 pixels (the fragments ``min_size`` removes) and every third id dropped (the gaps
  that renumbering closes): ~7,400 objects;
- the same built from one tile (256², ~110 objects), the size of a quick widget run.

Each figure is the best of ``--repeat`` runs (``timeit``). It never asserts times.

Usage::

    python benchmarks/bench_postprocess.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys
import timeit

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import remove_small_objects
from skimage.segmentation import relabel_sequential
from skimage.util import map_array

from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.unet.postprocess import _keep_and_renumber

MIN_SIZE = 10


def plane(tiles: int, seed: int = 0) -> np.ndarray:
    """``tiles`` × ``tiles`` copies of the crowded sample's labels, specks, gaps in the ids."""
    _, truth = load_sample("nuclei_crowded")
    n = int(truth.max())
    rows = [np.hstack([np.where(truth > 0, truth.astype(np.int32) + (r * tiles + c) * n, 0)
                       for c in range(tiles)]) for r in range(tiles)]
    labels = np.vstack(rows)
    rng = np.random.default_rng(seed)
    specks, _ = ndi.label((rng.random(labels.shape) < 0.002) & (labels == 0))
    specks = ndi.grey_dilation(specks, size=(2, 2)) * (labels == 0)  # 1-6 px each
    labels = np.where(specks > 0, specks + labels.max(), labels).astype(np.int32)
    labels[np.isin(labels, np.arange(1, labels.max() + 1, 3))] = 0  # gaps in the ids
    return labels


def by_hand(labels: np.ndarray) -> np.ndarray:
    return _keep_and_renumber(labels, MIN_SIZE)


def renumber_by_hand(labels: np.ndarray) -> np.ndarray:
    return _keep_and_renumber(labels, 0)


def _remove_small_objects(labels: np.ndarray) -> np.ndarray:
    try:  # scikit-image >= 0.26
        return remove_small_objects(labels, max_size=MIN_SIZE - 1)
    except TypeError:
        return remove_small_objects(labels, min_size=MIN_SIZE)


def by_skimage(labels: np.ndarray) -> np.ndarray:
    return relabel_sequential(_remove_small_objects(labels))[0].astype(np.uint16)


def renumber_by_skimage(labels: np.ndarray) -> np.ndarray:
    return relabel_sequential(labels)[0].astype(np.uint16)


def renumber_by_map_array(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    return map_array(labels, ids, np.arange(1, ids.size + 1, dtype=np.uint16))


def best(function, labels: np.ndarray, repeat: int) -> float:
    number = max(1, int(0.2 / max(timeit.timeit(lambda: function(labels), number=1), 1e-6)))
    return min(timeit.repeat(lambda: function(labels), number=number, repeat=repeat)) / number


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    pairs = [
        ("drop small + renumber", by_hand, by_skimage),
        ("renumber (relabel_sequential)", renumber_by_hand, renumber_by_skimage),
        ("renumber (map_array)", renumber_by_hand, renumber_by_map_array),
    ]
    print(f"{'plane':>10} {'objects':>7}  {'step':<29} {'numpy':>9} {'skimage':>9} "
          f"{'skimage / numpy':>15}")
    for tiles in (8, 1):
        labels = plane(tiles)
        n_objects = np.unique(labels).size - 1
        for name, ours, theirs in pairs:
            np.testing.assert_array_equal(ours(labels), theirs(labels))
            mine, library = best(ours, labels, args.repeat), best(theirs, labels, args.repeat)
            print(f"{labels.shape[0]:>5}×{labels.shape[1]:<4} {n_objects:>7}  {name:<29} "
                  f"{mine * 1e3:>7.2f}ms {library * 1e3:>7.2f}ms {library / mine:>14.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
