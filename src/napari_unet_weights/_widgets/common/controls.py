"""Small Qt controls the dock widgets share: buttons, spin boxes, layer combos, form rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qtpy.QtGui import QValidator
from qtpy.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QPushButton,
    QSpinBox,
    QWidget,
)

if TYPE_CHECKING:
    from napari.layers import Layer

__all__ = ["ScientificSpinBox", "control_value", "fill_combo", "push_button", "set_control_value",
           "set_row_visible", "spin_box"]


def push_button(text: str, slot: Callable[[], Any], tooltip: str = "") -> QPushButton:
    """A button that calls ``slot()`` when clicked (without Qt's ``checked`` argument)."""
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.clicked.connect(lambda: slot())
    return button


def spin_box(
    minimum: float,
    maximum: float,
    value: float | None = None,
    step: float = 1,
    decimals: int | None = None,
    tooltip: str = "",
) -> QSpinBox | QDoubleSpinBox:
    """An integer spin box, or a float one when ``decimals`` is given.

    Parameters
    ----------
    minimum, maximum : float
        The range.
    value : float, optional
        The initial value (default: ``minimum``).
    step : float
        What one arrow click adds.
    decimals : int, optional
        Decimals of a float spin box; None: an integer spin box.
    tooltip : str
        The tooltip.
    """
    if decimals is None:
        box = QSpinBox()
        minimum, maximum, step = int(minimum), int(maximum), int(step)
        value = None if value is None else int(value)
    else:
        box = QDoubleSpinBox()
        box.setDecimals(decimals)
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    box.setValue(minimum if value is None else value)
    box.setToolTip(tooltip)
    return box


class ScientificSpinBox(QDoubleSpinBox):
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


def fill_combo(combo: QComboBox, layers: Sequence[Layer], keep: Layer | None) -> None:
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


def set_row_visible(form: QFormLayout, field_widget: QWidget, visible: bool) -> None:
    """Show or hide a row of ``form`` (its label and field); Qt 5 has no setRowVisible."""
    field_widget.setVisible(visible)
    label = form.labelForField(field_widget)
    if label is not None:
        label.setVisible(visible)


def control_value(widget: QWidget) -> Any:
    """The value a control shows: a combo's item data, a check box's state, a number."""
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QAbstractButton):
        return widget.isChecked()
    if isinstance(widget, QSpinBox):
        return int(widget.value())
    return float(widget.value())


def set_control_value(widget: QWidget, value: Any) -> None:
    """Show ``value`` in a control (the inverse of :func:`control_value`).

    A combo picks the item whose data is ``value`` (ValueError if none has it).
    """
    if isinstance(widget, QComboBox):
        index = widget.findData(value)
        if index < 0:
            raise ValueError(f"{value!r} is not a choice of this control")
        widget.setCurrentIndex(index)
    elif isinstance(widget, QAbstractButton):
        widget.setChecked(bool(value))
    else:
        widget.setValue(value)
