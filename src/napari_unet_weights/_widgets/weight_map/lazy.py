"""The Weight map widget's lazy mode: the weight map of a large labels layer, as dask levels.

For a large labels layer (:func:`..common.lazy_layers.is_large`) the widget shows a lazy map:
:func:`compute_lazy` builds, in the background, one dask weight map
(:func:`napari_unet_weights.weights.exact.weight_map` of a dask array) per level of the labels
(:func:`..common.lazy_layers.label_levels`), and the output Image layer gets them as its data,
multiscale when there are several: napari then computes only what it shows, the chunks
on the canvas at the level that suits the zoom.

- **Level 0 is exact** (within the core's tolerance, as the in-memory map). A coarser
  level is the weight map *of that level's labels* (the layer's own pyramid, or level 0
  taken every 2**k pixels) with σ in the same world units (the pixel size times the
  level's downsampling): what a zoomed-out screen shows costs a zoomed-out computation;
  thin gaps narrower than a coarse pixel may show differently there.
- **Class weights** come from level 0's foreground count, one reduction over the labels
  made once (:func:`foreground_counts`, cancellable) and kept until the labels change;
  with a single plane they are handed to the core as a fixed pair, so that a slider move
  only rebuilds the graph (milliseconds) and napari recomputes the chunks it shows.
  Stacks mapped per 2D plane leave each plane's class weights to the core (one
  reduction per rebuild).
- The contrast range is ``[0, max(w0 + 1, largest class weight)]``: no pass over the map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from napari_unet_weights._widgets.common.lazy_layers import level_factors
from napari_unet_weights.runtime.engine import Engine
from napari_unet_weights.weights.exact import class_weight_values, weight_map

__all__ = ["COUNTED", "LazyInput", "LazyOutcome", "compute_lazy", "foreground_counts",
           "lazy_status"]

#: Class-weight modes computed from the foreground count.
COUNTED = ("balanced", "inverse")


@dataclass
class LazyInput:
    """What a lazy job needs, taken on the GUI thread.

    Attributes
    ----------
    levels : list of dask.array.Array
        The labels, level 0 first.
    counts : numpy.ndarray or None
        Foreground pixels per plane of level 0, if known for these labels.
    """

    levels: list
    counts: np.ndarray | None = None


@dataclass
class LazyOutcome:
    """A lazy job's result: the map's levels (level 0 first), the counts, the range."""

    levels: list
    counts: np.ndarray | None
    upper: float
    seconds: float


def foreground_counts(labels: Any, spatial_dims: int,
                      should_stop: Callable[[], bool] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Foreground pixels per plane (leading axes) of dask labels, computed chunk by chunk
    (``progress(done, total)`` in chunks, see :class:`~napari_unet_weights.runtime.engine.Engine`).

    Raises
    ------
    napari_unet_weights.runtime.engine.ComputationCancelled
        When ``should_stop()`` returns True (polled between chunks).
    """
    axes = tuple(range(labels.ndim - spatial_dims, labels.ndim))
    chunks = tuple((1,) * len(c) if axis in axes else c for axis, c in enumerate(labels.chunks))
    per_chunk = labels.map_blocks(_chunk_counts, axes, chunks=chunks, dtype=np.int64)
    (counts,) = Engine(progress=progress, should_stop=should_stop).compute(per_chunk)
    return np.asarray(counts).sum(axis=axes)


def _chunk_counts(block: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """One chunk's foreground pixels per plane, its spatial axes kept (one each)."""
    return np.count_nonzero(block, axis=axes, keepdims=True).astype(np.int64)


def _class_pairs(shape: tuple[int, ...], settings: Any, counts: np.ndarray | None) -> list:
    """The (background, foreground) class weights of each plane."""
    if counts is None:
        return [class_weight_values(1, 0, settings.class_weights)]
    plane = int(np.prod(shape[len(shape) - settings.spatial_dims:]))
    return [class_weight_values(plane, int(n), settings.class_weights) for n in counts.ravel()]


def compute_lazy(settings: Any, source: LazyInput,
                 should_stop: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> LazyOutcome:
    """Worker body: the lazy weight map of every level (see the module).

    Parameters
    ----------
    settings : weight_map._Settings
        w0, σ, border, class weights, spatial axes and spacing (of level 0).
    source : LazyInput
        The labels' levels, and their counts if already known.
    should_stop : callable, optional
        Polled while the counts are computed.
    progress : callable, optional
        ``progress(done, total)`` while the counts are computed.
    """
    start = perf_counter()
    level0, counts = source.levels[0], source.counts
    if counts is None and settings.class_weights in COUNTED:
        counts = foreground_counts(level0, settings.spatial_dims, should_stop, progress)
    pairs = _class_pairs(level0.shape, settings, counts)
    class_weights = pairs[0] if len(pairs) == 1 else settings.class_weights
    maps = []
    for level in source.levels:
        factors = level_factors(level0, level)[level0.ndim - settings.spatial_dims:]
        spacing = tuple(s * f for s, f in zip(settings.spacing, factors))
        maps.append(weight_map(level, settings.w0, settings.sigma, border=settings.border,
                               class_weights=class_weights, spacing=spacing,
                               spatial_dims=settings.spatial_dims))
    upper = max(settings.w0 + 1.0, *(max(pair) for pair in pairs))
    return LazyOutcome(maps, counts, upper, perf_counter() - start)


def lazy_status(outcome: LazyOutcome, paintable: bool) -> str:
    """The status line of a lazy map."""
    levels = len(outcome.levels)
    text = (f"Lazy map ({levels} level{'s' * (levels > 1)}): napari computes the part it "
            f"shows · built in {outcome.seconds * 1000:.0f} ms")
    if not paintable:
        text += " · no painting here: napari paints numpy or zarr labels, not dask or multiscale"
    return text
