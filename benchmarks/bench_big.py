"""Images bigger than memory (issue 12): peak memory and time vs image size, per path.

    python benchmarks/bench_big.py                          # weights, 4096² 8192² 16384²
    python benchmarks/bench_big.py --path segment           # segmentation, 4096² 8192²
    python benchmarks/bench_big.py --path segment --sizes 16384
    python benchmarks/bench_big.py --path workers           # threads vs 1, 2 processes
    python benchmarks/bench_big.py --path weights segment workers --sizes 4096,8192

Inputs are mosaics of 256² crops of real DSB 2018 samples, stored as zarr arrays chunked
2048² (made once under --workdir, then reused); every output goes to zarr:

- **weights**: the label images (uint32, ids made unique) -> ``weight_map`` (lazy) ->
  ``write_zarr``, default memory budgets;
- **segment**: the fluorescence images (first channel, uint8) -> ``unet.predict.segment``
  with the bundled model, default blocks, dask's threads;
- **workers**: the segment path on one mosaic (--workers-size), on dask's threads, then on
  local clusters of --workers processes (``workers=N``, a ``distributed.LocalCluster``).

Every path and size runs in a fresh Python process. Peak memory growth is the kernel's own
high-water mark of the resident set: VmHWM, reset through /proc/self/clear_refs right
before the measured call, minus VmRSS at that moment (exact, no sampling gaps; Linux
only). The segment path first segments a 2048² corner of the mosaic (TensorFlow imported,
model loaded, first blocks run: its time is printed as the warm-up), so that the growth is
the working memory of the run, not TensorFlow's. Printed: the absolute figures, the time
per megapixel and the growth relative to the smallest size (flat memory: growth x1), and,
for the weights path, the growth relative to the memory its blocks and one write region
were planned to take.

The workers comparison times, in one process, each engine's start (cluster start-up), its
warm-up (in each worker process: TensorFlow, the model, the first blocks) and the timed
segmentation, and prints the speed-ups over the threaded run and whether the labels are
identical to its labels. Worker processes' memory is not measured. The load average of
the machine (1 minute, before and after each run) is printed with the times: other jobs
share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import dsb_folder

TILE = 256
CHUNK = 2048
WARMUP = 2048  #: side of the corner the segment path warms up on
SPLIT = Path(__file__).resolve().parents[1] / "scripts" / "dsb2018_split.json"


# -- the inputs ------------------------------------------------------------------------
def chunk_tiles(size: int, row: int, col: int) -> Iterator[tuple[int, tuple[slice, slice]]]:
    """(tile number in the size² mosaic, its place in chunk (row, col)) of the chunk's tiles."""
    tiles_per_row, per_chunk = size // TILE, CHUNK // TILE
    for i in range(per_chunk):
        for j in range(per_chunk):
            tile = (row * per_chunk + i) * tiles_per_row + col * per_chunk + j
            yield tile, (slice(i * TILE, (i + 1) * TILE), slice(j * TILE, (j + 1) * TILE))


def write_mosaic(path: Path, size: int, dtype, chunk: Callable[[int, int], np.ndarray]) -> Path:
    """The size² zarr array at ``path``, chunk (row, col) = ``chunk(row, col)`` (made once)."""
    import zarr

    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    array = zarr.create_array(partial, shape=(size, size), chunks=(CHUNK, CHUNK), dtype=dtype)
    for row in range(size // CHUNK):
        for col in range(size // CHUNK):
            array[row * CHUNK : (row + 1) * CHUNK, col * CHUNK : (col + 1) * CHUNK] = (
                chunk(row, col))
    partial.rename(path)
    return path


def dsb_crops() -> tuple[list[np.ndarray], np.ndarray]:
    """The 256² top-left crops of the DSB label images that have one, and their max ids."""
    folder = dsb_folder()
    index = json.loads((folder / "index.json").read_text())
    names = sorted(k for k, v in index.items() if min(v["shape"]) >= TILE and v["n_objects"])
    crops = [tifffile.imread(folder / "labels" / f"{n}.tif")[:TILE, :TILE] for n in names]
    return crops, np.array([int(c.max()) for c in crops], dtype=np.int64)


def label_mosaic_chunk(crops, maxima, size: int, row: int, col: int) -> np.ndarray:
    """Chunk (row, col) of the size² mosaic: tile t holds crop t % n, ids offset densely."""
    out = np.zeros((CHUNK, CHUNK), np.uint32)
    for tile, place in chunk_tiles(size, row, col):
        whole, rest = divmod(tile, len(crops))
        offset = whole * int(maxima.sum()) + int(maxima[:rest].sum())
        crop = crops[rest].astype(np.uint32)
        crop[crop > 0] += offset
        out[place] = crop
    return out


def make_labels(workdir: Path, size: int) -> Path:
    """The size² label mosaic as zarr under ``workdir`` (made once)."""
    path = workdir / f"labels_{size}.zarr"
    if path.exists():
        return path
    crops, maxima = dsb_crops()
    return write_mosaic(path, size, np.uint32,
                        lambda row, col: label_mosaic_chunk(crops, maxima, size, row, col))


def fluorescence_crops() -> list[np.ndarray]:
    """The 256² top-left crops (first channel, uint8) of the DSB fluorescence images."""
    folder = dsb_folder()
    modality = json.loads(SPLIT.read_text())["modality"]
    index = json.loads((folder / "index.json").read_text())
    names = sorted(n for n, kind in modality.items()
                   if kind == "fluorescence" and min(index[n]["shape"]) >= TILE)
    crops = []
    for name in names:
        image = tifffile.imread(folder / "images" / f"{name}.tif")
        plane = image[..., 0] if image.ndim == 3 else image
        crops.append(plane[:TILE, :TILE].astype(np.uint8))
    return crops


def image_mosaic_chunk(crops, size: int, row: int, col: int) -> np.ndarray:
    """Chunk (row, col) of the size² image mosaic: tile t holds crop t % n."""
    out = np.empty((CHUNK, CHUNK), np.uint8)
    for tile, place in chunk_tiles(size, row, col):
        out[place] = crops[tile % len(crops)]
    return out


def make_images(workdir: Path, size: int) -> Path:
    """The size² fluorescence mosaic as zarr under ``workdir`` (made once)."""
    path = workdir / f"images_{size}.zarr"
    if path.exists():
        return path
    crops = fluorescence_crops()
    return write_mosaic(path, size, np.uint8,
                        lambda row, col: image_mosaic_chunk(crops, size, row, col))


# -- measuring (in the child process) --------------------------------------------------
def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1))


def timed(function) -> tuple[float, object]:
    """(seconds, result) of ``function()``."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def measure(function) -> tuple[float, float]:
    """(seconds, peak RSS growth in MiB) of ``function()``."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    seconds, _ = timed(function)
    return seconds, (_status_kib("VmHWM") - before) / 1024


def load() -> float:
    """The machine's load average over the last minute."""
    return os.getloadavg()[0]


def run_weights(source: str, out: str, budget: str, **_) -> dict:
    """The weights path: zarr labels -> weight_map (lazy) -> write_zarr."""
    import dask.array as da

    from napari_unet_weights import border_radius, weight_map
    from napari_unet_weights.weights.lazy import (
        BYTES_PER_PIXEL,
        default_threads,
        plan_blocks,
        region_bytes,
        region_shape,
        resolve_memory_budget,
        write_zarr,
    )

    labels = da.from_zarr(source)
    block, depth = plan_blocks(labels.shape, labels.chunksize, radius=border_radius(10, 5),
                               border="background", spacing=(1.0, 1.0), memory_budget=budget)
    threads = default_threads()
    load_before = load()
    seconds, growth = measure(lambda: write_zarr(
        weight_map(labels, w0=10, sigma=5, memory_budget=budget), out, overwrite=True,
        memory_budget=budget))
    blocks = threads * np.prod([b + 2 * d for b, d in zip(block, depth)]) * BYTES_PER_PIXEL
    chunk_bytes = int(np.prod(labels.chunksize)) * 4  # float32 weights
    region = region_shape(labels.numblocks, chunk_bytes, resolve_memory_budget(budget))
    chunks = region_bytes(region, labels.numblocks, chunk_bytes)
    planned = (blocks + chunks) / 2**20
    setup = (f"zarr labels chunked {CHUNK}² -> zarr, {threads} threads, working block "
             f"{'x'.join(map(str, block))}, regions of {'x'.join(map(str, region))} chunks; "
             f"planned {planned:.0f} MiB (blocks being mapped + a region's chunks)")
    return {"seconds": seconds, "growth_mib": growth, "planned_mib": planned,
            "load": [load_before, load()], "setup": setup}


def segment_zarr(source: str, out: str, engine=None, corner: int | None = None) -> None:
    """Segment the zarr image at ``source`` (its corner² corner only) into ``out``."""
    import dask.array as da

    from napari_unet_weights.unet.predict import segment

    image = da.from_zarr(source)
    if corner is not None:
        image = image[:corner, :corner]
    segment(image, out=out, scheduler=engine)


def n_objects(labels: str) -> int:
    """The objects of a labels zarr (ids are 1..N)."""
    import dask.array as da

    return int(da.from_zarr(labels).max().compute())


def run_segment(source: str, out: str, **_) -> dict:
    """The segment path: zarr image -> segment(out=zarr), bundled model, threads."""
    from napari_unet_weights.unet.chunked.big import DEFAULT_BLOCK, default_margin
    from napari_unet_weights.unet.model_file import model_metadata, size_multiple

    warmup = str(Path(out).with_name("segment_warmup.zarr"))
    warm_seconds, _ = timed(lambda: segment_zarr(source, warmup, corner=WARMUP))
    load_before = load()
    seconds, growth = measure(lambda: segment_zarr(source, out))
    loads = [load_before, load()]
    margin = default_margin(size_multiple(model_metadata(None)))
    setup = (f"zarr uint8 image chunked {CHUNK}² -> zarr labels, bundled model, "
             f"{os.cpu_count()} threads, blocks of {DEFAULT_BLOCK}² + margin {margin} "
             f"(warm-up on a {WARMUP}² corner first)")
    return {"seconds": seconds, "growth_mib": growth, "warmup_s": warm_seconds,
            "objects": n_objects(out), "load": loads, "setup": setup}


def engine_run(source: str, out: str, workers: int | None) -> dict:
    """Start an engine (threads, or a local cluster of ``workers``), warm it up, time it."""
    from napari_unet_weights.runtime.engine import Engine

    start_seconds, engine = timed(lambda: Engine(workers=workers))
    warmup = str(Path(out).with_name("workers_warmup.zarr"))
    warm_seconds, _ = timed(lambda: segment_zarr(source, warmup, engine, corner=WARMUP))
    load_before = load()
    seconds, _ = timed(lambda: segment_zarr(source, out, engine))
    load_after = load()
    close_seconds, _ = timed(engine.close)
    return {"workers": workers, "start_s": start_seconds, "warmup_s": warm_seconds,
            "seconds": seconds, "close_s": close_seconds, "load": [load_before, load_after]}


def run_workers(source: str, out: str, counts: list[int], **_) -> dict:
    """The segment path on threads, then on local clusters of each of ``counts`` workers."""
    import zarr

    runs = []
    for workers in [None, *counts]:
        target = str(Path(out).with_name(f"{Path(out).stem}_{workers or 'threads'}.zarr"))
        runs.append({**engine_run(source, target, workers), "out": target})
    reference = zarr.open_array(runs[0]["out"], mode="r")[:]
    for run in runs:
        run["same_labels"] = bool(np.array_equal(zarr.open_array(run["out"], mode="r")[:],
                                                 reference))
    return {"runs": runs, "cores": os.cpu_count()}


def child(name: str, arguments: str) -> None:
    """``--child NAME ARGUMENTS_JSON``: one measurement, printed as JSON."""
    result = CHILDREN[name](**json.loads(arguments))
    print(json.dumps(result))


# -- the parent ------------------------------------------------------------------------
def run_child(name: str, **arguments) -> dict:
    command = [sys.executable, __file__, "--child", name, json.dumps(arguments)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(path: str, sizes: list[int], results: list[dict]) -> None:
    """The table of one path: time and growth per size, relative to the first size."""
    first = results[0]
    first_rate = first["seconds"] / (sizes[0] ** 2 / 1e6)
    planned, warmup = "planned_mib" in first, "warmup_s" in first
    print(f"\n{path}: {first['setup']}")
    print(f"  {'size':>7} {'MP':>5} {'s':>6} {'MP/s':>5} {'s/MP':>6} {'x s/MP':>6} "
          f"{'growth MiB':>10} {'x first':>7}" + (f" {'x planned':>9}" if planned else "")
          + (f" {'warm-up s':>9} {'objects':>9}" if warmup else "") + f" {'load':>9}")
    for size, r in zip(sizes, results):
        megapixels = size**2 / 1e6
        rate = r["seconds"] / megapixels
        print(f"  {size:>6}² {megapixels:>5.0f} {r['seconds']:>6.1f} {1 / rate:>5.2f} "
              f"{rate:>6.3f} {rate / first_rate:>6.2f} {r['growth_mib']:>10.0f} "
              f"{r['growth_mib'] / first['growth_mib']:>7.2f}"
              + (f" {r['growth_mib'] / r['planned_mib']:>9.2f}" if planned else "")
              + (f" {r['warmup_s']:>9.1f} {r['objects']:>9}" if warmup else "")
              + f" {_load_range(r['load'])}")


def _load_range(loads: list[float]) -> str:
    """The 1-minute load average before and after a run."""
    return f"{f'{loads[0]:.1f}-{loads[1]:.1f}':>9}"


def report_workers(size: int, result: dict) -> None:
    """The table of the workers comparison: times, and speed-ups over the threads."""
    runs = result["runs"]
    threads = runs[0]
    print(f"\nworkers: segment of the {size}² mosaic ({size**2 / 1e6:.0f} MP), "
          f"{result['cores']} cores; threads = dask's threaded scheduler "
          f"({result['cores']} threads), N = LocalCluster of N processes x 1 thread")
    print(f"  {'engine':>8} {'start s':>7} {'warm-up s':>9} {'compute s':>9} {'MP/s':>6} "
          f"{'speed-up':>8} {'total s':>7} {'x total':>7} {'load':>9} {'same':>5}")
    for run in runs:
        total = run["start_s"] + run["warmup_s"] + run["seconds"]
        threads_total = threads["start_s"] + threads["warmup_s"] + threads["seconds"]
        print(f"  {run['workers'] or 'threads':>8} {run['start_s']:>7.1f} "
              f"{run['warmup_s']:>9.1f} {run['seconds']:>9.1f} "
              f"{size**2 / 1e6 / run['seconds']:>6.2f} "
              f"{threads['seconds'] / run['seconds']:>8.2f} {total:>7.1f} "
              f"{threads_total / total:>7.2f} {_load_range(run['load'])} "
              f"{run['same_labels']!s:>5}")


class BenchPath(NamedTuple):
    make_input: Callable[[Path, int], Path]
    sizes: list[int]  #: the default sizes


#: path name -> its input (made in the parent) and default sizes; its child is CHILDREN[name].
PATHS = {"weights": BenchPath(make_labels, [4096, 8192, 16384]),
         "segment": BenchPath(make_images, [4096, 8192])}
#: what a child process runs: function(source=, out=, ...) -> JSON-able dict.
CHILDREN = {"weights": run_weights, "segment": run_segment, "workers": run_workers}


def run_sizes(path: str, sizes: list[int] | None, workdir: Path, budget: str) -> None:
    sizes = sizes or PATHS[path].sizes
    results = []
    for size in sizes:
        source = PATHS[path].make_input(workdir, size)
        results.append(run_child(path, source=str(source),
                                 out=str(workdir / f"{path}_{size}.zarr"), budget=budget))
        print(f"  {path} {size}²: {json.dumps(results[-1])}", flush=True)
    report(path, sizes, results)


def run_comparison(size: int, counts: list[int], workdir: Path) -> None:
    source = make_images(workdir, size)
    print(f"  workers {size}²: load {load():.1f} before", flush=True)
    result = run_child("workers", source=str(source),
                       out=str(workdir / f"workers_{size}.zarr"), counts=counts)
    print(f"  workers {size}²: {json.dumps(result)}", flush=True)
    report_workers(size, result)


def sizes_argument(text: str) -> list[int]:
    """``4096`` or ``4096,8192``."""
    return [int(part) for part in text.split(",") if part]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", nargs="+", choices=[*PATHS, "workers"], default=["weights"])
    parser.add_argument("--sizes", type=sizes_argument, nargs="+",
                        help="image sides (default: weights 4096 8192 16384, segment "
                             "4096 8192); 4096 8192 or 4096,8192")
    parser.add_argument("--budget", default="auto", help="memory_budget of the weights path")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker processes of the clusters compared with threads")
    parser.add_argument("--workers-size", type=int, default=4096,
                        help="side of the mosaic the workers comparison segments")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_big"))
    args = parser.parse_args()
    args.sizes = [s for group in args.sizes for s in group] if args.sizes else None
    if any(size % CHUNK for size in [*(args.sizes or []), args.workers_size]):
        parser.error(f"sizes must be multiples of {CHUNK}")
    return args


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:4])
        return
    args = arguments()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores", flush=True)
    for path in args.path:
        if path == "workers":
            run_comparison(args.workers_size, args.workers, args.workdir)
        else:
            run_sizes(path, args.sizes, args.workdir, args.budget)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
