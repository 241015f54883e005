"""Segment's "Nucleus diameter (px)" control: as trained, auto, or a number of pixels.

The value is the ``diameter`` of :func:`napari_unet_weights.unet.predict.segment`
(None, ``"auto"`` or a float). The number box starts at the picked model's recorded
diameter (its training nuclei's median, read from the file without TensorFlow) and
allows the factors the core allows (:data:`~napari_unet_weights.unet.diameter.MIN_FACTOR`
to :data:`~napari_unet_weights.unet.diameter.MAX_FACTOR`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QWidget

from napari_unet_weights.unet.diameter import (
    AUTO,
    AUTO_TOLERANCE,
    MAX_FACTOR,
    MIN_FACTOR,
    model_diameter,
)

__all__ = ["AS_TRAINED", "CHOICES", "DIAMETER_TIP", "NUMBER", "DiameterChoice"]

AS_TRAINED, NUMBER = "as trained", "number"
CHOICES = (AS_TRAINED, AUTO, NUMBER)
DIAMETER_TIP = (
    "The diameter of this image's nuclei, in pixels. As trained: the image is segmented "
    "as it is. A number: the image is resized so that its nuclei have the size the model "
    "was trained on ({model}), segmented there (min size and expand are in the model's "
    "pixels) and the labels resized back to the image. Auto: a first pass estimates the "
    "median diameter; a second pass at it when it differs from the model's by more than "
    f"{AUTO_TOLERANCE:.0%} (up to twice the time). The diameter used is shown after the "
    "run."
)
NO_RECORD = "this model file does not record its nuclei's size: only 'as trained'"


class DiameterChoice(QWidget):
    """A combo (as trained / auto / number) and the number's spin box, in one row.

    Attributes
    ----------
    combo : QComboBox
    number : QDoubleSpinBox
        Enabled for the "number" choice only.
    model_diameter : float or None
        The picked model's recorded diameter (None: not recorded).

    Notes
    -----
    ``changed`` is emitted when the value changes.
    """

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.model_diameter: float | None = None
        self.combo = QComboBox()
        self.combo.addItems(CHOICES)
        self.number = QDoubleSpinBox()
        self.number.setDecimals(1)
        self.number.setSuffix(" px")
        self.number.setRange(1.0, 1000.0)
        self.number.setValue(20.0)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.number)
        self.combo.currentTextChanged.connect(self._on_choice)
        self.number.valueChanged.connect(lambda _value: self.changed.emit())
        self._on_choice(self.combo.currentText())
        self.set_model(None)

    def _on_choice(self, text: str) -> None:
        self.number.setEnabled(text == NUMBER)
        self.changed.emit()

    def set_model(self, metadata: Mapping[str, Any] | None) -> None:
        """The picked model's metadata (None: unreadable): its diameter, range and tips."""
        try:
            diameter = model_diameter(metadata or {})
        except ValueError:
            diameter = None
        self.model_diameter = diameter
        if diameter is not None:
            self.number.setRange(round(diameter / MAX_FACTOR, 1) + 0.1,
                                 round(diameter / MIN_FACTOR, 1) - 0.1)
            self.number.setValue(diameter)
            model = f"{diameter:.1f} px for this model"
        else:
            model = NO_RECORD
        tip = DIAMETER_TIP.format(model=model)
        for widget in (self, self.combo, self.number):
            widget.setToolTip(tip)

    def value(self) -> float | str | None:
        """The ``diameter`` asked for: None (as trained), ``"auto"`` or a float."""
        text = self.combo.currentText()
        if text == AS_TRAINED:
            return None
        return AUTO if text == AUTO else float(self.number.value())

    def set_value(self, value: float | str | None) -> None:
        """Show ``value`` (None, ``"auto"`` or a number of pixels)."""
        if value is None or value == AUTO:
            self.combo.setCurrentText(AS_TRAINED if value is None else AUTO)
            return
        self.number.setValue(float(value))
        self.combo.setCurrentText(NUMBER)

    def problem(self) -> str | None:
        """Why the value cannot be used with the picked model, or None."""
        if self.value() is not None and self.model_diameter is None:
            return (f"Nucleus diameter: {NO_RECORD} (the model does not record the size of "
                    "the nuclei it was trained on).")
        return None
