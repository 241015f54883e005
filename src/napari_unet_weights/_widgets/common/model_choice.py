"""The Segment widget's model picker: the bundled model or a ``.keras`` file, and its record.

A model file trained with this plugin describes itself (classes, normalisation,
post-processing, validation score) in a JSON entry read without TensorFlow
(:func:`~napari_unet_weights.unet.model_file.read_metadata`), so :class:`ModelChoice`
shows a file's score the moment it is picked, and a file that is not a model is said at
once instead of when a run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from napari_unet_weights._widgets.common.base import user_message
from napari_unet_weights._widgets.common.controls import push_button
from napari_unet_weights.unet.model_file import read_metadata, score_summary

__all__ = ["BUNDLED_CHOICE", "ModelChoice", "model_summary"]

BUNDLED_CHOICE = "bundled (DSB 2018 nuclei)"
#: Colour of the line that says why a model file cannot be used.
PROBLEM_COLOR = "#e8804c"


def model_summary(metadata: dict) -> str:
    """One line about a model file: its scores (test first) and classes.

    Parameters
    ----------
    metadata : dict
        The model file's metadata (:func:`~napari_unet_weights.unet.read_metadata`).

    Returns
    -------
    str
        E.g. ``"test mAP 0.612 (86 images; validation 0.634) · 3 classes: background,
        interior, boundary"`` (see :func:`~napari_unet_weights.unet.model_file.score_summary`).
    """
    classes = metadata.get("classes") or []
    n_classes = metadata.get("n_classes", len(classes))
    names = f": {', '.join(map(str, classes))}" if classes else ""
    return f"{score_summary(metadata)} · {n_classes} classes{names}"


class ModelChoice(QWidget):
    """A model picker (the bundled model, files added with "File…") and what the file says.

    Parameters
    ----------
    bundled : pathlib.Path
        The bundled model file (it may be missing: then the picker says so).
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    metadata : dict or None
        The picked file's metadata, None if it could not be read.
    error : str or None
        Why the picked file cannot be used, None if it can.
    files : list of pathlib.Path
        The files added, in order.

    Notes
    -----
    ``changed`` is emitted after the picked file was read (a new pick, or :meth:`reread`).
    """

    changed = Signal()

    def __init__(self, bundled: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bundled = Path(bundled)
        self.metadata: dict | None = None
        self.error: str | None = None
        self.files: list[Path] = []
        self.combo = QComboBox()
        self.combo.addItem(BUNDLED_CHOICE, self._bundled)
        self.combo.setToolTip("The bundled nuclei model, or a .keras file trained here")
        self.combo.currentIndexChanged.connect(self.reread)
        self.browse_button = push_button("File…", self.choose_file, "Choose a .keras model file")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.label)

    @property
    def path(self) -> Path:
        """The model file picked (the bundled model's path for the bundled choice)."""
        return Path(self.combo.currentData())

    def choose_file(self, path: str | Path | None = None) -> None:
        """Pick a ``.keras`` model file (asked with a file dialog when no path is given).

        Parameters
        ----------
        path : str or pathlib.Path, optional
            The model file, added to the picker once. Its metadata is read at once.
        """
        if path is None:
            start = str(self.files[-1].parent if self.files else Path.home())
            path, _ = QFileDialog.getOpenFileName(self, "Open U-Net model", start,
                                                  "Keras model or bioimage.io package "
                                                  "(*.keras *.zip);;All files (*)")
            if not path:
                return
        path = Path(path)
        index = next((i for i in range(self.combo.count()) if self.combo.itemData(i) is not None
                      and Path(self.combo.itemData(i)) == path), -1)
        if index < 0:
            self.files.append(path)
            self.combo.addItem(path.name, path)
            index = self.combo.count() - 1
            self.combo.setItemData(index, str(path), Qt.ItemDataRole.ToolTipRole)
        if index == self.combo.currentIndex():
            self.reread()
        else:
            self.combo.setCurrentIndex(index)

    def reread(self, _index: Any = None) -> None:
        """Read the picked file's metadata again and show its summary (or its problem)."""
        self._read()
        self.changed.emit()

    def _read(self) -> None:
        """Read the picked file's metadata into :attr:`metadata` (or :attr:`error`)."""
        path = self.path
        try:
            self.metadata, self.error = read_metadata(path), None
        except (OSError, ValueError) as error:
            self.metadata, self.error = None, user_message(error)
        if self.metadata is None:
            missing = path == self._bundled and not path.exists()
            text = ("The bundled model is not installed: choose a .keras file (File…)."
                    if missing else self.error)
            self.label.setText(f"<span style='color:{PROBLEM_COLOR}'>{text}</span>")
        else:
            self.label.setText(model_summary(self.metadata))
