"""Benchmark the inference cost of wider U-Nets: base filters 12 / 16 / 24 / 32 on CPU.

For each width, a depth-4 U-Net with random weights (the same work per pixel as a trained
one) predicts a 1024² grayscale image with :func:`napari_unet_weights.unet.predict`
(automatic tiles), best of ``--repeats`` runs after a warm-up. Printed: megapixels per
second, seconds per megapixel, the parameter count, and the cost as a ratio to the
12-filter network (the bundled model of issue 10) measured in the same process, so that
the ratios hold whatever else the machine is doing. It never asserts times.

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


def seconds_per_run(model, image: np.ndarray, repeats: int) -> float:
    """The best of ``repeats`` timed predictions, after one warm-up."""
    from napari_unet_weights.unet import predict

    predict(image, model)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(image, model)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--filters", type=int, nargs="+", default=[12, 16, 24, 32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    image = np.random.default_rng(0).integers(0, 255, (args.size, args.size), np.uint8)
    megapixels = args.size**2 / 1e6
    rows = []
    for filters in args.filters:
        model = _model(filters)
        seconds = seconds_per_run(model, image, args.repeats)
        rows.append((filters, model.keras_model.count_params(), seconds))
    reference = next((s for f, _, s in rows if f == 12), rows[0][2])
    print(f"{args.size}² grayscale, automatic tiles, best of {args.repeats}")
    print("| base filters | parameters | MP/s | s per MP | cost vs 12 filters |")
    print("|---|---|---|---|---|")
    for filters, parameters, seconds in rows:
        print(f"| {filters} | {parameters:,} | {megapixels / seconds:.2f} | "
              f"{seconds / megapixels:.2f} | {seconds / reference:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
