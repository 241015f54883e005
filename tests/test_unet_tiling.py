"""Tiles of a plane against brute force and hand-computed values (numpy only, no TensorFlow)."""

from __future__ import annotations

import math
import sys
from itertools import pairwise

import numpy as np
import pytest

from napari_unet_weights.unet.tiling import (
    ACTIVATIONS_PER_FILTER,
    BACKEND_ACTIVATIONS,
    activations_per_filter,
    axis_tiles,
    blend_tile,
    cut_tile,
    pad_to_multiple,
    tile_grid,
)
from napari_unet_weights.unet.tiling import auto_tile_shape as auto


def grid_cases(n: int = 60, seed: int = 0) -> list[tuple[int, int, int, int]]:
    """(size, length, overlap, multiple) drawn at random, plus the edge cases by hand."""
    rng = np.random.default_rng(seed)
    cases = [(256, 64, 32, 4), (250, 64, 16, 4), (37, 16, 8, 4), (100, 128, 16, 4),
             (64, 64, 16, 16), (65, 64, 16, 16), (1, 8, 0, 8), (300, 32, 0, 8)]
    while len(cases) < n:
        multiple = int(rng.choice([1, 2, 4, 8, 16]))
        length = multiple * int(rng.integers(2, 12))
        overlap = multiple * int(rng.integers(0, length // multiple))  # <= length - multiple
        cases.append((int(rng.integers(1, 400)), length, overlap, multiple))
    return cases


@pytest.mark.parametrize(("size", "length", "overlap", "multiple"), grid_cases())
def test_axis_tiles_cover_the_axis_on_the_padded_grid_with_weights_summing_to_one(
        size, length, overlap, multiple):
    tiles = axis_tiles(size, length, overlap, multiple)
    padded = math.ceil(size / multiple) * multiple
    before = (padded - size) // 2  # the padding of pad_to_multiple, split evenly
    length = min(length, padded)
    covered = np.zeros(size, int)
    total = np.zeros(size)
    for tile in tiles:
        assert tile.start % multiple == 0 and 0 <= tile.start <= padded - length
        # the tile's pixels of the image, its padding and its crop agree with its start
        assert tile.image == slice(max(tile.start - before, 0),
                                   min(tile.start - before + length, size))
        assert tile.pad == (tile.image.start - (tile.start - before),
                            tile.start - before + length - tile.image.stop)
        assert tile.crop == slice(tile.pad[0], length - tile.pad[1])
        assert tile.weight.shape == (tile.image.stop - tile.image.start,)
        assert np.all(tile.weight >= 0)
        covered[tile.image] += 1
        total[tile.image] += tile.weight
    assert covered.min() >= 1  # every pixel is in a tile
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    starts = [tile.start for tile in tiles]
    assert starts[0] == 0 and starts[-1] == padded - length  # from edge to edge
    assert all(b - a <= length - overlap for a, b in pairwise(starts))  # overlap kept
    assert starts == sorted(set(starts))


def test_two_tiles_blend_with_a_sin2_ramp_by_hand():
    """12 px, tiles of 8 overlapping by 4: a quarter at 0, sin²(π/8), cos²(π/8), a quarter at 1."""
    first, second = axis_tiles(12, 8, 4, multiple=1)
    s, c = math.sin(math.pi / 8) ** 2, math.cos(math.pi / 8) ** 2
    assert (first.image, second.image) == (slice(0, 8), slice(4, 12))
    np.testing.assert_allclose(first.weight, [1, 1, 1, 1, 1, c, s, 0], atol=1e-7)
    np.testing.assert_allclose(second.weight, [0, s, c, 1, 1, 1, 1, 1], atol=1e-7)


@pytest.mark.parametrize(("plane", "tile_shape", "overlap", "multiple"), [
    ((203, 177), (32, 48), 8, 4), ((96, 80), 64, None, 4), ((64, 64), 512, None, 16),
    ((130, 70), (48, 32), 16, 8), ((5, 300), 64, 0, 4),
])
def test_tile_grid_weights_sum_to_one_over_the_plane(plane, tile_shape, overlap, multiple):
    """Brute force in 2-D: blending an all-ones output from every tile gives ones."""
    grid = tile_grid(plane, tile_shape, overlap, multiple)
    assert all(n % multiple == 0 for n in grid.shape)
    total = np.zeros((*plane, 1), np.float32)
    hits = np.zeros(plane, int)
    for row, col in grid:
        blend_tile(total, np.ones((*grid.shape, 1), np.float32), row, col)
        hits[row.image, col.image] += 1
    assert len(grid) == sum(1 for _ in grid)
    assert hits.min() >= 1
    np.testing.assert_allclose(total[..., 0], 1.0, atol=1e-6)


def test_cut_tiles_are_the_padded_plane_at_the_tile_starts():
    """A tile is the plane padded as for the whole image, from its start on (brute force)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 29, 2)).astype(np.float32)
    multiple = 4
    padded, _ = pad_to_multiple(x, multiple)
    grid = tile_grid(x.shape[:2], (16, 12), 4, multiple)
    for row, col in grid:
        out = np.empty((*grid.shape, 2), np.float32)
        cut_tile(x, row, col, out)
        expected = padded[row.start:row.start + grid.shape[0],
                          col.start:col.start + grid.shape[1]]
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(out[row.crop, col.crop], x[row.image, col.image])


def test_pad_to_multiple_mirrors_evenly_by_hand():
    column = np.arange(5, dtype=np.float32)[:, np.newaxis]  # (5, 1)
    padded, crop = pad_to_multiple(column, 8)
    assert padded.shape == (8, 8)
    np.testing.assert_array_equal(padded[:, 0], [0, 0, 1, 2, 3, 4, 4, 3])  # 1 before, 2 after
    np.testing.assert_array_equal(padded[0], [0, 0, 0, 0, 0, 0, 0, 0])
    assert crop == (slice(1, 6), slice(3, 4))
    np.testing.assert_array_equal(padded[crop], column)
    wide, crop = pad_to_multiple(np.ones((16, 3, 2)), 8)  # only the width is padded
    assert wide.shape == (16, 8, 2) and crop == (slice(0, 16), slice(2, 5))


@pytest.mark.parametrize(("tile_shape", "overlap", "message"), [
    (0, None, "tile_shape must be a positive integer"), ((32, 32, 1), None, "tile_shape"),
    (2.5, None, "tile_shape"), (32, -4, "overlap must be a non-negative integer"),
    (32, 1.5, "overlap must be"), (32, 32, r"overlap 32 \(rounded to 32\) leaves no room"),
])
def test_bad_tile_shape_or_overlap(tile_shape, overlap, message):
    with pytest.raises(ValueError, match=message):
        tile_grid((128, 128), tile_shape, overlap, 4)


# -- the automatic tile size --------------------------------------------------------------
TINY = {"n_classes": 3, "input": {"n_channels": 1},
        "architecture": {"depth": 2, "base_filters": 4}}
#: 4 bytes · (1 input channel + 3 classes + 8 activations · 4 filters) per pixel.
PER_PIXEL = 4 * (1 + 3 + ACTIVATIONS_PER_FILTER * 4)


def test_auto_tile_shape_by_hand():
    assert PER_PIXEL == 144 and activations_per_filter("tensorflow") == ACTIVATIONS_PER_FILTER
    # the whole plane, padded to 2**2, when a batch of it fits a quarter of 1 GiB
    assert auto(TINY, (250, 301), available=2**30) == (252, 304)
    # 4 planes of 1000²: 4 · 10⁶ · 144 B > 256 MiB; tiles of at most ⌊√(2**28 / (144 · 4))⌋
    # = 680 with an overlap of 88 (680 / 8, rounded up to 4): 2 per axis suffice, each
    # ⌈(1000 + 88) / 2⌉ = 544
    assert auto(TINY, (1000, 1000), n_planes=4, available=2**30) == (544, 544)
    # 1200² · 144 B fits 256 MiB once but not twice: 2 planes of a stack are tiled,
    # 2 tiles per axis of ⌈(1200 + 88) / 2⌉ = 644
    assert auto(TINY, (1200, 1200), n_planes=1, available=2**30) == (1200, 1200)
    assert auto(TINY, (1200, 1200), n_planes=2, available=2**30) == (644, 644)
    assert auto(TINY, None, batch_size=1, available=2**30) == (1364, 1364)  # √(2**28 / 144)
    # the budget is capped at 2 GiB: √(2**31 / (144 · 4)) = 1930.9
    assert auto(TINY, None, available=2**34) == (1928, 1928)
    assert auto(TINY, None, available=2**40) == (1928, 1928)
    assert auto(TINY, (10**5, 10**5), available=2**20) == (64, 64)  # at least MIN_TILE
    wide = {**TINY, "architecture": {"depth": 4, "base_filters": 4}}  # 2**4; 4·(1+3+32) B
    assert auto(wide, None, batch_size=4, available=2**40) == (1920, 1920)  # √(2**31/576)
    assert auto(wide, None, batch_size=1, available=2**40) == (2048, 2048)  # MAX_TILE


def test_other_backends_plan_for_their_activations(monkeypatch):
    """An eager PyTorch U-Net holds ~4× TensorFlow's graph: smaller tiles for the budget."""
    assert BACKEND_ACTIVATIONS["torch"] > BACKEND_ACTIVATIONS["jax"] > ACTIVATIONS_PER_FILTER
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert activations_per_filter() == BACKEND_ACTIVATIONS["torch"]
    side = int(math.sqrt(2**30 / 4 / (4 * (4 + BACKEND_ACTIVATIONS["torch"] * 4)))) // 4 * 4
    assert auto(TINY, None, batch_size=1, available=2**30) == (side, side)
    assert activations_per_filter("unknown") == 32


def test_before_keras_starts_the_plan_is_for_the_backend_it_will_start_with(monkeypatch):
    """A PyTorch-only install without KERAS_BACKEND plans for PyTorch, not TensorFlow."""
    from napari_unet_weights.unet import backend

    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backend, "installed_backends", lambda: ["torch"])
    assert activations_per_filter() == BACKEND_ACTIVATIONS["torch"]


@pytest.mark.parametrize("plane", [(4096, 4096), (3000, 5000), (2030, 2100), (700, 9000)])
@pytest.mark.parametrize("available", [2**28, 2**30, 2**34])
def test_automatic_tiles_are_as_few_and_as_small_as_the_budget_allows(plane, available):
    """As many tiles per axis as the largest tile in the budget needs, no more; each tile
    as short as still covers the plane with that many."""
    bundled = {"n_classes": 3, "input": {"n_channels": 1},
               "architecture": {"depth": 4, "base_filters": 16}}
    largest = auto(bundled, None, available=available)
    tiles = auto(bundled, plane, available=available)
    assert all(t <= n for t, n in zip(tiles, largest)) and all(t % 16 == 0 for t in tiles)

    def per_axis(shape):
        grid = tile_grid(plane, shape, None, 16)
        return len(grid.rows), len(grid.cols)

    fewest = per_axis(largest)
    assert per_axis(tiles) <= fewest
    for axis in (0, 1):
        shorter = list(tiles)
        shorter[axis] -= 16
        if fewest[axis] > 1:
            assert per_axis(tuple(shorter))[axis] > fewest[axis]
