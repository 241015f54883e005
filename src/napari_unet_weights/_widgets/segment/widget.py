"""The "Segment" dock widget: the weighted U-Net on an Image layer, as instance labels.

The widget is a thin shell around the inference core's
:func:`napari_unet_weights.unet.predict.infer` (probabilities, labels and missing pixels
from one run): Run hands the picked image's
data and the controls to a background worker (if the layer gets new data meanwhile, the
result is dropped and nothing is added), which runs them on a new thread
(:func:`~napari_unet_weights.unet.device.call_in_new_thread`: safe for TensorFlow's
pybind11 bindings, unlike a reused pool thread), imports Keras on the chosen backend
(only then; :class:`~..common.backend_choice.BackendChoice`), loads
the model file once, predicts tile batch by tile batch (progress, cancel between
batches) and builds the labels. On the GUI thread the result goes to two layers named
after the image, a probability Image layer and a Labels layer, with the image's
transform; re-running updates them in place. A model's recorded score and
post-processing defaults are read from its file without Keras
(:class:`~..common.model_choice.ModelChoice`), so the widget opens at once; "Export…"
beside the picker writes the chosen model (the bundled one, a ``.keras`` file or a package
we wrote, exported again) as a bioimage.io package (:mod:`..common.export_model`). "Add to
training set" copies the image and its corrected labels (whole, the view or a rectangle:
:mod:`..common.snapshots`) into the Train U-Net widget's training set.

A large image (dask, zarr, multiscale or more than
:data:`~..common.lazy_layers.LARGE_PIXELS` pixels) is never copied: the same worker segments it
block by block into a zarr store, chosen in the "output zarr" row or temporary, and the
labels layer reads that store lazily (:mod:`.big`). The output layers and the
hand-offs are :class:`~.outputs.SegmentOutputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Image, Labels
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QVBoxLayout,
)

from napari_unet_weights._widgets.common.backend_choice import BackendChoice
from napari_unet_weights._widgets.common.base import RunWidget, user_message
from napari_unet_weights._widgets.common.controls import push_button, set_row_visible, spin_box
from napari_unet_weights._widgets.common.export_model import ModelExport, chosen_model
from napari_unet_weights._widgets.common.layer_roles import is_plugin_output
from napari_unet_weights._widgets.common.lazy_layers import as_dask, is_large
from napari_unet_weights._widgets.common.model_choice import ModelChoice
from napari_unet_weights._widgets.common.snapshots import REGIONS
from napari_unet_weights._widgets.common.workers import Job
from napari_unet_weights._widgets.segment.big import (
    ZarrOutput,
    segment_to_zarr,
    store_problem,
    temporary_store,
)
from napari_unet_weights._widgets.segment.diameter_choice import DiameterChoice
from napari_unet_weights._widgets.segment.outputs import SegmentOutputs
from napari_unet_weights.runtime.progress import Cancelled
from napari_unet_weights.unet.device import NO_GPU, call_in_new_thread
from napari_unet_weights.unet.model_cache import ModelFile, is_cached
from napari_unet_weights.unet.model_file import BUNDLED_MODEL
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.preprocess import guess_channels, missing_data_message

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = ["SegmentWidget"]

PROGRESS_DELAY_MS = 100
TILE_CHOICES = ("auto", "256", "512", "1024", "2048")
NO_GPU_TIP = NO_GPU
UNKNOWN_GPU_TIP = (
    "Predict on the GPU when the backend sees one (checked on the first run, when "
    "the backend is loaded)."
)
TTA_TIP = (
    "Test-time augmentation: run the network on each tile in 8 orientations (4 rotations "
    "by 90° × a mirror) and average the probabilities, turned back. About 8× slower; "
    "usually a little more accurate."
)
TEMPORARY_NOTE = (", a temporary folder deleted when napari quits: choose an output zarr to "
                  "keep them.")


# -- the prediction core, imported only in the worker -------------------------------------
@dataclass(frozen=True)
class _Core:
    """The core functions a run uses (a seam for tests)."""

    load_model: Any
    infer: Any  #: :func:`~napari_unet_weights.unet.predict.infer` (in memory)
    #: :func:`~napari_unet_weights.unet.chunked.zarr_labels.segment_to_ome_zarr`
    segment_to_ome_zarr: Any
    device_name: Any
    gpu_available: Any


def _load_core() -> _Core:
    """Import Keras (on the backend chosen, see :mod:`~..common.backend_choice`) and the
    prediction core.

    Raises
    ------
    ImportError
        If the backend is not installed (the message gives the pip command).
    """
    from napari_unet_weights.unet.chunked.zarr_labels import segment_to_ome_zarr
    from napari_unet_weights.unet.device import device_name, gpu_available, keras_or_error
    from napari_unet_weights.unet.model_cache import load_cached
    from napari_unet_weights.unet.predict import infer

    keras_or_error()
    return _Core(load_model=load_cached, infer=infer, segment_to_ome_zarr=segment_to_ome_zarr,
                 device_name=device_name, gpu_available=gpu_available)


# -- one run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Request:
    """Everything a run needs, snapshotted on the GUI thread."""

    image: Any
    rgb: bool | None
    model_path: Path
    model_key: tuple
    tile_shape: tuple[int, int] | None
    use_gpu: bool | None
    check_gpu: bool
    postprocess: dict
    tta: bool = False
    store: Path | None = None  #: a large image: the zarr store to segment it into
    scale: tuple = ()  #: a large image: the layer's scale, written into the store
    temporary: bool = False  #: the store is in a temporary folder of its own
    block_shape: int | None = None  #: a large image's blocks (None: the core's default)
    diameter: float | str | None = None  #: the nuclei's diameter (None: as trained)


@dataclass
class _Outcome:
    """What a run hands back to the GUI thread."""

    model: Any
    model_key: tuple
    probability: np.ndarray | None  #: None for a large image
    labels: Any  #: an array, or a large image's levels (dask arrays reading ``store``)
    n_objects: int
    seconds: float
    device: str
    gpu: bool | None = None
    load_seconds: float = 0.0
    n_missing: int = 0
    n_pixels: int = 0  #: the image's pixels (what ``n_missing`` is out of)
    store: Path | None = None
    temporary: bool = False
    sizing: Any = None  #: the nucleus diameter used (a diameter was asked for)


def _foreground(probabilities: np.ndarray) -> np.ndarray:
    """The object (2 classes) or interior (3 classes) probability: class 1, float32."""
    return np.ascontiguousarray(probabilities[..., 1], dtype=np.float32)


def _in_memory(core: _Core, request: _Request, model: Any, use_gpu: bool | None,
               progress: Any, should_stop: Any) -> Any:
    """Predict and label an image in memory: one run of the core's
    :func:`~napari_unet_weights.unet.predict.infer`, which gives the labels, the
    probabilities, the missing pixels and (with a nucleus diameter) the sizing."""
    return core.infer(request.image, model, probabilities=True, rgb=request.rgb,
                      tile_shape=request.tile_shape, progress=progress,
                      should_stop=should_stop, use_gpu=use_gpu, tta=request.tta,
                      diameter=request.diameter, **request.postprocess)


def _run_segmentation(
    request: _Request, model: Any, progress: Any, should_stop: Any
) -> _Outcome:
    """Worker body: load the core (Keras) and the model if needed, predict, label.

    A large image (``request.store`` set) is segmented block by block into the store
    (:func:`.big.segment_to_zarr`).

    Parameters
    ----------
    request : _Request
        The run's inputs.
    model : UNetModel or None
        The model loaded by an earlier run of the same file, or None to load it.
    progress : callable
        ``progress(done, total)``, called after each batch of tiles (a large image:
        ``progress(done, total, phase)``).
    should_stop : callable
        Returns True once the user cancelled.

    Returns
    -------
    _Outcome
    """
    core = _load_core()
    gpu = bool(core.gpu_available()) if request.check_gpu else None
    use_gpu = request.use_gpu if gpu is None else bool(request.use_gpu is not False and gpu)
    start = perf_counter()
    if model is None:
        model = core.load_model(request.model_path)
    loaded = perf_counter()
    if request.store is None:
        result = _in_memory(core, request, model, use_gpu, progress, should_stop)
        labels, probability, sizing = result.labels, _foreground(result.probabilities), \
            result.sizing
        n_objects = int(labels.max()) if labels.size else 0
    else:
        result = segment_to_zarr(core.segment_to_ome_zarr, request, model, use_gpu, progress,
                                 should_stop)
        labels, probability, sizing, n_objects = result.levels, None, None, result.n_objects
    return _Outcome(
        model=model, model_key=request.model_key, probability=probability, labels=labels,
        n_objects=n_objects, seconds=perf_counter() - loaded,
        device=str(core.device_name(use_gpu)), gpu=gpu,
        load_seconds=loaded - start if loaded - start > 0.05 else 0.0,
        n_missing=result.n_missing, n_pixels=result.n_pixels,
        store=request.store, temporary=request.temporary, sizing=sizing,
    )


# -- the widget ---------------------------------------------------------------------------------
class SegmentWidget(SegmentOutputs, RunWidget):
    """Dock widget segmenting an Image layer with the weighted U-Net.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose Image layers are offered and where the results are shown.

    Attributes
    ----------
    probability_layer, labels_layer : napari.layers.Layer or None
        The output layers of the last finished run.

    Notes
    -----
    ``segmented`` is emitted with the new Labels layer after each finished run.
    Outputs: ``"<image> probability"`` (object / interior probability, 0–1) and
    ``"<image> labels"`` (napari's numbering, ``"<image> labels [1]"``, when another
    layer has that name; a re-run keeps the names), both with the image's scale and
    translate; a large image gets the labels only, read lazily from the zarr store the
    run wrote (``block_shape``: its blocks, None for the core's default). Keras and its
    backend ("backend": :class:`~..common.backend_choice.BackendChoice`) are imported in
    the worker of the first run; until then "Use GPU" means "if the backend sees one".
    "Nucleus diameter (px)" (:class:`~.diameter_choice.DiameterChoice`): as trained, auto
    or a number; with one, the run is
    :func:`~napari_unet_weights.unet.sizing.segment_at_diameter` (in-memory images
    only) and the status line ends with the diameter used.
    """

    TITLE = "Segment"
    segmented = Signal(object)

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, 0, PROGRESS_DELAY_MS)
        self.probability_layer: Image | None = None
        self.labels_layer: Labels | None = None
        self._outputs: dict[int, tuple[Image, Layer | None, Layer | None]] = {}
        self._gpu: bool | None = None
        self.block_shape: int | None = None
        self._build_layout()
        self._watch_viewer()
        self._refresh_choices()
        self._pick_active_image()
        self.model_choice.reread()

    # -- construction ------------------------------------------------------------------
    def _build_layout(self) -> None:
        self._build_status(cancel=self.cancel)
        self.cancel_button.setToolTip("Stop after the current batch of tiles; nothing is added")
        form = QFormLayout()
        form.addRow("image", self._build_image_picker())
        self.model_choice = ModelChoice(BUNDLED_MODEL)
        self.model_choice.changed.connect(self._on_model_changed)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_choice, 1)
        form.addRow("model", model_row)
        self._build_parameters(form)
        self.exporter = ModelExport(self.TITLE, partial(chosen_model, self.model_choice),
                                    self.backend_choice)
        model_row.addWidget(self.exporter.button, 0, Qt.AlignmentFlag.AlignTop)
        run_row = QHBoxLayout()
        self.run_button = push_button("Run", self.run, "Segment the image (in the background)")
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.exporter)  # "Export…"'s status, progress and Cancel
        layout.addLayout(self._build_handoff_row())
        layout.addLayout(self._build_snapshot_row())
        self._set_progress_visible(False)

    def _build_image_picker(self):
        self.image_combo = ComboBox(choices=self._image_choices)
        self.image_combo.changed.connect(self._update_enabled)
        return self.image_combo.native

    def _build_parameters(self, form: QFormLayout) -> None:
        self.tile_combo = QComboBox()
        self.tile_combo.addItems(TILE_CHOICES)
        self.tile_combo.setToolTip(
            "Side of the square tiles the image is cut into; auto: chosen from free memory")
        self.threshold_spin = spin_box(
            0.0, 1.0, step=0.05, decimals=3,
            tooltip="Foreground threshold: p(object) (2 classes) or 1 − p(background)")
        self.seed_spin = spin_box(
            0.0, 1.0, step=0.05, decimals=3,
            tooltip="3 classes: watershed seeds where p(interior) exceeds this")
        self.min_size_spin = spin_box(0, 10**7, tooltip="Objects with fewer pixels are removed")
        self.expand_spin = spin_box(
            0, 100, tooltip="2 classes: grow objects into the gaps (pixels)")
        self.fill_holes_checkbox = QCheckBox("fill holes")
        self.gpu_checkbox = QCheckBox("Use GPU")
        self.gpu_checkbox.setChecked(True)
        self.gpu_checkbox.setToolTip(UNKNOWN_GPU_TIP)
        self.tta_checkbox = QCheckBox("Test-time augmentation (8× slower)")
        self.tta_checkbox.setChecked(False)
        self.tta_checkbox.setToolTip(TTA_TIP)
        self.diameter_choice = DiameterChoice()
        form.addRow("tile size", self.tile_combo)
        form.addRow("Nucleus diameter (px)", self.diameter_choice)
        form.addRow("threshold", self.threshold_spin)
        form.addRow("seed threshold", self.seed_spin)
        form.addRow("min size (px)", self.min_size_spin)
        form.addRow("expand (px)", self.expand_spin)
        form.addRow(self.fill_holes_checkbox)
        form.addRow(self.tta_checkbox)
        form.addRow(self.gpu_checkbox)
        self.backend_choice = BackendChoice()
        form.addRow("backend", self.backend_choice)
        self.output_zarr = ZarrOutput()  # a row of its own, label included
        form.addRow(self.output_zarr)
        self._form = form

    def _build_handoff_row(self) -> QHBoxLayout:
        self.weight_map_button = push_button(
            "→ Weight map", self.send_to_weight_map,
            "Show the weight map of the predicted labels")
        self.evaluate_button = push_button(
            "→ Evaluate", self.send_to_evaluate,
            "Score the predicted labels against a ground-truth Labels layer")
        row = QHBoxLayout()
        row.addWidget(self.weight_map_button)
        row.addWidget(self.evaluate_button)
        return row

    def _build_snapshot_row(self) -> QHBoxLayout:
        self.snapshot_button = push_button(
            "Add to training set", self.add_to_training_set,
            "Copy the image and its corrected labels into the Train U-Net widget's training "
            "set (correct the labels first with napari's paint, fill and erase tools)")
        self.region_combo = QComboBox()
        self.region_combo.addItems(REGIONS)
        self.region_combo.setToolTip(
            "What to add: the whole image, the part the canvas shows, or the selected (else "
            "the last) rectangle of a Shapes layer")
        row = QHBoxLayout()
        row.addWidget(self.snapshot_button, 1)
        row.addWidget(self.region_combo)
        return row

    # -- layer picker ------------------------------------------------------------------
    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return [
            (layer.name, layer) for layer in self.viewer.layers
            if isinstance(layer, Image) and not is_plugin_output(layer)
        ]

    def _refresh_choices(self, _event: Any = None) -> None:
        self.image_combo.reset_choices()
        self._update_enabled()

    def _pick_active_image(self) -> None:
        active = self.viewer.layers.selection.active
        if isinstance(active, Image) and not is_plugin_output(active):
            self.image_combo.value = active

    def _forget_layer(self, layer: Layer) -> None:
        self._outputs.pop(id(layer), None)
        if layer is self.labels_layer:
            self.labels_layer = None
        if layer is self.probability_layer:
            self.probability_layer = None

    @property
    def image_layer(self) -> Image | None:
        """The Image layer picked."""
        return self.image_combo.value

    @image_layer.setter
    def image_layer(self, layer: Image) -> None:
        self.image_combo.value = layer

    # -- model ---------------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        """The model file picked (the bundled model's path for the bundled choice)."""
        return self.model_choice.path

    def choose_model_file(self, path: str | Path | None = None) -> None:
        """Use a ``.keras`` model file (asked with a file dialog when no path is given).

        Parameters
        ----------
        path : str or pathlib.Path, optional
            The model file. Its metadata is read at once (no Keras); a file that
            is not a model is reported by a notification.
        """
        self.model_choice.choose_file(path)
        if self.model_choice.error is not None:
            self._report(self.model_choice.error)

    def _on_model_changed(self) -> None:
        """The picked model's metadata was read: reset the post-processing to its record."""
        metadata = self.model_choice.metadata
        recorded = metadata["postprocess"] if metadata is not None else {}
        self._set_postprocess({**DEFAULT_POSTPROCESS, **recorded})
        self.diameter_choice.set_model(metadata)
        self._update_enabled()

    def _set_postprocess(self, parameters: dict) -> None:
        """Show ``parameters`` (a model's recorded post-processing) in the controls."""
        self.threshold_spin.setValue(float(parameters["threshold"]))
        self.seed_spin.setValue(float(parameters["seed_threshold"]))
        self.min_size_spin.setValue(int(parameters["min_size"]))
        self.expand_spin.setValue(int(parameters["expand"]))
        self.fill_holes_checkbox.setChecked(bool(parameters["fill_holes"]))
        metadata = self.model_choice.metadata
        n_classes = int(metadata.get("n_classes", 3)) if metadata else 3
        set_row_visible(self._form, self.seed_spin, n_classes == 3)
        set_row_visible(self._form, self.expand_spin, n_classes == 2)

    def postprocess(self) -> dict:
        """The post-processing parameters the controls ask for (``to_instances`` kwargs)."""
        return {
            "threshold": float(self.threshold_spin.value()),
            "seed_threshold": float(self.seed_spin.value()),
            "min_size": int(self.min_size_spin.value()),
            "fill_holes": bool(self.fill_holes_checkbox.isChecked()),
            "expand": int(self.expand_spin.value()),
        }

    @property
    def tile_shape(self) -> tuple[int, int] | None:
        """The tile shape asked for; None: automatic."""
        text = self.tile_combo.currentText()
        return None if text == "auto" else (int(text), int(text))

    # -- running ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a run's thread is alive (also one being cancelled)."""
        return self._runner.busy

    def refresh(self, _value: Any = None) -> None:
        """Re-read the model file's metadata (nothing runs until Run is pressed)."""
        self.model_choice.reread()

    def run(self) -> None:
        """Segment the picked image in the background (Run).

        Problems found before anything runs (no image, a model file that is not one,
        an output zarr that cannot be written) are reported by a napari notification.
        """
        if self._closed:
            return
        if self.model_choice.metadata is None:  # the file may have been installed or fixed
            self.model_choice.reread()
        self._runner.request(self._prepare_job)

    def _input_problem(self, image: Image | None) -> str | None:
        """What keeps a run from starting, or None."""
        if image is None:
            return "Add or open an Image layer first."
        if self.model_choice.error is not None:
            return self.model_choice.error
        if self.diameter_choice.value() is not None and is_large(image):
            return ("Nucleus diameter: not available for large images (segmented block by "
                    "block): resize the image first, or choose 'as trained'.")
        return self.diameter_choice.problem() or self.backend_choice.problem()

    def _prepare_job(self) -> Job | None:
        """Runs on the GUI thread when no run is alive: snapshot what the worker needs."""
        image = self.image_layer
        problem = self._input_problem(image)
        if problem is not None:
            self._report(problem)
            return None
        path = self.model_path
        try:
            key = ModelFile.of(path)
        except OSError as error:
            self._report(user_message(error))
            return None
        request = _Request(
            image=image.data, rgb=True if image.rgb else None, model_path=path, model_key=key,
            tile_shape=self.tile_shape, use_gpu=self._use_gpu(), check_gpu=self._gpu is None,
            postprocess=self.postprocess(), tta=self.tta_checkbox.isChecked(),
            diameter=self.diameter_choice.value(),
        )
        if is_large(image):
            request = self._chunked_request(image, request)
            if request is None:
                return None
        model = None  # loaded in the worker, through the one model cache (load_cached)
        run_id, stop = self._begin_run()
        self.progress_bar.setRange(0, 0)
        self._set_status(f"Segmenting '{image.name}'…" if is_cached(key) else
                         f"Loading the model and segmenting '{image.name}'…")
        return Job(
            work=partial(call_in_new_thread, self.backend_choice.bound(_run_segmentation),
                         request, model, self._progress_callback(run_id), stop.is_set),
            on_result=partial(self._on_result, image, image.data, run_id),
            on_error=partial(self._on_error, run_id),
        )

    def _chunked_request(self, image: Image, request: _Request) -> _Request | None:
        """``request`` for a large image: its full resolution, wrapped (never copied), and
        the zarr store to write; None (and a notification) if the store cannot be used."""
        chosen = self.output_zarr.path
        own = self.labels_of(image)
        problem = None if chosen is None else store_problem(chosen, self.viewer, own)
        if problem is not None:
            self._report(problem)
            return None
        full = image.data[0] if image.multiscale else image.data
        channels = bool(image.rgb) or guess_channels(tuple(full.shape))
        return replace(request, image=as_dask(full, channels), rgb=channels,
                       scale=tuple(float(s) for s in image.scale), temporary=chosen is None,
                       store=chosen or temporary_store(image.name),
                       block_shape=self.block_shape)

    def _use_gpu(self) -> bool | None:
        """``use_gpu`` for the core: the box, or None (automatic) while a GPU is unknown."""
        if not self.gpu_checkbox.isChecked():
            return False
        return True if self._gpu else None

    def cancel(self) -> None:
        """Stop the run after the current batch of tiles; the viewer is left as it was."""
        if not self._runner.waiting:
            return
        self._stop.set()
        self._runner.cancel()
        self._set_status("Cancelled: no layer was added or changed.")

    def _on_progress(self, done: int, total: int, phase: str | None = None) -> None:
        """A report of the core's progress callback (after each batch of tiles; a large
        image: each block, chunk or region of a ``phase``, total 0 when unknown)."""
        if self._stop.is_set():
            return
        done, total = int(done), int(total)
        self.progress_bar.setRange(0, max(total, 1) if phase is None or total else 0)
        self.progress_bar.setValue(min(done, total))
        if phase is None:
            self._set_status(f"Predicting: {done} / {total} tile batches…")
        else:
            self._set_status(f"{phase}: {done} / {total}…" if total else f"{phase}…")

    def _on_result(self, image: Image, snapshot: Any, run_id: int, outcome: _Outcome) -> None:
        if not self._is_current(run_id):
            return
        if outcome.gpu is not None:
            self._set_gpu_known(outcome.gpu)
        if image not in self.viewer.layers:
            self._set_status(f"'{image.name}' was removed while it was segmented.")
            return
        if image.data is not snapshot:
            self._report(f"'{image.name}' got new data while it was segmented: nothing was "
                         "added or changed. Run again.")
            return
        self._show(image, outcome)
        loading = f" (model loaded in {outcome.load_seconds:.1f} s)" if outcome.load_seconds else ""
        sizing = "" if outcome.sizing is None else f" · {outcome.sizing.describe()}"
        self._set_status(f"{outcome.n_objects} objects · {outcome.seconds:.2f} s on "
                         f"{outcome.device}{loading}{sizing}")
        if outcome.store is not None:
            self._notify(f"'{image.name}': labels written to {outcome.store}"
                         + (TEMPORARY_NOTE if outcome.temporary else "."), "info")
        if outcome.n_missing:
            self._notify(f"'{image.name}': "
                         + missing_data_message(outcome.n_missing, outcome.n_pixels),
                         "warning")
        self._problem = None
        self._update_enabled()
        self.segmented.emit(self.labels_layer)

    def _on_error(self, run_id: int, error: Exception) -> None:
        if not self._is_current(run_id):
            return
        if isinstance(error, Cancelled):
            self._set_status("Cancelled: no layer was added or changed.")
            return
        self._report(f"Segmentation failed: {user_message(error)}")

    def _set_gpu_known(self, available: bool) -> None:
        """Once the backend has said whether it sees a GPU: check or disable the box."""
        first = self._gpu is None
        self._gpu = available
        if not available:
            self.gpu_checkbox.setChecked(False)
            self.gpu_checkbox.setEnabled(False)
            self.gpu_checkbox.setToolTip(NO_GPU_TIP)
        else:
            self.gpu_checkbox.setEnabled(True)
            self.gpu_checkbox.setToolTip("Predict on the GPU the backend sees")
            if first:
                self.gpu_checkbox.setChecked(True)

    def _on_busy(self, busy: bool) -> None:
        super()._on_busy(busy)
        self._update_enabled()

    def _update_enabled(self, _value: Any = None) -> None:
        waiting = self._runner.waiting
        self.run_button.setEnabled(not waiting and self.image_layer is not None)
        has_labels = self.labels_layer is not None and self.labels_layer in self.viewer.layers
        self.weight_map_button.setEnabled(has_labels)
        self.evaluate_button.setEnabled(has_labels)
        image = self.image_layer
        self.snapshot_button.setEnabled(image is not None and self.labels_of(image) is not None)
        self.output_zarr.setVisible(image is not None and is_large(image))
        self.exporter.set_available(self.model_choice.error is None)
