"""The Train U-Net widget's "Export…": the trained model as a bioimage.io package.

The export reads the model from a file (the ``.keras`` file Save wrote, else a temporary
copy, as "Use this model" does), loaded again on the export's own thread
(:class:`~..common.export_model.ModelExport`); the button is off until a training ended.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from napari_unet_weights._widgets.common.export_model import ExportSource, ModelExport

__all__ = ["DEFAULT_NAME", "trained_model", "trained_model_export"]

#: The package name proposed for a model that was not saved (Save proposes "unet.keras").
DEFAULT_NAME = "unet"


def trained_model(widget: Any) -> ExportSource:
    """The Train widget's model as a file, and its name (the saved file's, else "unet").

    Parameters
    ----------
    widget : TrainWidget
        The widget (not imported here: it imports this module).

    Raises
    ------
    ValueError
        No training ended yet (or one runs), or the model could not be written.
    """
    if widget.result is None or widget.running:
        raise ValueError("there is no trained model yet (train one first).")
    path = widget.model_file()
    if path is None:
        raise ValueError("the trained model could not be written to a file.")
    name = widget.saved_path.stem if widget.saved_path is not None else DEFAULT_NAME
    return ExportSource(path, name)


def trained_model_export(widget: Any) -> ModelExport:
    """The Train widget's :class:`~..common.export_model.ModelExport` (the widget turns its
    button on once a training ended)."""
    return ModelExport(widget.TITLE, partial(trained_model, widget), widget.backend_choice)
