"""Benchmark ``unet.predict``: megapixels per second, and memory bounded by the tile size.

Each image size runs in a fresh child process (so that ``ru_maxrss``, the peak resident
memory of the process, belongs to that size alone). A child

1. loads the bundled model if it is installed, else builds a depth-4, 12-filter U-Net
   with random weights (the same work per pixel as a trained one; the output says which);
2. warms up on a 64² image, then runs one batch of full-size tiles, and records how
   much the resident memory grew (TensorFlow's working memory for a batch of tiles);
3. predicts a synthetic uint8 image of the size (bright discs on noise) with
   ``tile_shape`` automatic (:func:`.tiling.auto_tile_shape`) under ``tracemalloc``, which
   traces numpy's allocations (not TensorFlow's), and records the time, the traced
   peak and the growth of ``ru_maxrss`` since the model was loaded.

The parent prints megapixels per second and, per size, the peak memory beyond the two
image-sized arrays that prediction needs (the float32 output, H·W·K·4 bytes, and the
normalised input plane, H·W·4 bytes) against one tile's working set (batch × tile ×
(input + output channels) × 4 bytes). Bounded memory: that extra stays the same from
2048² to 4096² while the image grows 4×. It never asserts times.

Last, a child times whole-plane prediction of a 1024² grayscale and a 1024² RGB image with
the bundled model and with the previous bundled model's architecture and input (depth 4,
12 filters, channels averaged; random weights do the same work), and prints the ratios
(issue 10: the bundled model may be at most 2× slower than its predecessor).

Usage::

    python benchmarks/bench_predict.py [--sizes 1024 2048 4096] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

MB = 1024**2


def _model(previous: bool = False):
    """(UNetModel, description): the bundled model, or a random depth-4 base-12 U-Net
    (``previous``: always that one, the architecture and input of the model bundled
    before issue 10, the reference of :func:`compare`)."""
    from napari_unet_weights.unet.device import keras_or_error
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import BUNDLED_MODEL, UNetModel, load_model
    from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
    from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION

    if BUNDLED_MODEL.exists() and not previous:
        model = load_model()
        architecture = model.metadata["architecture"]
        return model, (f"bundled {BUNDLED_MODEL.name} (depth {architecture.get('depth')}, "
                       f"{architecture.get('base_filters')} filters)")
    keras_or_error().utils.set_random_seed(0)
    metadata = {"format_version": 1, "n_classes": 3, "input": dict(DEFAULT_INPUT),
                "normalization": dict(DEFAULT_NORMALIZATION),
                "architecture": {"type": "unet2d", "n_channels": 1, "depth": 4,
                                 "base_filters": 12},
                "postprocess": dict(DEFAULT_POSTPROCESS)}
    return (UNetModel(build_unet(1, 3, depth=4, base_filters=12), metadata),
            "random weights: depth 4, 12 filters, mean of the colour channels")


def _stained(size: int) -> np.ndarray:
    """An RGB image: :func:`_image`'s discs purple on pink (the colour input path)."""
    gray = _image(size).astype(np.float32) / 255
    pink, purple = np.array([235, 185, 215]), np.array([95, 60, 150])
    return (pink + (purple - pink) * gray[..., None] * 1.4).clip(0, 255).astype(np.uint8)


def compare(size: int = 1024, repeats: int = 3) -> dict:
    """Whole-image prediction time of the bundled model against the previous one's
    architecture, on a grayscale and an RGB image of ``size``², best of ``repeats``."""
    from napari_unet_weights.unet.predict import predict

    images = {"grayscale": _image(size), "RGB": _stained(size)}
    times = {}
    for which in ("previous", "bundled"):
        model, description = _model(previous=which == "previous")
        predict(np.zeros((64, 64), np.uint8), model)
        for kind, image in images.items():
            best = np.inf
            for _ in range(repeats):
                start = time.perf_counter()
                predict(image, model, tile_shape=size)
                best = min(best, time.perf_counter() - start)
            times[f"{which} {kind}"] = best
        times[f"{which} model"] = description
    return times


def _report_comparison(times: dict) -> None:
    print(f"bundled ({times['bundled model']}) against the previous architecture "
          f"({times['previous model']}), one 1024² plane, best of 3:")
    for kind in ("grayscale", "RGB"):
        print(f"  {kind}: {times[f'bundled {kind}']:.2f} s vs {times[f'previous {kind}']:.2f} s"
              f" = {times[f'bundled {kind}'] / times[f'previous {kind}']:.2f}x")


def _image(size: int, seed: int = 0) -> np.ndarray:
    """Bright discs of radius 6-12 on a noisy background, uint8, built in strips."""
    rng = np.random.default_rng(seed)
    image = rng.normal(30, 8, (size, size)).clip(0, 255).astype(np.uint8)
    n = size * size // 900
    centres, radii = rng.integers(0, size, (n, 2)), rng.integers(6, 13, n)
    for (y, x), r in zip(centres, radii):
        box = (slice(max(y - r, 0), min(y + r + 1, size)),
               slice(max(x - r, 0), min(x + r + 1, size)))
        ys, xs = np.ogrid[box]
        image[box][(ys - y) ** 2 + (xs - x) ** 2 <= r * r] = 180
    return image


def _maxrss() -> int:
    """Peak resident memory of this process in bytes (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child(size: int, batch_size: int) -> dict:
    """Measure one image size in this process; return the figures."""
    from napari_unet_weights.unet.device import device_name
    from napari_unet_weights.unet.model_file import size_multiple
    from napari_unet_weights.unet.predict import predict
    from napari_unet_weights.unet.tiling import auto_tile_shape, tile_grid

    model, description = _model()
    predict(np.zeros((64, 64), np.uint8), model)
    tile = auto_tile_shape(model, (size, size), batch_size=batch_size)
    grid = tile_grid((size, size), tile, None, size_multiple(model.metadata))
    before_warmup = _maxrss()
    warmup = min(size, tile[0] + tile[0] // 2)  # one batch of full-size tiles
    predict(_image(warmup, seed=1), model, tile_shape=tile, batch_size=batch_size)
    image = _image(size)
    before = _maxrss()
    tracemalloc.start()
    start = time.perf_counter()
    output = predict(image, model, batch_size=batch_size)
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    channels, classes = 1, output.shape[-1]
    return {
        "size": size, "batch_size": batch_size, "model": description, "device": device_name(),
        "tile": list(grid.shape), "overlap": _overlap(grid), "tiles": len(grid),
        "seconds": seconds, "traced_peak": traced_peak,
        "output_bytes": output.nbytes, "plane_bytes": size * size * 4,
        "working_set": (min(batch_size, len(grid)) * grid.shape[0] * grid.shape[1]
                        * (channels + classes) * 4),
        "rss_growth": _maxrss() - before_warmup, "rss_warmup_growth": before - before_warmup,
        "warmup_pixels": min(len(grid), batch_size) * grid.shape[0] * grid.shape[1],
    }


def _overlap(grid) -> int:
    rows = grid.rows
    if len(rows) < 2:
        return 0
    return rows[0].image.stop - rows[1].image.start


def _run_json(command: list[str], what: str) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _run_child(size: int, batch_size: int) -> dict:
    return _run_json([sys.executable, __file__, "--child", str(size), "--batch-size",
                      str(batch_size)], f"size {size}")


def _report(results: list[dict]) -> None:
    first = results[0]
    print(f"model: {first['model']}; device: {first['device']}; batch of "
          f"{first['batch_size']} tiles")
    print(f"{'image':>10} {'tile':>10} {'overlap':>7} {'tiles':>5} {'s':>8} {'MP/s':>6} "
          f"{'traced peak':>11} {'output':>7} {'plane':>6} {'extra':>7} {'tile set':>8} "
          f"{'extra/tile set':>14} {'rss peak':>8} {'rss − out − plane':>17}")
    for r in results:
        extra = r["traced_peak"] - r["output_bytes"] - r["plane_bytes"]
        rss_extra = r["rss_growth"] - r["output_bytes"] - r["plane_bytes"]
        tile = "×".join(map(str, r["tile"]))
        print(f"{r['size']:>5}×{r['size']:<4} {tile:>10} {r['overlap']:>7} {r['tiles']:>5} "
              f"{r['seconds']:>8.1f} {r['size'] ** 2 / 1e6 / r['seconds']:>6.2f} "
              f"{r['traced_peak'] / MB:>9.0f}MB {r['output_bytes'] / MB:>5.0f}MB "
              f"{r['plane_bytes'] / MB:>4.0f}MB {extra / MB:>5.0f}MB "
              f"{r['working_set'] / MB:>6.0f}MB {extra / r['working_set']:>14.2f} "
              f"{r['rss_growth'] / MB:>6.0f}MB {rss_extra / MB:>15.0f}MB")
    for r in results:
        per_pixel = r["rss_warmup_growth"] / max(r["warmup_pixels"], 1)
        print(f"{r['size']}²: TensorFlow working memory for one batch of tiles "
              f"{r['rss_warmup_growth'] / MB:.0f} MB ≈ {per_pixel:.0f} bytes per tile pixel")
    print("extra = traced numpy peak − output − normalised plane (tiles, batch, blending); "
          "rss peak = ru_maxrss growth above the loaded model (TensorFlow's working memory "
          "for a batch of tiles, numpy's arrays).")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--compare-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.batch_size)))
        return 0
    if args.compare_child:
        print(json.dumps(compare()))
        return 0
    results = []
    for size in args.sizes:
        results.append(_run_child(size, args.batch_size))
        print(f"{size}²: {results[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    _report(results)
    _report_comparison(_run_json([sys.executable, __file__, "--compare-child"], "comparison"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
