"""Check the U-Net on a GPU: agreement with the CPU, throughput, training speed, peak memory.

Runs on any Keras 3 backend, without TensorFlow if the backend is PyTorch or JAX (the
GPU machines have PyTorch and JAX with CUDA, no TensorFlow and no package index: see
docs/gpu-check.md for the command). Writes one JSON file (also after each part, so a
run cut short leaves what it measured):

- ``device``: the backend, its version and the device (name, memory);
- ``agreement``: the bundled model on the package's sample images on the device against
  the same on the CPU (a child process with the GPU hidden): the largest difference in
  the probabilities, the labels' mAP (CPU labels as ground truth), identical labels;
- ``throughput``: megapixels per second of :func:`predict` at each size, ``whole``
  (one network call) and ``default`` (automatic tiles), with the first call's time
  (tracing / compiling) and the peak device memory;
- ``training``: a short :func:`train` run (bundled architecture, synthetic discs):
  steps per second after the first epoch (which compiles), peak device memory.

Each part catches its own errors (recorded as ``"error"``); the run stops starting new
parts after ``--time-limit`` seconds. ``--device cpu`` hides the GPU (the same script,
tested on CPU with tiny sizes).

Usage::

    python scripts/gpu_check.py --out gpu-check.json [--backend torch|jax|tensorflow]
        [--device auto|gpu|cpu] [--sizes 1024 4096] [--train-steps 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "jax", "tensorflow")  # the order "first installed" follows
#: Environment that hides every GPU from every backend (set before the backend starts).
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu", "KERAS_TORCH_DEVICE": "cpu"}


def choose_backend(asked: str | None) -> str:
    """``asked``, else ``KERAS_BACKEND``, else the first installed of :data:`BACKENDS`."""
    backend = asked or os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    for name in BACKENDS:
        if importlib.util.find_spec(name) is not None:
            return name
    raise SystemExit("no Keras backend installed (torch, jax or tensorflow).")


def prepare_environment(backend: str, device: str) -> None:
    """Set what must be set before Keras and its backend are imported."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # honest JAX peaks
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        os.environ.update(CPU_ONLY)


# -- the device -----------------------------------------------------------------------------
def device_info(backend: str) -> dict:
    """The backend's version and the device Keras will run on."""
    if backend == "torch":
        import torch

        info = {"version": torch.__version__, "gpu": torch.cuda.is_available()}
        if info["gpu"] and os.environ.get("KERAS_TORCH_DEVICE") != "cpu":
            properties = torch.cuda.get_device_properties(0)
            return {**info, "name": properties.name, "memory_gb": properties.total_memory / 1e9,
                    "cuda": torch.version.cuda}
        return {**info, "gpu": False, "name": "CPU"}
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return {"version": jax.__version__, "gpu": device.platform == "gpu",
                "name": device.device_kind, "platform": device.platform}
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {"version": tf.__version__, "gpu": bool(gpus),
            "name": gpus[0].name if gpus else "CPU"}


def reset_peak(backend: str) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(backend: str) -> float | None:
    """The device's peak allocated memory (torch: since the last reset; JAX: since the
    start); None on the CPU."""
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats["peak_bytes_in_use"] / 1e9 if "peak_bytes_in_use" in stats else None
    return None


# -- the model and the images ---------------------------------------------------------------
def load_bundled():
    """The bundled model, by the package's loader (or by Keras itself, with a note, where
    the package's loader needs TensorFlow)."""
    from napari_unet_weights.unet.model_file import BUNDLED_MODEL, UNetModel, load_model

    try:
        return load_model(), "load_model"
    except ImportError as error:
        import keras

        from napari_unet_weights.unet.model_file import read_metadata

        model = keras.saving.load_model(BUNDLED_MODEL, compile=False)
        return UNetModel(model, read_metadata(BUNDLED_MODEL)), f"keras.saving ({error})"


def sample_images(crop: int | None) -> dict[str, np.ndarray]:
    """The package's sample images (cropped to ``crop``² for quick runs)."""
    from napari_unet_weights._sample_data import SAMPLES, load_sample

    images = {name: load_sample(name)[0] for name in SAMPLES}
    return {name: image[:crop, :crop] if crop else image for name, image in images.items()}


def disc_image(size: int, seed: int = 0) -> np.ndarray:
    """Bright discs on noise, uint8 (the throughput input)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(30, 8, (size, size)).clip(0, 255).astype(np.uint8)
    yy, xx = np.ogrid[:size, :size]
    for y, x, r in zip(*rng.integers(0, size, (2, size * size // 900)),
                       rng.integers(6, 13, size * size // 900)):
        box = (slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1))
        image[box][(yy[box[0]] - y) ** 2 + (xx[:, box[1]] - x) ** 2 <= r * r] = 180
    return image


# -- the parts --------------------------------------------------------------------------------
def reference_outputs(unet, images: dict) -> dict[str, np.ndarray]:
    """Probabilities and labels of each image (keys ``<name>/p``, ``<name>/labels``)."""
    from napari_unet_weights.unet.predict import infer

    out = {}
    for name, image in images.items():
        result = infer(image, unet, probabilities=True)
        out[f"{name}/p"], out[f"{name}/labels"] = result.probabilities, result.labels
    return out


def agreement(unet, args) -> dict:
    """The device's outputs against the CPU's (a child process with ``--device cpu``)."""
    from napari_unet_weights.metrics.matching import evaluate

    here = reference_outputs(unet, sample_images(args.crop))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cpu.npz"
        command = [sys.executable, __file__, "--device", "cpu", "--backend", args.backend,
                   "--reference", str(path)] + (["--crop", str(args.crop)] if args.crop else [])
        subprocess.run(command, check=True, env={**os.environ, **CPU_ONLY},
                       capture_output=True, text=True)
        with np.load(path) as cpu:
            reference = {key: cpu[key] for key in cpu.files}
    images = sorted({key.split("/")[0] for key in here})
    diffs = [float(np.abs(here[f"{n}/p"] - reference[f"{n}/p"]).max()) for n in images]
    maps = [float(evaluate(reference[f"{n}/labels"], here[f"{n}/labels"]).map) for n in images]
    same = [bool(np.array_equal(here[f"{n}/labels"], reference[f"{n}/labels"])) for n in images]
    return {"images": images, "max_abs_dp": max(diffs), "per_image_max_abs_dp": diffs,
            "labels_map": maps, "min_labels_map": min(maps), "labels_identical": same}


def throughput(unet, args) -> dict:
    """Megapixels per second of whole-plane and tiled prediction at each size."""
    from napari_unet_weights.unet.predict import predict
    from napari_unet_weights.unet.tiling import auto_tile_shape

    results = {}
    for size in args.sizes:
        image = disc_image(size)
        for path, tile_shape in (("whole", size), ("default", None)):
            name = f"{path} {size}"
            try:
                reset_peak(args.backend)
                start = time.perf_counter()
                predict(image, unet, tile_shape=tile_shape)
                first = time.perf_counter() - start
                best = np.inf
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    predict(image, unet, tile_shape=tile_shape)
                    best = min(best, time.perf_counter() - start)
                tiles = tile_shape or auto_tile_shape(unet, (size, size))
                results[name] = {"mp_per_s": size * size / 1e6 / best, "seconds": best,
                                 "first_call_s": first, "tile_shape": np.broadcast_to(
                                     tiles, 2).tolist(),
                                 "peak_memory_gb": peak_memory_gb(args.backend)}
            except Exception as error:  # e.g. out of device memory: the other paths go on
                results[name] = {"error": repr(error)}
    return results


def training(args) -> dict:
    """Steps per second of a short training run after its first (compiling) epoch."""
    from napari_unet_weights.unet.training.train import train

    rng = np.random.default_rng(0)
    images, labels = [], []
    for seed in range(4):
        image = disc_image(args.train_patch * 2, seed)
        images.append(image)
        labels.append(_disc_labels(image))
    times: list[tuple[int, float]] = []

    def progress(info: dict) -> None:
        if info.get("stage") == "batch":
            times.append((info["epoch"], time.perf_counter()))

    reset_peak(args.backend)
    start = time.perf_counter()
    train(images, labels, epochs=2, steps_per_epoch=args.train_steps, batch_size=4,
          patch_size=args.train_patch, depth=args.train_depth, base_filters=args.train_filters,
          validation="training", progress=progress, seed=int(rng.integers(1000)))
    total = time.perf_counter() - start
    second = [t for epoch, t in times if epoch == 2]
    rate = (len(second) - 1) / (second[-1] - second[0]) if len(second) > 1 else None
    return {"steps_per_s": rate, "steps": len(times), "batch_size": 4,
            "patch_size": args.train_patch, "depth": args.train_depth,
            "base_filters": args.train_filters, "seconds": total,
            "peak_memory_gb": peak_memory_gb(args.backend)}


def _disc_labels(image: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.label(image > 100)[0].astype(np.int32)


# -- the run ----------------------------------------------------------------------------------
def run(args) -> dict:
    """All parts, the JSON rewritten after each."""
    report = {"command": " ".join(sys.argv), "device_asked": args.device,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    start = time.perf_counter()
    info = device_info(args.backend)
    report["device"] = {"backend": args.backend, **info}
    if args.device == "gpu" and not info["gpu"]:
        report["error"] = "no GPU seen by the backend"
        return _write(report, args.out)
    import keras

    report["device"]["keras"] = keras.__version__
    unet, loader = load_bundled()
    report["model"] = {"loaded_by": loader, "architecture": unet.metadata.get("architecture")}
    parts = {"agreement": lambda: agreement(unet, args),
             "throughput": lambda: throughput(unet, args), "training": lambda: training(args)}
    for name in args.parts:
        if time.perf_counter() - start > args.time_limit:
            report[name] = {"skipped": f"past --time-limit {args.time_limit} s"}
            continue
        part_start = time.perf_counter()
        try:
            report[name] = parts[name]()
        except Exception as error:
            report[name] = {"error": repr(error), "traceback": traceback.format_exc()[-2000:]}
        report[name]["part_seconds"] = time.perf_counter() - part_start
        _write(report, args.out)
    report["seconds"] = time.perf_counter() - start
    return _write(report, args.out)


def _write(report: dict, out: str) -> dict:
    Path(out).write_text(json.dumps(report, indent=1, default=float) + "\n")
    return report


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check.json")
    parser.add_argument("--backend", choices=BACKENDS)
    parser.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["agreement", "throughput", "training"],
                        choices=("agreement", "throughput", "training"))
    parser.add_argument("--crop", type=int, help="crop the sample images (quick runs)")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--train-patch", type=int, default=256)
    parser.add_argument("--train-depth", type=int, default=4)
    parser.add_argument("--train-filters", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=400)
    parser.add_argument("--reference", help=argparse.SUPPRESS)  # the CPU child's output
    args = parser.parse_args(argv)
    args.backend = choose_backend(args.backend)
    return args


def main(argv=None) -> None:
    args = parse(argv)
    prepare_environment(args.backend, args.device)
    if args.reference:
        unet, _ = load_bundled()
        np.savez(args.reference, **reference_outputs(unet, sample_images(args.crop)))
        return
    report = run(args)
    print(json.dumps({key: report.get(key) for key in ("device", "seconds")}, default=float))


if __name__ == "__main__":
    main()
