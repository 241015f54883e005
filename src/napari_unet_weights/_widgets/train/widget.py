"""The "Train U-Net" dock widget: train or fine-tune the weighted U-Net.

A thin shell around :func:`napari_unet_weights.unet.training.train.train`. The user picks
(image, labels) layer pairs, a folder (:class:`~..common.train_data.DataSource`) holding
``images/`` and ``labels/``, or the training set the Segment widget's "Add to training set"
fills (:class:`~.training_set.TrainingSetList`); starts from scratch or from a model
(:class:`~.start_from.StartFrom`: fine-tuning, within a time budget), sets the
hyperparameters and presses Start (Fine-tune); ``train`` runs in a napari thread worker, on
a thread of its own, on the Keras backend of the "backend" combo
(:class:`~..common.backend_choice.BackendChoice`). Its ``progress`` callback is relayed to
the GUI thread (:class:`~..common.base.RunWidget`) and drives a progress bar, a status line
and a live loss / validation-mAP plot (:class:`~.plot.LossPlot`). Cancel sets the flag that
``train`` polls through ``should_stop``: training stops within a batch and keeps the best
model so far, which Save writes to a ``.keras`` file and "Use this model" hands to the
Segment widget, which segments again with it; "Export…" writes it as a bioimage.io
package (:mod:`.export`). A weight-map preview of the first sample is computed in the
background from :func:`napari_unet_weights.unet.targets.training_weights`.

Keras is imported only in the worker, when training starts, so the widget opens fast;
the widget adds no layer but the preview, and never modifies a layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image
from napari.qt.threading import create_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from napari_unet_weights._widgets.common.backend_choice import BackendChoice
from napari_unet_weights._widgets.common.base import (
    RunWidget,
    keep_active_layer,
    number_text,
    temporary_folder,
    transforms,
    update_layer,
    user_message,
)
from napari_unet_weights._widgets.common.controls import (
    ScientificSpinBox,
    control_value,
    push_button,
    set_control_value,
)
from napari_unet_weights._widgets.common.handoff import dock_plugin_widget
from napari_unet_weights._widgets.common.labels_warning import TrainLabelsWarning
from napari_unet_weights._widgets.common.layer_roles import TRAIN_PREVIEW_KEY
from napari_unet_weights._widgets.common.snapshots import Snapshot, check_side
from napari_unet_weights._widgets.common.train_data import (
    BadInput,
    DataSource,
    PairRow,
    TrainingData,
    preview_work,
)
from napari_unet_weights._widgets.common.workers import Job
from napari_unet_weights._widgets.train.controls import (
    AUGMENT_CONTROLS,
    CHOICE_CONTROLS,
    TrainBar,
    augment_controls,
    config_combo,
    config_spin_box,
    status_text,
)
from napari_unet_weights._widgets.train.export import trained_model_export
from napari_unet_weights._widgets.train.plot import LossPlot
from napari_unet_weights._widgets.train.start_from import StartFrom
from napari_unet_weights._widgets.train.training_set import SnapshotRow, TrainingSetList
from napari_unet_weights.unet.config import TrainConfig, TrainConfigError
from napari_unet_weights.unet.device import call_in_new_thread

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = ["TrainWidget", "status_text"]

#: Debounce of preview updates after a hyperparameter change.
PREVIEW_DEBOUNCE_MS = 250
PROGRESS_DELAY_MS = 300
PREVIEW_SUFFIX = " training weights"


# -- the training core, imported only when needed ------------------------------------------
def _load_train() -> Callable[..., Any]:
    """Import Keras and return :func:`napari_unet_weights.unet.training.train.train`.

    Raises
    ------
    ImportError
        If the backend is not installed (the message gives the pip command).
    """
    from napari_unet_weights.unet.device import keras_or_error
    from napari_unet_weights.unet.training.train import train

    keras_or_error()
    return train


def _run_training(
    source: TrainingData,
    config: TrainConfig,
    options: dict[str, Any],
    progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
) -> Any:
    """Worker body: import the training core (Keras) and train.

    Every parameter goes as a keyword, set by the user: a fine-tuning then runs with
    what the widget shows, also where that equals a default of ``TrainConfig`` (a
    ``config`` argument's default values would get the core's fine-tuning defaults).
    ``options`` are ``initial_model`` and ``finish_within``.
    """
    train = _load_train()
    return train(source.images, source.labels, validation=source.validation,
                 progress=progress, should_stop=should_stop, **options,
                 **dataclasses.asdict(config))


class TrainWidget(RunWidget):
    """Dock widget training the weighted U-Net on layer pairs or a folder.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose Image and Labels layers are offered.

    Attributes
    ----------
    result : TrainingResult or None
        The outcome of the last finished (or cancelled) training: ``result.model`` is
        the trained model, for saving or for a segmentation widget.

    Notes
    -----
    ``trained`` is emitted with the result when a training ends (also when cancelled).
    """

    TITLE = "Train U-Net"
    trained = Signal(object)

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, PREVIEW_DEBOUNCE_MS, PROGRESS_DELAY_MS)
        self.result: Any = None
        self.saved_path: Path | None = None
        self._model_file: Path | None = None
        self._preview: Image | None = None
        self._worker = None
        self._last_batch: dict[str, Any] | None = None
        self._last_epoch: dict[str, Any] | None = None
        self._device: str | None = None
        self._build_layout()
        self.controls = self._parameter_controls()
        self._watch_viewer()
        pair_list = self.data_source.pair_list
        if pair_list.images() and pair_list.labels_like():
            self.add_pair()
        self._update_enabled()
        self._set_status("Pick the training data and press Start.")

    # -- construction ------------------------------------------------------------------
    def _build_layout(self) -> None:
        self._build_status()
        self.progress_bar.setMaximumHeight(6)
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_start_from())
        layout.addWidget(self._build_data_box())
        self.labels_warning = TrainLabelsWarning(self.viewer, self.data_source)
        layout.addWidget(self.labels_warning)
        layout.addWidget(self._build_parameters_box())
        layout.addLayout(self._build_preview_row())
        layout.addLayout(self._build_run_rows())
        layout.addWidget(self.status_label)
        self.plot = LossPlot()
        layout.addWidget(self.plot, 1)
        layout.addLayout(self._build_save_row())
        layout.addWidget(self.exporter)  # "Export…"'s status, progress and Cancel
        self._set_progress_visible(False)

    def _build_start_from(self) -> QWidget:
        self.start_from = StartFrom()
        self.start_from.changed.connect(self._on_start_from_changed)
        box = QGroupBox("Start from")
        QVBoxLayout(box).addWidget(self.start_from)
        return box

    def _build_data_box(self) -> QWidget:
        self.training_set = TrainingSetList()
        self.data_source = DataSource(self.viewer.layers, self.training_set)
        self.data_source.changed.connect(self._on_parameters_changed)
        return self.data_source

    def _build_parameters_box(self) -> QWidget:
        self.classes_combo = QComboBox()
        self.classes_combo.addItem("3 (background / interior / boundary)", 3)
        self.classes_combo.addItem("2 (background / object, 1-px gaps)", 2)
        self.weights_checkbox = QCheckBox("use the U-Net weight map in the loss")
        self.weights_checkbox.setChecked(True)
        self.weights_checkbox.setToolTip("Weight the loss with the U-Net border weight map")
        self.w0_spin = config_spin_box("w0", 1.0, 2)
        self.sigma_spin = config_spin_box("sigma", 0.5, 2)
        self.epochs_spin = config_spin_box("epochs")
        self.steps_spin = config_spin_box("steps_per_epoch")
        self.batch_spin = config_spin_box("batch_size")
        self.patch_spin = config_spin_box("patch_size", 16)
        self.validation_spin = config_spin_box("validation_fraction", 0.05, 2)
        self.lr_spin = ScientificSpinBox()
        self.lr_spin.setRange(1e-7, 1.0)
        self.lr_spin.setValue(TrainConfig.parameter("learning_rate").default)
        self.lr_spin.setToolTip(
            f"{TrainConfig.parameter('learning_rate').help} (arrows double or halve it)")
        self.seed_spin = config_spin_box("seed")
        grid = QGridLayout()
        grid.addWidget(QLabel("classes"), 0, 0)
        grid.addWidget(self.classes_combo, 0, 1, 1, 3)
        grid.addWidget(self.weights_checkbox, 1, 0, 1, 4)
        pairs = (
            ("w0", self.w0_spin, "σ", self.sigma_spin),
            ("epochs", self.epochs_spin, "steps/epoch", self.steps_spin),
            ("batch size", self.batch_spin, "patch size", self.patch_spin),
            ("validation", self.validation_spin, "learning rate", self.lr_spin),
            ("seed", self.seed_spin, None, None),
        )
        for row, (label_a, widget_a, label_b, widget_b) in enumerate(pairs, start=2):
            grid.addWidget(QLabel(label_a), row, 0)
            grid.addWidget(widget_a, row, 1)
            if label_b is not None:
                grid.addWidget(QLabel(label_b), row, 2)
                grid.addWidget(widget_b, row, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        box = QGroupBox("Hyperparameters")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(grid)
        box_layout.addWidget(self._build_advanced())
        for signal in (self.classes_combo.currentIndexChanged, self.weights_checkbox.toggled,
                       self.w0_spin.valueChanged, self.sigma_spin.valueChanged):
            signal.connect(self._on_parameters_changed)
        self.weights_checkbox.toggled.connect(self._update_enabled)
        return box

    def _build_advanced(self) -> QWidget:
        self.depth_spin = config_spin_box("depth")
        self.filters_spin = config_spin_box("base_filters")
        self.batch_norm_checkbox = QCheckBox()
        self.batch_norm_checkbox.setChecked(True)
        self.dropout_spin = config_spin_box("dropout", 0.05, 2)
        self.augment_controls = augment_controls()
        self.patience_spin = config_spin_box("early_stopping_patience")
        self.map_every_spin = config_spin_box("val_map_every")
        self.choice_combos = {name: config_combo(name) for name in CHOICE_CONTROLS}
        form = QFormLayout()
        form.addRow("depth", self.depth_spin)
        form.addRow("base filters", self.filters_spin)
        form.addRow("batch norm", self.batch_norm_checkbox)
        form.addRow("dropout", self.dropout_spin)
        for name, label in AUGMENT_CONTROLS.items():
            form.addRow(f"augment: {label}", self.augment_controls[name])
        form.addRow("early stopping patience", self.patience_spin)
        form.addRow("val mAP every (epochs)", self.map_every_spin)
        for name, label in CHOICE_CONTROLS.items():
            form.addRow(label, self.choice_combos[name])
        self.choice_combos["class_weights"].currentIndexChanged.connect(
            self._on_parameters_changed)
        self.advanced = QCollapsible("Advanced")
        content = QWidget()
        content.setLayout(form)
        self.advanced.addWidget(content)
        return self.advanced

    def _build_preview_row(self) -> QHBoxLayout:
        self.preview_button = push_button(
            "Preview weights", self.preview_weights,
            "Add (or update) an image layer with the loss weights of the first sample")
        row = QHBoxLayout()
        row.addWidget(self.preview_button)
        row.addWidget(self.progress_bar, 1)
        return row

    def _build_run_rows(self) -> QVBoxLayout:
        self.start_button = push_button("Start", self.start, "Train in the background")
        self.stop_button = push_button(
            "Cancel", self.cancel, "Stop after the current batch and keep the best model")
        self.train_bar, self.backend_choice = TrainBar(), BackendChoice()
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.stop_button, 1)
        buttons.addWidget(self.backend_choice)
        rows = QVBoxLayout()
        rows.addLayout(buttons)
        rows.addWidget(self.train_bar)
        return rows

    def _build_save_row(self) -> QHBoxLayout:
        self.result_label = QLabel("No model yet.")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_button = push_button(
            "Save…", self.save_model, "Save the model as a self-describing .keras file")
        self.use_button = push_button(
            "Use this model", self.use_model,
            "Segment with this model in the Segment widget (the image of the last training "
            "pair, else its image)")
        row = QHBoxLayout()
        row.addWidget(self.result_label, 1)
        row.addWidget(self.use_button)
        row.addWidget(self.save_button)
        self.exporter = trained_model_export(self)
        row.addWidget(self.exporter.button)
        return row

    # -- training data -----------------------------------------------------------------
    def _refresh_choices(self, _event: Any = None) -> None:
        self.data_source.pair_list.refresh_choices()

    def _forget_layer(self, layer: Layer) -> None:
        if layer is self._preview:
            self._preview = None

    @property
    def pairs(self) -> list[tuple[Layer | None, Layer | None]]:
        """The (image layer, labels layer) pairs picked, in order."""
        return self.data_source.pair_list.pairs

    def add_pair(self, image: Layer | None = None, labels: Layer | None = None) -> PairRow:
        """Add a pair row picking ``image`` and ``labels``, else layers not yet used.

        See :meth:`~..common.train_data.PairList.add_pair`.
        """
        return self.data_source.pair_list.add_pair(image, labels)

    def remove_pair(self, row: PairRow | int) -> None:
        """Remove a pair row (the row widget, or its index)."""
        self.data_source.pair_list.remove_pair(row)

    def choose_folder(self, folder: str | None = None) -> None:
        """Train on ``folder`` (asked with a dialog if None) instead of the layers."""
        self.data_source.choose_folder(folder)

    # -- training set ------------------------------------------------------------------
    def add_snapshot(self, snapshot: Snapshot) -> SnapshotRow:
        """Add an (image, labels) snapshot to the training set and show that tab.

        Raises
        ------
        BadInput
            If the snapshot is smaller than ``2**depth`` on a side (nothing is added).
        """
        check_side(snapshot, int(self.depth_spin.value()))
        row = self.training_set.add(snapshot)
        self.data_source.show_training_set()
        return row

    # -- parameters ----------------------------------------------------------------------
    def _parameter_controls(self) -> dict[str, QWidget]:
        """The control of each :class:`TrainConfig` field the widget sets."""
        return {
            "n_classes": self.classes_combo, "w0": self.w0_spin, "sigma": self.sigma_spin,
            "use_weights": self.weights_checkbox, "epochs": self.epochs_spin,
            "steps_per_epoch": self.steps_spin, "batch_size": self.batch_spin,
            "patch_size": self.patch_spin, "validation_fraction": self.validation_spin,
            "learning_rate": self.lr_spin, "depth": self.depth_spin,
            "base_filters": self.filters_spin, "batch_norm": self.batch_norm_checkbox,
            "dropout": self.dropout_spin, **self.augment_controls,
            "seed": self.seed_spin, "early_stopping_patience": self.patience_spin,
            "val_map_every": self.map_every_spin, **self.choice_combos,
        }

    def parameters(self) -> dict[str, Any]:
        """The keyword arguments of ``train`` set in the widget (not data nor callbacks)."""
        return {name: control_value(widget) for name, widget in self.controls.items()}

    def set_parameters(self, config: TrainConfig) -> None:
        """Show the values of ``config`` in the controls."""
        for name, widget in self.controls.items():
            set_control_value(widget, getattr(config, name))

    def _on_start_from_changed(self) -> None:
        """Fine-tuning values for a model to start from, the defaults from scratch."""
        start_from = self.start_from
        if start_from.error is not None:
            self._report(start_from.error)
        else:
            self.set_parameters(start_from.base_config())
        self.start_button.setText("Fine-tune" if start_from.fine_tuning else "Start")
        self.training_set.set_fine_tuning(start_from.fine_tuning)
        self._update_enabled()

    def _weight_parameters(self) -> dict[str, Any]:
        parameters = self.parameters()
        return {key: parameters[key] for key in ("n_classes", "w0", "sigma", "use_weights",
                                                 "class_weights")}

    def _on_parameters_changed(self, _value: Any = None) -> None:
        """Re-render the preview (debounced) if it is shown."""
        if self._preview is not None and self._preview in self.viewer.layers:
            self._edit_timer.start()

    def _update_enabled(self, _value: Any = None) -> None:
        idle = not self.running
        for widget in (self.start_from, self.data_source, self.advanced, self.start_button,
                       *self.controls.values()):
            widget.setEnabled(idle)
        for name in self.start_from.inherited:  # the parent model's: shown, not changed
            self.controls[name].setEnabled(False)
        use_weights = self.weights_checkbox.isChecked()
        self.w0_spin.setEnabled(idle and use_weights)
        self.sigma_spin.setEnabled(idle and use_weights)
        self.stop_button.setEnabled(self.running and not self._stop.is_set())
        self.save_button.setEnabled(idle and self.result is not None)
        self.use_button.setEnabled(idle and self.result is not None)
        self.exporter.set_available(idle and self.result is not None)

    # -- preview ---------------------------------------------------------------------------
    def refresh(self, _value: Any = None) -> None:
        """Update the weight-map preview if it is shown (called after parameter changes)."""
        if self._preview is not None and self._preview in self.viewer.layers:
            self.preview_weights()

    def preview_weights(self) -> None:
        """Add or update the image layer "<labels> training weights" of the first sample."""
        self._runner.request(self._prepare_preview)

    def _prepare_preview(self) -> Job | None:
        try:
            labels, name, source = self.data_source.first_labels()
        except BadInput as error:
            self._report(str(error))
            return None
        work = partial(preview_work, labels, name, self._weight_parameters())
        return Job(work, partial(self._show_preview, source), self._preview_failed)

    def _show_preview(self, source: Layer | None, outcome: tuple[np.ndarray, str]) -> None:
        weights, name = outcome
        name = f"{name}{PREVIEW_SUFFIX}"
        limits = (0.0, max(float(np.max(weights)) if weights.size else 1.0, 1e-3))
        preview = self._preview if self._preview in self.viewer.layers else None
        if preview is None:
            placement = transforms(source) if source is not None else {}
            with keep_active_layer(self.viewer, self.viewer.layers.selection.active):
                self._preview = self.viewer.add_image(
                    weights, name=name, colormap="magma", blending="additive",
                    contrast_limits=limits, metadata={TRAIN_PREVIEW_KEY: True}, **placement,
                )
        elif source is not None:
            update_layer(preview, source, data=weights, name=name, contrast_limits=limits)
        else:
            preview.data, preview.name, preview.contrast_limits = weights, name, limits
        self._set_status(f"Preview: '{name}' (max weight {limits[1]:.3g}).")

    def _preview_failed(self, error: Exception) -> None:
        self._report(f"Preview failed: {user_message(error)}")

    # -- training --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a training runs (also while it is being cancelled)."""
        return self._worker is not None

    def start(self) -> None:
        """Check the inputs and start training (or fine-tuning) in a background thread.

        Bad inputs (no pairs, a missing folder, mismatched shapes, an Image layer as
        labels, a model file to start from that is not one) are reported by a napari
        notification and nothing starts. The layers and the training set are read, not
        changed.
        """
        if self.running:
            return
        try:
            self.backend_choice.check()
            source = self.data_source.training_data()
            config = self._config()
        except (BadInput, TrainConfigError) as error:
            self._report(str(error))
            return
        run_id, stop = self._begin_run()
        self._last_batch = self._last_epoch = None
        self._device = None
        budget = self.start_from.finish_within  # a budgeted run ends on the clock
        self.train_bar.begin(config.epochs * config.steps_per_epoch, budget)
        self.plot.clear(config.epochs if budget is None else None)
        # A new thread per run: TensorFlow must not run on a reused pool thread (see
        # napari_unet_weights.unet.device).
        worker = create_worker(
            call_in_new_thread, self.backend_choice.bound(_run_training), source, config,
            self.start_from.run_options(), self._progress_callback(run_id), stop.is_set,
            _start_thread=False, _ignore_errors=True,
        )
        worker.returned.connect(partial(self._on_trained, run_id))
        worker.errored.connect(partial(self._on_failed, run_id))
        worker.finished.connect(partial(self._on_finished, run_id))
        self._worker = worker
        self._update_enabled()
        verb = "Fine-tuning" if self.start_from.fine_tuning else "Starting"
        self._set_status(f"{verb} on {source.description}…")
        worker.start()

    def _config(self) -> TrainConfig:
        """The run's configuration: the controls' values, checked.

        Fine-tuning has no fitting budget of its own: the time budget bounds the whole run.

        Raises
        ------
        BadInput
            If the model to start from cannot be used.
        TrainConfigError
            Values that do not go together (a patch size that is not a multiple of 2**depth).
        """
        if self.start_from.error is not None:
            raise BadInput(self.start_from.error)
        return self.start_from.base_config().replace(**self.parameters(), max_seconds=None)

    def cancel(self) -> None:
        """Stop training after the current batch; the best model so far is kept."""
        if not self.running or self._stop.is_set():
            return
        self._stop.set()
        self._set_status("Cancelling after the current batch…")
        self._update_enabled()

    def _on_progress(self, info: dict[str, Any]) -> None:
        """A report of ``train``'s progress callback, on the GUI thread."""
        self._device = info.get("device", self._device)
        stage = info.get("stage")
        if stage == "batch":
            self._last_batch = info
            self._show_batch(info)
        elif stage == "epoch":
            self._last_epoch = info
            self.plot.add_epoch(info.get("epoch", 0), info.get("loss"),
                                info.get("val_loss"), info.get("val_map"))
        if not self._stop.is_set():
            self._set_status(status_text(self._last_batch, self._last_epoch, self._device))

    def _show_batch(self, info: dict[str, Any]) -> None:
        epoch, step = int(info.get("epoch", 1)), int(info.get("step", 0))
        steps = max(int(info.get("steps", 1)), 1)
        epochs = int(info.get("epochs", 1))
        self.train_bar.show_step((epoch - 1) * steps + step, epochs * steps)
        self.plot.add_batch(epoch - 1 + step / steps, info.get("loss"))

    def _on_trained(self, run_id: int, result: Any) -> None:
        if not self._is_current(run_id):
            return
        self.result = result
        self.saved_path = self._model_file = None
        self._device = getattr(result, "device", None) or self._device
        self.plot.replot(getattr(result, "history", None))
        self.train_bar.end(complete=not getattr(result, "cancelled", False))
        self._set_status(self._summary(result))
        self.result_label.setText(self._result_text())
        self.trained.emit(result)

    def _summary(self, result: Any) -> str:
        history = getattr(result, "history", None)
        epochs = len(history) if history is not None else 0
        plural = "s" * (epochs != 1)
        if not getattr(result, "cancelled", False):
            head = f"Finished {epochs} epoch{plural}"
        elif epochs:
            head = f"Cancelled after {epochs} epoch{plural}: kept the best model"
        else:
            head = "Cancelled in the first epoch: the model is barely trained"
        tail = [f"val mAP {number_text(self._validation_map(result))}"]
        if self._device:
            tail.append(str(self._device))
        return f"{head} · {' · '.join(tail)}."

    @staticmethod
    def _validation(result: Any) -> dict:
        validation = getattr(result, "validation", None)
        return validation if isinstance(validation, dict) else {}

    def _validation_map(self, result: Any) -> float | None:
        return self._validation(result).get("map")

    def _result_text(self) -> str:
        if self.result is None:
            return "No model yet."
        text = f"Model: validation mAP {number_text(self._validation_map(self.result))}"
        on = self._validation(self.result).get("on")
        if on:
            text += f" (on the {on})"
        if self.saved_path is not None:
            text += f"<br>saved to {self.saved_path}"
        return text

    def _on_failed(self, run_id: int, error: Exception) -> None:
        if self._is_current(run_id):
            self._report(f"Training failed: {user_message(error)}")

    def _on_finished(self, run_id: int) -> None:
        if self._is_current(run_id):
            self._worker = None
            self.train_bar.end(complete=False)
            self._update_enabled()

    # -- saving ----------------------------------------------------------------------------
    def save_model(self, path: str | Path | None = None) -> Path | None:
        """Save the trained model as a ``.keras`` file (asked with a dialog if no path).

        Parameters
        ----------
        path : str or pathlib.Path, optional
            Where to save; ``.keras`` is appended if the name lacks it.

        Returns
        -------
        pathlib.Path or None
            The file written, or None if nothing was saved.
        """
        if self.result is None or self.running:
            return None
        if path is None:
            start = str(self.saved_path or Path.home() / "unet.keras")
            path, _ = QFileDialog.getSaveFileName(self, "Save U-Net model", start,
                                                  "Keras model (*.keras)")
            if not path:
                return None
        path = Path(path)
        if path.suffix.lower() != ".keras":
            path = path.with_name(path.name + ".keras")
        try:
            self.result.model.save(path)
        except Exception as error:  # shown to the user, not raised into Qt
            self._report(f"Could not save the model to {path}: {user_message(error)}")
            return None
        self.saved_path = self._model_file = path
        self.result_label.setText(self._result_text())
        self._set_status(f"Model saved to {path}.")
        self._notify(f"model saved to {path}", "info")
        return path

    # -- using the model -------------------------------------------------------------------
    def use_model(self) -> Any:
        """Segment with the trained model: the Segment widget picks it and runs again.

        The model is saved to a temporary ``.keras`` file first if it was not saved.
        The image segmented is the one the last training pair came from, if it is still
        in the viewer, else the Segment widget's.

        Returns
        -------
        SegmentWidget or None
            The Segment widget, or None if there is no model (or it could not be saved).
        """
        if self.result is None or self.running:
            return None
        path = self.model_file()
        if path is None:
            return None
        segment = dock_plugin_widget(self.viewer, "Segment")
        segment.choose_model_file(path)
        source = self.training_set.last_source
        if source is not None and source in self.viewer.layers:
            segment.image_layer = source
        segment.release_labels(segment.image_layer)
        segment.run()
        self._set_status(f"The Segment widget segments with the new model ({path.name}).")
        return segment

    def model_file(self) -> Path | None:
        """The model as a ``.keras`` file: the saved one, else a temporary copy (None if
        it could not be written: reported)."""
        return self._model_file or self._save_temporary()

    def _save_temporary(self) -> Path | None:
        """Save the model into a folder deleted at exit; its path, or None (reported)."""
        path = temporary_folder() / "trained.keras"
        try:
            self.result.model.save(path)
        except Exception as error:  # shown to the user, not raised into Qt
            self._report(f"Could not save the model to {path}: {user_message(error)}")
            return None
        self._model_file = path
        return path
