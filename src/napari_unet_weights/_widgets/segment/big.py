"""The Segment widget on a large image: chunked segmentation into a zarr store.

A large image layer (:func:`..common.lazy_layers.is_large`: dask, zarr, multiscale, or more than
:data:`~napari_unet_weights.io.big.LARGE_PIXELS` pixels) is never copied whole. Its
full-resolution data, wrapped by :func:`..common.lazy_layers.as_dask`, goes in the widget's
worker (:func:`segment_to_zarr`) to the core's
:func:`napari_unet_weights.unet.chunked.zarr_labels.segment_to_ome_zarr`, the CLI's writer too:
block by block, the labels stitched across the blocks' faces, written to level 0 of an
OME-Zarr labels image (with the image's scale), the objects counted, then the pyramid's
lower levels (every other pixel: ids stay ids), all under a hidden name renamed once
complete (a failed or cancelled run leaves no store, and an existing one as it was). The
widget then shows a Labels layer that reads the levels lazily: napari loads only the
part it shows, at the level that suits the zoom. No probability layer: the chunked path
does not keep the probabilities.

The store is the one chosen in the "output zarr" row (:class:`ZarrOutput`; a zarr store
there is replaced, a folder that is not one refused), else a new temporary folder, named
in the notification and deleted when Python exits (and at once when the run fails).
Progress: the core's phases (:data:`PHASE_TEXT`: blocks segmented then chunks written,
the count, the pyramid's levels); cancel is polled throughout
(:class:`~napari_unet_weights.runtime.engine.Engine`).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from napari_unet_weights._widgets.common.base import temporary_folder
from napari_unet_weights.io import big as big_io
from napari_unet_weights.runtime.engine import Engine
from napari_unet_weights.runtime.progress import PhaseProgress as Progress

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = ["PHASE_TEXT", "STORE_KEY", "ZarrOutput", "segment_to_zarr", "store_problem",
           "temporary_store"]

#: Layer metadata: the zarr store a Labels layer of the widget reads.
STORE_KEY = "napari_unet_weights_store"
TEMPORARY_TIP = "Empty: a temporary folder, named in the notification, deleted at exit."


class ZarrOutput(QWidget):
    """The "output zarr" row: where a large image's labels go (empty: a temporary folder)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("temporary folder")
        self.edit.setToolTip(f"Large images are segmented into this zarr store. {TEMPORARY_TIP}")
        button = QPushButton("…")
        button.setToolTip("Choose the output zarr")
        button.clicked.connect(lambda: self.choose())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("output zarr"))
        row.addWidget(self.edit, 1)
        row.addWidget(button)

    @property
    def path(self) -> Path | None:
        """The chosen store, or None for a temporary one."""
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def choose(self, path: str | Path | None = None) -> None:
        """Use ``path`` (asked with a file dialog when not given); ``.zarr`` is appended."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Output zarr", "", "Zarr store (*.zarr)")
            if not path:
                return
        path = str(path)
        self.edit.setText(path if path.endswith(".zarr") else f"{path}.zarr")


def store_problem(path: Path, viewer: napari.viewer.Viewer, own: Layer | None) -> str | None:
    """What keeps ``path`` from being written, or None.

    ``own``: the image's output labels layer, which the run replaces (it may read
    ``path``); any other layer reading it keeps it from being replaced.
    """
    try:
        big_io.check_output_store(path, overwrite=True)
    except OSError as error:
        return f"{error} Choose another output zarr."
    reader = next((layer for layer in viewer.layers if layer is not own
                   and layer.metadata.get(STORE_KEY) == str(path.resolve())), None)
    if reader is not None:
        return (f"{path} is read by layer '{reader.name}': choose another output zarr, or "
                "remove that layer first.")
    return None


def temporary_store(name: str) -> Path:
    """A store in a new temporary folder (deleted when Python exits), named after ``name``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "image"
    return temporary_folder() / f"{stem}_labels.zarr"


#: The status line of each phase of :func:`...unet.chunked.zarr_labels.segment_to_ome_zarr`.
PHASE_TEXT = {"segmentation": "Segmenting (blocks, then writing)",
              "objects counted": "Counting the objects",
              "pyramid": "Writing the pyramid levels"}


def segment_to_zarr(write: Callable, request: Any, model: Any, use_gpu: bool | None,
                    progress: Progress, should_stop: Callable[[], bool]) -> Any:
    """Worker body of a large image: the core's chunked segmentation into ``request.store``.

    Parameters
    ----------
    write : callable
        :func:`napari_unet_weights.unet.chunked.zarr_labels.segment_to_ome_zarr` (atomic store,
        labels zarr, count, pyramid).
    request : segment._Request
        The run's inputs: ``image`` (dask), ``rgb`` (whether its last axis holds
        channels), ``scale``, ``store``, ``temporary``, ``block_shape``, and the options
        of an in-memory run.
    model : UNetModel
        The loaded model.
    use_gpu : bool or None
        As for the core.
    progress : callable
        ``progress(done, total, phase)``, ``phase`` a status text (:data:`PHASE_TEXT`).
    should_stop : callable
        Returns True once the user cancelled.

    Returns
    -------
    ZarrLabels
        The store's levels (level 0 first), the number of objects and of missing pixels.

    Raises
    ------
    PredictionCancelled
        On cancel. Whatever the error, nothing is left at ``request.store`` (nor its
        temporary folder).
    """
    store = request.store
    try:
        return write(request.image, model, store, engine=Engine(should_stop=should_stop),
                     rgb=request.rgb, transforms=[{"type": "scale",
                                                   "scale": list(request.scale)}],
                     on_phase=lambda phase: progress(0, 0, PHASE_TEXT[phase]),
                     progress=lambda done, total, phase: progress(done, total,
                                                                  PHASE_TEXT[phase]),
                     tile_shape=request.tile_shape, use_gpu=use_gpu, tta=request.tta,
                     block_shape=request.block_shape, **request.postprocess)
    except BaseException:
        if request.temporary:
            shutil.rmtree(store.parent, ignore_errors=True)
        raise
