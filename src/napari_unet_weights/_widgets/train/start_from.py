"""The Train U-Net widget's "start from": random weights, the bundled model or a model file.

:class:`StartFrom` is the Segment widget's model picker
(:class:`~..common.model_choice.ModelChoice`: the bundled model, ``.keras`` files added with
"File…", what each file records, read without TensorFlow) with a first choice, "scratch",
and a time budget. Starting from a model fine-tunes it: :meth:`StartFrom.base_config` is then what
:func:`~napari_unet_weights.unet.training.parent.fine_tuning_config` makes of the model's metadata
(fine-tuning defaults, the model's architecture and classes), and the parameters the
model fixes (:data:`~napari_unet_weights.unet.training.parent.INHERITED`) cannot be changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QFormLayout, QWidget

from napari_unet_weights._widgets.common.controls import spin_box
from napari_unet_weights._widgets.common.model_choice import PROBLEM_COLOR, ModelChoice
from napari_unet_weights.unet.config import TrainConfig, TrainConfigError
from napari_unet_weights.unet.model_file import BUNDLED_MODEL
from napari_unet_weights.unet.training.parent import INHERITED, fine_tuning_config

__all__ = ["DEFAULT_BUDGET_MINUTES", "SCRATCH_CHOICE", "StartFrom"]

SCRATCH_CHOICE = "scratch (random weights)"
#: The time budget of a fine-tuning, in minutes, until the user changes it.
DEFAULT_BUDGET_MINUTES = 5.0
BUDGET_TIP = ("Fine-tuning returns within this time, the final validation and the saving "
              "included (fitting stops early enough for them)")
SCRATCH_TEXT = "Train a new network from random weights."


class StartFrom(ModelChoice):
    """Where training starts: scratch, the bundled model or a ``.keras`` file.

    Parameters
    ----------
    bundled : pathlib.Path
        The bundled model file.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    budget_spin : QDoubleSpinBox
        The fine-tuning's time budget in minutes (enabled when fine-tuning).

    Notes
    -----
    ``changed`` is emitted after each pick (its metadata read).
    """

    def __init__(self, bundled: Path = BUNDLED_MODEL, parent: QWidget | None = None) -> None:
        super().__init__(bundled, parent)
        self.combo.blockSignals(True)
        self.combo.insertItem(0, SCRATCH_CHOICE, None)
        self.combo.setCurrentIndex(0)
        self.combo.blockSignals(False)
        self.combo.setToolTip("Train from random weights, or fine-tune the bundled nuclei "
                              "model or a .keras file trained here")
        self.browse_button.setToolTip("Fine-tune a .keras model file")
        self.budget_spin = spin_box(0.5, 24 * 60, DEFAULT_BUDGET_MINUTES, 1, 1, BUDGET_TIP)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("time budget (min)", self.budget_spin)
        self.layout().addLayout(form)
        self.reread()

    # -- what is picked ------------------------------------------------------------------
    @property
    def fine_tuning(self) -> bool:
        """Whether training starts from a model (not from scratch)."""
        return self.combo.currentData() is not None

    @property
    def initial_model(self) -> str | Path | None:
        """``train``'s ``initial_model``: None, ``"bundled"`` or the model file's path."""
        if not self.fine_tuning:
            return None
        return "bundled" if self.path == self._bundled else self.path

    @property
    def finish_within(self) -> float | None:
        """``train``'s ``finish_within`` in seconds: the budget when fine-tuning, else None."""
        return 60.0 * float(self.budget_spin.value()) if self.fine_tuning else None

    @property
    def inherited(self) -> tuple[str, ...]:
        """The parameters the picked model fixes (none from scratch)."""
        return INHERITED if self.fine_tuning else ()

    def run_options(self) -> dict[str, Any]:
        """``initial_model`` and ``finish_within``, as ``train`` takes them."""
        return {"initial_model": self.initial_model, "finish_within": self.finish_within}

    def base_config(self) -> TrainConfig:
        """What the controls start from: the defaults, or the picked model's fine-tuning.

        Raises
        ------
        TrainConfigError
            If the model's metadata records values training does not accept.
        """
        if not self.fine_tuning or self.metadata is None:
            return TrainConfig()
        return fine_tuning_config(self.metadata)

    # -- reading the pick -----------------------------------------------------------------
    def reread(self, _index: Any = None) -> None:
        """Read the picked model's metadata (nothing to read from scratch); emit ``changed``."""
        self.budget_spin.setEnabled(self.fine_tuning)
        if self.fine_tuning:
            self._read()
            self._check_config()
        else:
            self.metadata, self.error = None, None
            self.label.setText(SCRATCH_TEXT)
        self.changed.emit()

    def _check_config(self) -> None:
        """Say (once the pick is read) if its recorded training values are not accepted."""
        if self.metadata is None:
            return
        try:
            self.base_config()
        except TrainConfigError as error:
            self.error = f"Cannot fine-tune {self.path.name}: {error}"
            self.label.setText(f"<span style='color:{PROBLEM_COLOR}'>{self.error}</span>")
