"""The "backend" setting of the Segment and Train widgets: which Keras backend runs the U-Net.

The combo lists the installed backends (TensorFlow, PyTorch, JAX) and starts on the one
this napari would use (:func:`~napari_unet_weights.unet.backend.current_backend`). Keras
fixes its backend per process: the first run imports Keras on the backend chosen here.
Afterwards, choosing another one is not silently ignored: a warning says to restart
napari with ``KERAS_BACKEND=<backend>``, and a run is refused with the same message.
Being one setting per process, a choice made before Keras starts is shown by every open
widget's combo (Segment's and Train's), so that neither is left on a stale default.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QComboBox

from napari_unet_weights._widgets.common.train_data import BadInput
from napari_unet_weights.unet.backend import (
    TITLES,
    current_backend,
    installed_backends,
    keras_started,
    restart_hint,
    use_backend,
)

__all__ = ["BackendChoice"]

TIP = ("The Keras backend that runs the U-Net (the installed ones are listed): TensorFlow "
       "(the default), PyTorch (the GPU on Windows and on Macs with Apple silicon) or JAX. "
       "napari keeps the backend of its first run: to change it afterwards, restart napari "
       "with KERAS_BACKEND=<backend> (tensorflow, torch or jax).")


#: The combos of the open widgets (one setting per process).
_OPEN: weakref.WeakSet = weakref.WeakSet()


def _on_backend(backend: str, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Choose ``backend`` for this process (if Keras is not running yet), then do ``work``."""
    use_backend(backend)
    return work(*args, **kwargs)


class BackendChoice(QComboBox):
    """A combo of the installed Keras backends (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        current = current_backend()
        names = installed_backends() or [current]
        if current not in names:  # KERAS_BACKEND names one that is missing: the run says so
            names.append(current)
        for name in names:
            self.addItem(TITLES.get(name, name), name)
        self.setCurrentIndex(names.index(current))
        self.setToolTip(TIP)
        self.currentIndexChanged.connect(self._on_changed)
        _OPEN.add(self)

    @property
    def value(self) -> str:
        """The backend chosen: ``"tensorflow"``, ``"torch"`` or ``"jax"``."""
        return str(self.currentData())

    @value.setter
    def value(self, backend: str) -> None:
        self.setCurrentIndex(self.findData(backend))

    def problem(self) -> str | None:
        """Why a run cannot use the chosen backend (Keras runs another one), or None."""
        started = keras_started()
        return None if started in (None, self.value) else restart_hint(self.value)

    def check(self) -> None:
        """Raise :class:`~.train_data.BadInput` with :meth:`problem`, if any."""
        problem = self.problem()
        if problem is not None:
            raise BadInput(problem)

    def bound(self, work: Callable[..., Any]) -> Callable[..., Any]:
        """``work`` for the worker: it first chooses this backend (before Keras starts)."""
        return partial(_on_backend, self.value, work)

    def _on_changed(self, _index: int) -> None:
        if keras_started() is None:
            self._show_on_the_others()
        problem = self.problem()
        if problem is not None:
            show_warning(problem)

    def _show_on_the_others(self) -> None:
        for other in list(_OPEN):
            if other is self or other.findData(self.value) < 0:
                continue
            try:
                blocked = other.blockSignals(True)
                other.value = self.value
                other.blockSignals(blocked)
            except RuntimeError:  # its widget was closed (Qt deleted it)
                _OPEN.discard(other)
