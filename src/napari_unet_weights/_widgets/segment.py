"""The "Segment" dock widget: the weighted U-Net on an Image layer, as instance labels.

The widget is a thin shell around :func:`napari_unet_weights.unet.predict.predict` and
:func:`napari_unet_weights.unet.postprocess.to_instances`: Run hands the picked image's
data and the controls to a background worker (if the layer gets new data meanwhile, the
result is dropped and nothing is added), which runs them on a new thread
(:func:`~napari_unet_weights.unet.device.call_in_new_thread`: safe for TensorFlow's
pybind11 bindings, unlike a reused pool thread), imports TensorFlow (only then), loads
the model file once, predicts tile batch by tile batch (progress, cancel between
batches) and builds the labels. On the GUI thread the result goes to two layers named
after the image, a probability Image layer and a Labels layer, with the image's
transform; re-running updates them in place. A model's recorded score and
post-processing defaults are read from its file without TensorFlow
(:class:`~._model_choice.ModelChoice`), so the widget opens at once. "Add to training
set" copies the image and its corrected labels (whole, the view or a drawn rectangle:
:mod:`._snapshots`) into the Train U-Net widget's training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QVBoxLayout,
)

from napari_unet_weights._widgets._base import RunWidget, update_layer, user_message
from napari_unet_weights._widgets._controls import push_button, set_row_visible, spin_box
from napari_unet_weights._widgets._handoff import dock_plugin_widget
from napari_unet_weights._widgets._layer_roles import (
    SEGMENT_OUTPUT_KEY,
    is_plugin_output,
    likely_ground_truth,
    same_shape,
)
from napari_unet_weights._widgets._model_choice import ModelChoice, file_key
from napari_unet_weights._widgets._snapshots import REGIONS, take_snapshot
from napari_unet_weights._widgets._train_data import BadInput
from napari_unet_weights._widgets._workers import Job
from napari_unet_weights.unet.device import call_in_new_thread
from napari_unet_weights.unet.model_file import BUNDLED_MODEL
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.predict import PredictionCancelled
from napari_unet_weights.unet.preprocess import count_missing, missing_data_message

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = ["SegmentWidget"]

PROGRESS_DELAY_MS = 100
TILE_CHOICES = ("auto", "256", "512", "1024", "2048")
PROBABILITY_SUFFIX = " probability"
LABELS_SUFFIX = " labels"
#: Used instead of LABELS_SUFFIX when another layer (e.g. the ground truth) has that name.
PREDICTED_SUFFIX = " predicted labels"
NO_GPU_TIP = "no GPU seen by TensorFlow"
UNKNOWN_GPU_TIP = (
    "Predict on the GPU when TensorFlow sees one (checked on the first run, when "
    "TensorFlow is loaded)."
)
TTA_TIP = (
    "Test-time augmentation: run the network on each tile in 8 orientations (4 rotations "
    "by 90° × a mirror) and average the probabilities, turned back. About 8× slower; "
    "usually a little more accurate."
)


# -- the prediction core, imported only in the worker -------------------------------------
@dataclass(frozen=True)
class _Core:
    """The core functions a run uses (a seam for tests)."""

    load_model: Any
    predict: Any
    to_instances: Any
    device_name: Any
    gpu_available: Any


def _load_core() -> _Core:
    """Import TensorFlow and the prediction core.

    Raises
    ------
    ImportError
        If TensorFlow is not installed (the message says how to install it).
    """
    from napari_unet_weights.unet.device import device_name, gpu_available, keras_or_error
    from napari_unet_weights.unet.model_file import load_model
    from napari_unet_weights.unet.postprocess import to_instances
    from napari_unet_weights.unet.predict import predict

    keras_or_error()
    return _Core(load_model=load_model, predict=predict, to_instances=to_instances,
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


@dataclass
class _Outcome:
    """What a run hands back to the GUI thread."""

    model: Any
    model_key: tuple
    probability: np.ndarray
    labels: np.ndarray
    seconds: float
    device: str
    gpu: bool | None = None
    load_seconds: float = 0.0
    n_missing: int = 0


def _foreground(probabilities: np.ndarray) -> np.ndarray:
    """The object (2 classes) or interior (3 classes) probability: class 1, float32."""
    return np.ascontiguousarray(probabilities[..., 1], dtype=np.float32)


def _run_segmentation(
    request: _Request, model: Any, progress: Any, should_stop: Any
) -> _Outcome:
    """Worker body: load the core (TensorFlow) and the model if needed, predict, label.

    Parameters
    ----------
    request : _Request
        The run's inputs.
    model : UNetModel or None
        The model loaded by an earlier run of the same file, or None to load it.
    progress : callable
        ``progress(done, total)``, called after each batch of tiles.
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
    probabilities = core.predict(
        request.image, model, rgb=request.rgb, tile_shape=request.tile_shape,
        progress=progress, should_stop=should_stop, use_gpu=use_gpu, tta=request.tta,
    )
    labels = core.to_instances(probabilities, n_classes=model.n_classes, **request.postprocess)
    device = str(core.device_name(use_gpu))
    return _Outcome(
        model=model, model_key=request.model_key, probability=_foreground(probabilities),
        labels=labels, seconds=perf_counter() - loaded, device=device, gpu=gpu,
        load_seconds=loaded - start if loaded - start > 0.05 else 0.0,
        n_missing=count_missing(request.image, request.rgb),
    )


# -- the widget ---------------------------------------------------------------------------------
class SegmentWidget(RunWidget):
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
    ``"<image> labels"`` (or ``"<image> predicted labels"`` when another layer has
    that name), both with the image's scale and translate. TensorFlow is imported in
    the worker of the first run; until then "Use GPU" means "if TensorFlow sees one".
    """

    TITLE = "Segment"
    segmented = Signal(object)

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, 0, PROGRESS_DELAY_MS)
        self.probability_layer: Image | None = None
        self.labels_layer: Labels | None = None
        self._loaded: tuple[tuple, Any] | None = None
        self._outputs: dict[int, tuple[Image, Layer | None, Layer | None]] = {}
        self._gpu: bool | None = None
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
        form.addRow("model", self.model_choice)
        self._build_parameters(form)
        run_row = QHBoxLayout()
        self.run_button = push_button("Run", self.run, "Segment the image (in the background)")
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
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
        form.addRow("tile size", self.tile_combo)
        form.addRow("threshold", self.threshold_spin)
        form.addRow("seed threshold", self.seed_spin)
        form.addRow("min size (px)", self.min_size_spin)
        form.addRow("expand (px)", self.expand_spin)
        form.addRow(self.fill_holes_checkbox)
        form.addRow(self.tta_checkbox)
        form.addRow(self.gpu_checkbox)
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
            The model file. Its metadata is read at once (no TensorFlow); a file that
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
        a multiscale image) are reported by a napari notification.
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
        if image.multiscale:
            return f"'{image.name}' is multiscale; multiscale images are not supported yet."
        return None

    def _prepare_job(self) -> Job | None:
        """Runs on the GUI thread when no run is alive: snapshot what the worker needs."""
        image = self.image_layer
        problem = self._input_problem(image)
        if problem is not None:
            self._report(problem)
            return None
        path = self.model_path
        try:
            key = file_key(path)
        except OSError as error:
            self._report(user_message(error))
            return None
        request = _Request(
            image=image.data, rgb=True if image.rgb else None, model_path=path, model_key=key,
            tile_shape=self.tile_shape, use_gpu=self._use_gpu(), check_gpu=self._gpu is None,
            postprocess=self.postprocess(), tta=self.tta_checkbox.isChecked(),
        )
        model = self._loaded[1] if self._loaded is not None and self._loaded[0] == key else None
        run_id, stop = self._begin_run()
        self.progress_bar.setRange(0, 0)
        self._set_status(f"Segmenting '{image.name}'…" if model is not None else
                         f"Loading the model and segmenting '{image.name}'…")
        return Job(
            work=partial(call_in_new_thread, _run_segmentation, request, model,
                         self._progress_callback(run_id), stop.is_set),
            on_result=partial(self._on_result, image, request.image, run_id),
            on_error=partial(self._on_error, run_id),
        )

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

    def _on_progress(self, done: int, total: int) -> None:
        """A report of the core's progress callback (after each batch of tiles)."""
        if self._stop.is_set():
            return
        done, total = int(done), int(total)
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(min(done, total))
        self._set_status(f"Predicting: {done} / {total} tile batches…")

    def _on_result(self, image: Image, snapshot: Any, run_id: int, outcome: _Outcome) -> None:
        if not self._is_current(run_id):
            return
        self._loaded = (outcome.model_key, outcome.model)
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
        n = int(outcome.labels.max()) if outcome.labels.size else 0
        loading = f" (model loaded in {outcome.load_seconds:.1f} s)" if outcome.load_seconds else ""
        self._set_status(f"{n} objects · {outcome.seconds:.2f} s on {outcome.device}{loading}")
        if outcome.n_missing:
            self._notify(f"'{image.name}': "
                         + missing_data_message(outcome.n_missing, outcome.probability.size),
                         "warning")
        self._problem = None
        self._update_enabled()
        self.segmented.emit(self.labels_layer)

    def _on_error(self, run_id: int, error: Exception) -> None:
        if not self._is_current(run_id):
            return
        if isinstance(error, PredictionCancelled):
            self._set_status("Cancelled: no layer was added or changed.")
            return
        self._report(f"Segmentation failed: {user_message(error)}")

    def _set_gpu_known(self, available: bool) -> None:
        """Once TensorFlow has said whether it sees a GPU: check or disable the box."""
        first = self._gpu is None
        self._gpu = available
        if not available:
            self.gpu_checkbox.setChecked(False)
            self.gpu_checkbox.setEnabled(False)
            self.gpu_checkbox.setToolTip(NO_GPU_TIP)
        else:
            self.gpu_checkbox.setEnabled(True)
            self.gpu_checkbox.setToolTip("Predict on the GPU TensorFlow sees")
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

    # -- output layers ---------------------------------------------------------------------
    def _show(self, image: Image, outcome: _Outcome) -> None:
        """Write the outcome into the image's output layers (added if missing)."""
        _, probability, labels = self._outputs.get(id(image), (image, None, None))
        probability = self._find_output(image, "probability", probability)
        labels = self._find_output(image, "labels", labels)
        probability = self._write_probability(image, probability, outcome.probability)
        labels = self._write_labels(image, labels, outcome.labels)
        self._outputs[id(image)] = (image, probability, labels)
        self.probability_layer, self.labels_layer = probability, labels

    def _find_output(self, image: Image, kind: str, tracked: Layer | None) -> Layer | None:
        """The existing output layer of ``image`` (tracked, or marked in its metadata)."""
        if tracked is not None and tracked in self.viewer.layers:
            return tracked
        mark = {"source": image.name, "output": kind}
        return next((layer for layer in self.viewer.layers
                     if layer.metadata.get(SEGMENT_OUTPUT_KEY) == mark), None)

    def _output_name(self, image: Image, kind: str, layer: Layer | None) -> str:
        if kind == "probability":
            return f"{image.name}{PROBABILITY_SUFFIX}"
        name = f"{image.name}{LABELS_SUFFIX}"
        taken = name in self.viewer.layers and self.viewer.layers[name] is not layer
        return f"{image.name}{PREDICTED_SUFFIX}" if taken else name

    def _write_probability(self, image: Image, layer: Image | None, data: np.ndarray) -> Image:
        name = self._output_name(image, "probability", layer)
        if layer is not None:
            update_layer(layer, image, data=data, name=name)
            return layer
        return self._add_output(
            self.viewer.add_image, data, image, active=None, name=name,
            colormap="inferno", blending="additive", contrast_limits=(0.0, 1.0), opacity=0.6,
            metadata={SEGMENT_OUTPUT_KEY: {"source": image.name, "output": "probability"}},
        )

    def _write_labels(self, image: Image, layer: Labels | None, data: np.ndarray) -> Labels:
        name = self._output_name(image, "labels", layer)
        if layer is not None:
            update_layer(layer, image, data=data, name=name)
            return layer
        return self._add_output(
            self.viewer.add_labels, data, image, active=None, name=name,
            metadata={SEGMENT_OUTPUT_KEY: {"source": image.name, "output": "labels"}},
        )

    # -- hand-offs --------------------------------------------------------------------------
    def send_to_weight_map(self) -> Any:
        """Dock (or raise) the "Weight map" widget showing the predicted labels.

        Returns
        -------
        WeightMapWidget or None
            The widget, or None if there is no prediction yet.
        """
        from napari_unet_weights._widgets.weight_map import WeightMapWidget

        widget, labels = self._hand_off(WeightMapWidget)
        if widget is not None:
            widget.layer_combo.value = labels
        return widget

    def send_to_evaluate(self) -> Any:
        """Dock (or raise) the "Evaluate" widget: the predicted labels against ground truth.

        The ground truth is another Labels layer of the same shape (one whose name
        suggests annotations first), or none.

        Returns
        -------
        EvaluateWidget or None
            The widget, or None if there is no prediction yet.
        """
        from napari_unet_weights._widgets.evaluate import EvaluateWidget

        widget, labels = self._hand_off(EvaluateWidget)
        if widget is not None:
            widget.set_layers(self.ground_truth_for(labels), labels)
        return widget

    def ground_truth_for(self, labels: Labels) -> Labels | None:
        """A Labels layer to score ``labels`` against: same shape, not a plugin output.

        Parameters
        ----------
        labels : napari.layers.Labels
            The predicted labels.

        Returns
        -------
        napari.layers.Labels or None
        """
        layers = [layer for layer in self.viewer.layers
                  if isinstance(layer, Labels) and not is_plugin_output(layer)]
        return likely_ground_truth(same_shape(labels, layers))

    def labels_of(self, image: Image) -> Labels | None:
        """The predicted (maybe corrected) Labels layer of ``image``, if still in the viewer."""
        tracked = self._outputs.get(id(image), (None, None, None))[2]
        return self._find_output(image, "labels", tracked)

    def release_labels(self, image: Image) -> Labels | None:
        """Stop treating the labels of ``image`` as output: the next run adds new ones, so
        a re-run never overwrites corrections (the layer keeps its data and name)."""
        labels = self.labels_of(image)
        if labels is not None:
            labels.metadata = {key: value for key, value in labels.metadata.items()
                               if key != SEGMENT_OUTPUT_KEY}
            self._outputs.pop(id(image), None)
        return labels

    def add_to_training_set(self, region: str | None = None) -> Any:
        """Copy the image and its corrected labels into the Train U-Net widget's training set.

        Parameters
        ----------
        region : str, optional
            One of :data:`~._snapshots.REGIONS` (default: the one picked): the whole
            image, the part the canvas shows, or a rectangle drawn in a Shapes layer.

        Returns
        -------
        TrainWidget or None
            The Train U-Net widget (docked and raised), or None if nothing was added (a
            notification says why).
        """
        image = self.image_layer
        labels = self.labels_of(image) if image is not None else None
        if labels is None:
            self._report("Segment the image first, then correct its labels.")
            return None
        try:
            snapshot = take_snapshot(self.viewer, image, labels,
                                     region or self.region_combo.currentText())
            train = dock_plugin_widget(self.viewer, "Train U-Net")
            train.add_snapshot(snapshot)
        except BadInput as error:
            self._report(str(error))
            return None
        self._set_status(f"Added '{snapshot.name}' to the training set.")
        return train

    def _hand_off(self, widget_class: type) -> tuple[Any, Labels | None]:
        """The plugin's ``widget_class`` docked and raised, and the labels to hand it.

        ``(None, None)`` (and a notification) if there is no prediction to hand off.
        """
        labels = self.labels_layer
        if labels is None or labels not in self.viewer.layers:
            self._report("Run the segmentation first.")
            return None, None
        return dock_plugin_widget(self.viewer, widget_class.TITLE, widget_class), labels

