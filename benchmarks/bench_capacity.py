"""Benchmark the inference cost of wider U-Nets: base filters 12 / 16 / 24 / 32 on CPU.

For each width, a depth-4 U-Net with random weights (the same work per pixel as a trained
one) predicts a 1024² grayscale image with :func:`napari_unet_weights.unet.predict`,
once as one whole plane (the network's cost) and once with automatic tiles (the default
path, which tiles a wider network's plane sooner: its working memory per pixel grows
with the filters), best of ``--repeats`` runs after a warm-up (the models take turns).
Printed: megapixels per second, seconds per megapixel, the parameter count, and the cost as
a ratio to the 12-filter network (the bundled model of issue 10) measured in the same
process, so that the ratios hold whatever else the machine is doing. It never asserts times.

Usage::

    python benchmarks/bench_capacity.py [--size 1024] [--filters 12 16 24 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _model(base_filters: int):
    from napari_unet_weights.unet.device import keras_or_error
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
    from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION

    keras_or_error().utils.set_random_seed(0)
    metadata = {"format_version": 1, "n_classes": 3, "input": dict(DEFAULT_INPUT),
                "normalization": dict(DEFAULT_NORMALIZATION),
                "architecture": {"type": "unet2d", "n_channels": 1, "depth": 4,
                                 "base_filters": base_filters},
                "postprocess": dict(DEFAULT_POSTPROCESS)}
    return UNetModel(build_unet(1, 3, depth=4, base_filters=base_filters), metadata)


def seconds_per_run(models: list, image: np.ndarray, repeats: int,
                    tile_shape=None) -> list[float]:
    """The best of ``repeats`` timed predictions per model, after one warm-up each.

    The models take turns within every repeat, so that whatever else the machine does
    weighs on all of them alike and the ratios between them hold. ``tile_shape`` as in
    :func:`~napari_unet_weights.unet.predict` (None: automatic tiles).
    """
    from napari_unet_weights.unet import predict

    for model in models:
        predict(image, model, tile_shape=tile_shape)
    times = [[] for _ in models]
    for _ in range(repeats):
        for model, model_times in zip(models, times):
            start = time.perf_counter()
            predict(image, model, tile_shape=tile_shape)
            model_times.append(time.perf_counter() - start)
    return [min(model_times) for model_times in times]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--filters", type=int, nargs="+", default=[12, 16, 24, 32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    image = np.random.default_rng(0).integers(0, 255, (args.size, args.size), np.uint8)
    megapixels = args.size**2 / 1e6
    models = [_model(filters) for filters in args.filters]
    for tiles, tile_shape in (("whole plane", args.size), ("automatic tiles", None)):
        seconds = seconds_per_run(models, image, args.repeats, tile_shape)
        reference = seconds[args.filters.index(12)] if 12 in args.filters else seconds[0]
        print(f"{args.size}² grayscale, {tiles}, best of {args.repeats}")
        print("| base filters | parameters | MP/s | s per MP | cost vs 12 filters |")
        print("|---|---|---|---|---|")
        for filters, model, run_seconds in zip(args.filters, models, seconds):
            print(f"| {filters} | {model.keras_model.count_params():,} | "
                  f"{megapixels / run_seconds:.2f} | {run_seconds / megapixels:.2f} | "
                  f"{run_seconds / reference:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
