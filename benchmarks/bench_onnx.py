"""Benchmark the two inference engines on the CPU: Keras against ONNX (onnxruntime).

In one process (TensorFlow's backend): the bundled model on Keras (``engine="keras"``:
the folded, compiled step) and its ONNX conversion (``engine="onnx"``), through the same
:func:`napari_unet_weights.unet.predict.predict` on synthetic uint8 images (bright discs on
noise, :func:`bench_backends.disc_image`):

1. **speed**: ``whole 1024`` (``tile_shape`` = the image: one network call) and
   ``tiled 4096`` (the automatic tiles, :func:`.tiling.auto_tile_shape`: the same plan
   for both engines), after a warm-up on each batch shape; each round times every
   (engine, path) in turn, Keras first; the best of the rounds counts. Reported: MP/s
   (image pixels) and the ONNX / Keras ratio of the same process;
2. **agreement** on real images: the DSB 2018 test split (``scripts/dsb2018_split.json``,
   data in ``$NAPARI_UNET_WEIGHTS_DSB`` or ``../shared/data/dsb2018``): per image the
   largest |Δp| between the engines' probabilities, the mAP of ONNX's labels against
   Keras' (1.0: the same objects), whether the labels are identical, and each engine's
   mAP against the ground truth.

The system's load average is recorded before and after (2 shared cores here). ONNX would
become the default engine only if it is faster *and* its labels agree (mAP ≥ 0.999).

Usage::

    python benchmarks/bench_onnx.py [--sizes 1024 4096] [--rounds 2] [--images 86]
        [--json docs/model-runs/bench-onnx.json]

Never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backends import disc_image, machine

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("keras", "onnx")
#: Agreement needed (labels mAP of one engine against the other) for ONNX as default.
MIN_AGREEMENT = 0.999


def dsb_data() -> Path:
    """The DSB 2018 folder: ``$NAPARI_UNET_WEIGHTS_DSB`` or ``../shared/data/dsb2018``."""
    default = ROOT.parent / "shared" / "data" / "dsb2018"
    return Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", default))


def split_ids(limit: int | None = None) -> list[str]:
    """The recorded test split's image ids (the first ``limit``)."""
    split = json.loads((ROOT / "scripts" / "dsb2018_split.json").read_text())
    return split["test"][:limit]


# -- speed ----------------------------------------------------------------------------------
def _paths(sizes) -> dict:
    """name → (size, tile_shape): ``whole`` for the first size, ``tiled`` for the others."""
    paths = {f"whole {sizes[0]}": (sizes[0], sizes[0])}
    for size in sizes[1:]:
        paths[f"tiled {size}"] = (size, None)
    return paths


def _warm_up(models: dict, size: int, tile_shape, batch_size: int) -> None:
    """Each engine's network run once on every batch shape of the path."""
    from napari_unet_weights.unet.inference import network_output
    from napari_unet_weights.unet.model_file import input_channels, size_multiple
    from napari_unet_weights.unet.tiling import auto_tile_shape, tile_grid

    unet = models["keras"]
    tile_shape = tile_shape or auto_tile_shape(unet, (size, size), batch_size=batch_size)
    grid = tile_grid((size, size), tile_shape, None, size_multiple(unet.metadata))
    channels = input_channels(unet.metadata)
    for n in {min(batch_size, len(grid)), len(grid) % batch_size} - {0}:
        for model in models.values():
            network_output(model.keras_model, np.zeros((n, *grid.shape, channels), np.float32))


def time_engines(models: dict, sizes, rounds: int = 2, batch_size: int = 4) -> dict:
    """Best seconds, MP/s and tiles per path and engine, and ONNX's speed-up."""
    from napari_unet_weights.unet.model_file import size_multiple
    from napari_unet_weights.unet.predict import predict
    from napari_unet_weights.unet.tiling import auto_tile_shape, tile_grid

    paths = _paths(sizes)
    images = {size: disc_image(size) for size, _ in paths.values()}
    for size, tile_shape in paths.values():
        _warm_up(models, size, tile_shape, batch_size)
    best = {(name, engine): math.inf for name in paths for engine in ENGINES}
    for _ in range(rounds):
        for name, (size, tile_shape) in paths.items():
            for engine in ENGINES:
                start = time.perf_counter()
                predict(images[size], models[engine], tile_shape=tile_shape,
                        batch_size=batch_size, engine=engine)
                best[name, engine] = min(best[name, engine], time.perf_counter() - start)
    results = {}
    for name, (size, tile_shape) in paths.items():
        tiles = tile_shape or auto_tile_shape(models["keras"], (size, size),
                                              batch_size=batch_size)
        grid = tile_grid((size, size), tiles, None, size_multiple(models["keras"].metadata))
        row = {"tile_shape": list(grid.shape), "tiles": len(grid)}
        for engine in ENGINES:
            row[engine] = {"seconds": round(best[name, engine], 5),
                           "mp_per_s": round(size * size / 1e6 / best[name, engine], 3)}
        row["onnx_over_keras"] = round(best[name, "keras"] / best[name, "onnx"], 3)
        results[name] = row
    return results


# -- agreement ------------------------------------------------------------------------------
def agreement(models: dict, ids: list[str], data: Path) -> dict:
    """Per image and overall: |Δp|, labels mAP between the engines, each engine's mAP."""
    from napari_unet_weights.io.files import read_image, read_labels
    from napari_unet_weights.metrics.matching import evaluate
    from napari_unet_weights.unet.predict import infer

    rows = []
    for sample_id in ids:
        image = read_image(data / "images" / f"{sample_id}.tif")
        truth = read_labels(data / "labels" / f"{sample_id}.tif")
        runs = {engine: infer(image, models[engine], probabilities=True, engine=engine)
                for engine in ENGINES}
        delta = np.abs(runs["onnx"].probabilities - runs["keras"].probabilities).max()
        rows.append({"id": sample_id, "max_dp": float(delta),
                     "labels_map": float(evaluate(runs["keras"].labels,
                                                  runs["onnx"].labels).map),
                     "identical": bool(np.array_equal(runs["keras"].labels,
                                                      runs["onnx"].labels)),
                     **{f"map_{engine}": float(evaluate(truth, runs[engine].labels).map)
                        for engine in ENGINES}})
    maps = [row["labels_map"] for row in rows]
    return {"images": len(rows), "max_dp": max(row["max_dp"] for row in rows),
            "labels_map_mean": float(np.mean(maps)), "labels_map_min": float(min(maps)),
            "identical": sum(row["identical"] for row in rows),
            **{f"map_{engine}": float(np.mean([row[f"map_{engine}"] for row in rows]))
               for engine in ENGINES},
            "per_image": rows}


# -- the run --------------------------------------------------------------------------------
def models() -> dict:
    """The bundled model on each engine (the ONNX conversion made here, once)."""
    from napari_unet_weights.unet.inference_engine import onnx_model
    from napari_unet_weights.unet.model_file import load_model

    unet = load_model()
    return {"keras": unet, "onnx": onnx_model(unet)}


def verdict(speed: dict, agree: dict | None) -> str:
    """Whether ONNX may be the default: faster on every path and agreeing."""
    faster = all(row["onnx_over_keras"] > 1 for row in speed.values())
    agrees = agree is not None and agree["labels_map_min"] >= MIN_AGREEMENT
    if faster and agrees:
        return "onnx: faster on every path and agrees"
    why = [what for what, ok in (("not faster on every path", faster),
                                 ("labels do not agree (or not measured)", agrees)) if not ok]
    return "keras stays the default: ONNX " + " and ".join(why)


def run(sizes=(1024, 4096), rounds: int = 2, images: int | None = None,
        batch_size: int = 4, data: Path | None = None) -> dict:
    """Speed and agreement (see the module docstring), with the load around them."""
    import keras
    import onnxruntime

    load_before = os.getloadavg()
    engines = models()
    speed = time_engines(engines, sizes, rounds, batch_size)
    data = dsb_data() if data is None else data
    agree = agreement(engines, split_ids(images), data) if (data / "images").is_dir() else None
    return {"keras": keras.__version__, "backend": keras.backend.backend(),
            "onnxruntime": onnxruntime.__version__,
            "onnx_threads": engines["onnx"].keras_model.threads,
            "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
            "rounds": rounds, "batch_size": batch_size, "speed": speed,
            "agreement": agree, "default": verdict(speed, agree)}


def report(result: dict) -> None:
    """Print the speeds, ratios and agreement."""
    print(f"{'path':<12} {'tiles':<12} {'keras MP/s':>10} {'onnx MP/s':>10} {'onnx/keras':>10}")
    for name, row in result["speed"].items():
        tiles = f"{row['tiles']}×{'×'.join(map(str, row['tile_shape']))}"
        print(f"{name:<12} {tiles:<12} {row['keras']['mp_per_s']:>10.3f} "
              f"{row['onnx']['mp_per_s']:>10.3f} {row['onnx_over_keras']:>9.2f}×")
    agree = result["agreement"]
    if agree:
        print(f"agreement on {agree['images']} DSB test images: max |Δp| "
              f"{agree['max_dp']:.2e}, labels mAP onnx vs keras mean "
              f"{agree['labels_map_mean']:.4f} (min {agree['labels_map_min']:.4f}), "
              f"identical {agree['identical']}/{agree['images']}; mAP vs truth keras "
              f"{agree['map_keras']:.4f}, onnx {agree['map_onnx']:.4f}")
    print(f"load average before / after (1, 5, 15 min): {result['load_average']}")
    print(f"default: {result['default']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 4096],
                        help="the first: whole plane; the others: automatic tiles")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, help="DSB test images (default: all)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    result = run(args.sizes, args.rounds, args.images, args.batch_size)
    report(result)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine(), "command": " ".join(sys.argv), **result},
                      out, indent=1)
            out.write("\n")


if __name__ == "__main__":
    main()
