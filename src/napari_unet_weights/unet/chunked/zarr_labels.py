"""Segment a big image into an OME-Zarr labels image: the one writer of the CLI and the widget.

:func:`segment_to_ome_zarr` is what ``napari-unet-weights predict`` does for a zarr
output (``_cli_big.write_labels``) and what the Segment widget does for a large layer
(``_widgets._segment_big.segment_to_zarr``):

1. an **atomic store** (:func:`...io.big.atomic_store`): everything is written under a
   hidden name beside ``store`` and renamed once complete, so a failed or cancelled run
   leaves no store, and an existing one as it was;
2. the **labels zarr** (:func:`...io.big.create_labels_zarr`: OME-Zarr 0.5, level 0 with
   the input's chunking, axes and scale), filled by chunked segmentation
   (:func:`..predict.infer` with ``out``: block by block on :mod:`.big`, stitched);
3. the objects **counted** (the largest id: ids are 1..N);
4. the **pyramid** (:func:`...io.big.write_pyramid`: every second pixel, ids stay ids).

Everything runs on the given :class:`...runtime.engine.Engine` (threads or a cluster; its
``should_stop`` cancels, raising :class:`...runtime.progress.Cancelled`). Each phase is announced
by ``on_phase(name)`` (the names of :data:`PHASES`); ``progress(done, total, name)``
reports within the segmentation and the pyramid (None: the engine's own progress).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...io import big as big_io
from ...runtime.engine import Engine
from ...runtime.progress import PhaseProgress, Progress
from ..preprocess import guess_channels

__all__ = ["COUNTING", "PHASES", "PYRAMID", "SEGMENTATION", "ZarrLabels",
           "segment_to_ome_zarr"]

#: The phases, in order, as ``on_phase`` and ``progress`` name them.
SEGMENTATION, COUNTING, PYRAMID = PHASES = ("segmentation", "objects counted", "pyramid")


@dataclass(frozen=True)
class ZarrLabels:
    """What :func:`segment_to_ome_zarr` wrote.

    Attributes
    ----------
    store : Path
        The OME-Zarr labels image.
    levels : list of dask.array.Array
        Its levels, level 0 first, read lazily (:func:`...io.big.open_pyramid`).
    chunks : tuple of int
        Level 0's chunks.
    n_objects : int
        Objects found (ids 1..N).
    n_missing, n_pixels : int
        Missing (NaN / infinite) pixels of the image, and all its pixels.
    """

    store: Path
    levels: list
    chunks: tuple[int, ...]
    n_objects: int
    n_missing: int
    n_pixels: int


def _announcer(on_phase: Callable[[str], None] | None) -> Callable[[str], None]:
    return (lambda _name: None) if on_phase is None else on_phase


def _phase_progress(progress: PhaseProgress | None, name: str) -> Progress | None:
    """``progress`` for one phase: ``(done, total)`` reported with the phase's name."""
    if progress is None:
        return None
    return lambda done, total: progress(done, total, name)


def segment_to_ome_zarr(image, model, store: str | os.PathLike, *, engine: Engine,
                        rgb: bool | None = None, chunks: Sequence[int] | None = None,
                        axes: Sequence[str] | None = None, transforms: list | None = None,
                        name: str | None = None, temp_beside_store: bool = False,
                        on_phase: Callable[[str], None] | None = None,
                        progress: PhaseProgress | None = None, **options: Any) -> ZarrLabels:
    """Segment ``image`` block by block into the OME-Zarr labels image ``store`` (see module).

    Parameters
    ----------
    image : dask.array.Array
        (..., H, W[, C]), read block by block.
    model : UNetModel, str, path or None
        As in :func:`..predict.segment`.
    store : str or path
        The labels image to write (an existing zarr store there is replaced once the new
        one is complete; a folder that is not one is refused).
    engine : Engine
        Where every step is computed (reused, not closed).
    rgb : bool, optional
        Whether the last axis holds channels (None: :func:`..preprocess.guess_channels`).
    chunks : sequence of int, optional
        Level 0's chunks (default: the image's, one per axis but channels).
    axes, transforms : optional
        Level 0's OME axis names and coordinateTransformations
        (:func:`...io.big.create_labels_zarr`).
    name : str, optional
        The multiscale's name (default: the store's stem).
    temp_beside_store : bool
        Put the blocks' temporary files beside ``store`` (a cluster whose workers see
        the output's folder, not this machine's temporary folder).
    on_phase : callable, optional
        ``on_phase(name)`` when a phase of :data:`PHASES` starts.
    progress : callable, optional
        ``progress(done, total, name)`` within the segmentation and the pyramid; None:
        the engine's own progress.
    **options
        :func:`..predict.infer`'s ``tile_shape``, ``overlap``, ``batch_size``, ``use_gpu``,
        ``tta``, ``block_shape`` and post-processing overrides.

    Returns
    -------
    ZarrLabels

    Raises
    ------
    Cancelled
        When the engine's ``should_stop()`` returns True. Whatever the error, nothing is
        left at ``store`` but what was there before.
    """
    import dask.array as da

    from ..predict import infer

    store = Path(store)
    rgb = guess_channels(tuple(image.shape)) if rgb is None else bool(rgb)
    keep = image.ndim - (1 if rgb else 0)
    chunks = tuple(chunks) if chunks is not None else tuple(c[0] for c in image.chunks[:keep])
    announce = _announcer(on_phase)
    with big_io.atomic_store(store) as partial:
        level0 = big_io.create_labels_zarr(partial, image.shape[:keep], chunks, axes=axes,
                                           transforms=transforms,
                                           name=store.stem if name is None else name)
        announce(SEGMENTATION)
        result = infer(image, model, rgb=rgb, out=level0, scheduler=engine,
                       temp_dir=partial.parent if temp_beside_store else None,
                       progress=_phase_progress(progress, SEGMENTATION), **options)
        announce(COUNTING)
        (count,) = engine.compute(da.from_zarr(level0).max())
        announce(PYRAMID)
        big_io.write_pyramid(partial, compute=engine.compute,
                             progress=_phase_progress(progress, PYRAMID))
    return ZarrLabels(store, big_io.open_pyramid(store), tuple(level0.chunks), int(count),
                      result.n_missing, result.n_pixels)
