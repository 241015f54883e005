"""The "Train U-Net" dock widget: train the weighted U-Net on layers or on a folder.

A thin shell around :func:`napari_unet_weights.unet.train.train`. The user picks
(image, labels) layer pairs or a folder holding ``images/`` and ``labels/``, sets the
hyperparameters and presses Start; ``train`` runs in a napari thread worker. Its
``progress`` callback, called on the training thread, is relayed to the GUI thread by a
queued Qt signal and drives a progress bar, a status line and a live loss /
validation-mAP plot (:class:`LossPlot`, drawn with QPainter). Cancel sets the flag that
``train`` polls through ``should_stop``: training stops within a batch and keeps the
best model so far, which Save writes to a ``.keras`` file. A weight-map preview of the
first sample is computed in the background from
:func:`napari_unet_weights.unet.targets.training_weights`.

TensorFlow is imported only in the worker, when training starts, so the widget opens
fast; the widget adds no layer but the preview, and never modifies a layer.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, QPointF, QRectF, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen, QValidator
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from napari_unet_weights._widgets._base import (
    LayerWidget,
    keep_active_layer,
    transforms,
    update_layer,
)
from napari_unet_weights._widgets._workers import Job
from napari_unet_weights.unet.device import call_in_new_thread

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = ["LossPlot", "TrainWidget", "status_text"]

#: Debounce of preview updates after a hyperparameter change.
PREVIEW_DEBOUNCE_MS = 250
PROGRESS_DELAY_MS = 300
PREVIEW_SUFFIX = " training weights"
#: Metadata key of the preview layer (kept out of the image pickers).
PREVIEW_KEY = "napari_unet_weights_train_preview"
TITLE = "Train U-Net"
LOSS_COLOR = "#4c9be8"
VAL_LOSS_COLOR = "#f28e2b"
MAP_COLOR = "#59c26b"


# -- the training core, imported only when needed ------------------------------------------
def _load_train() -> Callable[..., Any]:
    """Import TensorFlow and return :func:`napari_unet_weights.unet.train.train`.

    Raises
    ------
    ImportError
        If TensorFlow is not installed (the message says how to install it).
    """
    from napari_unet_weights.unet.device import keras_or_error
    from napari_unet_weights.unet.train import train

    keras_or_error()
    return train


def _load_training_weights() -> Callable[..., np.ndarray]:
    """Import and return :func:`napari_unet_weights.unet.targets.training_weights`."""
    from napari_unet_weights.unet.targets import training_weights

    return training_weights


def _user_message(error: BaseException) -> str:
    """The text of an error for a notification: its message, or its repr if it has none."""
    if isinstance(error, TypeError | ValueError | OSError | ImportError) and str(error):
        return str(error)
    return repr(error)


# -- what a run trains on -----------------------------------------------------------------
class _BadInput(ValueError):
    """A problem with the widget's inputs, found before anything runs."""


@dataclass
class _Source:
    """The data handed to ``train``: arrays (``labels`` given) or a folder (``labels`` None)."""

    images: list[np.ndarray] | str
    labels: list[np.ndarray] | None
    description: str


def _layer_array(layer: Layer) -> np.ndarray:
    """A copy of the layer's data (its full-resolution level if multiscale)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return np.array(data)


def _spatial_shape(layer: Layer) -> tuple[int, ...]:
    """The shape of the layer's pixels without the colour axis of an RGB(A) image."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    shape = tuple(int(n) for n in data.shape)
    return shape[:-1] if isinstance(layer, Image) and layer.rgb else shape


def _check_pair(image: Layer | None, labels: Layer | None, row: int) -> None:
    """Raise :class:`_BadInput` naming what is wrong with pair ``row`` (1-based)."""
    if image is None or labels is None:
        raise _BadInput(f"Pair {row} needs an image layer and a labels layer.")
    if not isinstance(labels, Labels):
        raise _BadInput(
            f"'{labels.name}' (pair {row}) is an Image layer, not a Labels layer: convert it "
            "(right-click it in the layer list → Convert to Labels) or pick a Labels layer."
        )
    if not isinstance(image, Image):
        raise _BadInput(f"'{image.name}' (pair {row}) is not an Image layer.")
    image_shape, labels_shape = _spatial_shape(image), _spatial_shape(labels)
    if image_shape != labels_shape:
        raise _BadInput(
            f"Image '{image.name}' has shape {image_shape} but labels '{labels.name}' have "
            f"shape {labels_shape} (pair {row}); each image needs labels of the same shape."
        )


def _layers_source(pairs: Sequence[tuple[Layer | None, Layer | None]]) -> _Source:
    """Check the (image, labels) layer pairs and snapshot their data."""
    if not pairs:
        raise _BadInput("Add at least one (image, labels) pair of layers, or pick a folder.")
    for row, (image, labels) in enumerate(pairs, start=1):
        _check_pair(image, labels, row)
    images = [_layer_array(image) for image, _ in pairs]
    labels = [_layer_array(labels) for _, labels in pairs]
    names = ", ".join(f"{image.name} + {label.name}" for image, label in pairs)
    return _Source(images, labels, f"{len(pairs)} pair{'s' * (len(pairs) > 1)}: {names}")


def _folder_source(folder: str) -> _Source:
    """Check that ``folder`` holds ``images/`` and ``labels/`` subfolders."""
    if not folder:
        raise _BadInput("Choose a folder holding images/ and labels/ subfolders.")
    root = Path(folder)
    missing = [name for name in ("images", "labels") if not (root / name).is_dir()]
    if missing:
        raise _BadInput(
            f"{root} has no {' and no '.join(name + '/' for name in missing)} subfolder: "
            "the folder needs images/ and labels/ with files paired by name."
        )
    return _Source(str(root), None, str(root))


def _first_folder_labels(folder: str) -> tuple[np.ndarray, str]:
    """The labels of the first (image, labels) file pair of ``folder``, and its name."""
    from napari_unet_weights.io import file_stem, pair_files, read_labels

    root = Path(folder)
    _image_path, labels_path = pair_files(root / "images", root / "labels")[0]
    return read_labels(labels_path), file_stem(labels_path)


def _preview_work(
    labels: np.ndarray | str, name: str, parameters: dict[str, Any]
) -> tuple[np.ndarray, str]:
    """Worker body of the preview: the training weights of one labels array (or folder)."""
    if isinstance(labels, str):
        labels, name = _first_folder_labels(labels)
    return _load_training_weights()(labels, **parameters), name


# -- status text ------------------------------------------------------------------------------
def _number(value: Any, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, "—" when missing or not finite."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{value:.{digits}g}" if math.isfinite(value) else "—"


def status_text(
    batch: dict[str, Any] | None, epoch: dict[str, Any] | None, device: str | None = None
) -> str:
    """One status line from the latest batch and epoch reports of ``train``'s progress.

    Parameters
    ----------
    batch : dict or None
        The latest ``{"stage": "batch", ...}`` report.
    epoch : dict or None
        The latest ``{"stage": "epoch", ...}`` report.
    device : str, optional
        The device training runs on.

    Returns
    -------
    str
        E.g. ``"epoch 3/30 · step 12/50 · loss 0.41 · val loss 0.39 · val mAP 0.512 · CPU"``.
    """
    parts = []
    latest = batch or epoch
    if latest is not None:
        parts.append(f"epoch {latest.get('epoch', '?')}/{latest.get('epochs', '?')}")
    if batch is not None:
        parts.append(f"step {batch.get('step', '?')}/{batch.get('steps', '?')}")
        parts.append(f"loss {_number(batch.get('loss'))}")
    elif epoch is not None:
        parts.append(f"loss {_number(epoch.get('loss'))}")
    if epoch is not None:
        parts.append(f"val loss {_number(epoch.get('val_loss'))}")
        parts.append(f"val mAP {_number(epoch.get('val_map'), 3)}")
    if device:
        parts.append(str(device))
    return " · ".join(parts) if parts else "Starting…"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (× a power of ten) ≥ ``value``."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if m * power >= value * (1 - 1e-9))


# -- live plot --------------------------------------------------------------------------------
class LossPlot(QWidget):
    """A small live line plot: batch and epoch loss, validation loss and validation mAP.

    Losses use the left axis (from 0), the mAP the right one (0 to 1). Epoch values are
    plotted at the epoch's end (x = epoch, 1-based), batch losses in between.
    """

    MARGINS = (44, 22, 40, 22)  # left, top, right, bottom

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(170)
        self.clear()

    def clear(self, epochs: int | None = None) -> None:
        """Forget all points; ``epochs`` fixes the x range (else it follows the data)."""
        self.epochs = epochs
        self.batch_loss: list[tuple[float, float]] = []
        self.loss: list[tuple[float, float]] = []
        self.val_loss: list[tuple[float, float]] = []
        self.val_map: list[tuple[float, float]] = []
        self.update()

    def add_batch(self, x: float, loss: float) -> None:
        """Add a batch loss at ``x`` epochs."""
        self._append(self.batch_loss, x, loss)
        self.update()

    def add_epoch(
        self, epoch: float, loss: Any = None, val_loss: Any = None, val_map: Any = None
    ) -> None:
        """Add the values reported at the end of ``epoch`` (missing or NaN ones are skipped)."""
        for series, value in ((self.loss, loss), (self.val_loss, val_loss),
                              (self.val_map, val_map)):
            self._append(series, epoch, value)
        self.update()

    @staticmethod
    def _append(series: list[tuple[float, float]], x: float, value: Any) -> None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            return
        if math.isfinite(value):
            series.append((float(x), value))

    @property
    def empty(self) -> bool:
        """Whether no point has been added."""
        return not (self.batch_loss or self.loss or self.val_loss or self.val_map)

    # -- drawing ------------------------------------------------------------------------
    def _ranges(self) -> tuple[float, float]:
        """Largest x and largest loss shown."""
        points = [*self.batch_loss, *self.loss, *self.val_loss, *self.val_map]
        x_max = max([self.epochs or 0, *(x for x, _ in points), 1])
        losses = [y for _, y in [*self.batch_loss, *self.loss, *self.val_loss]]
        return float(x_max), _nice_ceiling(max(losses, default=1.0))

    def paintEvent(self, _event) -> None:
        """Draw the axes, the series and a legend."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        left, top, right, bottom = self.MARGINS
        frame = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        if frame.width() < 20 or frame.height() < 20:
            return
        x_max, y_max = self._ranges()
        self._draw_axes(painter, frame, text, x_max, y_max)
        if self.empty:
            painter.setPen(text)
            painter.drawText(frame, Qt.AlignmentFlag.AlignCenter,
                             "loss and validation mAP\nappear here while training")
            return

        def loss_point(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + frame.width() * x / x_max,
                           frame.bottom() - frame.height() * min(y / y_max, 1.0))

        def map_point(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + frame.width() * x / x_max,
                           frame.bottom() - frame.height() * min(max(y, 0.0), 1.0))

        faint = QColor(LOSS_COLOR)
        faint.setAlpha(90)
        self._draw_series(painter, self.batch_loss, loss_point, faint, 1.0, dots=False)
        self._draw_series(painter, self.loss, loss_point, QColor(LOSS_COLOR), 2.0)
        self._draw_series(painter, self.val_loss, loss_point, QColor(VAL_LOSS_COLOR), 2.0)
        self._draw_series(painter, self.val_map, map_point, QColor(MAP_COLOR), 2.0,
                          style=Qt.PenStyle.DashLine)
        self._draw_legend(painter, frame, text)

    def _draw_axes(
        self, painter: QPainter, frame: QRectF, text: QColor, x_max: float, y_max: float
    ) -> None:
        grid = QColor(text)
        grid.setAlpha(60)
        painter.setPen(QPen(grid, 1.0))
        painter.drawRect(frame)
        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
        painter.setFont(font)
        for fraction in (0.0, 0.5, 1.0):
            y = frame.bottom() - frame.height() * fraction
            painter.setPen(QPen(grid, 1.0, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(frame.left(), y), QPointF(frame.right(), y))
            painter.setPen(QColor(LOSS_COLOR))
            painter.drawText(QRectF(0, y - 8, frame.left() - 4, 16),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{y_max * fraction:.3g}")
            painter.setPen(QColor(MAP_COLOR))
            painter.drawText(QRectF(frame.right() + 4, y - 8, 40, 16),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"{fraction:.1f}")
        painter.setPen(text)
        for fraction in (0.0, 0.5, 1.0):
            x = frame.left() + frame.width() * fraction
            painter.drawText(QRectF(x - 30, frame.bottom() + 2, 60, 16),
                             Qt.AlignmentFlag.AlignCenter, f"{x_max * fraction:.3g}")
        painter.drawText(QRectF(frame.left() + frame.width() * 0.75 - 30, frame.bottom() + 2,
                                60, 16), Qt.AlignmentFlag.AlignCenter, "epoch")

    @staticmethod
    def _draw_series(
        painter: QPainter,
        series: list[tuple[float, float]],
        to_point: Callable[[float, float], QPointF],
        color: QColor,
        width: float,
        dots: bool = True,
        style: Qt.PenStyle = Qt.PenStyle.SolidLine,
    ) -> None:
        if not series:
            return
        points = [to_point(x, y) for x, y in series]
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        painter.setPen(QPen(color, width, style))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        if dots:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)

    @staticmethod
    def _draw_legend(painter: QPainter, frame: QRectF, text: QColor) -> None:
        x = frame.left()
        for label, color, style in (
            ("loss", LOSS_COLOR, Qt.PenStyle.SolidLine),
            ("val loss", VAL_LOSS_COLOR, Qt.PenStyle.SolidLine),
            ("val mAP (right)", MAP_COLOR, Qt.PenStyle.DashLine),
        ):
            y = frame.top() - 11
            painter.setPen(QPen(QColor(color), 2.0, style))
            painter.drawLine(QPointF(x, y), QPointF(x + 16, y))
            painter.setPen(text)
            width = painter.fontMetrics().horizontalAdvance(label)
            painter.drawText(QRectF(x + 20, y - 8, width + 4, 16),
                             Qt.AlignmentFlag.AlignVCenter, label)
            x += 20 + width + 14


# -- layer pair pickers -----------------------------------------------------------------------
def _fill_combo(combo: QComboBox, layers: Sequence[Layer], keep: Layer | None) -> None:
    """Offer ``layers`` in ``combo``, selecting ``keep`` if still offered, else the first."""
    combo.blockSignals(True)
    try:
        combo.clear()
        for layer in layers:
            combo.addItem(layer.name, layer)
        index = next((i for i, layer in enumerate(layers) if layer is keep), 0)
        combo.setCurrentIndex(index if layers else -1)
    finally:
        combo.blockSignals(False)


class _PairRow(QWidget):
    """One (image layer, labels layer) pair: two pickers and a remove button."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.image_combo.setToolTip("Image layer")
        self.labels_combo.setToolTip("Labels layer (integer instance labels)")
        self.remove_button = QPushButton("✕")
        self.remove_button.setToolTip("Remove this pair")
        self.remove_button.setFixedWidth(28)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image_combo, 1)
        layout.addWidget(self.labels_combo, 1)
        layout.addWidget(self.remove_button)
        self.image_combo.currentIndexChanged.connect(self.changed)
        self.labels_combo.currentIndexChanged.connect(self.changed)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))

    @property
    def image_layer(self) -> Layer | None:
        """The image layer picked."""
        return self.image_combo.currentData()

    @property
    def labels_layer(self) -> Layer | None:
        """The labels layer picked."""
        return self.labels_combo.currentData()

    def set_layers(self, image: Layer | None, labels: Layer | None) -> None:
        """Pick ``image`` and ``labels`` (layers already offered)."""
        for combo, layer in ((self.image_combo, image), (self.labels_combo, labels)):
            index = combo.findData(layer) if layer is not None else -1
            if index >= 0:
                combo.setCurrentIndex(index)

    def set_choices(self, images: Sequence[Layer], labels: Sequence[Layer]) -> None:
        """Offer these layers, keeping the current picks where they are still offered."""
        before = (self.image_layer, self.labels_layer)
        _fill_combo(self.image_combo, images, before[0])
        _fill_combo(self.labels_combo, labels, before[1])
        if (self.image_layer, self.labels_layer) != before:
            self.changed.emit()


class _Relay(QObject):
    """Carries ``train``'s progress reports from the training thread to the GUI thread."""

    progress = Signal(object)


class _ScientificSpinBox(QDoubleSpinBox):
    """A float spin box that shows values like ``0.001`` or ``1e-05`` and steps by ×/÷ 2."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:
        """Shortest text of ``value`` (3 significant digits)."""
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:
        """Parse the text typed by the user."""
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, position: int):
        """Accept anything that parses as a float in range; intermediate text otherwise."""
        try:
            value = float(text)
        except ValueError:
            return QValidator.State.Intermediate, text, position
        inside = self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate,
                text, position)

    def stepBy(self, steps: int) -> None:
        """Double (or halve) the value per step."""
        self.setValue(self.value() * 2.0**steps)


def _spin(minimum: float, maximum: float, value: float, step: float = 1,
          decimals: int | None = None, tooltip: str = "") -> QSpinBox | QDoubleSpinBox:
    """An integer spin box, or a float one when ``decimals`` is given."""
    if decimals is None:
        box = QSpinBox()
        minimum, maximum, value, step = int(minimum), int(maximum), int(value), int(step)
    else:
        box = QDoubleSpinBox()
        box.setDecimals(decimals)
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tooltip)
    return box


# -- the widget ------------------------------------------------------------------------------
class TrainWidget(LayerWidget):
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

    trained = Signal(object)

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, PREVIEW_DEBOUNCE_MS, PROGRESS_DELAY_MS)
        self.result: Any = None
        self.saved_path: Path | None = None
        self.folder: str = ""
        self._pairs: list[_PairRow] = []
        self._preview: Image | None = None
        self._worker = None
        self._stop = threading.Event()
        self._run_ids = itertools.count(1)
        self._run_id = 0
        self._last_batch: dict[str, Any] | None = None
        self._last_epoch: dict[str, Any] | None = None
        self._device: str | None = None
        self._relay = _Relay(self)
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._build_layout()
        self._watch_viewer()
        self._refresh_choices()
        if self._images() and self._labels_like():
            self.add_pair()
        self._set_running(False)
        self._set_status("Pick the training data and press Start.")

    # -- construction ------------------------------------------------------------------
    def _build_layout(self) -> None:
        self._build_status()
        self.progress_bar.setMaximumHeight(6)
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_data_box())
        layout.addWidget(self._build_parameters_box())
        layout.addLayout(self._build_preview_row())
        layout.addLayout(self._build_run_rows())
        layout.addWidget(self.status_label)
        self.plot = LossPlot()
        layout.addWidget(self.plot, 1)
        layout.addLayout(self._build_save_row())
        self._set_progress_visible(False)

    def _build_data_box(self) -> QWidget:
        self.source_tabs = QTabWidget()
        layers_page = QWidget()
        self.pairs_layout = QVBoxLayout()
        self.pairs_layout.setSpacing(2)
        header = QHBoxLayout()
        header.addWidget(QLabel("image"), 1)
        header.addWidget(QLabel("labels"), 1)
        header.addSpacing(28)
        self.add_pair_button = QPushButton("+ add pair")
        self.add_pair_button.clicked.connect(lambda: self.add_pair())
        page_layout = QVBoxLayout(layers_page)
        page_layout.addLayout(header)
        page_layout.addLayout(self.pairs_layout)
        page_layout.addWidget(self.add_pair_button, 0, Qt.AlignmentFlag.AlignLeft)
        folder_page = QWidget()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder with images/ and labels/")
        self.folder_edit.textChanged.connect(self._on_folder_edited)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(lambda: self.choose_folder())
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        hint = QLabel("Image and label files are paired by name (e.g. images/a.tif + "
                      "labels/a.png).")
        hint.setWordWrap(True)
        folder_layout = QVBoxLayout(folder_page)
        folder_layout.addLayout(folder_row)
        folder_layout.addWidget(hint)
        folder_layout.addStretch(1)
        self.source_tabs.addTab(layers_page, "Layers")
        self.source_tabs.addTab(folder_page, "Folder")
        self.source_tabs.currentChanged.connect(self._on_parameters_changed)
        return self.source_tabs

    def _build_parameters_box(self) -> QWidget:
        self.classes_combo = QComboBox()
        self.classes_combo.addItem("3 (background / interior / boundary)", 3)
        self.classes_combo.addItem("2 (background / object, 1-px gaps)", 2)
        self.weights_checkbox = QCheckBox("use the U-Net weight map in the loss")
        self.weights_checkbox.setChecked(True)
        self.weights_checkbox.setToolTip("Weight the loss with the U-Net border weight map")
        self.w0_spin = _spin(0, 1000, 10.0, 1.0, 2, "Border weight w0")
        self.sigma_spin = _spin(0.1, 100, 5.0, 0.5, 2, "Border width σ in pixels")
        self.epochs_spin = _spin(1, 100_000, 30)
        self.steps_spin = _spin(1, 100_000, 50, tooltip="Batches per epoch")
        self.batch_spin = _spin(1, 1024, 8)
        self.patch_spin = _spin(16, 4096, 128, 16, tooltip="Side of the square training patches")
        self.validation_spin = _spin(0.0, 0.9, 0.15, 0.05, 2,
                                     "Fraction of the images kept for validation")
        self.lr_spin = _ScientificSpinBox()
        self.lr_spin.setRange(1e-7, 1.0)
        self.lr_spin.setValue(1e-3)
        self.lr_spin.setToolTip("Adam learning rate (arrows double or halve it)")
        self.seed_spin = _spin(0, 2**31 - 1, 0, tooltip="Random seed (split, patches, weights)")
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
        self.depth_spin = _spin(1, 8, 4, tooltip="Number of down-sampling steps")
        self.filters_spin = _spin(1, 512, 16, tooltip="Filters of the first level")
        self.batch_norm_checkbox = QCheckBox()
        self.batch_norm_checkbox.setChecked(True)
        self.dropout_spin = _spin(0.0, 0.9, 0.0, 0.05, 2)
        self.augment_checkbox = QCheckBox()
        self.augment_checkbox.setChecked(True)
        self.augment_checkbox.setToolTip("Flips, 90° rotations and intensity changes")
        self.patience_spin = _spin(1, 10_000, 8,
                                   tooltip="Stop after this many epochs without improvement")
        self.map_every_spin = _spin(1, 1000, 1,
                                    tooltip="Compute the validation mAP every n epochs")
        form = QFormLayout()
        form.addRow("depth", self.depth_spin)
        form.addRow("base filters", self.filters_spin)
        form.addRow("batch norm", self.batch_norm_checkbox)
        form.addRow("dropout", self.dropout_spin)
        form.addRow("augment", self.augment_checkbox)
        form.addRow("early stopping patience", self.patience_spin)
        form.addRow("val mAP every (epochs)", self.map_every_spin)
        self.advanced = QCollapsible("Advanced")
        content = QWidget()
        content.setLayout(form)
        self.advanced.addWidget(content)
        return self.advanced

    def _build_preview_row(self) -> QHBoxLayout:
        self.preview_button = QPushButton("Preview weights")
        self.preview_button.setToolTip(
            "Add (or update) an image layer with the loss weights of the first sample")
        self.preview_button.clicked.connect(lambda: self.preview_weights())
        row = QHBoxLayout()
        row.addWidget(self.preview_button)
        row.addWidget(self.progress_bar, 1)
        return row

    def _build_run_rows(self) -> QVBoxLayout:
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button = QPushButton("Cancel")
        self.stop_button.setToolTip("Stop after the current batch and keep the best model")
        self.stop_button.clicked.connect(lambda: self.cancel())
        self.train_bar = QProgressBar()
        self.train_bar.setRange(0, 1)
        self.train_bar.setValue(0)
        self.train_bar.setFormat("%v / %m steps")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.stop_button, 1)
        rows = QVBoxLayout()
        rows.addLayout(buttons)
        rows.addWidget(self.train_bar)
        return rows

    def _build_save_row(self) -> QHBoxLayout:
        self.result_label = QLabel("No model yet.")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the model as a self-describing .keras file")
        self.save_button.clicked.connect(lambda: self.save_model())
        row = QHBoxLayout()
        row.addWidget(self.result_label, 1)
        row.addWidget(self.save_button)
        return row

    # -- layer pickers -----------------------------------------------------------------
    def _images(self) -> list[Image]:
        return [layer for layer in self.viewer.layers
                if isinstance(layer, Image) and PREVIEW_KEY not in layer.metadata]

    def _labels_like(self) -> list[Layer]:
        """Labels layers, then integer single-channel Image layers (refused at Start)."""
        labels = [layer for layer in self.viewer.layers if isinstance(layer, Labels)]
        masks = [
            layer for layer in self._images()
            if not layer.rgb and np.issubdtype(layer.dtype, np.integer)
        ]
        return labels + masks

    def _refresh_choices(self, _event: Any = None) -> None:
        images, labels = self._images(), self._labels_like()
        for row in self._pairs:
            row.set_choices(images, labels)

    def _forget_layer(self, layer: Layer) -> None:
        if layer is self._preview:
            self._preview = None

    @property
    def pairs(self) -> list[tuple[Layer | None, Layer | None]]:
        """The (image layer, labels layer) pairs picked, in order."""
        return [(row.image_layer, row.labels_layer) for row in self._pairs]

    def add_pair(self, image: Layer | None = None, labels: Layer | None = None) -> None:
        """Add a pair row picking ``image`` and ``labels``, else layers not yet used.

        Parameters
        ----------
        image : napari.layers.Image, optional
            The image layer to pick.
        labels : napari.layers.Labels, optional
            The labels layer to pick (by default one of the image's shape, if any).
        """
        row = _PairRow()
        row.set_choices(self._images(), self._labels_like())
        image = image or self._guess_image()
        labels = labels or self._guess_labels(image)
        row.set_layers(image, labels)
        row.changed.connect(self._on_parameters_changed)
        row.remove_requested.connect(self.remove_pair)
        self._pairs.append(row)
        self.pairs_layout.addWidget(row)
        self._on_parameters_changed()

    def _unused_labels(self) -> list[Layer]:
        used = {id(labels) for _, labels in self.pairs}
        return [layer for layer in self._labels_like() if id(layer) not in used]

    def _guess_image(self) -> Layer | None:
        """The first image layer not in a pair, preferably one with unused labels of its shape."""
        used = {id(image) for image, _ in self.pairs}
        images = [layer for layer in self._images() if id(layer) not in used]
        shapes = {_spatial_shape(layer) for layer in self._unused_labels()}
        fitting = [layer for layer in images if _spatial_shape(layer) in shapes]
        return next(iter(fitting or images), None)

    def _guess_labels(self, image: Layer | None) -> Layer | None:
        """The first labels layer not in a pair, preferably one of ``image``'s shape."""
        candidates = self._unused_labels()
        if image is not None:
            shape = _spatial_shape(image)
            fitting = [layer for layer in candidates if _spatial_shape(layer) == shape]
            candidates = fitting or candidates
        return next(iter(candidates), None)

    def remove_pair(self, row: _PairRow | int) -> None:
        """Remove a pair row (the row widget, or its index)."""
        row = self._pairs[row] if isinstance(row, int) else row
        self._pairs.remove(row)
        self.pairs_layout.removeWidget(row)
        row.deleteLater()
        self._on_parameters_changed()

    def choose_folder(self, folder: str | None = None) -> None:
        """Train on ``folder`` (asked with a dialog if None) instead of the layers."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(
                self, "Folder with images/ and labels/", self.folder or str(Path.home()))
            if not folder:
                return
        self.folder_edit.setText(str(folder))
        self.source_tabs.setCurrentIndex(1)

    def _on_folder_edited(self, text: str) -> None:
        self.folder = text.strip()
        self._on_parameters_changed()

    @property
    def use_folder(self) -> bool:
        """Whether the data come from the folder tab rather than the layer pairs."""
        return self.source_tabs.currentIndex() == 1

    # -- parameters ----------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """The keyword arguments of ``train`` set in the widget (not data nor callbacks)."""
        return {
            "n_classes": int(self.classes_combo.currentData()),
            "w0": float(self.w0_spin.value()),
            "sigma": float(self.sigma_spin.value()),
            "use_weights": self.weights_checkbox.isChecked(),
            "epochs": int(self.epochs_spin.value()),
            "steps_per_epoch": int(self.steps_spin.value()),
            "batch_size": int(self.batch_spin.value()),
            "patch_size": int(self.patch_spin.value()),
            "validation_fraction": float(self.validation_spin.value()),
            "learning_rate": float(self.lr_spin.value()),
            "depth": int(self.depth_spin.value()),
            "base_filters": int(self.filters_spin.value()),
            "batch_norm": self.batch_norm_checkbox.isChecked(),
            "dropout": float(self.dropout_spin.value()),
            "augment": self.augment_checkbox.isChecked(),
            "seed": int(self.seed_spin.value()),
            "early_stopping_patience": int(self.patience_spin.value()),
            "val_map_every": int(self.map_every_spin.value()),
        }

    def _weight_parameters(self) -> dict[str, Any]:
        parameters = self.parameters()
        return {key: parameters[key] for key in ("n_classes", "w0", "sigma", "use_weights")}

    def _on_parameters_changed(self, _value: Any = None) -> None:
        """Re-render the preview (debounced) if it is shown."""
        if self._preview is not None and self._preview in self.viewer.layers:
            self._edit_timer.start()

    def _update_enabled(self, _value: Any = None) -> None:
        idle = not self.running
        for widget in (self.source_tabs, self.classes_combo, self.weights_checkbox,
                       self.epochs_spin, self.steps_spin, self.batch_spin, self.patch_spin,
                       self.validation_spin, self.lr_spin, self.seed_spin, self.advanced,
                       self.start_button):
            widget.setEnabled(idle)
        use_weights = self.weights_checkbox.isChecked()
        self.w0_spin.setEnabled(idle and use_weights)
        self.sigma_spin.setEnabled(idle and use_weights)
        self.stop_button.setEnabled(self.running and not self._stop.is_set())
        self.save_button.setEnabled(idle and self.result is not None)

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
            labels, name, source = self._preview_input()
        except _BadInput as error:
            self._report(str(error))
            return None
        work = partial(_preview_work, labels, name, self._weight_parameters())
        return Job(work, partial(self._show_preview, source), self._preview_failed)

    def _preview_input(self) -> tuple[np.ndarray | str, str, Layer | None]:
        """The first sample's labels (array, or the folder to read them from), name, layer."""
        if self.use_folder:
            return _folder_source(self.folder).images, "", None
        if not self._pairs:
            raise _BadInput("Add an (image, labels) pair to preview its training weights.")
        image, labels = self.pairs[0]
        _check_pair(image, labels, 1)
        return _layer_array(labels), labels.name, labels

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
                    contrast_limits=limits, metadata={PREVIEW_KEY: True}, **placement,
                )
        elif source is not None:
            update_layer(preview, source, data=weights, name=name, contrast_limits=limits)
        else:
            preview.data, preview.name, preview.contrast_limits = weights, name, limits
        self._set_status(f"Preview: '{name}' (max weight {limits[1]:.3g}).")

    def _preview_failed(self, error: Exception) -> None:
        self._report(f"Preview failed: {_user_message(error)}")

    # -- training --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a training runs (also while it is being cancelled)."""
        return self._worker is not None

    def start(self) -> None:
        """Check the inputs and start training in a background thread.

        Bad inputs (no pairs, a missing folder, mismatched shapes, an Image layer as
        labels) are reported by a napari notification and nothing starts.
        """
        if self.running:
            return
        try:
            source = _folder_source(self.folder) if self.use_folder else _layers_source(
                self.pairs)
        except _BadInput as error:
            self._report(str(error))
            return
        parameters = self.parameters()
        self._run_id = run_id = next(self._run_ids)
        self._stop.clear()
        self._last_batch = self._last_epoch = None
        self._device = None
        total = parameters["epochs"] * parameters["steps_per_epoch"]
        self.train_bar.setRange(0, total)
        self.train_bar.setValue(0)
        self.plot.clear(parameters["epochs"])
        # A new thread per run: TensorFlow must not run on a reused pool thread (see
        # napari_unet_weights.unet.device).
        worker = create_worker(
            call_in_new_thread, _run_training, source, parameters,
            partial(self._emit_progress, run_id),
            self._stop.is_set, _start_thread=False, _ignore_errors=True,
        )
        worker.returned.connect(partial(self._on_trained, run_id))
        worker.errored.connect(partial(self._on_failed, run_id))
        worker.finished.connect(partial(self._on_finished, run_id))
        self._worker = worker
        self._set_running(True)
        self._set_status(f"Starting on {source.description}…")
        worker.start()

    def cancel(self) -> None:
        """Stop training after the current batch; the best model so far is kept."""
        if not self.running or self._stop.is_set():
            return
        self._stop.set()
        self._set_status("Cancelling after the current batch…")
        self._update_enabled()

    def _emit_progress(self, run_id: int, info: dict[str, Any]) -> None:
        """``train``'s progress callback: runs on the training thread, touches no widget."""
        self._relay.progress.emit((run_id, dict(info)))

    def _on_progress(self, message: tuple[int, dict[str, Any]]) -> None:
        run_id, info = message
        if run_id != self._run_id or self._closed:
            return
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
        if self.train_bar.maximum() != epochs * steps:
            self.train_bar.setRange(0, epochs * steps)
        self.train_bar.setValue(min((epoch - 1) * steps + step, epochs * steps))
        self.plot.add_batch(epoch - 1 + step / steps, info.get("loss"))

    def _on_trained(self, run_id: int, result: Any) -> None:
        if run_id != self._run_id or self._closed:
            return
        self.result = result
        self.saved_path = None
        self._device = getattr(result, "device", None) or self._device
        self._replot(result)
        if not getattr(result, "cancelled", False):
            self.train_bar.setValue(self.train_bar.maximum())
        self._set_status(self._summary(result))
        self.result_label.setText(self._result_text())
        self.trained.emit(result)

    def _replot(self, result: Any) -> None:
        """Redraw the epoch series from ``result.history`` (the authoritative record)."""
        history = getattr(result, "history", None)
        if history is None or len(history) == 0 or "epoch" not in history:
            return
        batch_loss = self.plot.batch_loss
        self.plot.clear(self.plot.epochs)
        self.plot.batch_loss = batch_loss
        for row in history.to_dict("records"):
            self.plot.add_epoch(row["epoch"], row.get("loss"), row.get("val_loss"),
                                row.get("val_map"))

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
        tail = [f"val mAP {_number(self._validation_map(result), 3)}"]
        if self._device:
            tail.append(str(self._device))
        return f"{head} · {' · '.join(tail)}."

    @staticmethod
    def _validation_map(result: Any) -> float | None:
        validation = getattr(result, "validation", None) or {}
        return validation.get("map") if isinstance(validation, dict) else None

    def _result_text(self) -> str:
        if self.result is None:
            return "No model yet."
        text = f"Model: validation mAP {_number(self._validation_map(self.result), 3)}"
        if self.saved_path is not None:
            text += f"<br>saved to {self.saved_path}"
        return text

    def _on_failed(self, run_id: int, error: Exception) -> None:
        if run_id != self._run_id or self._closed:
            return
        self._report(f"Training failed: {_user_message(error)}")

    def _on_finished(self, run_id: int) -> None:
        if run_id != self._run_id:
            return
        self._worker = None
        if not self._closed:
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        for row in self._pairs:
            row.setEnabled(not running)
        self._update_enabled()

    def _report(self, message: str) -> None:
        """Show ``message`` in the status line and as a napari error notification."""
        self._set_status(message)
        show_error(f"{TITLE}: {message}")

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
            self._report(f"Could not save the model to {path}: {_user_message(error)}")
            return None
        self.saved_path = path
        self.result_label.setText(self._result_text())
        self._set_status(f"Model saved to {path}.")
        show_info(f"{TITLE}: model saved to {path}")
        return path

    # -- teardown ----------------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop a running training and disconnect from the viewer."""
        self._stop.set()
        self._run_id = -1
        super().teardown()


def _run_training(
    source: _Source,
    parameters: dict[str, Any],
    progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
) -> Any:
    """Worker body: import the training core (TensorFlow) and train."""
    train = _load_train()
    return train(source.images, source.labels, **parameters, progress=progress,
                 should_stop=should_stop)
