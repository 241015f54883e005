"""The inference core: one model run over an image in memory, or over one block of it.

Every prediction of the package goes through here. :func:`.predict.predict`,
:func:`.predict.segment` and :func:`.predict.infer` call :func:`run_in_memory` (numpy
images, or arrays read a plane at a time) or :mod:`.chunked.big` (dask / zarr images, block by
block); :mod:`.chunked.big`'s tasks call this module's :func:`block_probabilities` /
:func:`block_labels`. The dependency goes one way: predict → big → inference, and
predict → inference; nothing here imports either.

- :func:`image_layout`: the image's leading (stack, time) axes, plane and channels,
  checked (the in-memory and the chunked paths share it).
- :class:`_Run`: the tiles of every plane (:func:`.tiling.tile_grid`), run in batches
  through :func:`network_output` (test-time augmentation: the 8 orientations of a
  square), blended into each plane's output; missing (NaN / infinite) pixels predicted as
  background and counted; progress after each batch, ``should_stop`` polled before
  each (:class:`..runtime.progress.Cancelled`).
- :func:`run_in_memory`: a whole image, with its labels (post-processed plane by plane,
  :func:`.rescale.gather`), its probabilities, or both, at a nucleus ``diameter``
  (:func:`.rescale.run_sized`) or as it is: a :class:`SegmentResult`, which also counts
  the missing pixels (no second pass over the image).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..runtime.progress import PredictionCancelled, Progress, ShouldStop
from .device import device_scope
from .diameter import Sizing
from .inference_engine import engine_model
from .model_cache import ModelFile, resolve_model
from .model_file import UNetModel, as_model, check_model, input_channels, size_multiple
from .network import predictor
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

__all__ = ["TTA_TRANSFORMS", "SegmentResult", "block_labels", "block_probabilities",
           "image_layout", "network_output", "predict_prepared", "run_in_memory"]

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
                   should_stop: ShouldStop | None = None,
                   network: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The network's class probabilities of a prepared batch, float32 (N, H, W, K).

    Parameters
    ----------
    keras_model : keras.Model
        The U-Net; run by its compiled inference step (:func:`.network.predictor`:
        batch normalisation folded, ``predict_on_batch`` on any Keras backend, numpy
        out; no progress bar), or called as ``keras_model(batch, training=False)`` if
        it is not a Keras model.
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
    network : callable, optional
        ``predictor(keras_model)`` if the caller has it already (one per prediction).

    Returns
    -------
    numpy.ndarray
    """
    run = predictor(keras_model) if network is None else network
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if not tta:
        return run(batch)
    if batch.ndim != 4:
        raise ValueError(f"expected a batch of shape (N, H, W, C), got {batch.shape}.")
    total = None
    for turns, mirrored in TTA_TRANSFORMS:
        if total is not None and should_stop is not None and should_stop():
            raise PredictionCancelled("prediction cancelled during test-time augmentation.")
        output = _unorient(run(np.ascontiguousarray(_orient(batch, turns, mirrored))),
                           turns, mirrored)
        total = np.array(output) if total is None else np.add(total, output, out=total)
    return total / np.float32(len(TTA_TRANSFORMS))


def predict_prepared(keras_model: Any, x: np.ndarray, multiple: int, *,
                     tta: bool = False, network: Callable | None = None) -> np.ndarray:
    """Run the network on one prepared (H, W, C) image; return (H, W, K) float32.

    The image is padded to ``multiple`` and the output cropped back (whole image, no
    tiles; used by training's validation). ``tta``: test-time augmentation, the mean
    over 8 flips / rotations (:func:`network_output`; 8× the network time). ``network``:
    as in :func:`network_output` (one per pass over many images).
    """
    padded, crop = pad_to_multiple(x, multiple)
    probabilities = network_output(keras_model, padded[np.newaxis], tta=tta,
                                   network=network)[0]
    return np.ascontiguousarray(probabilities[crop])


# -- running ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    lead: tuple[int, ...]  #: leading (stack, time) axes, predicted plane by plane
    plane: tuple[int, int]  #: (H, W)
    rgb: bool  #: the last axis holds channels


def as_array(image):
    """Arrays (numpy, dask, zarr) stay as they are, so planes are read one at a time."""
    if all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__")):
        return image
    return np.asarray(image)


def image_layout(image, rgb: bool | None) -> _Layout:
    """The leading axes, plane and channels of an image (numpy, dask, zarr...), checked.

    ``rgb``: whether the last axis holds channels (None: :func:`.preprocess.guess_channels`).
    A ValueError for fewer than two spatial axes or an empty plane; a TypeError for a
    dtype that is not numeric (:func:`.preprocess.check_numeric`).
    """
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
    #: The network's compiled step (:func:`.network.predictor`), made at the first batch.
    network: Callable[[np.ndarray], np.ndarray] | None = None

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
        if self.network is None:
            self.network = predictor(self.unet.keras_model)
        output = network_output(self.unet.keras_model, batch, tta=self.tta,
                                should_stop=self.check_cancel, network=self.network)
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
    image = as_array(image)
    layout = image_layout(image, rgb)
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


# -- the result ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentResult:
    """What one inference gives (:func:`.predict.infer`).

    Attributes
    ----------
    labels : array or None
        Instance labels (..., H, W) as :func:`.predict.segment` returns them (a numpy
        array; chunked: a lazy dask array or the zarr array ``out``); None when not asked.
    probabilities : array or None
        Class probabilities (..., H, W, K) as :func:`.predict.predict` returns them;
        None when not asked.
    n_missing : int
        The image's missing (NaN or infinite in any channel) pixels, counted while it was
        read (the number its :class:`.preprocess.MissingDataWarning` gives).
    n_pixels : int
        The image's pixels (all planes; channels not counted).
    sizing : Sizing or None
        With a ``diameter``: the diameter asked for, estimated and used.
    """

    labels: Any
    probabilities: Any
    n_missing: int
    n_pixels: int
    sizing: Sizing | None = None


# -- in memory ------------------------------------------------------------------------------
def _postprocess_parameters(unet, overrides: dict) -> dict:
    """The model's recorded post-processing parameters with ``overrides``, checked."""
    return check_postprocess_parameters({**unet.postprocess_parameters, **overrides})


def run_in_memory(image, model, options: dict, postprocess: dict | None, *,
                  probabilities: bool, diameter=None, progress: Progress | None = None,
                  should_stop: ShouldStop | None = None) -> SegmentResult:
    """One inference over a whole image in memory (numpy, or read a plane at a time).

    Parameters
    ----------
    image : array-like
        As in :func:`.predict.predict`.
    model : UNetModel, str, path or None
        As in :func:`.predict.predict`.
    options : dict
        ``rgb``, ``tile_shape``, ``overlap``, ``batch_size``, ``use_gpu``, ``tta``, and
        ``engine`` (the inference runtime, :mod:`.inference_engine`; default "keras").
    postprocess : dict or None
        Overrides of the model's post-processing parameters; None: no labels.
    probabilities : bool
        Keep the probabilities.
    diameter : float, "auto" or None
        As in :func:`.predict.segment` (checked by the caller).
    progress, should_stop : callable, optional
        As in :func:`.predict.predict`.

    Returns
    -------
    SegmentResult

    Warns
    -----
    MissingDataWarning
        Once, when pixels are missing.
    """
    image = as_array(image)
    layout = image_layout(image, options["rgb"])
    unet = engine_model(model, options.get("engine", "keras"))
    # "auto" needs the labels of its first pass, whatever is returned
    parameters = _postprocess_parameters(unet, postprocess or {})
    n_pixels = math.prod(layout.lead) * math.prod(layout.plane)

    def prepare(source, report: Progress | None) -> _Run:
        return _prepare_run(source, unet, layout.rgb, options["tile_shape"],
                            options["overlap"], options["batch_size"], report, should_stop,
                            options["tta"])[1]

    if diameter is not None:
        kept, labels, sizing, run, n_missing = run_sized(
            image, layout, unet.metadata, diameter, prepare, use_gpu=options["use_gpu"],
            parameters=parameters, labels=postprocess is not None, probabilities=probabilities,
            progress=progress)
        run.warn_missing()
        return SegmentResult(labels, kept, n_missing, n_pixels, sizing)
    run = prepare(image, progress)
    if postprocess is None:
        kept, labels = _predict_run(image, run, options["use_gpu"]), None
    else:
        kept, labels = gather(image, run, options["use_gpu"], parameters=parameters,
                              probabilities=probabilities)
    run.warn_missing()
    return SegmentResult(labels, kept, run.n_missing, n_pixels)


# -- one block of a chunked run (:mod:`.chunked.big`'s tasks) -------------------------------
def block_probabilities(block: np.ndarray, statistics: PlaneStatistics, *,
                        model: UNetModel | ModelFile, rgb: bool, tile_shape, overlap,
                        batch_size: int, use_gpu: bool | None, tta: bool,
                        should_stop: ShouldStop | None = None,
                        engine: str = "keras") -> np.ndarray:
    """The probabilities of one block of a plane normalised as the whole plane.

    ``model``: a loaded model, or a model file loaded once per process
    (:func:`.model_cache.cached_model`). ``statistics``: the whole plane's normalisation
    (:mod:`.chunked.lazy_stats`). ``engine``: the inference runtime
    (:func:`.inference_engine.engine_model`).
    """
    image, run = _prepare_run(block, engine_model(resolve_model(model), engine), rgb,
                              tile_shape, overlap, batch_size, None, should_stop, tta,
                              statistics)
    return _predict_run(image, run, use_gpu)


def block_labels(block: np.ndarray, statistics: PlaneStatistics, *,
                 model: UNetModel | ModelFile, rgb: bool, tile_shape, overlap,
                 batch_size: int, use_gpu: bool | None, tta: bool, postprocess: dict,
                 should_stop: ShouldStop | None = None, engine: str = "keras") -> np.ndarray:
    """The instance labels of one block (block-local ids), as :func:`block_probabilities`
    with the checked post-processing parameters ``postprocess``."""
    image, run = _prepare_run(block, engine_model(resolve_model(model), engine), rgb,
                              tile_shape, overlap, batch_size, None, should_stop, tta,
                              statistics)
    return gather(image, run, use_gpu, parameters=postprocess)[1]
