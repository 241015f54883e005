"""The Train U-Net widget's controls built from the training configuration, its progress.

Each hyperparameter control takes its default, limits and help text from
:class:`~napari_unet_weights.unet.config.TrainConfig` (:func:`config_spin_box`,
:func:`config_combo`); :func:`status_text` words ``train``'s latest progress reports and
:class:`TrainBar` shows the batches done, or the time budget used.
"""

from __future__ import annotations

import math
import time
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QProgressBar, QWidget

from napari_unet_weights._widgets.common.base import number_text
from napari_unet_weights._widgets.common.controls import spin_box
from napari_unet_weights.unet.config import TrainConfig

__all__ = ["AUGMENT_CONTROLS", "CHOICE_CONTROLS", "CONTROL_MAXIMA", "LOSS_FORMAT", "TrainBar",
           "augment_controls", "config_combo", "config_spin_box", "status_text"]

#: Losses in the status line: 4 significant digits.
LOSS_FORMAT = ".4g"
STEPS_FORMAT = "%v / %m steps"
SECONDS_FORMAT = "%v / %m s of the time budget"
#: How often a time-budget bar moves.
CLOCK_MS = 500


#: The TrainConfig text fields shown as drop-downs (in "Advanced"), with their labels.
CHOICE_CONTROLS = {"colour": "colour images", "class_weights": "class weights",
                   "lr_schedule": "learning rate", "select_by": "keep the epoch by"}
#: The TrainConfig augmentation fields (in "Advanced"), with their labels.
AUGMENT_CONTROLS = {"augment": "flips, rotations", "augment_intensity": "gamma, contrast",
                    "augment_objects": "dim some nuclei", "augment_noise": "noise",
                    "augment_blur": "blur", "augment_scale": "zoom up to ×",
                    "augment_stain": "stain jitter (colour)"}
#: Upper limits of the controls where the training configuration sets none.
CONTROL_MAXIMA = {"w0": 1000, "sigma": 100, "epochs": 100_000, "steps_per_epoch": 100_000,
                  "batch_size": 1024, "patch_size": 4096, "validation_fraction": 0.9,
                  "seed": 2**31 - 1, "depth": 8, "base_filters": 512, "dropout": 0.9,
                  "early_stopping_patience": 10_000, "val_map_every": 1000, "augment_scale": 4}


def config_spin_box(name: str, step: float = 1, decimals: int | None = None):
    """A spin box for the :class:`TrainConfig` field ``name``: its default, limits, help.

    An excluded lower limit (σ > 0) starts one step above it; fields without an upper
    limit get the one in :data:`CONTROL_MAXIMA`.
    """
    parameter = TrainConfig.parameter(name)
    minimum = parameter.minimum or 0
    if parameter.exclusive_minimum:
        minimum += step if decimals is None else 10.0**-decimals
    if decimals is None and step > 1:  # whole steps from a whole step: patch sizes 16, 32…
        minimum = max(minimum, step)
    maximum = min(CONTROL_MAXIMA[name], parameter.maximum or CONTROL_MAXIMA[name])
    return spin_box(minimum, maximum, parameter.default, step, decimals,
                    parameter.help[:1].upper() + parameter.help[1:])


def config_combo(name: str) -> QComboBox:
    """A drop-down of the choices of the :class:`TrainConfig` text field ``name``."""
    parameter = TrainConfig.parameter(name)
    combo = QComboBox()
    for choice in parameter.choices:
        combo.addItem(choice, choice)
    combo.setCurrentIndex(parameter.choices.index(parameter.default))
    combo.setToolTip(parameter.help[:1].upper() + parameter.help[1:])
    return combo


def config_check_box(name: str) -> QCheckBox:
    """A check box for the boolean :class:`TrainConfig` field ``name``: default and help."""
    parameter = TrainConfig.parameter(name)
    checkbox = QCheckBox()
    checkbox.setChecked(parameter.default)
    checkbox.setToolTip(parameter.help[:1].upper() + parameter.help[1:])
    return checkbox


def augment_controls() -> dict[str, QWidget]:
    """The control of each augmentation field of :data:`AUGMENT_CONTROLS`."""
    return {name: (config_spin_box(name, 0.25, 2) if TrainConfig.parameter(name).kind is float
                   else config_check_box(name)) for name in AUGMENT_CONTROLS}


# -- status text ------------------------------------------------------------------------------
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
        parts.append(f"loss {number_text(batch.get('loss'), LOSS_FORMAT)}")
    elif epoch is not None:
        parts.append(f"loss {number_text(epoch.get('loss'), LOSS_FORMAT)}")
    if epoch is not None:
        parts.append(f"val loss {number_text(epoch.get('val_loss'), LOSS_FORMAT)}")
        parts.append(f"val mAP {number_text(epoch.get('val_map'))}")
    if device:
        parts.append(str(device))
    return " · ".join(parts) if parts else "Starting…"


class TrainBar(QProgressBar):
    """A training's progress: the batches done of those planned, or the time budget used.

    A run with a time budget (a fine-tuning) ends on the clock rather than after its
    planned epochs: the bar then counts the seconds of the budget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._started: float | None = None
        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_MS)
        self._clock.timeout.connect(self._tick)
        self.setRange(0, 1)
        self.setValue(0)
        self.setFormat(STEPS_FORMAT)

    @property
    def timed(self) -> bool:
        """Whether the bar counts the seconds of a running budget."""
        return self._started is not None

    def begin(self, steps: int, seconds: float | None = None) -> None:
        """A run starts: ``steps`` batches planned, or a budget of ``seconds``."""
        self._started = None if seconds is None else time.monotonic()
        self.setFormat(STEPS_FORMAT if seconds is None else SECONDS_FORMAT)
        self.setRange(0, steps if seconds is None else max(math.ceil(seconds), 1))
        self.setValue(0)
        if seconds is not None:
            self._clock.start()

    def show_step(self, done: int, total: int) -> None:
        """``done`` of ``total`` batches (ignored while counting seconds)."""
        if self.timed:
            return
        if self.maximum() != total:
            self.setRange(0, total)
        self.setValue(min(done, total))

    def end(self, complete: bool) -> None:
        """The run ended: a complete run without a budget fills the bar; the clock stops."""
        if self.timed:
            self._tick()
        elif complete:
            self.setValue(self.maximum())
        self._clock.stop()
        self._started = None

    def _tick(self) -> None:
        if self._started is not None:
            self.setValue(min(round(time.monotonic() - self._started), self.maximum()))
