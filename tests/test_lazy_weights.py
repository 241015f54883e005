"""Lazy, chunked weight maps of dask arrays (lazy_weights) against the in-memory map."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import tifffile

try:
    import dask
    import dask.array as da
    import zarr
except ImportError as error:  # the [big] extra; CI has it, so there it is a failure
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(f"needs the [big] extra (dask, zarr): {error}", allow_module_level=True)

import napari_unet_weights.weights.exact as weights_module
from napari_unet_weights import weight_map
from napari_unet_weights.weights.lazy import (
    AUTO_MEMORY_BUDGET,
    MIN_BLOCK_SIDE,
    region_shape,
    resolve_memory_budget,
    working_block_shape,
    write_zarr,
)
from reference import require_dsb_folder

TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def two_threads():
    """The local threaded scheduler with 2 threads: the same working blocks everywhere."""
    with dask.config.set(scheduler="threads", num_workers=2):
        yield


def dsb_mosaic(n_tiles: int, tile: int = 256) -> np.ndarray:
    """An ``n_tiles``² grid of DSB 2018 label crops (``tile``² each), ids unique across tiles."""
    folder = require_dsb_folder("labels")
    index = json.loads((folder.parent / "index.json").read_text())
    names = sorted(k for k, v in index.items() if min(v["shape"]) >= tile and v["n_objects"])
    mosaic = np.zeros((n_tiles * tile, n_tiles * tile), np.uint32)
    offset = 0
    for i, name in enumerate(names[: n_tiles**2]):
        crop = tifffile.imread(folder / f"{name}.tif")[:tile, :tile].astype(np.uint32)
        crop[crop > 0] += offset
        offset = max(offset, int(crop.max()))
        row, col = divmod(i, n_tiles)
        mosaic[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile] = crop
    return mosaic


def rectangles(shape, count: int, seed: int, largest: int = 40) -> np.ndarray:
    """uint32 labels: ``count`` random rectangles (later ones cover earlier ones)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint32)
    for value in range(1, count + 1):
        size = rng.integers(2, largest, len(shape))
        start = [rng.integers(0, n - s) for n, s in zip(shape, size)]
        labels[tuple(slice(a, a + s) for a, s in zip(start, size))] = value * 7919
    return labels


def lazy_and_in_memory(labels, chunks, **options):
    """(lazy map computed, in-memory map) of ``labels`` chunked as ``chunks``."""
    lazy = weight_map(da.from_array(labels, chunks=chunks), **options)
    options.pop("memory_budget", None)
    return lazy.compute(), weight_map(labels, **options)


def assert_close(lazy, in_memory, tolerance=TOLERANCE):
    assert lazy.dtype == in_memory.dtype == np.float32
    np.testing.assert_allclose(lazy, in_memory, rtol=0, atol=tolerance)


# -- exact against the in-memory map ---------------------------------------------------
@pytest.mark.parametrize("border", ["background", "all"])
def test_dsb_mosaic_matches_in_memory(border):
    labels = dsb_mosaic(4)  # 1024², ~430 real nuclei, many cut by the block borders
    lazy, in_memory = lazy_and_in_memory(
        labels, (512, 384), border=border, memory_budget="8 MiB"
    )
    assert_close(lazy, in_memory)
    assert (in_memory > 3).mean() > 0.01  # border terms there to get wrong


@pytest.mark.parametrize("border", ["background", "all"])
@pytest.mark.parametrize("tolerance", [1e-4, 1e-2])
def test_objects_cut_by_odd_chunks(border, tolerance):
    labels = rectangles((300, 280), 60, seed=1, largest=90)
    lazy, in_memory = lazy_and_in_memory(
        labels, (37, 53), border=border, sigma=4, tolerance=tolerance, memory_budget=1
    )
    assert_close(lazy, in_memory, tolerance)


@pytest.mark.parametrize("class_weights", ["balanced", "inverse"])
def test_class_weights_use_global_counts(class_weights):
    labels = rectangles((200, 240), 30, seed=2)
    labels[:, 120:] = 0  # the right-hand blocks hold no object: local counts would differ
    lazy, in_memory = lazy_and_in_memory(
        labels, (100, 60), class_weights=class_weights, memory_budget=1
    )
    assert_close(lazy, in_memory)
    local = weight_map(labels[:, 120:], class_weights=class_weights)
    assert not np.allclose(local, in_memory[:, 120:], atol=0.01)


def test_border_all_with_objects_far_apart():
    # Each block sees one object: the single-object rule must not apply to it.
    labels = np.zeros((200, 200), np.uint16)
    labels[10:30, 10:30] = 1
    labels[150:190, 140:190] = 2
    lazy, in_memory = lazy_and_in_memory(labels, (100, 100), border="all", memory_budget=1)
    assert_close(lazy, in_memory)
    # A single object: its own distance counts, across blocks.
    single = (labels == 2).astype(np.uint16)
    lazy, in_memory = lazy_and_in_memory(single, (100, 100), border="all", memory_budget=1)
    assert_close(lazy, in_memory)
    assert in_memory[170, 125] > 0.1  # 15 px left of it, in another block: w0·exp(-d1²/2σ²)


@pytest.mark.parametrize("border", ["background", "all"])
def test_per_plane_stack(border):
    planes = np.zeros((5, 150, 170), np.uint16)
    planes[0, 10:30, 10:30], planes[0, 100:140, 120:160] = 3, 7  # two objects far apart
    planes[1, 50:60, 50:60] = 9  # a single object
    planes[2] = rectangles((150, 170), 40, seed=3)  # crowded; plane 3 stays empty
    planes[4, :5, :5], planes[4, 140:, 160:] = 1, 2
    lazy, in_memory = lazy_and_in_memory(
        planes, (2, 41, 53), border=border, spatial_dims=2, memory_budget=1
    )
    assert_close(lazy, in_memory)
    assert len(np.unique(in_memory[:, 0, 60])) > 2  # each plane has its own class weights


@pytest.mark.parametrize("border", ["background", "all"])
def test_anisotropic_volume(border):
    labels = rectangles((30, 90, 90), 40, seed=4, largest=12)
    lazy, in_memory = lazy_and_in_memory(
        labels, (7, 31, 29), border=border, sigma=3, spacing=(2.0, 0.7, 0.7), memory_budget=1
    )
    assert_close(lazy, in_memory)


@pytest.mark.parametrize("border", ["background", "all"])
def test_an_overlap_past_the_array_maps_it_as_one_block(border):
    stack = np.stack([rectangles((128, 128), 12, seed=8 + z, largest=24) * (z + 1)
                      for z in range(5)])  # 3-D, 5 planes deep
    lazy, in_memory = lazy_and_in_memory(stack, (5, 128, 128), border=border)  # depth 25 > 5
    assert_close(lazy, in_memory)
    lazy, in_memory = lazy_and_in_memory(stack, (5, 64, 64), border=border, memory_budget=1)
    assert_close(lazy, in_memory)
    lazy, in_memory = lazy_and_in_memory(stack[0], (128, 128), border=border, sigma=1e6)
    assert_close(lazy, in_memory)


def test_unknown_chunk_sizes_are_computed_and_the_input_kept():
    labels = rectangles((96, 80), 12, seed=9)
    lazy = da.from_array(labels, chunks=32)
    picked = lazy[lazy[:, 0] >= 0]  # boolean indexing: dask no longer knows the chunk sizes
    assert np.isnan(picked.shape[0])
    for class_weights in ("balanced", (1.0, 2.0)):
        weights = weight_map(picked, class_weights=class_weights)
        assert weights.shape == labels.shape
        assert_close(weights.compute(), weight_map(labels, class_weights=class_weights))
    assert np.isnan(picked.shape[0])  # the caller's array is as it was


# -- lazy, with the input's dtype-independent float32 and its chunks ---------------------
def _refuse(block):
    raise RuntimeError("computed")


def test_nothing_computed_before_compute():
    refusing = da.zeros((300, 300), np.uint16, chunks=100).map_blocks(_refuse, dtype=np.uint16)
    weights = weight_map(refusing, class_weights=(1.0, 2.0))
    assert weights.shape == (300, 300)
    with pytest.raises(RuntimeError, match="computed"):
        weights.compute()


def test_counts_need_one_pass_and_no_weights(monkeypatch):
    reads = []

    def counted(block):
        reads.append(block.shape)
        return block

    def refuse(*args, **kwargs):
        raise AssertionError("the in-memory engine ran at call time")

    labels = da.from_array(rectangles((200, 200), 20, seed=5), chunks=100).map_blocks(counted)
    monkeypatch.setattr(weights_module.WeightMapCache, "__init__", refuse)
    weight_map(labels, border="all", class_weights="balanced")
    assert [shape for shape in reads if min(shape) > 1] == [(100, 100)] * 4  # read once each


@pytest.mark.parametrize(
    ("dtype", "chunks"),
    [(np.uint8, (64, 50)), (np.int32, ((100, 60, 40), (200,))), (np.uint64, (33, 200))],
)
def test_float32_and_input_chunks(dtype, chunks):
    labels = da.from_array((rectangles((200, 200), 10, seed=6) % 200).astype(dtype), chunks)
    weights = weight_map(labels, memory_budget=1)
    assert weights.dtype == np.float32 and weights.chunks == labels.chunks
    assert_close(weights.compute(), weight_map(labels.compute()))


def test_empty_labels():
    weights = weight_map(da.zeros((0, 5, 5), dtype=np.uint16, chunks=2), spatial_dims=2)
    assert weights.shape == (0, 5, 5) and weights.dtype == np.float32
    assert weights.compute().shape == (0, 5, 5)


def test_bad_input():
    labels = da.zeros((50, 50), dtype=np.uint16, chunks=25)
    with pytest.raises(TypeError, match="integers"):
        weight_map(labels.astype(np.float32))
    with pytest.raises(ValueError, match="border"):
        weight_map(labels, border="inner")
    with pytest.raises(ValueError, match="spatial_dims"):
        weight_map(labels, spatial_dims=3)
    with pytest.raises(ValueError, match="memory_budget"):
        weight_map(labels, memory_budget=0)
    with pytest.raises(TypeError, match="memory_budget"):
        weight_map(labels, memory_budget=1.5)
    with pytest.raises(ValueError, match="negative"):
        weight_map(labels.astype(np.int16) - 1).compute()


def test_import_stays_without_dask():
    code = "import sys, napari_unet_weights; print(sorted(m for m in sys.modules if m == 'dask'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# -- working blocks and memory -----------------------------------------------------------
def test_resolve_memory_budget():
    assert 0 < resolve_memory_budget("auto") <= AUTO_MEMORY_BUDGET
    assert resolve_memory_budget("1 GiB") == 2**30
    assert resolve_memory_budget(12345) == 12345


def _block_pixels(block, depth, shape):
    return np.prod([b + (2 * d if b < n else 0) for b, d, n in zip(block, depth, shape)])


@pytest.mark.parametrize("max_pixels", [200_000, 1_000_000, 5_000_000])
def test_working_block_fits_and_follows_chunks(max_pixels):
    shape, chunks, depth = (16384, 16384), (2048, 2048), (26, 26)
    block = working_block_shape(shape, chunks, depth, spatial_dims=2, max_pixels=max_pixels)
    assert _block_pixels(block, depth, shape) <= max_pixels
    assert _block_pixels([2 * b for b in block], depth, shape) > max_pixels  # not needlessly small
    for side, chunk in zip(block, chunks):
        assert chunk % side == 0 or side % chunk == 0  # the rechunk only splits or merges


def test_working_block_of_stacks_and_tiny_budgets():
    # Small planes: several whole planes per block.
    block = working_block_shape((100, 64, 64), (10, 64, 64), (0, 20, 20), spatial_dims=2,
                                max_pixels=64 * 64 * 25)
    assert block == (20, 64, 64)
    # Whatever the budget, blocks are not smaller than the overlap or MIN_BLOCK_SIDE.
    block = working_block_shape((10, 500, 500), (1, 500, 500), (0, 40, 3), spatial_dims=2,
                                max_pixels=1)
    assert block == (1, 40, MIN_BLOCK_SIDE)


def _squares(block_info=None):
    """A chunk of a grid of 60² squares every 64 px (4-px gaps), ids unique, made on the fly."""
    (y0, y1), (x0, x1) = block_info[None]["array-location"]
    yy, xx = np.arange(y0, y1)[:, None], np.arange(x0, x1)[None, :]
    ids = (yy // 64 * 4096 + xx // 64 + 1).astype(np.uint32)
    return np.where((yy % 64 < 60) & (xx % 64 < 60), ids, 0).astype(np.uint32)


def test_peak_memory_follows_the_budgets(tmp_path):
    budget = 6 * 2**20
    labels = da.map_blocks(_squares, dtype=np.uint32, chunks=((256,) * 8,) * 2)  # 2048²
    weights = weight_map(labels, sigma=2, class_weights="none", memory_budget=budget)
    tracemalloc.start()
    try:
        written = write_zarr(weights, tmp_path / "weights.zarr", memory_budget=budget)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Below the whole map's 16 MiB, where the in-memory engine takes >= 33 B/px (132 MiB).
    assert peak < 2 * budget < weights.nbytes, f"peak {peak / 2**20:.1f} MiB"
    assert written[1000, 1000:1064].max() > 1.3  # border terms in the gaps: computed


# -- writing -----------------------------------------------------------------------------
def test_write_zarr_keeps_chunks_and_values(tmp_path):
    labels = rectangles((300, 260), 50, seed=7)
    source = zarr.create_array(tmp_path / "labels.zarr", shape=labels.shape, chunks=(128, 100),
                               dtype=labels.dtype)
    source[:] = labels
    weights = weight_map(da.from_zarr(source), border="all", memory_budget="2 MiB")
    done = []
    written = write_zarr(weights, tmp_path / "weights.zarr", memory_budget=1,
                         progress=lambda i, n: done.append((i, n)))
    assert written.chunks == (128, 100) and written.dtype == np.float32
    reopened = zarr.open_array(tmp_path / "weights.zarr", mode="r")
    assert_close(reopened[:], weight_map(labels, border="all"))
    assert done == [(i, 9) for i in range(1, 10)]  # one region per chunk with no budget
    with pytest.raises(zarr.errors.ContainsArrayError):
        write_zarr(weights, tmp_path / "weights.zarr")
    write_zarr(weights[:10], tmp_path / "weights.zarr", overwrite=True)
    assert zarr.open_array(tmp_path / "weights.zarr").shape == (10, 260)


def test_write_zarr_irregular_chunks(tmp_path):
    weights = weight_map(da.from_array(rectangles((90, 70), 9, seed=8), ((20, 50, 20), (70,))))
    written = write_zarr(weights, tmp_path / "w.zarr", component="level0")
    assert written.chunks == (50, 70)
    assert_close(written[:], weights.compute())


@pytest.mark.parametrize(
    ("budget", "expected"),
    [(1, (1, 1)), (10, (1, 1)), (14, (1, 2)), (20, (2, 2)), (10**6, (8, 8))],
)
def test_region_shape(budget, expected):
    # budget in chunks: a region of (a, b) holds (a + 2)(b + 2) + ab of them
    assert region_shape((8, 8), 1, budget) == expected
    assert region_shape((1, 8), 1, 10**6) == (1, 8)
