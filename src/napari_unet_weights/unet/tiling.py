"""Tiles of an image plane: the grid, the blending window, the automatic tile size (numpy).

A U-Net of depth d pools d times, so it takes planes whose height and width are
multiples of ``multiple = 2**d``; :func:`pad_to_multiple` pads a plane to that grid,
mirroring its edges, with the padding split evenly before and after.

- **The grid.** Tiles of ``tile_shape`` (multiples of ``multiple``) are laid on that
  same padded grid: their starts are multiples of ``multiple``, spread evenly, the first
  at 0 and the last at the end, overlapping by at least ``overlap`` pixels. So the
  network's pooling grid in a tile is the one it has on the whole plane, and a tile
  sees mirrored padding only where the whole plane does.
- **The blending window.** Each tile's output is weighted, axis by axis, by a ramp over
  the sides it shares with a neighbour: 0 on the outer quarter of the overlap (where the
  tile edge changes the output most), a sin² rise over the middle half, 1 beyond. The
  ramps are divided by their sum over the tiles, so the weights of every pixel sum to 1
  (no seams, and a network without spatial context gives exactly the untiled output).
- **The automatic tile size** (:func:`auto_tile_shape`): the whole plane if a batch of
  planes fits a share of the available memory, else the fewest tiles that do, each as
  small as covers the plane with them (the overlap is computed again for every tile:
  a 4096² plane in 5 × 5 tiles of 928², 1.28× its pixels, rather than 1008², 1.51×).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from ..runtime.memory import memory_budget
from .backend import current_backend
from .model_file import input_channels, model_metadata, size_multiple

__all__ = [
    "ACTIVATIONS_PER_FILTER",
    "BACKEND_ACTIVATIONS",
    "MAX_MEMORY_BUDGET",
    "MAX_TILE",
    "MEMORY_SHARE",
    "MIN_TILE",
    "AxisTile",
    "TileGrid",
    "activations_per_filter",
    "auto_tile_shape",
    "axis_tiles",
    "blend_tile",
    "cut_tile",
    "default_overlap",
    "pad_to_multiple",
    "tile_grid",
]

#: Upper bound of the memory that :func:`auto_tile_shape` plans for (bytes).
MAX_MEMORY_BUDGET = 2 * 1024**3
#: Share of the available memory that :func:`auto_tile_shape` plans for.
MEMORY_SHARE = 0.25
#: Bounds of the automatic tile side (pixels).
MIN_TILE, MAX_TILE = 64, 2048
#: Estimated float32 activations per pixel and per first-level filter held by the U-Net
#: during a forward pass (all levels, skip connections), per Keras backend, for the
#: compiled inference step of :mod:`.network` (batch norm folded): 6.2 measured on
#: TensorFlow (graph execution frees each activation once used; an eager call held 30.6),
#: 14.3 on JAX, 24.1 on PyTorch (Keras' NCHW copies), each rounded up
#: (benchmarks/bench_backends.py, 1024² planes of the 16-filter model).
BACKEND_ACTIVATIONS = {"tensorflow": 8, "jax": 16, "torch": 28}
#: The default backend's figure (TensorFlow); an unknown backend is planned at 32.
ACTIVATIONS_PER_FILTER = BACKEND_ACTIVATIONS["tensorflow"]


def activations_per_filter(backend: str | None = None) -> int:
    """:data:`BACKEND_ACTIVATIONS` of ``backend`` (None: :func:`.backend.current_backend`,
    the one Keras runs or will start with; Keras is not imported here)."""
    return BACKEND_ACTIVATIONS.get(current_backend() if backend is None else backend, 32)


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _padding(size: int, multiple: int) -> tuple[int, int]:
    """The padding (before, after) of an axis of ``size`` up to a multiple: centred."""
    total = -size % multiple
    return total // 2, total - total // 2


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Pad the first two axes up to a multiple of ``multiple`` (mirroring the edges).

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (H, W, C).
    multiple : int
        E.g. ``2**depth`` of a U-Net.

    Returns
    -------
    padded : numpy.ndarray
        (H', W', ...) with H', W' multiples of ``multiple``; ``image`` itself when no
        padding is needed.
    crop : tuple of slice
        ``padded[crop]`` (or ``output[crop]`` of the same height and width) gives back
        the original extent.
    """
    image = np.asarray(image)
    pads = [_padding(size, multiple) for size in image.shape[:2]]
    crop = tuple(slice(before, before + size) for (before, _), size in zip(pads, image.shape))
    pads += [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pads, mode="symmetric") if any(p != (0, 0) for p in pads) else image
    return padded, crop


# -- the grid ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis."""

    start: int  #: where the tile begins on the padded axis (a multiple of ``multiple``)
    image: slice  #: the pixels of the image the tile covers
    pad: tuple[int, int]  #: mirrored padding before / after them to reach the tile length
    crop: slice  #: the same pixels in the tile
    weight: np.ndarray  #: their blending weights (summing to 1 over the tiles)


def _starts(padded: int, length: int, overlap: int, multiple: int) -> list[int]:
    """Evenly spread tile starts, multiples of ``multiple``, overlapping >= ``overlap``."""
    if length >= padded:
        return [0]
    units, step = (padded - length) // multiple, (length - overlap) // multiple
    n = -(-units // step) + 1
    return [(k * units) // (n - 1) * multiple for k in range(n)]


def _ramp(length: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """A tile's blending weight along one axis, before normalisation.

    On a side shared with a neighbour: 0 on the outer quarter of the overlap (where the
    tile edge changes the output most), a sin² rise over its middle half, 1 beyond; the
    neighbour's weight is the mirror image, so every pixel keeps a positive sum.
    """
    weight = np.ones(length)
    margin = overlap // 4
    rise_length = overlap - 2 * margin
    if overlap <= 0:
        return weight
    rise = np.concatenate([np.zeros(margin),
                           np.sin(0.5 * np.pi * (np.arange(rise_length) + 0.5)
                                  / rise_length) ** 2,
                           np.ones(margin)])
    if not first:
        weight[:overlap] = rise
    if not last:
        weight[-overlap:] = np.minimum(weight[-overlap:], rise[::-1])
    return weight


def axis_tiles(size: int, length: int, overlap: int, multiple: int) -> list[AxisTile]:
    """The tiles of one axis of ``size`` pixels, on the grid of :func:`pad_to_multiple`.

    Parameters
    ----------
    size : int
        The image's extent along the axis.
    length, overlap, multiple : int
        Tile length and overlap (multiples of ``multiple``; the tile is cut to the padded
        axis if longer), and the grid.

    Returns
    -------
    list of AxisTile
        In order; their weights sum to 1 at every pixel.
    """
    padded = _round_up(size, multiple)
    length = min(length, padded)
    before, _ = _padding(size, multiple)
    starts = _starts(padded, length, overlap, multiple)
    ramps = [_ramp(length, overlap, i == 0, i == len(starts) - 1) for i in range(len(starts))]
    total = np.zeros(padded)
    for start, ramp in zip(starts, ramps):
        total[start:start + length] += ramp
    tiles = []
    for start, ramp in zip(starts, ramps):
        lo, hi = start - before, start - before + length
        image = slice(max(lo, 0), min(hi, size))
        pad = (image.start - lo, hi - image.stop)
        crop = slice(pad[0], length - pad[1])
        weight = (ramp / total[start:start + length])[crop].astype(np.float32)
        tiles.append(AxisTile(start, image, pad, crop, weight))
    return tiles


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one plane (the same for every plane of a stack)."""

    shape: tuple[int, int]  #: tile height and width
    rows: list[AxisTile]
    cols: list[AxisTile]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self) -> Iterator[tuple[AxisTile, AxisTile]]:
        return iter(product(self.rows, self.cols))


def _lengths(tile_shape, multiple: int) -> tuple[int, int]:
    lengths = (tile_shape, tile_shape) if np.isscalar(tile_shape) else tuple(tile_shape)
    if len(lengths) != 2 or any(int(n) != n or n < 1 for n in lengths):
        raise ValueError(f"tile_shape must be a positive integer or a pair of them, got "
                         f"{tile_shape!r}.")
    return _round_up(lengths[0], multiple), _round_up(lengths[1], multiple)


def default_overlap(tile_shape: tuple[int, int], multiple: int) -> int:
    """The default overlap of tiles: about the reach of the tile edges into the output.

    A U-Net's output near a tile edge differs from the whole-image output (zero padding
    instead of image context) over about its receptive-field radius, ≈ 7 · ``multiple``
    pixels (``multiple`` = ``2**depth``); in the middle of an overlap both tiles are
    ``overlap / 2`` from their edges. The default is the larger of 8 · ``multiple`` and
    1/8 of the smaller tile side, at most half of it, a multiple of ``multiple``.

    Parameters
    ----------
    tile_shape : (int, int)
        Tile height and width (multiples of ``multiple``).
    multiple : int
        ``2**depth`` of the model.

    Returns
    -------
    int
    """
    side = min(tile_shape)
    wanted = _round_up(max(8 * multiple, side // 8), multiple)
    return max(min(wanted, side // 2 // multiple * multiple), 0)


def tile_grid(plane: tuple[int, int], tile_shape: int | tuple[int, int],
              overlap: int | None, multiple: int) -> TileGrid:
    """The tiles of a plane.

    Parameters
    ----------
    plane : (int, int)
        (H, W).
    tile_shape : int or (int, int)
        Tile height and width, rounded up to multiples of ``multiple`` (and cut to the
        padded plane).
    overlap : int, optional
        Rounded up to a multiple of ``multiple``; None: :func:`default_overlap`.
    multiple : int
        ``2**depth`` of the model.

    Returns
    -------
    TileGrid

    Raises
    ------
    ValueError
        For a tile shape that is not one or two positive integers, a negative or
        fractional overlap, or one that leaves no room in a tile.
    """
    lengths = tuple(min(n, _round_up(size, multiple))
                    for n, size in zip(_lengths(tile_shape, multiple), plane))
    tiled = [n < _round_up(size, multiple) for n, size in zip(lengths, plane)]
    if overlap is None:
        split_lengths = tuple(n for n, split in zip(lengths, tiled) if split) or lengths
        overlap = default_overlap(split_lengths, multiple)
        overlaps = [min(overlap, n - multiple) for n in lengths]
    else:
        if int(overlap) != overlap or overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}.")
        overlaps = [_round_up(overlap, multiple)] * 2
        for n, o, split in zip(lengths, overlaps, tiled):
            if split and o > n - multiple:
                raise ValueError(f"overlap {overlap} (rounded to {o}) leaves no room in tiles "
                                 f"of {n} pixels; use an overlap <= {n - multiple}.")
    rows, cols = (axis_tiles(size, n, o, multiple)
                  for size, n, o in zip(plane, lengths, overlaps))
    return TileGrid(lengths, rows, cols)


def cut_tile(x: np.ndarray, row: AxisTile, col: AxisTile, out: np.ndarray) -> None:
    """Write the tile (``row``, ``col``) of the (H, W, C) plane ``x`` into ``out``."""
    part = x[row.image, col.image]
    if row.pad == (0, 0) and col.pad == (0, 0):
        out[...] = part
    else:
        out[...] = np.pad(part, (row.pad, col.pad, (0, 0)), mode="symmetric")


def blend_tile(target: np.ndarray, output: np.ndarray, row: AxisTile, col: AxisTile) -> None:
    """Add the tile's network ``output`` (tile, tile, K), weighted, into ``target`` (H, W, K)."""
    weight = row.weight[:, np.newaxis, np.newaxis] * col.weight[np.newaxis, :, np.newaxis]
    target[row.image, col.image] += output[row.crop, col.crop] * weight


# -- the automatic tile size ------------------------------------------------------------
def _bytes_per_pixel(metadata: Mapping[str, Any]) -> int:
    base = int(metadata.get("architecture", {}).get("base_filters", 16))
    return 4 * (input_channels(metadata) + int(metadata["n_classes"])
                + activations_per_filter() * base)


def _balanced(padded: int, side: int, overlap: int, multiple: int) -> int:
    """The shortest tile length (a multiple) that covers ``padded`` pixels with as few
    tiles of at most ``side`` as possible, overlapping by ``overlap``."""
    if padded <= side:
        return padded
    n = -(-(padded - overlap) // (side - overlap))
    return min(_round_up(-(-(padded + (n - 1) * overlap) // n), multiple), side)


def auto_tile_shape(model=None, plane_shape: tuple[int, int] | None = None, *,
                    batch_size: int = 4, n_planes: int = 1,
                    available: int | None = None) -> tuple[int, int]:
    """The tile shape prediction uses when ``tile_shape`` is None.

    The network's working memory is estimated as ``bytes_per_pixel`` =
    4 · (C + K + :func:`activations_per_filter` · base_filters) per pixel; the budget is
    :data:`MEMORY_SHARE` of the available memory, at most :data:`MAX_MEMORY_BUDGET`
    (:func:`~napari_unet_weights.runtime.memory.memory_budget`, the policy of every budget). The
    whole plane (padded to ``2**depth``) if a batch of such planes fits the budget (one
    plane for a 2-D image, up to ``batch_size`` for stacks), otherwise tiles such that a
    batch of ``batch_size`` fits, between :data:`MIN_TILE` and :data:`MAX_TILE` pixels
    a side: for a plane, the fewest such tiles per axis, made as short as covers the
    plane with :func:`default_overlap` (less work in the overlaps); without a plane,
    the largest square tile.

    Parameters
    ----------
    model : UNetModel, dict, str or path, optional
        A model, its metadata, or a model file (read without TensorFlow); None: the
        bundled model.
    plane_shape : (int, int), optional
        The image plane (H, W); None: give the tile size regardless of the image.
    batch_size : int
        Tiles per network call.
    n_planes : int
        Planes of the image (stacks are batched across planes).
    available : int, optional
        Available memory in bytes; None:
        :func:`~napari_unet_weights.runtime.memory.available_memory`.

    Returns
    -------
    (int, int)
        Multiples of ``2**depth``.
    """
    metadata = model_metadata(model)
    multiple = size_multiple(metadata)
    budget = memory_budget(MAX_MEMORY_BUDGET, MEMORY_SHARE, available)
    per_pixel = _bytes_per_pixel(metadata)
    if plane_shape is not None:
        padded = tuple(_round_up(n, multiple) for n in plane_shape)
        planes_per_batch = max(min(batch_size, n_planes), 1)
        if padded[0] * padded[1] * per_pixel * planes_per_batch <= budget:
            return padded
    side = int(math.sqrt(budget / (per_pixel * max(batch_size, 1)))) // multiple * multiple
    side = min(max(side, _round_up(MIN_TILE, multiple)), MAX_TILE // multiple * multiple)
    if plane_shape is None:
        return side, side
    overlap = min(default_overlap((side, side), multiple), side - multiple)
    return tuple(_balanced(n, side, overlap, multiple) for n in padded)
