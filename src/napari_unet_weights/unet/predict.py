"""Prediction with a U-Net model file: tiled, n-D, batched (TensorFlow imported lazily).

- :func:`.preprocess.prepare_image` turns one 2-D plane into the model's input the way
  the model file says (channel handling, percentile normalisation of the *whole* plane,
  float32, NaN / infinite pixels as missing data).
- :func:`predict` runs the network on 2-D images, RGB / multichannel images, 3-D stacks
  and time series (plane by plane over the leading axes: the model is 2-D). Whether the
  last axis holds channels is the ``rgb`` argument, else
  :func:`.preprocess.guess_channels`: a last axis of 1 to 4 entries after two longer
  ones. Each plane is cut into tiles of ``tile_shape`` (a multiple of ``2**depth``) that
  overlap by ``overlap`` pixels; tiles are laid on the grid of the whole-image padding,
  so that the network's pooling grid is the same as without tiles, and blended with a
  separable sin² ramp over the overlap, normalised to sum to 1 (no seams). Tiles are run
  in batches of ``batch_size``; memory is bounded by the tile size × batch: the output
  and one normalised input plane are the only image-sized arrays. Missing pixels are
  predicted as background, with one :class:`.preprocess.MissingDataWarning` per call.
- :func:`segment` = :func:`predict` + :func:`..postprocess.to_instances` per plane with
  the model file's post-processing parameters; ids are unique over a stack.
- :func:`device_name`, :func:`gpu_available`: where TensorFlow runs the network.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np

from .postprocess import _LabelStack, check_postprocess_parameters, to_instances
from .preprocess import (
    DEFAULT_INPUT,
    DEFAULT_NORMALIZATION,
    MissingDataWarning,
    check_numeric,
    guess_channels,
    input_channels,
    missing_data_message,
    normalize_percentiles,
    prepare_image,
    prepare_plane,
    to_gray,
)

if TYPE_CHECKING:
    from .model_file import UNetModel

__all__ = [
    "DEFAULT_INPUT",
    "DEFAULT_NORMALIZATION",
    "MissingDataWarning",
    "PredictionCancelled",
    "auto_tile_shape",
    "available_memory",
    "check_model",
    "default_overlap",
    "device_name",
    "gpu_available",
    "guess_channels",
    "normalize_percentiles",
    "pad_to_multiple",
    "predict",
    "predict_prepared",
    "prepare_image",
    "segment",
    "to_gray",
]

#: Upper bound of the memory that :func:`auto_tile_shape` plans for (bytes).
MAX_MEMORY_BUDGET = 2 * 1024**3
#: Share of the available memory that :func:`auto_tile_shape` plans for.
MEMORY_SHARE = 0.25
#: Bounds of the automatic tile side (pixels).
MIN_TILE, MAX_TILE = 64, 2048
#: Estimated float32 activations per pixel and per first-level filter held by the U-Net
#: during a forward pass (all levels, skip connections, batch norm; measured with
#: benchmarks/bench_predict.py).
ACTIVATIONS_PER_FILTER = 32

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


class PredictionCancelled(Exception):
    """``should_stop()`` returned True: prediction stopped, nothing was returned."""


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
        (H', W', ...) with H', W' multiples of ``multiple``.
    crop : tuple of slice
        ``padded[crop]`` (or ``output[crop]`` of the same height and width) gives back
        the original extent.
    """
    image = np.asarray(image)
    pads, crop = [], []
    for size in image.shape[:2]:
        total = -size % multiple
        before = total // 2
        pads.append((before, total - before))
        crop.append(slice(before, before + size))
    pads += [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pads, mode="symmetric") if any(p != (0, 0) for p in pads) else image
    return padded, tuple(crop)


def _multiple(metadata: dict) -> int:
    architecture = metadata.get("architecture", {})
    return int(architecture.get("multiple", 2 ** int(architecture.get("depth", 4))))


def predict_prepared(keras_model: Any, x: np.ndarray, multiple: int) -> np.ndarray:
    """Run the network on one prepared (H, W, C) image; return (H, W, K) float32.

    The image is padded to ``multiple`` and the output cropped back (whole image, no
    tiles; used by training's validation). The model is called on the array (no
    ``Model.predict``: no progress bar, no retracing per size).
    """
    padded, crop = pad_to_multiple(x, multiple)
    output = keras_model(padded[np.newaxis], training=False)
    probabilities = np.asarray(output, dtype=np.float32)[0]
    return np.ascontiguousarray(probabilities[crop])


# -- model ------------------------------------------------------------------------------
def _resolve_model(model) -> UNetModel:
    from .model_file import UNetModel, load_model

    if model is None or not isinstance(model, UNetModel):
        return load_model(model)
    return model


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def check_model(unet: UNetModel) -> None:
    """Check that the Keras model fits its metadata: input (None, None, C), K outputs.

    Parameters
    ----------
    unet : UNetModel

    Raises
    ------
    ValueError
        If the Keras model does not take one (batch, None, None, C) input with the
        recorded C, or does not output the recorded number of classes.
    """
    keras_model, channels, classes = unet.keras_model, input_channels(unet.metadata), unet.n_classes
    inputs, outputs = getattr(keras_model, "inputs", None), getattr(keras_model, "outputs", None)
    if not inputs or not outputs:  # a subclassed model: nothing to check before running
        return
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"the Keras model has {len(inputs)} inputs and {len(outputs)} "
                         "outputs; a U-Net model file needs one of each.")
    shape_in, shape_out = _shape(inputs[0]), _shape(outputs[0])
    if len(shape_in) != 4 or shape_in[1:3] != (None, None):
        raise ValueError(
            f"the Keras model takes inputs of shape {shape_in}; prediction needs a fully "
            "convolutional 2-D model with input shape (batch, None, None, channels).")
    if shape_in[3] != channels:
        raise ValueError(
            f"the Keras model takes {shape_in[3]} input channel(s) but its metadata records "
            f"{channels} (input.n_channels): the model file is inconsistent.")
    if len(shape_out) != 4 or shape_out[-1] != classes:
        raise ValueError(
            f"the Keras model outputs shape {shape_out} but its metadata records "
            f"{classes} classes (n_classes): the model file is inconsistent.")


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU (imports TensorFlow).

    Returns
    -------
    bool
    """
    from .model import tensorflow_or_error

    return bool(tensorflow_or_error().config.list_physical_devices("GPU"))


def device_name(use_gpu: bool | None = None) -> str:
    """The device that :func:`predict` runs the network on: ``"GPU: <name>"`` or ``"CPU"``.

    Parameters
    ----------
    use_gpu : bool, optional
        As in :func:`predict`: None or True the first GPU if TensorFlow sees one, False
        the CPU.

    Returns
    -------
    str
    """
    from .model import tensorflow_or_error

    tf = tensorflow_or_error()
    gpus = tf.config.list_physical_devices("GPU") if use_gpu is not False else []
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    except (RuntimeError, ValueError):
        name = ""
    return f"GPU: {name or gpus[0].name}"


def _device_scope(use_gpu: bool | None):
    if use_gpu is None:
        return contextlib.nullcontext()
    from .model import tensorflow_or_error

    tf = tensorflow_or_error()
    if not use_gpu:
        return tf.device("/CPU:0")
    if not tf.config.list_physical_devices("GPU"):
        raise ValueError("use_gpu=True but TensorFlow sees no GPU; pass use_gpu=None or False.")
    return tf.device("/GPU:0")


# -- tiles ------------------------------------------------------------------------------
def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


@dataclass(frozen=True)
class _AxisTile:
    """One tile along one axis."""

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


def _axis_tiles(size: int, length: int, overlap: int, multiple: int) -> list[_AxisTile]:
    """Tiles of one axis, on the grid of the image padded to ``multiple`` (centred)."""
    padded = _round_up(size, multiple)
    length = min(length, padded)
    before = (padded - size) // 2
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
        tiles.append(_AxisTile(image, pad, crop, weight))
    return tiles


@dataclass(frozen=True)
class _Grid:
    """The tiles of one plane (the same for every plane of a stack)."""

    shape: tuple[int, int]
    rows: list[_AxisTile]
    cols: list[_AxisTile]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self) -> Iterator[tuple[_AxisTile, _AxisTile]]:
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


def _grid(plane: tuple[int, int], tile_shape: tuple[int, int], overlap: int | None,
          multiple: int) -> _Grid:
    lengths = tuple(min(n, _round_up(size, multiple)) for n, size in zip(tile_shape, plane))
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
    rows, cols = (_axis_tiles(size, n, o, multiple)
                  for size, n, o in zip(plane, lengths, overlaps))
    return _Grid(lengths, rows, cols)


def available_memory() -> int | None:
    """Available host memory in bytes (psutil if installed, else ``os.sysconf``), or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _metadata_of(model) -> dict:
    if isinstance(model, dict):
        return model
    if hasattr(model, "metadata"):
        return model.metadata
    from .model_file import read_metadata

    return read_metadata(model)


def _bytes_per_pixel(metadata: dict) -> int:
    base = int(metadata.get("architecture", {}).get("base_filters", 16))
    return 4 * (input_channels(metadata) + int(metadata["n_classes"])
                + ACTIVATIONS_PER_FILTER * base)


def auto_tile_shape(model=None, plane_shape: tuple[int, int] | None = None, *,
                    batch_size: int = 4, n_planes: int = 1,
                    available: int | None = None) -> tuple[int, int]:
    """The tile shape :func:`predict` uses when ``tile_shape`` is None.

    The network's working memory is estimated as ``bytes_per_pixel`` =
    4 · (C + K + :data:`ACTIVATIONS_PER_FILTER` · base_filters) per pixel; the budget is
    :data:`MEMORY_SHARE` of the available memory, at most :data:`MAX_MEMORY_BUDGET`. The
    whole plane (padded to ``2**depth``) if a batch of such planes fits the budget (one
    plane for a 2-D image, up to ``batch_size`` for stacks), otherwise square tiles such
    that a batch of ``batch_size`` fits, between :data:`MIN_TILE` and :data:`MAX_TILE`
    pixels a side.

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
        Available memory in bytes; None: :func:`available_memory`.

    Returns
    -------
    (int, int)
        Multiples of ``2**depth``.
    """
    metadata = _metadata_of(model)
    multiple = _multiple(metadata)
    available = available_memory() if available is None else available
    budget = MAX_MEMORY_BUDGET if available is None else min(MAX_MEMORY_BUDGET,
                                                             int(available * MEMORY_SHARE))
    per_pixel = _bytes_per_pixel(metadata)
    if plane_shape is not None:
        padded = tuple(_round_up(n, multiple) for n in plane_shape)
        planes_per_batch = max(min(batch_size, n_planes), 1)
        if padded[0] * padded[1] * per_pixel * planes_per_batch <= budget:
            return padded
    side = int(math.sqrt(budget / (per_pixel * max(batch_size, 1)))) // multiple * multiple
    side = min(max(side, _round_up(MIN_TILE, multiple)), MAX_TILE // multiple * multiple)
    return side, side


# -- running ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    lead: tuple[int, ...]  #: leading (stack, time) axes, predicted plane by plane
    plane: tuple[int, int]  #: (H, W)
    rgb: bool  #: the last axis holds channels


def _as_array(image):
    """Arrays (numpy, dask, zarr) stay as they are, so planes are read one at a time."""
    if all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__")):
        return image
    return np.asarray(image)


def _layout(image, rgb: bool | None) -> _Layout:
    check_numeric(np.dtype(image.dtype))
    shape = tuple(int(n) for n in image.shape)
    rgb = guess_channels(shape) if rgb is None else bool(rgb)
    spatial = shape[:-1] if rgb else shape
    if len(spatial) < 2 or min(spatial[-2:]) < 1:
        what = "(..., H, W, C)" if rgb else "(..., H, W)"
        raise ValueError(f"expected an image of shape {what} with H, W >= 1, got shape "
                         f"{shape} (rgb={rgb}).")
    return _Layout(spatial[:-2], spatial[-2:], rgb)


@dataclass
class _Run:
    """One prediction: the model, the tiles, the batch and the callbacks."""

    unet: Any
    layout: _Layout
    grid: _Grid
    batch_size: int
    progress: Progress | None
    should_stop: ShouldStop | None
    done: int = 0
    #: Missing (NaN / infinite) pixels of the planes whose tiles are not all predicted.
    missing: dict[tuple, np.ndarray] = field(default_factory=dict)
    n_missing: int = 0  #: missing pixels seen so far
    planes_with_missing: int = 0

    @property
    def total(self) -> int:
        return math.prod(self.layout.lead) * len(self.grid)

    def tiles(self, image) -> Iterator[tuple[tuple, int, _AxisTile, _AxisTile, np.ndarray]]:
        """(plane index, tile number, row, column, prepared plane) for every tile."""
        for index in np.ndindex(*self.layout.lead):
            x, missing = prepare_plane(np.asarray(image[index]), self.unet.metadata,
                                       channels=self.layout.rgb)
            if missing is not None:
                self.missing[index] = missing
                self.n_missing += int(missing.sum())
                self.planes_with_missing += 1
            for number, (row, col) in enumerate(self.grid):
                yield index, number, row, col, x

    def run(self, image, sink: Callable[[tuple], np.ndarray],
            finish: Callable[[tuple], None] | None) -> None:
        """Predict every tile; blend into ``sink(index)``; ``finish(index)`` per plane."""
        channels = input_channels(self.unet.metadata)
        size = max(min(self.batch_size, self.total), 1)
        batch = np.empty((size, *self.grid.shape, channels), np.float32)
        pending: list = []
        for index, number, row, col, x in self.tiles(image):
            _cut(x, row, col, batch[len(pending)])
            pending.append((index, number, row, col))
            if len(pending) == len(batch):
                self.flush(batch, pending, sink, finish)
                pending = []
        if pending:
            self.flush(batch[:len(pending)], pending, sink, finish)

    def flush(self, batch: np.ndarray, pending: list, sink, finish) -> None:
        if self.should_stop is not None and self.should_stop():
            raise PredictionCancelled(f"prediction cancelled after {self.done} of "
                                      f"{self.total} tiles.")
        output = np.asarray(self.unet.keras_model(batch, training=False), dtype=np.float32)
        for probabilities, (index, number, row, col) in zip(output, pending):
            _blend(sink(index), probabilities, row, col)
            if number == len(self.grid) - 1:
                self.plane_done(index, sink(index))
                if finish is not None:
                    finish(index)
        self.done += len(pending)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def plane_done(self, index: tuple, probabilities: np.ndarray) -> None:
        """Set the probabilities of the plane's missing pixels to background (class 0)."""
        missing = self.missing.pop(index, None)
        if missing is not None:
            probabilities[missing] = np.eye(probabilities.shape[-1], dtype=np.float32)[0]

    def warn_missing(self) -> None:
        """One :class:`MissingDataWarning` for the whole image, if pixels were missing."""
        if not self.n_missing:
            return
        n_planes = math.prod(self.layout.lead)
        where = (f"{self.planes_with_missing} of {n_planes} planes" if n_planes > 1
                 else "the image")
        n_pixels = n_planes * math.prod(self.layout.plane)
        warnings.warn(missing_data_message(self.n_missing, n_pixels, where),
                      MissingDataWarning, stacklevel=3)


def _cut(x: np.ndarray, row: _AxisTile, col: _AxisTile, out: np.ndarray) -> None:
    part = x[row.image, col.image]
    if row.pad == (0, 0) and col.pad == (0, 0):
        out[...] = part
    else:
        out[...] = np.pad(part, (row.pad, col.pad, (0, 0)), mode="symmetric")


def _blend(target: np.ndarray, probabilities: np.ndarray, row: _AxisTile,
           col: _AxisTile) -> None:
    weight = row.weight[:, np.newaxis, np.newaxis] * col.weight[np.newaxis, :, np.newaxis]
    target[row.image, col.image] += probabilities[row.crop, col.crop] * weight


def _prepare_run(image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    image = _as_array(image)
    layout = _layout(image, rgb)
    unet = _resolve_model(model)
    check_model(unet)
    multiple = _multiple(unet.metadata)
    tiles = (auto_tile_shape(unet, layout.plane, batch_size=batch_size,
                             n_planes=math.prod(layout.lead))
             if tile_shape is None else _lengths(tile_shape, multiple))
    grid = _grid(layout.plane, tiles, overlap, multiple)
    return image, _Run(unet, layout, grid, int(batch_size), progress, should_stop)


def predict(image, model: UNetModel | str | os.PathLike | None = None, *,
            rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
            overlap: int | None = None, batch_size: int = 4, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, use_gpu: bool | None = None) -> np.ndarray:
    """Class probabilities of an image, a stack or a time series, tile by tile.

    Parameters
    ----------
    image : array-like
        (H, W) grayscale; (H, W, C) RGB / multichannel (``rgb``); or (..., H, W[, C])
        stacks and time series, predicted plane by plane over the leading axes. Any
        numeric dtype; numpy, dask or zarr arrays (planes are read one at a time). Each
        plane is prepared by :func:`prepare_image` as the model file says (percentiles of
        the whole plane). NaN and infinite pixels are missing data: left out of the
        normalisation, and their probabilities are set to background (class 0).
    model : UNetModel, str or path, optional
        A loaded model, a ``.keras`` model file, or None for the bundled nuclei model.
    rgb : bool, optional
        Whether the last axis holds channels (colour or not). None:
        :func:`guess_channels`, True when the last axis has 1 to 4 entries and the two
        before it more than 4 each: (H, W, 1), (H, W, 2), (H, W, 3), (H, W, 4) and
        (Z, H, W, 2) have channels, (Z, H, W) does not. Pass it for the ambiguous stacks
        of planes at most 4 pixels wide. Then, in "gray" input mode the channels are
        averaged (alpha dropped); "channels" mode needs the recorded number of them.
    tile_shape : int or (int, int), optional
        Tile height and width, rounded up to a multiple of the model's ``2**depth``; None:
        :func:`auto_tile_shape` (the whole plane if it fits the memory budget).
    overlap : int, optional
        Overlap of neighbouring tiles in pixels, rounded up to a multiple of ``2**depth``;
        None: :func:`default_overlap` (≈ the receptive field, ``8 · 2**depth``). Tiles are
        blended with a sin² ramp over the overlap; tiled and untiled outputs agree where
        ``overlap / 2`` exceeds the distance over which a tile edge changes the output.
    batch_size : int
        Tiles per network call (tiles of consecutive planes share batches).
    progress : callable, optional
        ``progress(done, total)`` after each batch; ``total`` counts the tiles of all
        planes.
    should_stop : callable, optional
        Polled before each batch; when it returns True, :class:`PredictionCancelled` is
        raised (nothing is returned).
    use_gpu : bool, optional
        None: TensorFlow's choice (the GPU if it sees one); False: the CPU; True: the
        GPU (ValueError if there is none).

    Returns
    -------
    numpy.ndarray of float32, shape (..., H, W, n_classes)
        Softmax probabilities (they sum to 1 over the last axis).

    Raises
    ------
    PredictionCancelled
        If ``should_stop()`` returned True.
    ValueError
        For a bad image shape, tile shape, overlap or batch size, or a model whose Keras
        network does not fit its metadata (:func:`check_model`).
    FileNotFoundError, ImportError
        See :func:`..model_file.load_model`.

    Warns
    -----
    MissingDataWarning
        Once, when pixels are NaN or infinite; it says how many.
    """
    image, run = _prepare_run(image, model, rgb, tile_shape, overlap, batch_size, progress,
                              should_stop)
    layout = run.layout
    out = np.zeros((*layout.lead, *layout.plane, run.unet.n_classes), np.float32)
    with _device_scope(use_gpu):
        run.run(image, lambda index: out[index], None)
    run.warn_missing()
    return out


def _postprocess_parameters(unet, overrides: dict) -> dict:
    """The model's recorded post-processing parameters with ``overrides``, checked."""
    return check_postprocess_parameters({**unet.postprocess_parameters, **overrides})


def segment(image, model: UNetModel | str | os.PathLike | None = None, *,
            rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
            overlap: int | None = None, batch_size: int = 4, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
            **postprocess) -> np.ndarray:
    """Instance labels of an image, a stack or a time series.

    :func:`predict`, then :func:`..postprocess.to_instances` on each plane as soon as its
    tiles are done (the probabilities of one plane at a time are kept), with the model
    file's recorded post-processing parameters.

    Parameters
    ----------
    image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop, use_gpu
        As in :func:`predict`.
    **postprocess
        Overrides of the recorded post-processing parameters (``threshold``,
        ``seed_threshold``, ``min_size``, ``fill_holes``, ``expand``).

    Returns
    -------
    numpy.ndarray of uint16 (uint32 beyond 65534 objects), shape (..., H, W)
        0 = background; ids are unique over the whole stack (plane after plane: the
        objects of the second plane follow those of the first).

    Raises
    ------
    TypeError
        For an unknown post-processing parameter or one of the wrong type.
    ValueError
        For a post-processing parameter out of range (checked before the network runs).
    PredictionCancelled, ValueError, FileNotFoundError, ImportError
        As in :func:`predict`.

    Warns
    -----
    MissingDataWarning
        As in :func:`predict`.
    """
    image, run = _prepare_run(image, model, rgb, tile_shape, overlap, batch_size, progress,
                              should_stop)
    parameters = _postprocess_parameters(run.unet, postprocess)
    layout, classes = run.layout, run.unet.n_classes
    labels = _LabelStack((*layout.lead, *layout.plane))
    planes: dict[tuple, np.ndarray] = {}

    def sink(index: tuple) -> np.ndarray:
        if index not in planes:
            planes[index] = np.zeros((*layout.plane, classes), np.float32)
        return planes[index]

    def finish(index: tuple) -> None:
        labels.add(index, to_instances(planes.pop(index), n_classes=classes, **parameters))

    with _device_scope(use_gpu):
        run.run(image, sink, finish)
    run.warn_missing()
    return labels.array
