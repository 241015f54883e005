"""Lazy, chunked weight maps of dask arrays: exact, with memory bounded by a budget.

The border term is local: no object farther than R = ``border_radius(w0, sigma,
tolerance)`` from a pixel changes its weight by more than the tolerance. So a block
that sees its neighbours' pixels up to ``ceil(R / spacing) + 1`` away (one more for
``border="all"``, whose inner boundaries look one pixel further) is mapped exactly by
the in-memory engine. Two things are global and come from one cheap reduction over
the labels, computed when the map is made: the class counts for ``"balanced"`` /
``"inverse"`` class weights, and, with ``border="all"``, whether a plane holds a single
object (then that object's own distance counts, as in the in-memory map).

Peak memory follows the *working block*, not the input's chunks: the labels are
rechunked (along the input's chunk borders where possible) to blocks chosen from a
memory budget and the number of threads mapping blocks at once, mapped with overlap,
and rechunked back to the input's chunks. Streaming a whole map to disk needs one more
thing: dask keeps an input chunk until every block that overlaps it is done, which in
a sweep over the image holds a band of chunks as wide as the image. :func:`write_zarr`
therefore writes region by region (a few chunks each, from a second budget), reading
the chunks around a region again for the next one: peak memory stays flat in the
image size.

:func:`napari_unet_weights.weights.exact.weight_map` calls :func:`lazy_weight_map` for dask
arrays, handing it the in-memory engine; this module does not import ``weights`` (no
import cycle) and imports dask only inside its functions.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._checks import validate_labels
from ..runtime.memory import (
    AUTO_MEMORY_BUDGET,
    AUTO_MEMORY_SHARE,
    region_bytes,
    region_shape,
    resolve_memory_budget,
)

__all__ = [
    "AUTO_MEMORY_BUDGET",
    "AUTO_MEMORY_SHARE",
    "BYTES_PER_PIXEL",
    "default_threads",
    "is_dask_array",
    "lazy_weight_map",
    "plan_blocks",
    "region_bytes",
    "region_shape",
    "resolve_memory_budget",
    "working_block_shape",
    "write_zarr",
]

#: Peak bytes per pixel of a working block (its overlap included) while it is mapped:
#: the in-memory engine peaks at 33-37 B/px (tracemalloc, 1024² DSB 2018 mosaic, its
#: float32 output included), plus the overlapped labels block and some headroom.
BYTES_PER_PIXEL = 48
#: Blocks never get smaller than this along a spatial axis, whatever the budget.
MIN_BLOCK_SIDE = 32

ClassRule = Callable[[int, int], tuple[float, float]]


def is_dask_array(array) -> bool:
    """Whether ``array`` is a dask array (without importing dask)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(array, dask_array.Array)


def default_threads() -> int:
    """How many blocks the local scheduler maps at once: dask's num_workers, or the CPUs."""
    import dask
    from dask.system import CPU_COUNT

    return int(dask.config.get("num_workers", None) or CPU_COUNT)


# -- working blocks ----------------------------------------------------------------
def _align(side: int, chunk: int, length: int) -> int:
    """A block side of at most ``side`` that follows the input's chunk borders if it can.

    Whole chunks when a chunk fits; otherwise a divisor of the chunk not below half of
    ``side``; otherwise the chunk cut into near-equal parts.
    """
    if side >= length:
        return length
    if side >= chunk:
        return chunk * (side // chunk)
    parts = math.ceil(chunk / side)
    for count in range(parts, 2 * parts + 1):
        if chunk % count == 0:
            return chunk // count
    return math.ceil(chunk / parts)


def _block_pixels(sides: Sequence[int], shape: Sequence[int], depth: Sequence[int]) -> int:
    """Pixels of an interior block with its overlap (none along a single-block axis)."""
    return math.prod(s + (2 * d if s < n else 0) for s, n, d in zip(sides, shape, depth))


def working_block_shape(
    shape: Sequence[int],
    chunks: Sequence[int],
    depth: Sequence[int],
    *,
    spatial_dims: int,
    max_pixels: int,
) -> tuple[int, ...]:
    """The block shape to map at once: at most ``max_pixels`` with its overlap.

    Parameters
    ----------
    shape : sequence of int
        The labels' shape.
    chunks : sequence of int
        The input's chunk size per axis (its first chunk), followed where possible.
    depth : sequence of int
        The overlap per axis (0 along the leading, non-spatial axes).
    spatial_dims : int
        Number of trailing spatial axes; blocks hold whole planes along the others,
        several of them when a plane is small.
    max_pixels : int
        Most pixels of a block, its overlap included.

    Returns
    -------
    tuple of int
        The working block's shape. Its spatial sides are never below
        :data:`MIN_BLOCK_SIDE` nor the overlap, even if the budget is then exceeded.
    """
    lead = len(shape) - spatial_dims
    space = list(zip(shape[lead:], chunks[lead:], depth[lead:]))
    low, high = 1, max((n for n, _, _ in space), default=1)
    while low < high:  # the largest isotropic side that fits
        middle = (low + high + 1) // 2
        sides = [min(middle, n) for n, _, _ in space]
        if _block_pixels(sides, shape[lead:], depth[lead:]) <= max_pixels:
            low = middle
        else:
            high = middle - 1
    floor = [max(MIN_BLOCK_SIDE, d) for _, _, d in space]
    spatial = [min(n, max(_align(low, c, n), f)) for (n, c, _), f in zip(space, floor)]
    planes = max(1, max_pixels // max(1, _block_pixels(spatial, shape[lead:], depth[lead:])))
    leading = []
    for n, c in zip(reversed(shape[:lead]), reversed(chunks[:lead])):
        count = _align(max(1, min(planes, n)), c, n) if planes > 1 else 1
        leading.append(count)
        planes //= count
    return tuple(reversed(leading)) + tuple(spatial)


def plan_blocks(
    shape: Sequence[int],
    chunks: Sequence[int],
    *,
    radius: float,
    border: str,
    spacing: Sequence[float],
    memory_budget: int | str = "auto",
    threads: int | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The working block and the overlap :func:`lazy_weight_map` uses for these labels.

    Parameters
    ----------
    shape, chunks : sequence of int
        The labels' shape and chunk size per axis.
    radius : float
        ``border_radius(w0, sigma, tolerance)``.
    border : {"background", "all"}
        The border mode (``"all"`` overlaps one pixel more).
    spacing : sequence of float
        Pixel size per spatial axis; their number is the number of spatial axes.
    memory_budget : int or str
        For the blocks mapped at once, see :func:`resolve_memory_budget`.
    threads : int, optional
        Blocks mapped at once (default: dask's ``num_workers``, or the CPUs); each
        gets ``memory_budget / threads`` at :data:`BYTES_PER_PIXEL` per pixel.

    Returns
    -------
    block, depth : tuple of int
        The working block's shape, and the overlap per axis: 0 on leading axes and
        along an axis one block spans (the whole axis when the overlap, from the
        radius, reaches past the array).

    Raises
    ------
    TypeError, ValueError
        For a bad ``memory_budget`` or ``threads``.
    """
    threads = default_threads() if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}.")
    depth = _depth(radius, border, spacing, len(shape))
    pixels = resolve_memory_budget(memory_budget) // int(threads) // BYTES_PER_PIXEL
    block = working_block_shape(
        shape, chunks, depth, spatial_dims=len(spacing), max_pixels=max(1, pixels)
    )
    # One block spans an axis whose overlap reaches past the array (blocks are never
    # thinner than their overlap): it has no neighbour there to see.
    return block, tuple(0 if b >= n else d for b, n, d in zip(block, shape, depth))


# -- the map -----------------------------------------------------------------------
def _depth(radius: float, border: str, spacing: Sequence[float], ndim: int) -> tuple[int, ...]:
    """Overlap per axis: ceil(R / spacing) + 1 (+1 for border="all"), 0 on leading axes."""
    extra = 2 if border == "all" else 1
    return (0,) * (ndim - len(spacing)) + tuple(math.ceil(radius / s) + extra for s in spacing)


def _plane_statistics(labels, spatial_dims: int, counts: bool, single: bool) -> dict:
    """Per plane, in one pass: foreground pixels, and whether it holds exactly one object."""
    import dask
    import dask.array as da

    axes = tuple(range(labels.ndim - spatial_dims, labels.ndim))
    parts = {}
    if counts:
        parts["n_foreground"] = (labels != 0).sum(axis=axes)
    if single:
        top = np.iinfo(labels.dtype).max
        parts["max"] = labels.max(axis=axes)
        parts["min"] = da.where(labels != 0, labels, top).min(axis=axes)
    values = dict(zip(parts, dask.compute(*parts.values()), strict=True))
    if single:
        values["single"] = (values.pop("min") == values["max"]) & (values.pop("max") > 0)
    return values


def _plane_constants(labels, spatial_dims: int, border: str, class_weights):
    """Per plane: its (background, foreground) class weights and its single-object flag.

    Computes the reduction only when needed: class weights from counts, or
    ``border="all"``.
    """
    lead_shape = labels.shape[: labels.ndim - spatial_dims]
    rule = callable(class_weights)
    stats = _plane_statistics(labels, spatial_dims, rule, border == "all")
    if rule:
        n_pixels = math.prod(labels.shape[len(lead_shape):])
        counts = np.asarray(stats["n_foreground"]).ravel()
        pairs = np.array([class_weights(n_pixels, int(n)) for n in counts], dtype=np.float64)
    else:
        pairs = np.array([tuple(class_weights)] * math.prod(lead_shape), dtype=np.float64)
    single = np.asarray(stats.get("single", np.zeros(lead_shape, bool)), dtype=bool)
    return pairs.reshape(*lead_shape, 2), single.reshape(lead_shape)


def _holds_one_object(labels: np.ndarray) -> bool:
    objects = labels[labels != 0]
    return objects.size > 0 and objects.min() == objects.max()


def _map_plane(labels: np.ndarray, render, border: str, pair, single: bool) -> np.ndarray:
    """One plane of a block (overlap included) through the in-memory engine."""
    if border == "all" and not single and _holds_one_object(labels):
        # The plane has other objects, all beyond the radius: no border term here, where
        # the engine would apply its single-object rule to the one it sees.
        return np.where(labels != 0, np.float32(pair[1]), np.float32(pair[0]))
    return render(labels, class_weights=(float(pair[0]), float(pair[1])))


def _map_block(block, *, render, border: str, pairs, single, block_info=None) -> np.ndarray:
    """The weights of one overlapped block, plane by plane along the leading axes."""
    lead = single.ndim
    if lead == 0:
        return _map_plane(block, render, border, pairs, bool(single))
    start = [low for low, _ in block_info[0]["array-location"][:lead]]
    out = np.empty(block.shape, dtype=np.float32)
    for index in np.ndindex(*block.shape[:lead]):
        plane = tuple(s + i for s, i in zip(start, index))
        out[index] = _map_plane(block[index], render, border, pairs[plane], single[plane])
    return out


def _with_known_chunks(labels):
    """``labels``, or a copy whose unknown chunk sizes (NaN, e.g. after boolean
    indexing) are computed: one pass over the labels, the caller's array unchanged."""
    if not any(math.isnan(n) for n in labels.shape):
        return labels
    known = labels.copy()
    known.compute_chunk_sizes()
    return known


def lazy_weight_map(
    labels,
    render: Callable[..., np.ndarray],
    *,
    radius: float,
    border: str,
    class_weights: tuple[float, float] | ClassRule,
    spacing: Sequence[float],
    spatial_dims: int,
    memory_budget: int | str = "auto",
    threads: int | None = None,
):
    """The weight map of dask labels as a lazy dask array, mapped block by block.

    Call :func:`napari_unet_weights.weight_map` with a dask array instead: it checks
    the parameters and calls this with its in-memory engine.

    Parameters
    ----------
    labels : dask.array.Array of int
        Instance labels, 0 = background.
    render : callable
        The in-memory map of one image, all axes spatial:
        ``render(labels, class_weights=(background, foreground))`` -> float32 array.
    radius : float
        ``border_radius(w0, sigma, tolerance)``: the border term's reach.
    border : {"background", "all"}
        The border mode ``render`` uses.
    class_weights : (float, float) or callable
        A fixed (background, foreground) pair, or the rule
        ``(n_pixels, n_foreground) -> pair`` applied to each plane's global counts.
    spacing : sequence of float
        Pixel size per spatial axis (one value per axis).
    spatial_dims : int
        Number of trailing spatial axes; leading axes are independent planes.
    memory_budget : int or str
        Peak memory of the blocks being mapped at once, together (see
        :func:`resolve_memory_budget`); it sets the working block size.
    threads : int, optional
        How many blocks are mapped at once; default: dask's ``num_workers`` setting,
        or the number of CPUs.

    Returns
    -------
    dask.array.Array
        float32, with the labels' shape and chunks. Nothing is computed yet except,
        for class weights from counts or ``border="all"``, one reduction over the
        labels, and, for labels of unknown chunk sizes (boolean indexing), one pass
        that computes them.

    Raises
    ------
    TypeError, ValueError
        For labels that are not integers, or a bad ``memory_budget`` / ``threads``.
        Negative labels are found when blocks are computed.
    """
    import dask.array as da

    validate_labels(np.zeros((0,) * labels.ndim, labels.dtype))
    labels = _with_known_chunks(labels)
    if labels.size == 0:
        return da.zeros(labels.shape, dtype=np.float32, chunks=labels.chunks)
    pairs, single = _plane_constants(labels, spatial_dims, border, class_weights)
    block, depth = plan_blocks(
        labels.shape,
        [c[0] for c in labels.chunks],
        radius=radius,
        border=border,
        spacing=spacing,
        memory_budget=memory_budget,
        threads=threads,
    )
    working = labels.rechunk(block)
    weights = working.map_overlap(
        _map_block,
        depth=depth,
        boundary="none",
        dtype=np.float32,
        meta=np.empty((0,) * labels.ndim, np.float32),
        render=render,
        border=border,
        pairs=pairs,
        single=single,
    )
    return weights.rechunk(labels.chunks)


# -- writing -----------------------------------------------------------------------
def write_zarr(
    array,
    store,
    *,
    component: str | None = None,
    overwrite: bool = False,
    memory_budget: int | str = "auto",
    progress: Callable[[int, int], None] | None = None,
):
    """Write a (lazy) dask array into a new zarr array, region by region, keeping its chunks.

    Parameters
    ----------
    array : dask.array.Array
        E.g. ``weight_map(dask_labels)``. Irregular chunks are made regular (the
        largest chunk per axis), as zarr needs.
    store : str, pathlib.Path or zarr store
        Where to write, e.g. ``"weights.zarr"``.
    component : str, optional
        The array's path inside the store (a group then holds it).
    overwrite : bool
        Whether an existing array there may be replaced.
    memory_budget : int or str
        What one region's chunks may take (see :func:`region_shape`), on top of the
        working blocks of ``array``'s own budget; ``"auto"`` as in
        :func:`resolve_memory_budget`.
    progress : callable, optional
        ``progress(done, total)`` after each region; raise from it to stop.

    Returns
    -------
    zarr.Array
        The written array.

    Raises
    ------
    zarr.errors.ContainsArrayError, zarr.errors.ContainsGroupError
        If ``store`` already holds data there and ``overwrite`` is False.
    """
    import zarr

    from ..io.big import write_zarr_array

    if not all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in array.chunks if c):
        array = array.rechunk(tuple(max(c) for c in array.chunks))
    target = zarr.create_array(
        str(store) if isinstance(store, Path) else store,
        name=component,
        shape=array.shape,
        chunks=tuple(max(c[0], 1) if c else 1 for c in array.chunks),
        dtype=array.dtype,
        overwrite=overwrite,
    )
    return write_zarr_array(array, target, memory_budget=memory_budget, progress=progress)
