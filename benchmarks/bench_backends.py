"""Benchmark inference on each installed Keras backend against the machine's matmul rate.

Keras fixes its backend per process, so each backend runs in a child process
(``KERAS_BACKEND`` set before Keras is imported). A child

1. loads the bundled model and counts its FLOPs per megapixel from its layers
   (:func:`napari_unet_weights.unet.network.flops_per_pixel`);
2. measures the **yardstick**, numpy's float32 matrix product (``n``² @ ``n``², all cores;
   2·n³ FLOP) in GFLOP/s, before and after every round: the rounds run between the
   yardsticks, so the share is a ratio within one process at one load;
3. predicts synthetic uint8 images (bright discs on noise) through :func:`.predict.predict`
   on each *path*: ``whole`` (``tile_shape`` = the image: one network call) and ``default``
   (automatic tiles, :func:`.tiling.auto_tile_shape`), at each size (``whole`` is skipped
   when its estimated working memory exceeds half the available memory). Every shape is
   traced first (a warm-up on batches of the run's shapes), then each round times every
   path once; the best of the rounds counts.

Per path it reports megapixels per second (image pixels, overlaps not counted) and the
share of the yardstick: ``MP/s × GFLOP/MP ÷ yardstick GFLOP/s`` (best throughput against
the best yardstick of the same process). With ``--before``, the TensorFlow child also
times the code as it was before issue 21: an eager ``model(x)`` per batch (batch norm
not folded) with the old automatic tiles (32 activations per filter in the memory plan,
square tiles of the largest side in the budget), and the compiled step without folding.

Usage::

    python benchmarks/bench_backends.py [--backends tensorflow jax torch] [--sizes 1024 4096]
        [--rounds 2] [--matmul 4096] [--before] [--json out.json]

Never asserts a time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

BACKENDS = ("tensorflow", "jax", "torch")
#: The module that tells whether a backend is installed.
_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


# -- measures -----------------------------------------------------------------------------
def matmul_gflops(n: int = 4096, repeats: int = 3) -> float:
    """numpy's float32 ``n``² matrix product, all cores: the best of ``repeats``, GFLOP/s."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b  # threads started, pages touched
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def disc_image(size: int, seed: int = 0) -> np.ndarray:
    """Bright discs of radius 6-12 on a noisy background, uint8 (a nucleus-like image)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(30, 8, (size, size)).clip(0, 255).astype(np.uint8)
    n = size * size // 900
    for (y, x), r in zip(rng.integers(0, size, (n, 2)), rng.integers(6, 13, n)):
        box = (slice(max(y - r, 0), min(y + r + 1, size)),
               slice(max(x - r, 0), min(x + r + 1, size)))
        ys, xs = np.ogrid[box]
        image[box][(ys - y) ** 2 + (xs - x) ** 2 <= r * r] = 180
    return image


def share(mp_per_s: float, gflop_per_mp: float, yardstick: float) -> float:
    """The network's FLOP rate as a share of the yardstick's."""
    return mp_per_s * gflop_per_mp / yardstick


# -- the network variants -----------------------------------------------------------------
class Eager:
    """The network called as before issue 21: ``model(x)`` per batch, eager, not folded."""

    def __init__(self, keras_model) -> None:
        self.model = keras_model

    def __call__(self, batch, training: bool = False) -> np.ndarray:
        from napari_unet_weights.unet.network import to_numpy

        return to_numpy(self.model(batch, training=training))


class Unfolded:
    """The compiled step (``predict_on_batch``, no XLA on TensorFlow) without folding."""

    def __init__(self, keras_model) -> None:
        import keras

        self.model = keras.models.clone_model(keras_model)
        self.model.set_weights(keras_model.get_weights())
        self.model.jit_compile = keras.backend.backend() == "jax"

    def __call__(self, batch, training: bool = False) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(batch), np.float32)


def legacy_tile(metadata: dict, batch_size: int) -> tuple[int, int]:
    """The automatic tile before issue 21: 32 activations per filter, the largest square."""
    from napari_unet_weights.runtime.memory import memory_budget
    from napari_unet_weights.unet import tiling
    from napari_unet_weights.unet.model_file import input_channels, size_multiple

    multiple = size_multiple(metadata)
    base = int(metadata["architecture"].get("base_filters", 16))
    per_pixel = 4 * (input_channels(metadata) + int(metadata["n_classes"]) + 32 * base)
    budget = memory_budget(tiling.MAX_MEMORY_BUDGET, tiling.MEMORY_SHARE)
    side = int(math.sqrt(budget / (per_pixel * batch_size))) // multiple * multiple
    side = min(max(side, tiling.MIN_TILE), tiling.MAX_TILE // multiple * multiple)
    return side, side


# -- one backend (a child process) ----------------------------------------------------------
def _whole_fits(unet, size: int) -> bool:
    from napari_unet_weights.runtime.memory import available_memory
    from napari_unet_weights.unet.tiling import activations_per_filter

    base = int(unet.metadata["architecture"].get("base_filters", 16))
    needed = size * size * 4 * (8 + activations_per_filter() * base)
    available = available_memory()
    return available is None or needed <= available / 2


def _paths(unet, sizes, before: bool) -> dict:
    """name → (size, tile_shape, network): the runs to time."""
    from napari_unet_weights.unet.model_file import UNetModel

    paths = {}
    for size in sizes:
        if _whole_fits(unet, size):
            paths[f"whole {size}"] = (size, size, unet)
        paths[f"default {size}"] = (size, None, unet)
        if before:
            old = UNetModel(Eager(unet.keras_model), unet.metadata)
            if size <= 2048:  # an eager call holds 30 activations per filter
                paths[f"before: eager whole {size}"] = (size, size, old)
            paths[f"before: eager default {size}"] = (size, legacy_tile(unet.metadata, 4),
                                                      old)
            paths[f"compiled, not folded, default {size}"] = (
                size, None, UNetModel(Unfolded(unet.keras_model), unet.metadata))
    return paths


def _warm_up(unet, size: int, tile_shape, batch_size: int) -> None:
    """Trace the network for the batch shapes the run will use."""
    from napari_unet_weights.unet.inference import network_output
    from napari_unet_weights.unet.model_file import input_channels, size_multiple
    from napari_unet_weights.unet.tiling import auto_tile_shape, tile_grid

    if tile_shape is None:
        tile_shape = auto_tile_shape(unet, (size, size), batch_size=batch_size)
    grid = tile_grid((size, size), tile_shape, None, size_multiple(unet.metadata))
    channels = input_channels(unet.metadata)
    for n in {min(batch_size, len(grid)), len(grid) % batch_size} - {0}:
        network_output(unet.keras_model, np.zeros((n, *grid.shape, channels), np.float32))


def run_backend(sizes=(1024, 4096), rounds: int = 2, matmul: int = 4096,
                before: bool = False, batch_size: int = 4) -> dict:
    """Time every path on this process's Keras backend (see the module docstring)."""
    import keras

    from napari_unet_weights.unet.model_file import load_model
    from napari_unet_weights.unet.network import flops_per_pixel
    from napari_unet_weights.unet.predict import predict
    from napari_unet_weights.unet.tiling import auto_tile_shape

    unet = load_model()
    gflop_per_mp = flops_per_pixel(unet.keras_model) * 1e6 / 1e9
    images = {size: disc_image(size) for size in sizes}
    paths = _paths(unet, sizes, before)
    for size, tile_shape, model in paths.values():
        _warm_up(model, size, tile_shape, batch_size)
    yardsticks = [matmul_gflops(matmul)]
    best = dict.fromkeys(paths, math.inf)
    for _ in range(rounds):
        for name, (size, tile_shape, model) in paths.items():
            start = time.perf_counter()
            predict(images[size], model, tile_shape=tile_shape, batch_size=batch_size)
            best[name] = min(best[name], time.perf_counter() - start)
        yardsticks.append(matmul_gflops(matmul))
    yardstick = max(yardsticks)
    results = {}
    for name, (size, tile_shape, _) in paths.items():
        mp_per_s = size * size / 1e6 / best[name]
        tiles = tile_shape or auto_tile_shape(unet, (size, size), batch_size=batch_size)
        results[name] = {"seconds": round(best[name], 3), "mp_per_s": round(mp_per_s, 3),
                         "share": round(share(mp_per_s, gflop_per_mp, yardstick), 3),
                         "tile_shape": list(np.broadcast_to(tiles, 2).tolist())}
    return {"backend": keras.backend.backend(), "keras": keras.__version__,
            "version": _version(keras.backend.backend()),
            "gflop_per_mp": round(gflop_per_mp, 2),
            "yardstick_gflops": [round(y, 1) for y in yardsticks],
            "rounds": rounds, "batch_size": batch_size, "paths": results}


def _version(backend: str) -> str:
    module = importlib.import_module(_BACKEND_MODULES[backend])
    return getattr(module, "__version__", "?")


# -- the parent -----------------------------------------------------------------------------
def installed_backends() -> list[str]:
    """The Keras backends whose library is installed, TensorFlow first."""
    return [name for name in BACKENDS if importlib.util.find_spec(_BACKEND_MODULES[name])]


def machine() -> dict:
    """The processor, its cores and the instruction sets that matter here."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "flags": [flag for flag in wanted if flag in flags],
            "python": platform.python_version(), "numpy": np.__version__}


def run_child(backend: str, args) -> dict:
    """:func:`run_backend` in a fresh process with ``KERAS_BACKEND=backend``."""
    command = [sys.executable, __file__, "--child", "--sizes", *map(str, args.sizes),
               "--rounds", str(args.rounds), "--matmul", str(args.matmul)]
    if args.before and backend == "tensorflow":
        command.append("--before")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"backend": backend, "error": done.stderr.strip().splitlines()[-3:]}
    return json.loads(lines[-1])


def report(results: list[dict]) -> None:
    """Print one row per backend and path."""
    print(f"{'backend':<11} {'path':<36} {'MP/s':>7} {'share':>6}  tiles    "
          "yardstick GFLOP/s")
    for result in results:
        if "error" in result:
            print(f"{result['backend']:<11} failed: {' | '.join(result['error'])}")
            continue
        yardstick = "/".join(f"{y:.0f}" for y in result["yardstick_gflops"])
        for name, path in result["paths"].items():
            tiles = "×".join(map(str, path["tile_shape"]))
            print(f"{result['backend']:<11} {name:<36} {path['mp_per_s']:>7.2f} "
                  f"{path['share']:>6.0%}  {tiles:<8} {yardstick} "
                  f"({result['gflop_per_mp']} GFLOP/MP)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 4096])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--matmul", type=int, default=4096, help="yardstick matrix side")
    parser.add_argument("--before", action="store_true",
                        help="TensorFlow: also the code before issue 21")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_backend(args.sizes, args.rounds, args.matmul, args.before)))
        return
    backends = args.backends or installed_backends()
    results = [run_child(backend, args) for backend in backends]
    report(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine(), "command": " ".join(sys.argv),
                       "results": results}, out, indent=1)
            out.write("\n")


if __name__ == "__main__":
    main()
