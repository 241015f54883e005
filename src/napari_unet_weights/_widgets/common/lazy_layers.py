"""Large layers in the widgets: which layers are computed lazily, and their data as dask.

A layer is *large* (:func:`is_large`) when it is multiscale, when its data is not a
numpy array (a dask or zarr array, or any array-like that napari reads by slices), or
when it holds more than :data:`~napari_unet_weights.io.big.LARGE_PIXELS` pixels (the
threshold the command line uses for TIFFs too). The Weight map and Segment widgets
keep their in-memory paths for the other layers.

Large data is never copied whole (no ``np.asarray(layer.data)``): :func:`as_dask` wraps
it, unread, in a dask array that reads it by chunks of one plane and at most
:data:`CHUNK_SIDE` pixels a side (a zarr array by its own chunks), when computed.

A multiscale output shows what napari asks for: only the part on the canvas, at the
level that suits the zoom. :func:`label_levels` gives those levels: a multiscale layer's
own, or level 0 and its halvings (``[..., ::2, ::2]``, lazy) down to
:data:`~napari_unet_weights.io.big.LEVEL_SIDE` pixels a side (the stop rule of
:func:`~napari_unet_weights.io.big.halvings`, which the written pyramids use too);
:func:`layer_data` hands them to napari (a plain dask array when there is one level
only). ``LARGE_PIXELS`` and ``LEVEL_SIDE`` are re-exported from
:mod:`napari_unet_weights.io.big`, their one home.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_unet_weights.io import big as big_io
from napari_unet_weights.io.big import LARGE_PIXELS, LEVEL_SIDE
from napari_unet_weights.weights.lazy import is_dask_array

if TYPE_CHECKING:
    import dask.array as da
    from napari.layers import Layer

__all__ = [
    "CHUNK_SIDE",
    "LARGE_PIXELS",
    "LEVEL_SIDE",
    "as_dask",
    "is_large",
    "label_levels",
    "layer_data",
    "level_factors",
    "pyramid",
]

#: Side of the chunks that data other than dask and zarr arrays is read by.
CHUNK_SIDE = 1024


def is_large(layer: Layer) -> bool:
    """Whether the widgets compute ``layer``'s outputs lazily (see the module)."""
    if layer.multiscale:
        return True
    data = layer.data
    return not isinstance(data, np.ndarray) or data.size > big_io.LARGE_PIXELS


def _chunks(data: Any, channels: bool) -> tuple[int, ...]:
    """Chunks to read ``data`` by: its own (a zarr array), else plane by plane."""
    own = getattr(data, "chunks", None)
    if isinstance(own, tuple) and len(own) == data.ndim and all(isinstance(c, int) for c in own):
        return own
    shape = tuple(int(n) for n in data.shape)
    plane = len(shape) - (1 if channels else 0)
    sides = tuple(min(n, CHUNK_SIDE) for n in shape[max(plane - 2, 0):plane])
    return (1,) * max(plane - 2, 0) + sides + shape[plane:]


def as_dask(data: Any, channels: bool = False) -> da.Array:
    """``data`` as a dask array that reads it by chunks when computed (never copied whole).

    Parameters
    ----------
    data : array-like
        A dask array (returned as it is), a zarr array, or anything with ``shape``,
        ``dtype``, ``ndim`` and ``__getitem__`` (numpy included).
    channels : bool
        Whether the last axis holds colour channels (kept whole in each chunk).

    Returns
    -------
    dask.array.Array
        A new random name for anything but a dask array: no hashing of the data, and a
        layer painted in place gives new keys (no stale chunk from napari's dask cache).
    """
    if is_dask_array(data):
        return data
    import dask.array as da

    return da.from_array(data, chunks=_chunks(data, channels), name=False)


def pyramid(level0: da.Array) -> list[da.Array]:
    """``level0`` and its halvings along the last two axes, down to
    :data:`~napari_unet_weights.io.big.LEVEL_SIDE` (:func:`...io.big.lazy_pyramid`)."""
    return big_io.lazy_pyramid(level0)


def label_levels(layer: Layer) -> list[da.Array]:
    """The levels of a labels layer, level 0 first: its own if multiscale, else a pyramid."""
    if layer.multiscale:
        return [as_dask(level) for level in layer.data]
    return pyramid(as_dask(layer.data))


def level_factors(level0: Any, level: Any) -> tuple[float, ...]:
    """How many level-0 pixels one pixel of ``level`` spans, per axis."""
    return tuple(n0 / max(n, 1) for n0, n in zip(level0.shape, level.shape))


def layer_data(levels: list) -> tuple[Any, bool]:
    """What to give napari for these levels: ``(data, multiscale)``."""
    return (levels, True) if len(levels) > 1 else (levels[0], False)
