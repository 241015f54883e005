"""The Model QA widget's model pickers: the bundled model, a model file, or a labels folder.

:class:`QAModelChoice` is the Segment widget's model picker
(:class:`~..common.model_choice.ModelChoice`: the bundled model, ``.keras`` files added with
"File…", what each file records, read without TensorFlow) with a "Labels folder…" button:
a folder of label images is another tool's predictions (cellpose, StarDist, a manual
segmentation), paired with the images by file name, as
:func:`~napari_unet_weights.qa.evaluate_models.evaluate_models` takes it. The second
model's picker starts on "none" (one model scored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QFileDialog, QWidget

from napari_unet_weights._widgets.common.controls import push_button
from napari_unet_weights._widgets.common.model_choice import ModelChoice
from napari_unet_weights.qa.inputs import BUNDLED
from napari_unet_weights.unet.model_file import BUNDLED_MODEL

__all__ = ["NONE_CHOICE", "QAModelChoice", "model_names"]

NONE_CHOICE = "none (score one model)"
FOLDER_TEXT = ("Label images from another tool, paired with the images by file name "
               "(images/a.tif with a.tif or a.png here).")
NONE_TEXT = "Only the first model is scored."


class QAModelChoice(ModelChoice):
    """A model to score: the bundled model, a model file, a folder of label images (or none).

    Parameters
    ----------
    optional : bool
        Whether "none" is offered (and picked first).
    bundled : pathlib.Path
        The bundled model file.
    parent : QWidget, optional
        Qt parent.

    Notes
    -----
    ``changed`` is emitted after each pick (a model file's record read).
    """

    def __init__(self, optional: bool = False, bundled: Path = BUNDLED_MODEL,
                 parent: QWidget | None = None) -> None:
        super().__init__(bundled, parent)
        if optional:
            self.combo.blockSignals(True)
            self.combo.insertItem(0, NONE_CHOICE, None)
            self.combo.setCurrentIndex(0)
            self.combo.blockSignals(False)
        self.combo.setToolTip("The bundled nuclei model, a .keras file, or a folder of label "
                              "images made by another tool")
        self.folder_button = push_button("Labels folder…", self.choose_folder,
                                         "A folder of label images (another tool's "
                                         "predictions), paired with the images by name")
        self.layout().itemAt(0).layout().addWidget(self.folder_button)
        self.reread()

    # -- what is picked ---------------------------------------------------------------
    @property
    def chosen(self) -> bool:
        """Whether a model is picked (not "none")."""
        return self.combo.currentData() is not None

    @property
    def is_folder(self) -> bool:
        """Whether the pick is a folder of label images."""
        return self.chosen and self.path.is_dir()

    @property
    def spec(self) -> str | Path | None:
        """The model as ``evaluate_models`` takes it: ``"bundled"``, a path, or None."""
        if not self.chosen:
            return None
        return BUNDLED if self.path == self._bundled else self.path

    @property
    def name(self) -> str:
        """The model's name in the tables: ``"bundled"``, the file's stem, the folder's name."""
        spec = self.spec
        if spec is None:
            return ""
        return BUNDLED if spec == BUNDLED else (spec.name if spec.is_dir() else spec.stem)

    # -- picking ------------------------------------------------------------------------
    def choose_folder(self, folder: str | Path | None = None) -> None:
        """Pick a folder of label images (asked with a dialog when none is given)."""
        if folder is None:
            folders = [path for path in self.files if path.is_dir()]
            start = str(folders[-1].parent if folders else Path.home())
            folder = QFileDialog.getExistingDirectory(self, "Folder of label images", start)
            if not folder:
                return
        self.choose_file(folder)  # added once, picked, read (a folder: nothing to read)
        self.combo.setItemText(self.combo.currentIndex(), f"{Path(folder).name}/ (labels)")

    def reread(self, _index: Any = None) -> None:
        """Read a model file's record (nothing to read for a folder or none); emit ``changed``."""
        if not self.chosen:
            self.metadata, self.error = None, None
            self.label.setText(NONE_TEXT)
        elif self.is_folder:
            self.metadata, self.error = None, None
            self.label.setText(FOLDER_TEXT)
        else:
            self._read()
        self.changed.emit()


def model_names(a: QAModelChoice, b: QAModelChoice) -> dict[str, str | Path]:
    """``evaluate_models``' models: ``{name: spec}``, the second renamed if both are named alike.

    Parameters
    ----------
    a, b : QAModelChoice
        The first model (always picked) and the second (maybe none).

    Returns
    -------
    dict of str to str or pathlib.Path
    """
    models = {a.name: a.spec}
    if b.chosen:
        name = b.name if b.name != a.name else f"{b.name} (B)"
        models[name] = b.spec
    return models
