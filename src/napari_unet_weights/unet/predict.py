"""Prediction with a U-Net model file: tiled, n-D, batched (TensorFlow imported lazily).

- :func:`.preprocess.prepare_image` turns one 2-D plane into the model's input the way
  the model file says (channel handling, percentile normalisation of the *whole* plane,
  float32, NaN / infinite pixels as missing data).
- :func:`predict` runs the network on 2-D images, RGB / multichannel images, 3-D stacks
  and time series (plane by plane over the leading axes: the model is 2-D). Whether the
  last axis holds channels is the ``rgb`` argument, else
  :func:`.preprocess.guess_channels`: a last axis of 1 to 4 entries after two longer
  ones. Each plane is cut into the tiles of :func:`.tiling.tile_grid` (on the grid of the
  whole-plane padding, blended with weights that sum to 1: no seams). Tiles are run in
  batches of ``batch_size``; memory is bounded by the tile size × batch: the output and
  one normalised input plane are the only image-sized arrays. Missing pixels are
  predicted as background, with one :class:`.preprocess.MissingDataWarning` per call.
- :func:`segment` = :func:`predict` + :func:`..postprocess.to_instances` per plane with
  the model file's post-processing parameters; ids are unique over a stack.
- Test-time augmentation (``tta=True``, :func:`network_output`): every batch the network
  sees (tiles or whole planes) is run in the 8 orientations of the square's symmetry
  group (4 rotations by 90° × a mirror), each output turned back, and the 8 averaged:
  the probabilities become equivariant to flips and rotations of the tile, for 8× the
  network time (tiling, blending, missing pixels, progress and cancel are unchanged).
- Nucleus size (``diameter``, like cellpose's): each plane is resized so that its nuclei
  have the diameter the model file records, predicted and post-processed there, and the
  outputs resized back to its exact shape (:mod:`.rescale`, :mod:`.diameter`);
  ``"auto"`` estimates the diameter from a first pass.
- Images bigger than memory: dask and zarr arrays (or ``out``, ``block_shape``,
  ``workers`` or ``scheduler``) go block by block through :mod:`.big`, on a dask
  :class:`..engine.Engine`; its tasks run :func:`_block_probabilities` /
  :func:`_block_labels` (this module's tiles, with the whole plane's normalisation).

The model (:mod:`.model_file`), the tiles (:mod:`.tiling`) and the device
(:mod:`.device`) each have their own module; this one only runs them.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..progress import PredictionCancelled, Progress, ShouldStop
from .device import device_scope
from .diameter import check_diameter
from .model_cache import ModelFile, resolve_model
from .model_file import UNetModel, as_model, check_model, input_channels, size_multiple
from .postprocess import check_postprocess_parameters
from .preprocess import (
    MissingDataWarning,
    PlaneStatistics,
    check_numeric,
    guess_channels,
    missing_data_message,
    prepare_plane,
)
from .rescale import gather, run_sized
from .tiling import (
    AxisTile,
    TileGrid,
    auto_tile_shape,
    blend_tile,
    cut_tile,
    pad_to_multiple,
    tile_grid,
)

__all__ = ["TTA_TRANSFORMS", "PredictionCancelled", "network_output", "predict",
           "predict_prepared", "segment"]

#: The orientations test-time augmentation averages over: (quarter turns, mirrored).
TTA_TRANSFORMS = tuple((turns, mirrored) for turns in range(4) for mirrored in (False, True))


def _orient(batch: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """(N, H, W, ...) turned by ``turns`` quarter turns, then mirrored left-right."""
    turned = np.rot90(batch, turns, axes=(1, 2))
    return turned[:, :, ::-1] if mirrored else turned


def _unorient(batch: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """The inverse of :func:`_orient`: mirror back, then turn back."""
    return np.rot90(batch[:, :, ::-1] if mirrored else batch, -turns, axes=(1, 2))


def network_output(keras_model: Any, batch: np.ndarray, *, tta: bool = False,
                   should_stop: ShouldStop | None = None) -> np.ndarray:
    """The network's class probabilities of a prepared batch, float32 (N, H, W, K).

    Parameters
    ----------
    keras_model : keras.Model
        The U-Net; called on the array (no ``Model.predict``: no progress bar, no
        retracing per size).
    batch : numpy.ndarray
        (N, H, W, C) float32 network inputs, H and W multiples of the model's ``2**depth``
        (so the batch turned by 90°, (N, W, H, C), is one too).
    tta : bool
        Test-time augmentation: the mean over the 8 orientations of
        :data:`TTA_TRANSFORMS` of the output on the oriented batch, each turned back
        (8 network calls of the batch's size: 8× the time, about the same memory).
    should_stop : callable, optional
        With ``tta``, polled before each of the 7 later calls; True raises
        :class:`PredictionCancelled` (the caller polls before the first).

    Returns
    -------
    numpy.ndarray
    """
    if not tta:
        return np.asarray(keras_model(batch, training=False), dtype=np.float32)
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim != 4:
        raise ValueError(f"expected a batch of shape (N, H, W, C), got {batch.shape}.")
    total = None
    for turns, mirrored in TTA_TRANSFORMS:
        if total is not None and should_stop is not None and should_stop():
            raise PredictionCancelled("prediction cancelled during test-time augmentation.")
        oriented = np.ascontiguousarray(_orient(batch, turns, mirrored))
        output = np.asarray(keras_model(oriented, training=False), dtype=np.float32)
        output = _unorient(output, turns, mirrored)
        total = np.array(output) if total is None else np.add(total, output, out=total)
    return total / np.float32(len(TTA_TRANSFORMS))


def predict_prepared(keras_model: Any, x: np.ndarray, multiple: int, *,
                     tta: bool = False) -> np.ndarray:
    """Run the network on one prepared (H, W, C) image; return (H, W, K) float32.

    The image is padded to ``multiple`` and the output cropped back (whole image, no
    tiles; used by training's validation). ``tta``: test-time augmentation, the mean
    over 8 flips / rotations (:func:`network_output`; 8× the network time).
    """
    padded, crop = pad_to_multiple(x, multiple)
    probabilities = network_output(keras_model, padded[np.newaxis], tta=tta)[0]
    return np.ascontiguousarray(probabilities[crop])


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
    grid: TileGrid
    batch_size: int
    progress: Progress | None
    should_stop: ShouldStop | None
    tta: bool = False
    #: The whole plane's normalisation, for a block of it (None: each plane's own).
    statistics: PlaneStatistics | None = None
    done: int = 0
    #: Missing (NaN / infinite) pixels of the planes whose tiles are not all predicted.
    missing: dict[tuple, np.ndarray] = field(default_factory=dict)
    n_missing: int = 0  #: missing pixels seen so far
    planes_with_missing: int = 0

    @property
    def total(self) -> int:
        return math.prod(self.layout.lead) * len(self.grid)

    def tiles(self, image) -> Iterator[tuple[tuple, int, AxisTile, AxisTile, np.ndarray]]:
        """(plane index, tile number, row, column, prepared plane) for every tile."""
        for index in np.ndindex(*self.layout.lead):
            x, missing = prepare_plane(np.asarray(image[index]), self.unet.metadata,
                                       channels=self.layout.rgb, statistics=self.statistics)
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
            cut_tile(x, row, col, batch[len(pending)])
            pending.append((index, number, row, col))
            if len(pending) == len(batch):
                self.flush(batch, pending, sink, finish)
                pending = []
        if pending:
            self.flush(batch[:len(pending)], pending, sink, finish)

    def check_cancel(self) -> bool:
        """Raise :class:`PredictionCancelled` if ``should_stop()`` says so, else False.

        Polled before each batch, and by :func:`network_output` between the 8 network
        calls of a test-time augmented batch.
        """
        if self.should_stop is not None and self.should_stop():
            raise PredictionCancelled(f"prediction cancelled after {self.done} of "
                                      f"{self.total} tiles.")
        return False

    def flush(self, batch: np.ndarray, pending: list, sink, finish) -> None:
        self.check_cancel()
        output = network_output(self.unet.keras_model, batch, tta=self.tta,
                                should_stop=self.check_cancel)
        for probabilities, (index, number, row, col) in zip(output, pending):
            blend_tile(sink(index), probabilities, row, col)
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


def _prepare_run(image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop,
                 tta, statistics=None):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    image = _as_array(image)
    layout = _layout(image, rgb)
    unet = as_model(model)
    check_model(unet)
    if tile_shape is None:
        tile_shape = auto_tile_shape(unet, layout.plane, batch_size=batch_size,
                                     n_planes=math.prod(layout.lead))
    multiple = size_multiple(unet.metadata)
    grid = tile_grid(layout.plane, tile_shape, overlap, multiple)
    # The tile sides are multiples of ``multiple`` (tile_grid rounds them up), so a tile
    # turned by 90° for test-time augmentation, (W, H), suits the network too.
    return image, _Run(unet, layout, grid, int(batch_size), progress, should_stop,
                       bool(tta), statistics)


def _predict_run(image, run: _Run, use_gpu: bool | None) -> np.ndarray:
    """The probabilities of a prepared run (see :func:`predict`), without warning."""
    layout = run.layout
    out = np.zeros((*layout.lead, *layout.plane, run.unet.n_classes), np.float32)
    with device_scope(use_gpu):
        run.run(image, lambda index: out[index], None)
    return out


def _chunked(image, *options) -> bool:
    """Whether to predict block by block: a dask or zarr array, or a chunked option set."""
    lazy = type(image).__module__.split(".")[0] in ("dask", "zarr")
    return lazy or any(option is not None for option in options)


def _block_probabilities(block: np.ndarray, statistics: PlaneStatistics, *,
                         model: UNetModel | ModelFile, rgb: bool, tile_shape, overlap,
                         batch_size: int, use_gpu: bool | None, tta: bool,
                         should_stop: ShouldStop | None = None) -> np.ndarray:
    """The probabilities of one block of a plane normalised as the whole plane (:mod:`.big`).

    ``model``: a loaded model, or a model file loaded once per process
    (:func:`.model_cache.cached_model`).
    """
    image, run = _prepare_run(block, resolve_model(model), rgb, tile_shape, overlap,
                              batch_size, None, should_stop, tta, statistics)
    return _predict_run(image, run, use_gpu)


def _block_labels(block: np.ndarray, statistics: PlaneStatistics, *,
                  model: UNetModel | ModelFile, rgb: bool, tile_shape, overlap,
                  batch_size: int, use_gpu: bool | None, tta: bool, postprocess: dict,
                  should_stop: ShouldStop | None = None) -> np.ndarray:
    """The instance labels of one block, as :func:`_block_probabilities` (:mod:`.big`)."""
    image, run = _prepare_run(block, resolve_model(model), rgb, tile_shape, overlap,
                              batch_size, None, should_stop, tta, statistics)
    return _segment_run(image, run, postprocess, use_gpu)


def predict(image, model: UNetModel | str | os.PathLike | None = None, *,
            rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
            overlap: int | None = None, batch_size: int = 4, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
            tta: bool = False, out=None, block_shape: int | tuple[int, int] | None = None,
            workers: int | None = None, scheduler=None, temp_dir=None, diameter=None):
    """Class probabilities of an image, a stack or a time series, tile by tile.

    Parameters
    ----------
    image : array-like
        (H, W) grayscale; (H, W, C) RGB / multichannel (``rgb``); or (..., H, W[, C])
        stacks and time series, predicted plane by plane over the leading axes. Any
        numeric dtype; numpy arrays, or array-likes read a plane at a time; dask and zarr
        arrays are predicted block by block (chunked, see ``out``). Each plane is
        prepared by :func:`.preprocess.prepare_image` as the model file says
        (percentiles of the whole plane). NaN and infinite pixels are missing data: left
        out of the normalisation, and their probabilities are set to background (class 0).
    model : UNetModel, str or path, optional
        A loaded model, a ``.keras`` model file, or None for the bundled nuclei model.
    rgb : bool, optional
        Whether the last axis holds channels (colour or not). None:
        :func:`.preprocess.guess_channels`, True when the last axis has 1 to 4 entries and the two
        before it more than 4 each: (H, W, 1), (H, W, 2), (H, W, 3), (H, W, 4) and
        (Z, H, W, 2) have channels, (Z, H, W) does not. Pass it for the ambiguous stacks
        of planes at most 4 pixels wide. Then, in "gray" input mode the channels are
        averaged (alpha dropped); "channels" mode needs the recorded number of them.
    tile_shape : int or (int, int), optional
        Tile height and width, rounded up to a multiple of the model's ``2**depth``; None:
        :func:`.tiling.auto_tile_shape` (the whole plane if it fits the memory budget).
    overlap : int, optional
        Overlap of neighbouring tiles in pixels, rounded up to a multiple of ``2**depth``;
        None: :func:`.tiling.default_overlap` (≈ the receptive field, ``8 · 2**depth``).
        Tiles are blended with a sin² ramp over the overlap; tiled and untiled outputs
        agree where ``overlap / 2`` exceeds the distance over which a tile edge changes the
        output.
    batch_size : int
        Tiles per network call (tiles of consecutive planes share batches).
    progress : callable, optional
        ``progress(done, total)`` after each batch; ``total`` counts the tiles of all
        planes (with ``tta`` too).
    should_stop : callable, optional
        Polled before each batch (with ``tta``, before each of its 8 network calls);
        when it returns True, :class:`PredictionCancelled` is raised (nothing is
        returned).
    use_gpu : bool, optional
        None: TensorFlow's choice (the GPU if it sees one); False: the CPU; True: the
        GPU (a ValueError that says so if TensorFlow sees none; see :mod:`.device`).
    tta : bool
        Test-time augmentation: each batch of tiles (or whole planes) is run in the 8
        orientations of a square (4 rotations by 90° × a left-right mirror), each output
        is turned back and the 8 are averaged (:func:`network_output`). Costs 8× the
        network time (about the same memory); the probabilities become equivariant to flips
        and quarter turns of each tile, and are usually a little more accurate. Tiling,
        blending and missing pixels are as without it.
    out : str, path or zarr.Array, optional
        Chunked prediction (:mod:`.big`) writes the probabilities there (a ``.zarr``
        folder is created, replacing an existing one) and returns that zarr array.
    block_shape : int or (int, int), optional
        Chunked prediction's blocks (default :data:`.big.DEFAULT_BLOCK`).
    workers : int, optional
        Chunked prediction on a ``distributed.LocalCluster`` of this many processes.
    scheduler : str, distributed.Client or Engine, optional
        Chunked prediction on an existing dask cluster (its scheduler's address, or a
        client), or on an :class:`..engine.Engine` (reused: one cluster for many calls,
        its progress bar, its progress and ``should_stop`` callbacks).
    temp_dir : str or path, optional
        Chunked prediction's temporary files (a folder every worker of the cluster sees);
        default: beside ``out`` (a path), else the system's temporary folder.
    diameter : float or "auto", optional
        The nuclei's diameter in the image, in pixels (cellpose's ``diameter``). None:
        as trained, the image as it is. A number: each plane is resized by ``model
        diameter / diameter`` (the median diameter of the model's training nuclei,
        recorded in its file; linear, anti-aliased when shrinking), predicted there,
        and the probabilities resized back (linear) to exactly its shape; factors from
        0.1 to 10 only. ``"auto"``: a first pass as trained, the median diameter of the
        objects it finds (:func:`.diameter.object_diameter`), then a second pass at that
        diameter if it differs from the model's by more than 10 % (the first pass is
        kept if it finds nothing). Not for chunked prediction (a ValueError): resize
        such an image beforehand. See :func:`.sizing.segment_at_diameter` for the
        diameter used.

    Returns
    -------
    numpy.ndarray of float32, shape (..., H, W, n_classes)
        Softmax probabilities (they sum to 1 over the last axis). Chunked (a dask or zarr
        ``image``, or any of ``out``, ``block_shape``, ``workers``, ``scheduler``): a lazy
        dask array of them, or the zarr array ``out``; each block is predicted with a
        margin of context and normalised with its whole plane's percentiles (see
        :func:`.big.predict_blocks`).

    Raises
    ------
    PredictionCancelled
        If ``should_stop()`` returned True.
    ValueError
        For a bad image shape, tile shape, overlap or batch size, a model whose Keras
        network does not fit its metadata (:func:`.model_file.check_model`), a
        ``diameter`` out of range, with a model file that does not record its nuclei's
        diameter, or with chunked prediction.
    FileNotFoundError, ImportError
        See :func:`..model_file.load_model`.

    Warns
    -----
    MissingDataWarning
        Once, when pixels are NaN or infinite; it says how many.
    """
    if diameter is not None:
        _check_sizable(diameter, image, out, block_shape, workers, scheduler)
        options = _options(rgb, tile_shape, overlap, batch_size, use_gpu, tta)
        probabilities, _, _, run = _sized(image, model, diameter, options, {},
                                          probabilities=True, labels=False,
                                          progress=progress, should_stop=should_stop)
        run.warn_missing()
        return probabilities
    if _chunked(image, out, block_shape, workers, scheduler):
        from .big import predict_blocks

        options = _options(rgb, tile_shape, overlap, batch_size, use_gpu, tta)
        return predict_blocks(image, model, _block_probabilities, options,
                              out=out, block_shape=block_shape, workers=workers,
                              scheduler=scheduler, temp_dir=temp_dir, progress=progress,
                              should_stop=should_stop, cancelled=PredictionCancelled)
    image, run = _prepare_run(image, model, rgb, tile_shape, overlap, batch_size, progress,
                              should_stop, tta)
    probabilities = _predict_run(image, run, use_gpu)
    run.warn_missing()
    return probabilities


def _options(rgb, tile_shape, overlap, batch_size, use_gpu, tta) -> dict:
    """The arguments of :func:`predict` / :func:`segment` that every block needs."""
    return {"rgb": rgb, "tile_shape": tile_shape, "overlap": overlap,
            "batch_size": batch_size, "use_gpu": use_gpu, "tta": tta}


def _postprocess_parameters(unet, overrides: dict) -> dict:
    """The model's recorded post-processing parameters with ``overrides``, checked."""
    return check_postprocess_parameters({**unet.postprocess_parameters, **overrides})


def segment(image, model: UNetModel | str | os.PathLike | None = None, *,
            rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
            overlap: int | None = None, batch_size: int = 4, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
            tta: bool = False, out=None, block_shape: int | tuple[int, int] | None = None,
            workers: int | None = None, scheduler=None, temp_dir=None, diameter=None,
            **postprocess):
    """Instance labels of an image, a stack or a time series.

    :func:`predict`, then :func:`..postprocess.to_instances` on each plane as soon as its
    tiles are done (the probabilities of one plane at a time are kept), with the model
    file's recorded post-processing parameters.

    Parameters
    ----------
    image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop, use_gpu, tta
        As in :func:`predict` (``tta``: test-time augmentation, 8× the network time).
    out, block_shape, workers, scheduler, temp_dir
        Chunked segmentation, as in :func:`predict`; the labels are stitched across the
        blocks (:func:`.big.segment_blocks`).
    diameter : float or "auto", optional
        The nuclei's diameter in pixels, as in :func:`predict`: None, the image as it is;
        otherwise each plane is segmented at the model's scale, post-processing included
        (``min_size`` and ``expand`` are in the model's pixels), and its labels resized
        back by nearest neighbour to exactly its shape (ids renumbered 1..N; an object
        smaller than a pixel of the image can vanish). Not for chunked segmentation.
    **postprocess
        Overrides of the recorded post-processing parameters (``threshold``,
        ``seed_threshold``, ``min_size``, ``fill_holes``, ``expand``).

    Returns
    -------
    numpy.ndarray of uint16 (uint32 beyond 65534 objects), shape (..., H, W)
        0 = background; ids are unique over the whole stack (plane after plane: the
        objects of the second plane follow those of the first). Chunked: a lazy dask
        array of them, or the zarr array ``out`` (ids 1..N, objects cut by the blocks'
        faces joined).

    Raises
    ------
    TypeError
        For an unknown post-processing parameter or one of the wrong type, or a
        ``diameter`` that is not a number, "auto" or None.
    ValueError
        For a post-processing parameter out of range, or a ``diameter`` refused as in
        :func:`predict` (checked before the network runs).
    PredictionCancelled, ValueError, FileNotFoundError, ImportError
        As in :func:`predict`.

    Warns
    -----
    MissingDataWarning
        As in :func:`predict`.
    """
    if diameter is not None:
        _check_sizable(diameter, image, out, block_shape, workers, scheduler)
        options = _options(rgb, tile_shape, overlap, batch_size, use_gpu, tta)
        _, labels, _, run = _sized(image, model, diameter, options, postprocess,
                                   probabilities=False, labels=True, progress=progress,
                                   should_stop=should_stop)
        run.warn_missing()
        return labels
    if _chunked(image, out, block_shape, workers, scheduler):
        from .big import segment_blocks

        options = _options(rgb, tile_shape, overlap, batch_size, use_gpu, tta)
        return segment_blocks(image, model, _block_labels, options, postprocess,
                              out=out, block_shape=block_shape, workers=workers,
                              scheduler=scheduler, temp_dir=temp_dir, progress=progress,
                              should_stop=should_stop, cancelled=PredictionCancelled)
    image, run = _prepare_run(image, model, rgb, tile_shape, overlap, batch_size, progress,
                              should_stop, tta)
    parameters = _postprocess_parameters(run.unet, postprocess)
    labels = _segment_run(image, run, parameters, use_gpu)
    run.warn_missing()
    return labels


def _segment_run(image, run: _Run, parameters: dict, use_gpu: bool | None) -> np.ndarray:
    """The labels of a prepared run (see :func:`segment`), without warning."""
    return gather(image, run, use_gpu, parameters=parameters)[1]


# -- nucleus size ---------------------------------------------------------------------------
def _check_sizable(diameter, image, *chunked_options) -> None:
    """Refuse a bad ``diameter``, and any ``diameter`` with chunked prediction."""
    check_diameter(diameter)
    if _chunked(image, *chunked_options):
        raise ValueError(
            "diameter is not available for chunked prediction (dask / zarr images, or out, "
            "block_shape, workers, scheduler): resize the image by model diameter / "
            "diameter first (e.g. skimage.transform.rescale, or dask_image.ndinterp."
            "affine_transform for a dask array), segment it, and resize the labels back "
            "by nearest neighbour; or pass a numpy array.")


def _sized(image, model, diameter, options: dict, postprocess: dict, *, probabilities: bool,
           labels: bool, progress: Progress | None, should_stop: ShouldStop | None):
    """:func:`predict` / :func:`segment` with a ``diameter`` (:func:`.rescale.run_sized`):
    (probabilities or None, labels or None, :class:`.diameter.Sizing`, the last run)."""
    image = _as_array(image)
    layout = _layout(image, options["rgb"])
    unet = as_model(model)
    parameters = _postprocess_parameters(unet, postprocess)

    def prepare(source, report: Progress | None) -> _Run:
        return _prepare_run(source, unet, layout.rgb, options["tile_shape"], options["overlap"],
                            options["batch_size"], report, should_stop, options["tta"])[1]

    return run_sized(image, layout, unet.metadata, diameter, prepare,
                     use_gpu=options["use_gpu"], parameters=parameters, labels=labels,
                     probabilities=probabilities, progress=progress)
