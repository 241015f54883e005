"""What the Train U-Net widget trains on: (image, labels) layer pairs, or a folder.

:class:`DataSource` is the widget's data box, two tabs: "Layers", a :class:`PairList`
with one :class:`PairRow` (an image picker, a labels picker, a remove button) per pair,
a new row picking an image and labels not yet in a pair, of the same shape where
possible; and "Folder", a folder holding ``images/`` and ``labels/``.
:func:`layers_source` and :func:`folder_source` check what the user picked and snapshot
it for ``train``, raising :class:`BadInput` with a message for the user before anything
runs; :func:`preview_work` computes the loss weights of the first sample for the preview.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_unet_weights._widgets.common.controls import fill_combo, push_button
from napari_unet_weights._widgets.common.layer_roles import is_plugin_output

if TYPE_CHECKING:
    from napari.components import LayerList
    from napari.layers import Layer

__all__ = [
    "BadInput",
    "DataSource",
    "PairList",
    "PairRow",
    "TrainingData",
    "check_pair",
    "folder_source",
    "layer_array",
    "layers_source",
    "preview_work",
    "spatial_shape",
]


class BadInput(ValueError):
    """A problem with the widget's inputs, found before anything runs."""


@dataclass
class TrainingData:
    """The data handed to ``train``: arrays (``labels`` given) or a folder (``labels`` None).

    ``validation`` is ``train``'s ``validation``: None (a split, or the training images
    when fine-tuning on a few), or an explicit ``(images, labels)``.
    """

    images: list[np.ndarray] | str
    labels: list[np.ndarray] | None
    description: str
    validation: Any = None


# -- checks and snapshots -----------------------------------------------------------------
def layer_array(layer: Layer) -> np.ndarray:
    """A copy of the layer's data (its full-resolution level if multiscale)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return np.array(data)


def spatial_shape(layer: Layer) -> tuple[int, ...]:
    """The shape of the layer's pixels without the colour axis of an RGB(A) image."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    shape = tuple(int(n) for n in data.shape)
    return shape[:-1] if isinstance(layer, Image) and layer.rgb else shape


def check_pair(image: Layer | None, labels: Layer | None, row: int) -> None:
    """Raise :class:`BadInput` naming what is wrong with pair ``row`` (1-based)."""
    if image is None or labels is None:
        raise BadInput(f"Pair {row} needs an image layer and a labels layer.")
    if not isinstance(labels, Labels):
        raise BadInput(
            f"'{labels.name}' (pair {row}) is an Image layer, not a Labels layer: convert it "
            "(right-click it in the layer list → Convert to Labels) or pick a Labels layer."
        )
    if not isinstance(image, Image):
        raise BadInput(f"'{image.name}' (pair {row}) is not an Image layer.")
    image_shape, labels_shape = spatial_shape(image), spatial_shape(labels)
    if image_shape != labels_shape:
        raise BadInput(
            f"Image '{image.name}' has shape {image_shape} but labels '{labels.name}' have "
            f"shape {labels_shape} (pair {row}); each image needs labels of the same shape."
        )


def layers_source(pairs: Sequence[tuple[Layer | None, Layer | None]]) -> TrainingData:
    """Check the (image, labels) layer pairs and snapshot their data."""
    if not pairs:
        raise BadInput("Add at least one (image, labels) pair of layers, or pick a folder.")
    for row, (image, labels) in enumerate(pairs, start=1):
        check_pair(image, labels, row)
    images = [layer_array(image) for image, _ in pairs]
    labels = [layer_array(labels) for _, labels in pairs]
    names = ", ".join(f"{image.name} + {label.name}" for image, label in pairs)
    return TrainingData(images, labels, f"{len(pairs)} pair{'s' * (len(pairs) > 1)}: {names}")


def folder_source(folder: str) -> TrainingData:
    """Check that ``folder`` holds ``images/`` and ``labels/`` subfolders."""
    if not folder:
        raise BadInput("Choose a folder holding images/ and labels/ subfolders.")
    root = Path(folder)
    missing = [name for name in ("images", "labels") if not (root / name).is_dir()]
    if missing:
        raise BadInput(
            f"{root} has no {' and no '.join(name + '/' for name in missing)} subfolder: "
            "the folder needs images/ and labels/ with files paired by name."
        )
    return TrainingData(str(root), None, str(root))


# -- the weight-map preview's worker ---------------------------------------------------------
def _load_training_weights() -> Callable[..., np.ndarray]:
    """Import and return :func:`napari_unet_weights.unet.targets.training_weights`."""
    from napari_unet_weights.unet.targets import training_weights

    return training_weights


def _first_folder_labels(folder: str) -> tuple[np.ndarray, str]:
    """The labels of the first (image, labels) file pair of ``folder``, and its name."""
    from napari_unet_weights.io.files import file_stem, pair_files, read_labels

    root = Path(folder)
    _image_path, labels_path = pair_files(root / "images", root / "labels")[0]
    return read_labels(labels_path), file_stem(labels_path)


def preview_work(
    labels: np.ndarray | str, name: str, parameters: dict[str, Any]
) -> tuple[np.ndarray, str]:
    """Worker body of the preview: the training weights of one labels array (or folder).

    Parameters
    ----------
    labels : numpy.ndarray or str
        The first sample's labels, or the folder to read them from.
    name : str
        The name of the labels (replaced by the file's stem for a folder).
    parameters : dict
        ``n_classes``, ``w0``, ``sigma`` and ``use_weights``.

    Returns
    -------
    weights : numpy.ndarray
        The loss weights.
    name : str
        The name of the labels they are for.
    """
    if isinstance(labels, str):
        labels, name = _first_folder_labels(labels)
    return _load_training_weights()(labels, **parameters), name


# -- the layer pair pickers ------------------------------------------------------------------
class PairRow(QWidget):
    """One (image layer, labels layer) pair: two pickers and a remove button."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.image_combo.setToolTip("Image layer")
        self.labels_combo.setToolTip("Labels layer (integer instance labels)")
        self.remove_button = push_button(
            "✕", lambda: self.remove_requested.emit(self), "Remove this pair")
        self.remove_button.setFixedWidth(28)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image_combo, 1)
        layout.addWidget(self.labels_combo, 1)
        layout.addWidget(self.remove_button)
        self.image_combo.currentIndexChanged.connect(self.changed)
        self.labels_combo.currentIndexChanged.connect(self.changed)

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
        fill_combo(self.image_combo, images, before[0])
        fill_combo(self.labels_combo, labels, before[1])
        if (self.image_layer, self.labels_layer) != before:
            self.changed.emit()


class PairList(QWidget):
    """The (image, labels) layer pairs to train on: a row per pair and "+ add pair".

    Parameters
    ----------
    layers : napari.components.LayerList
        The viewer's layers, offered in the pickers.

    Notes
    -----
    ``changed`` is emitted when a pair is added, removed or picks other layers.
    """

    changed = Signal()

    def __init__(self, layers: LayerList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layers = layers
        self.rows: list[PairRow] = []
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(2)
        header = QHBoxLayout()
        header.addWidget(QLabel("image"), 1)
        header.addWidget(QLabel("labels"), 1)
        header.addSpacing(28)
        self.add_button = push_button("+ add pair", self.add_pair,
                                      "Add a row for one more (image, labels) pair")
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addLayout(self.rows_layout)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)

    # -- what is offered -----------------------------------------------------------------
    def images(self) -> list[Image]:
        """Image layers, but not the plugin's own outputs (probabilities, previews…)."""
        return [layer for layer in self._layers
                if isinstance(layer, Image) and not is_plugin_output(layer)]

    def labels_like(self) -> list[Layer]:
        """Labels layers, then integer single-channel Image layers (refused at Start)."""
        labels = [layer for layer in self._layers if isinstance(layer, Labels)]
        masks = [layer for layer in self.images()
                 if not layer.rgb and np.issubdtype(layer.dtype, np.integer)]
        return labels + masks

    def refresh_choices(self) -> None:
        """Re-read the layer list into every row's pickers."""
        images, labels = self.images(), self.labels_like()
        for row in self.rows:
            row.set_choices(images, labels)

    # -- the pairs -----------------------------------------------------------------------
    @property
    def pairs(self) -> list[tuple[Layer | None, Layer | None]]:
        """The (image layer, labels layer) pairs picked, in order."""
        return [(row.image_layer, row.labels_layer) for row in self.rows]

    def add_pair(self, image: Layer | None = None, labels: Layer | None = None) -> PairRow:
        """Add a row picking ``image`` and ``labels``, else layers not yet in a pair.

        Parameters
        ----------
        image : napari.layers.Image, optional
            The image layer to pick.
        labels : napari.layers.Labels, optional
            The labels layer to pick (by default one of the image's shape, if any).

        Returns
        -------
        PairRow
            The new row.
        """
        row = PairRow()
        row.set_choices(self.images(), self.labels_like())
        image = image or self._guess_image()
        labels = labels or self._guess_labels(image)
        row.set_layers(image, labels)
        row.changed.connect(self.changed)
        row.remove_requested.connect(self.remove_pair)
        self.rows.append(row)
        self.rows_layout.addWidget(row)
        self.changed.emit()
        return row

    def remove_pair(self, row: PairRow | int) -> None:
        """Remove a row (the row widget, or its index)."""
        row = self.rows[row] if isinstance(row, int) else row
        self.rows.remove(row)
        self.rows_layout.removeWidget(row)
        row.deleteLater()
        self.changed.emit()

    def _unused_labels(self) -> list[Layer]:
        used = {id(labels) for _, labels in self.pairs}
        return [layer for layer in self.labels_like() if id(layer) not in used]

    def _guess_image(self) -> Layer | None:
        """The first image not in a pair, preferably one with unused labels of its shape."""
        used = {id(image) for image, _ in self.pairs}
        images = [layer for layer in self.images() if id(layer) not in used]
        shapes = {spatial_shape(layer) for layer in self._unused_labels()}
        fitting = [layer for layer in images if spatial_shape(layer) in shapes]
        return next(iter(fitting or images), None)

    def _guess_labels(self, image: Layer | None) -> Layer | None:
        """The first labels layer not in a pair, preferably one of ``image``'s shape."""
        candidates = self._unused_labels()
        if image is not None:
            shape = spatial_shape(image)
            fitting = [layer for layer in candidates if spatial_shape(layer) == shape]
            candidates = fitting or candidates
        return next(iter(candidates), None)


class DataSource(QTabWidget):
    """The data to train on: layer pairs (tab "Layers"), a folder ("Folder") or snapshots.

    Parameters
    ----------
    layers : napari.components.LayerList
        The viewer's layers, offered in the pair pickers.
    training_set : QWidget, optional
        The third tab, "Training set" (a :class:`~..train.training_set.TrainingSetList`: its
        ``training_data()`` and ``first_labels()`` are used when the tab is picked).

    Notes
    -----
    ``changed`` is emitted when the pairs, the folder or the tab change.
    """

    changed = Signal()

    def __init__(self, layers: LayerList, training_set: QWidget | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.training_set = training_set
        self.pair_list = PairList(layers)
        self.pair_list.changed.connect(self.changed)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder with images/ and labels/")
        self.folder_edit.textChanged.connect(self.changed)
        self.browse_button = push_button("Browse…", self.choose_folder,
                                         "Choose the folder with a file dialog")
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        hint = QLabel("Image and label files are paired by name (e.g. images/a.tif + "
                      "labels/a.png).")
        hint.setWordWrap(True)
        folder_page = QWidget()
        folder_layout = QVBoxLayout(folder_page)
        folder_layout.addLayout(folder_row)
        folder_layout.addWidget(hint)
        folder_layout.addStretch(1)
        self.addTab(self.pair_list, "Layers")
        self.addTab(folder_page, "Folder")
        if training_set is not None:
            self.addTab(training_set, "Training set")
            training_set.changed.connect(self.changed)
        self.currentChanged.connect(self.changed)

    @property
    def folder(self) -> str:
        """The folder typed or chosen ("" if none)."""
        return self.folder_edit.text().strip()

    @property
    def use_folder(self) -> bool:
        """Whether the data come from the folder tab rather than the layer pairs."""
        return self.currentIndex() == 1

    @property
    def use_training_set(self) -> bool:
        """Whether the data come from the training set tab."""
        return self.training_set is not None and self.currentWidget() is self.training_set

    def show_training_set(self) -> None:
        """Pick the training set tab."""
        self.setCurrentWidget(self.training_set)

    def choose_folder(self, folder: str | None = None) -> None:
        """Train on ``folder`` (asked with a dialog if None) instead of the layers."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(
                self, "Folder with images/ and labels/", self.folder or str(Path.home()))
            if not folder:
                return
        self.folder_edit.setText(str(folder))
        self.setCurrentIndex(1)

    def training_data(self) -> TrainingData:
        """The folder, the training set or a snapshot of the layer pairs, checked.

        Raises
        ------
        BadInput
            What is wrong with the picked data.
        """
        if self.use_training_set:
            return self.training_set.training_data()
        if self.use_folder:
            return folder_source(self.folder)
        return layers_source(self.pair_list.pairs)

    def first_labels(self) -> tuple[np.ndarray | str, str, Layer | None]:
        """The first sample's labels, for the preview: checked, as in :meth:`training_data`.

        Returns
        -------
        labels : numpy.ndarray or str
            A snapshot of the first pair's labels, or the folder to read them from.
        name : str
            The labels layer's name ("" for a folder).
        layer : napari.layers.Labels or None
            The labels layer (None for a folder or the training set).
        """
        if self.use_training_set:
            return self.training_set.first_labels()
        if self.use_folder:
            return folder_source(self.folder).images, "", None
        if not self.pair_list.rows:
            raise BadInput("Add an (image, labels) pair to preview its training weights.")
        image, labels = self.pair_list.pairs[0]
        check_pair(image, labels, 1)
        return layer_array(labels), labels.name, labels
