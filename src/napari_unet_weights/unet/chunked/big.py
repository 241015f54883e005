"""Prediction and segmentation of images bigger than memory, block by block on dask.

:func:`..predict.predict` and :func:`..predict.segment` come here for dask and zarr arrays
(or when given ``out``, ``block_shape``, ``workers`` or ``scheduler``). Nothing
image-sized is held in memory: the image is read block by block, and the labels go to
zarr.

1. **Normalisation** as in memory: each plane by its own percentiles, computed over the
   whole plane from histograms (:mod:`.lazy_stats`; exact for integer images). So the
   image is read three times: twice in its own chunks for the statistics, once by the
   blocks (their margins overlap).
2. **Blocks.** Each plane is cut into blocks of ``block_shape`` (the *cores*); each core
   is predicted with a margin of context (``margin``, by default 8 · ``2**depth``, the
   network's receptive field, as :func:`..tiling.default_overlap`), widened to the
   pooling grid that the whole plane has in memory (so the network sees every pixel on
   the same grid; at the image's edges the block is mirrored as the whole plane is).
   Inside a block, prediction is the in-memory one: the tasks call the inference core's
   :func:`..inference.block_probabilities` / :func:`..inference.block_labels` (tiles,
   blending, batches, ``tta``; the image's layout is checked by the core's
   :func:`..inference.image_layout` too).
   Probabilities: the core's are kept (a lazy dask array, or written to ``out``).
3. **Labels** (:func:`segment_blocks`): each block is post-processed on its core and
   margin; its core's labels (block-local ids) go to a temporary zarr, and only thin
   strips around its faces come back (:func:`.stitch.summarize_block`). The strips of
   the two blocks of each face are matched (objects cut by the face joined; distinct
   objects touching across it kept apart) and the ids made global, 1..N
   (:func:`.stitch.global_ids`); a second pass maps the temporary zarr to the output zarr
   through one small lookup table per block, or returns that mapping as a lazy dask
   array (the temporary zarr is then deleted when the array is).

The passes run on an :class:`...runtime.engine.Engine`: threads by default, ``workers=N`` a local
cluster of N processes, ``scheduler`` an existing cluster (its workers must see the
temporary folder, ``temp_dir``: a shared file system on a cluster of machines). Tasks
get the model *file* (:class:`..model_cache.ModelFile`), loaded once per process; a
model object given with a cluster is saved to the temporary folder first.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...labels.ids import new_labels_dtype
from ...runtime.engine import Engine, engine_for
from ...runtime.progress import Progress, ShouldStop
from .. import inference
from ..inference import SegmentResult, image_layout
from ..model_cache import ModelFile, serialized
from ..model_file import UNetModel, model_metadata, size_multiple
from ..postprocess import check_postprocess_parameters
from ..preprocess import MissingDataWarning, missing_data_message
from .lazy_stats import ImageStatistics, plane_statistics
from .stitch import DEFAULT_STRIP, BlockGrid, global_ids, summarize_block

__all__ = ["DEFAULT_BLOCK", "Plan", "default_margin", "predict_blocks", "segment_blocks"]

#: Default block side (pixels of a core).
DEFAULT_BLOCK = 1024


def default_margin(multiple: int) -> int:
    """The default margin of a block: 8 · ``multiple``, the network's receptive field."""
    return 8 * multiple


def _extend(core: slice, size: int, margin: int, multiple: int) -> tuple[slice, tuple[int, int]]:
    """A core widened by ``margin`` onto the whole plane's pooling grid, and its mirroring.

    The whole plane is padded to a multiple of ``multiple`` (``before`` / ``after``
    pixels, :func:`..tiling.pad_to_multiple`); the widened block starts and ends on that
    grid, mirrored as the whole plane where it reaches the image's edges.
    """
    before = (-size % multiple) // 2
    after = -size % multiple - before
    low = (core.start - margin + before) // multiple * multiple
    high = -(-(core.stop + margin + before) // multiple) * multiple
    start, pad_low = (0, before) if low <= 0 else (low - before, 0)
    stop, pad_high = (size, after) if high >= size + before + after else (high - before, 0)
    return slice(start, stop), (pad_low, pad_high)


@dataclass(frozen=True)
class Plan:
    """The blocks of a chunked prediction.

    Attributes
    ----------
    grid : BlockGrid
        The cores.
    margin : int
        Context around a core (pixels, before widening to the grid).
    multiple : int
        The network's ``2**depth``.
    """

    grid: BlockGrid
    margin: int
    multiple: int

    def extended(self, key: tuple) -> tuple[tuple[slice, slice], tuple[tuple[int, int], ...]]:
        """The block's core and margin in the plane, and its mirroring at the edges."""
        parts = [_extend(core, size, self.margin, self.multiple)
                 for core, size in zip(self.grid.core(key), self.grid.plane)]
        return (parts[0][0], parts[1][0]), (parts[0][1], parts[1][1])


def _run_block(raw: np.ndarray, key: tuple, plan: Plan, block_fn: Callable,
               statistics: Any, should_stop: ShouldStop | None) -> np.ndarray:
    """``block_fn`` on the block (mirrored at the image's edges), cropped to ``raw``."""
    _, pads = plan.extended(key)
    widths = [*pads] + [(0, 0)] * (raw.ndim - 2)
    padded = np.pad(raw, widths, mode="symmetric") if any(map(any, pads)) else raw
    output = block_fn(padded, statistics, should_stop=should_stop)
    return output[tuple(slice(low, low + n) for (low, _), n in zip(pads, raw.shape[:2]))]


def _core_of(plan: Plan, key: tuple) -> tuple[slice, slice]:
    """The core of a block in the coordinates of its extended block."""
    region, _ = plan.extended(key)
    return tuple(slice(c.start - r.start, c.stop - r.start)
                 for c, r in zip(plan.grid.core(key), region))


def _probabilities_task(raw: np.ndarray, key: tuple, plan: Plan, block_fn: Callable,
                        statistics: Any, should_stop: ShouldStop | None = None) -> np.ndarray:
    """The probabilities of a block's core."""
    return _run_block(raw, key, plan, block_fn, statistics, should_stop)[_core_of(plan, key)]


def _labels_task(raw: np.ndarray, key: tuple, plan: Plan, block_fn: Callable, statistics: Any,
                 blocks, strip_width: int, should_stop: ShouldStop | None = None
                 ) -> tuple[int, dict]:
    """Segment a block; write its core's local labels to ``blocks``; return its strips."""
    labels = _run_block(raw, key, plan, block_fn, statistics, should_stop)
    region, _ = plan.extended(key)
    summary = summarize_block(labels, (region[0].start, region[1].start), plan.grid, key,
                              strip_width)
    blocks[(*key[:-2], *plan.grid.core(key))] = summary.core
    return summary.count, summary.strips


def _relabel_block(blocks, region: tuple, lookup: np.ndarray) -> np.ndarray:
    return lookup[blocks[region]]


def _write_chunk(block: np.ndarray, target, block_info=None) -> np.ndarray:
    """Write one chunk into ``target`` where it belongs; return a one-pixel marker."""
    target[tuple(slice(*location) for location in block_info[0]["array-location"])] = block
    return np.ones((1,) * block.ndim, bool)


def _written(array, target):
    """A dask array of one marker per chunk whose computation writes ``array`` to ``target``."""
    return array.map_blocks(_write_chunk, target=target, dtype=bool, meta=np.array((), bool),
                            chunks=tuple((1,) * n for n in array.numblocks))


# -- set-up -----------------------------------------------------------------------------
@dataclass
class _Job:
    """One chunked prediction: the image, the model, the blocks, the engine."""

    array: Any  #: dask array, chunked by one plane along the leading axes
    channels: bool
    metadata: dict
    plan: Plan
    should_stop: ShouldStop | None
    engine: Engine | None = None
    folder: Path | None = None  #: temporary files
    keep: bool = False  #: keep the folder (a lazy result reads it)

    @property
    def lead(self) -> tuple[int, ...]:
        return self.plan.grid.lead

    def compute(self, *collections, progress: Progress | None = None) -> tuple:
        return self.engine.compute(*collections, progress=progress,
                                   should_stop=self.should_stop)

    def raw(self, key: tuple):
        """The dask array of a block's core and margin (one plane: the leading axes cut)."""
        region, _ = self.plan.extended(key)
        return self.array[(*key[:-2], *region)]

    def local_should_stop(self) -> ShouldStop | None:
        """``should_stop`` for tasks in this process (a cluster's tasks cannot call it)."""
        return None if self.engine.distributed else self.should_stop


def _as_dask(image):
    """A dask array reading ``image`` (never copied whole: arrays are read by slices)."""
    import dask.array as da

    if isinstance(image, da.Array):
        return image
    if type(image).__module__.split(".")[0] == "zarr":
        return da.from_zarr(image)
    if all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__")):
        return da.from_array(image)
    return da.from_array(np.asarray(image))


def _block_pair(block_shape, multiple: int) -> tuple[int, int]:
    sides = (block_shape,) * 2 if np.isscalar(block_shape) else tuple(block_shape)
    if len(sides) != 2 or any(int(n) != n or n < 1 for n in sides):
        raise ValueError(f"block_shape must be a positive integer or a pair of them, got "
                         f"{block_shape!r}.")
    return tuple(-(-int(n) // multiple) * multiple for n in sides)


def _job(image, model, rgb, block_shape, margin, should_stop) -> _Job:
    """The job's image, model metadata and blocks, checked (nothing started yet)."""
    array = _as_dask(image)
    layout = image_layout(array, rgb)
    metadata = model_metadata(model)
    multiple = size_multiple(metadata)
    margin = default_margin(multiple) if margin is None else int(margin)
    block = _block_pair(DEFAULT_BLOCK if block_shape is None else block_shape, multiple)
    lead = len(layout.lead)
    array = array.rechunk({**{axis: 1 for axis in range(lead)},
                           **({array.ndim - 1: -1} if layout.rgb else {})})
    grid = BlockGrid.regular((*layout.lead, *layout.plane), block)
    return _Job(array, layout.rgb, metadata, Plan(grid, margin, multiple), should_stop)


def _temporary_folder(temp_dir, out) -> Path:
    """A new folder in ``temp_dir``; by default beside ``out`` (a path), else the system's.

    Beside the output, the temporary zarr is on the same (shared) file system, which the
    workers of a cluster of machines must all see.
    """
    if temp_dir is None and isinstance(out, (str, os.PathLike)):
        temp_dir = Path(out).resolve().parent
        temp_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="napari-unet-weights-", dir=temp_dir))


@contextlib.contextmanager
def _running(job: _Job, workers, scheduler, engine: Engine | None, temp_dir, out):
    """Give the job an engine and a temporary folder; close / delete them after."""
    job.folder = _temporary_folder(temp_dir, out)
    try:
        job.engine, own = engine_for(workers, scheduler, engine)
    except BaseException:
        shutil.rmtree(job.folder, ignore_errors=True)
        raise
    if job.should_stop is None:
        job.should_stop = job.engine.should_stop
    try:
        yield job
    finally:
        if own:
            job.engine.close()
        if not job.keep:
            shutil.rmtree(job.folder, ignore_errors=True)


def _statistics(job: _Job) -> ImageStatistics:
    """The planes' normalisation, with one warning if pixels are missing."""
    statistics = plane_statistics(job.array, job.metadata, channels=job.channels,
                                  compute=job.compute)
    if statistics.n_missing:
        n_pixels = math.prod(job.plan.grid.lead) * math.prod(job.plan.grid.plane)
        warnings.warn(missing_data_message(statistics.n_missing, n_pixels),
                      MissingDataWarning, stacklevel=4)
    return statistics


def _model_reference(model, job: _Job, lazy: bool = False) -> UNetModel | ModelFile:
    """What tasks get: a file (any process), or the object itself (this process only).

    ``lazy``: the result is computed later, wherever dask's default scheduler runs, so a
    model object travels as it is (no temporary file to outlive the job).
    """
    if not isinstance(model, UNetModel):
        return ModelFile.of(model)
    if lazy or not job.engine.distributed:
        return serialized(model)
    return ModelFile.of(model.save(job.folder / "model.keras"))


def _block_function(block_fn: Callable, model, job: _Job, options: dict, lazy: bool = False,
                    **more) -> Callable:
    options = {**options, "rgb": job.channels}
    return functools.partial(block_fn, model=_model_reference(model, job, lazy), **options,
                             **more)


def _output(out, shape: tuple, dtype, chunks: tuple):
    """The zarr array to write to: ``out`` itself, or created at the path ``out``."""
    import zarr

    if isinstance(out, zarr.Array):
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"out has shape {tuple(out.shape)}; expected {tuple(shape)}.")
        return out
    path = Path(out)
    if path.exists() and not (path / "zarr.json").exists() and not (path / ".zarray").exists():
        raise FileExistsError(f"{path} exists and is not a zarr array: not replaced.")
    return zarr.create_array(store=str(path), shape=shape, dtype=dtype, chunks=chunks,
                             fill_value=0, overwrite=True)


def _plane_chunks(job: _Job, image) -> tuple[int, ...]:
    """Output chunks: one plane deep, the input's along H and W (the blocks' for numpy)."""
    n_plane = len(job.lead) + 2
    chunks = getattr(image, "chunks", None)
    if chunks is not None:
        sides = [c[0] if isinstance(c, tuple) else c for c in chunks[n_plane - 2:n_plane]]
    else:
        sides = [b[1] - b[0] if len(b) > 1 else b[0] for b in job.plan.grid.bounds]
    return (*(1,) * len(job.lead), *(int(s) for s in sides))


# -- the two entry points ---------------------------------------------------------------
def predict_blocks(image, model, options: dict, *, out=None,
                   block_shape=None, margin: int | None = None, temp_dir=None,
                   workers: int | None = None, scheduler=None, engine: Engine | None = None,
                   progress: Progress | None = None, should_stop: ShouldStop | None = None,
                   block_fn: Callable | None = None) -> SegmentResult:
    """Class probabilities of a dask / zarr image, block by block.

    Parameters
    ----------
    image : dask.array.Array, zarr.Array or array-like
        (..., H, W[, C]).
    model : UNetModel, str, path or None
        As in :func:`..predict.predict`.
    options : dict
        ``rgb`` (None: guessed), ``tile_shape``, ``overlap``, ``batch_size``, ``use_gpu``,
        ``tta``.
    out : str, path or zarr.Array, optional
        Write there and return the zarr array; None: return a lazy dask array (computed
        later by dask's default scheduler).
    block_shape : int or (int, int), optional
        Core of a block (rounded up to ``2**depth``); default :data:`DEFAULT_BLOCK`.
    margin : int, optional
        Context around a core; default :func:`default_margin`.
    temp_dir : str or path, optional
        Where temporary files go: a folder all the workers see. Default: beside ``out``
        (a path), else the system's temporary folder.
    workers, scheduler, engine
        Where to compute (:func:`...runtime.engine.engine_for`: threads, a local cluster of
        ``workers`` processes, a scheduler's address, a ``distributed.Client``, or an
        :class:`...runtime.engine.Engine`, reused and not closed, as ``scheduler`` or ``engine``).
    progress, should_stop
        ``progress(done, total)`` over the output's chunks written; ``should_stop()``
        polled (True raises :class:`...runtime.progress.Cancelled`).
    block_fn : callable, optional
        ``block_fn(block, statistics, model=, rgb=, should_stop=, **options)``: the
        probabilities of one (h, w[, C]) block; default the inference core's
        :func:`..inference.block_probabilities`.

    Returns
    -------
    SegmentResult
        ``probabilities``: a dask array (``out`` None) or the zarr array ``out``, float32,
        shape (..., H, W, n_classes); ``n_missing`` from the normalisation's pass.
    """
    job = _job(image, model, options.get("rgb"), block_shape, margin, should_stop)
    block_fn = inference.block_probabilities if block_fn is None else block_fn
    with _running(job, workers, scheduler, engine, temp_dir, out):
        statistics = _statistics(job)
        block = _block_function(block_fn, model, job, options, lazy=out is None)
        probabilities = _probabilities(job, block, statistics)
        if out is not None:
            classes = probabilities.shape[-1]
            target = _output(out, probabilities.shape, np.float32,
                             (*_plane_chunks(job, image), classes))
            job.compute(_written(probabilities.rechunk(target.chunks), target),
                        progress=job.engine.progress if progress is None else progress)
            probabilities = target
        return _result(job, statistics, probabilities=probabilities)


def _result(job: _Job, statistics: ImageStatistics, **outputs) -> SegmentResult:
    """The job's :class:`..inference.SegmentResult`: ``outputs`` and the pixel counts."""
    grid = job.plan.grid
    return SegmentResult(outputs.get("labels"), outputs.get("probabilities"),
                         int(statistics.n_missing), math.prod(grid.lead) * math.prod(grid.plane))


def _probabilities(job: _Job, block: Callable, statistics: ImageStatistics):
    """The lazy probabilities of every core, assembled into one dask array."""
    import dask
    import dask.array as da

    classes = int(job.metadata["n_classes"])

    def piece(key: tuple):
        task = dask.delayed(_probabilities_task, pure=False)(
            job.raw(key), key, job.plan, block, statistics.planes[key[:-2]],
            job.local_should_stop())
        shape = (*(s.stop - s.start for s in job.plan.grid.core(key)), classes)
        return da.from_delayed(task, shape, np.float32)[(np.newaxis,) * len(job.lead)]

    return _assembled(job.plan.grid, piece)


def _assembled(grid: BlockGrid, piece: Callable):
    """One dask array of the pieces of every block, ``piece(key)`` (lead axes kept)."""
    import dask.array as da

    def along(prefix: tuple, axis: int):
        if axis == len(grid.grid_shape):
            return piece(prefix)
        return da.concatenate([along((*prefix, k), axis + 1)
                               for k in range(grid.grid_shape[axis])], axis=axis)

    return along((), 0)


def segment_blocks(image, model, options: dict, postprocess: dict, *,
                   out=None, block_shape=None, margin: int | None = None,
                   strip_width: int = DEFAULT_STRIP, temp_dir=None, workers: int | None = None,
                   scheduler=None, engine: Engine | None = None,
                   progress: Progress | None = None, should_stop: ShouldStop | None = None,
                   block_fn: Callable | None = None) -> SegmentResult:
    """Instance labels of a dask / zarr image, block by block, stitched (see the module).

    Parameters
    ----------
    image, model, options, block_shape, margin, temp_dir, workers, scheduler, engine
        As in :func:`predict_blocks`.
    postprocess : dict
        Overrides of the model's post-processing parameters (checked first).
    out : str, path or zarr.Array, optional
        Write the labels there and return the zarr array; None: a lazy dask array over
        a temporary zarr (deleted with the array).
    strip_width : int
        Pixels of a face strip on each side (at most ``margin``).
    progress : callable, optional
        ``progress(done, total)``: blocks segmented, then chunks written.
    should_stop : callable, optional
        As in :func:`predict_blocks`.
    block_fn : callable, optional
        ``block_fn(block, statistics, model=, rgb=, postprocess=, should_stop=,
        **options)``: the labels of one block (block-local ids); default the inference
        core's :func:`..inference.block_labels`.

    Returns
    -------
    SegmentResult
        ``labels``: a dask array or the zarr array ``out``, shape (..., H, W), ids 1..N,
        uint16 (uint32 from 65535 objects on, uint64 beyond 2**32 − 2); ``n_missing``
        from the normalisation's pass.
    """
    job = _job(image, model, options.get("rgb"), block_shape, margin, should_stop)
    block_fn = inference.block_labels if block_fn is None else block_fn
    if not 0 < strip_width <= job.plan.margin:
        raise ValueError(f"strip_width must be in [1, margin={job.plan.margin}], got "
                         f"{strip_width}.")
    parameters = check_postprocess_parameters(
        {**job.metadata.get("postprocess", {}), **postprocess})
    with _running(job, workers, scheduler, engine, temp_dir, out):
        statistics = _statistics(job)
        block = _block_function(block_fn, model, job, options, postprocess=parameters)
        chunks = None if out is None else getattr(out, "chunks", None) or _plane_chunks(job, image)
        steps = _Steps(job.engine.progress if progress is None else progress,
                       len(job.plan.grid), _n_chunks(job, chunks))
        labels = _stitched(job, block, statistics, strip_width, steps.first)
        if out is None:
            job.keep = True  # the lazy labels read the temporary zarr, deleted with them
        else:
            target = _output(out, labels.shape, labels.dtype, chunks)
            job.compute(_written(labels.rechunk(target.chunks), target), progress=steps.second)
            labels = target
        return _result(job, statistics, labels=labels)


@dataclass
class _Steps:
    """Progress over two phases: ``first`` steps (blocks), then ``second`` (chunks)."""

    progress: Progress | None
    n_first: int
    n_second: int

    def first(self, done: int, _total: int) -> None:
        if self.progress is not None:
            self.progress(done, self.n_first + self.n_second)

    def second(self, done: int, _total: int) -> None:
        if self.progress is not None:
            self.progress(self.n_first + done, self.n_first + self.n_second)


def _n_chunks(job: _Job, chunks: tuple | None) -> int:
    """The output's chunks (0 when nothing is written)."""
    if chunks is None:
        return 0
    shape = (*job.plan.grid.lead, *job.plan.grid.plane)
    return math.prod(-(-n // c) for n, c in zip(shape, chunks))


def _stitched(job: _Job, block: Callable, statistics: ImageStatistics, strip_width: int,
              progress: Progress):
    """Segment every block into a temporary zarr; return the lazy, stitched labels."""
    import dask
    import zarr

    grid = job.plan.grid
    blocks = zarr.create_array(store=str(job.folder / "blocks.zarr"),
                               shape=(*grid.lead, *grid.plane), dtype=np.uint32,
                               chunks=(*(1,) * len(grid.lead),
                                       *(b[1] - b[0] if len(b) > 1 else b[0]
                                         for b in grid.bounds)), fill_value=0)
    task = dask.delayed(_labels_task, pure=False)
    tasks = [task(job.raw(key), key, job.plan, block, statistics.planes[key[:-2]], blocks,
                  strip_width, job.local_should_stop()) for key in grid]
    (results,) = job.compute(tasks, progress=progress)
    counts = {key: count for key, (count, _) in zip(grid, results)}
    strips = {name: strip for _, found in results for name, strip in found.items()}
    lookups, n_objects = global_ids(grid, counts, strips)
    dtype = new_labels_dtype(n_objects)
    labels = _relabelled(blocks, grid, {k: v.astype(dtype) for k, v in lookups.items()}, dtype)
    weakref.finalize(blocks, shutil.rmtree, str(job.folder), True)
    return labels


def _relabelled(blocks, grid: BlockGrid, lookups: dict, dtype):
    """The global labels: each block's local labels through its lookup table (lazy)."""
    import dask
    import dask.array as da

    def piece(key: tuple):
        core = grid.core(key)
        task = dask.delayed(_relabel_block, pure=False)(blocks, (*key[:-2], *core), lookups[key])
        shape = tuple(s.stop - s.start for s in core)
        return da.from_delayed(task, shape, dtype)[(np.newaxis,) * len(grid.lead)]

    return _assembled(grid, piece)
