"""What the plugin's dock widgets share: a :class:`LayerWidget` base and layer helpers.

:class:`LayerWidget` holds the plumbing of a dock widget that reads Labels layers and
computes in the background: the :class:`~._workers.LatestWinsRunner`, an edit debounce
timer, a delayed indeterminate progress bar, a status line, the viewer's layer-list
events (layer pickers follow inserts, removals, moves and renames), notify-once
bookkeeping and teardown. The functions copy a layer's transform to an output layer and
add output layers without taking the active layer from the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from napari_unet_weights._widgets._workers import LatestWinsRunner

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = [
    "LayerWidget",
    "connect_events",
    "error_message",
    "keep_active_layer",
    "sync_transforms",
    "transforms",
    "update_layer",
]


# -- layer helpers ---------------------------------------------------------------------
def transforms(layer: Layer) -> dict[str, np.ndarray]:
    """The data-to-world transform of ``layer``, as keyword arguments of a new layer.

    Parameters
    ----------
    layer : napari.layers.Layer
        The layer to copy the transform of.

    Returns
    -------
    dict of str to numpy.ndarray
        ``scale``, ``translate``, ``rotate``, ``shear`` and ``affine``.
    """
    return {
        "scale": np.asarray(layer.scale),
        "translate": np.asarray(layer.translate),
        "rotate": np.asarray(layer.rotate),
        "shear": np.asarray(layer.shear),
        "affine": np.asarray(layer.affine.affine_matrix),
    }


def sync_transforms(output: Layer, source: Layer) -> None:
    """Give ``output`` the transform of ``source``, setting only what differs.

    Parameters
    ----------
    output : napari.layers.Layer
        The layer to update.
    source : napari.layers.Layer
        The layer whose transform it should have.
    """
    current = transforms(output)
    for key, value in transforms(source).items():
        if current[key].shape != value.shape or not np.allclose(current[key], value):
            setattr(output, key, value)


def update_layer(output: Layer, source: Layer, **attributes: Any) -> None:
    """Set ``attributes`` of an existing output layer, in order, then sync its transform.

    Parameters
    ----------
    output : napari.layers.Layer
        The output layer to update in place.
    source : napari.layers.Layer
        The layer it shows something of (its transform is copied).
    **attributes
        Layer attributes to set, e.g. ``data=...``, ``name=...``.
    """
    for key, value in attributes.items():
        setattr(output, key, value)
    sync_transforms(output, source)


@contextmanager
def keep_active_layer(viewer: napari.viewer.Viewer, layer: Layer | None) -> Iterator[None]:
    """Make ``layer`` the active layer again after the block (adding a layer activates it).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer layers are added to.
    layer : napari.layers.Layer or None
        The layer to activate afterwards; nothing is activated if it is None or no
        longer in the viewer.
    """
    yield
    if layer is not None and layer in viewer.layers:
        viewer.layers.selection.active = layer


def connect_events(
    layers: Iterable[Layer], events: Iterable[str], slot: Callable, connect: bool = True
) -> None:
    """Connect ``slot`` to (or disconnect it from) the named events of each layer once.

    Parameters
    ----------
    layers : iterable of napari.layers.Layer
        The layers; None entries and repeats are skipped.
    events : iterable of str
        Names of events of ``layer.events``, e.g. ``("data", "paint")``.
    slot : callable
        The callback.
    connect : bool
        False to disconnect instead.
    """
    events = tuple(events)
    for layer in {id(layer): layer for layer in layers if layer is not None}.values():
        for event in events:
            emitter = getattr(layer.events, event)
            (emitter.connect if connect else emitter.disconnect)(slot)


def error_message(error: Exception) -> str:
    """Text of a worker error for the user: the message of a TypeError / ValueError."""
    return str(error) if isinstance(error, TypeError | ValueError) else repr(error)


# -- base widget -------------------------------------------------------------------------
class LayerWidget(QWidget):
    """Base of a dock widget that offers Labels layers and computes in the background.

    Subclasses build their controls and layout (using :meth:`_build_status`), then
    call :meth:`_watch_viewer`, and implement :meth:`_refresh_choices` (re-read the
    layer list), :meth:`refresh` (ask for a computation) and the hooks
    :meth:`_on_edit`, :meth:`_forget_layer` and :meth:`_disconnect_inputs`.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers are offered.
    edit_debounce_ms : int
        How long edits must pause before :meth:`refresh` runs.
    progress_delay_ms : int
        How long a job must run before the progress bar shows.
    """

    def __init__(
        self, napari_viewer: napari.viewer.Viewer, edit_debounce_ms: int, progress_delay_ms: int
    ) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._problem: str | None = None
        self._closed = False
        self._runner = LatestWinsRunner(on_busy=self._on_busy)
        self._edit_timer = self._single_shot(edit_debounce_ms, self.refresh)
        self._progress_timer = self._single_shot(progress_delay_ms, self._show_progress)
        self._progress_widgets: list[QWidget] = []
        self.destroyed.connect(self._runner.close)

    def _single_shot(self, msec: int, slot: Callable) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(msec)
        timer.timeout.connect(slot)
        return timer

    def _build_status(self, cancel: Callable[[], None] | None = None) -> None:
        """Make ``status_label``, an indeterminate ``progress_bar`` and a ``cancel_button``.

        Parameters
        ----------
        cancel : callable, optional
            What the Cancel button calls; without it there is no button. The button
            shows and hides with the progress bar; the caller lays both out.
        """
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)  # indeterminate
        self.progress_bar.setTextVisible(False)
        self._progress_widgets = [self.progress_bar]
        if cancel is not None:
            self.cancel_button = QPushButton("Cancel")
            self.cancel_button.clicked.connect(cancel)
            self._progress_widgets.append(self.cancel_button)

    # -- hooks ------------------------------------------------------------------------
    def refresh(self, _value: Any = None) -> None:
        """Bring the output up to date with the layers and the controls."""
        raise NotImplementedError

    def _refresh_choices(self, _event: Any = None) -> None:
        """Re-read the layer list into the layer pickers."""
        raise NotImplementedError

    def _on_edit(self) -> None:
        """Called when a followed layer is edited, before the debounce timer restarts."""

    def _forget_layer(self, layer: Layer) -> None:
        """Called when ``layer`` leaves the viewer, before the pickers are refreshed."""

    def _disconnect_inputs(self) -> None:
        """Stop following the input layers (on teardown)."""

    # -- layer list --------------------------------------------------------------------
    def _offers(self, layer: Labels) -> bool:
        """Whether the pickers offer this Labels layer."""
        return True

    def _labels_choices(self, _widget: Any = None) -> list[tuple[str, Labels]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and self._offers(layer)
        ]

    def _watch_viewer(self, connect: bool = True) -> None:
        """Follow (or stop following) layer inserts, removals, moves and renames."""
        layers = self.viewer.layers
        for emitter, slot in (
            (layers.events.inserted, self._on_layer_inserted),
            (layers.events.removed, self._on_layer_removed),
            (layers.events.moved, self._refresh_choices),
        ):
            (emitter.connect if connect else emitter.disconnect)(slot)
        connect_events(layers, ["name"], self._refresh_choices, connect)

    def _on_layer_inserted(self, event) -> None:
        event.value.events.name.connect(self._refresh_choices)
        self._refresh_choices()

    def _on_layer_removed(self, event) -> None:
        event.value.events.name.disconnect(self._refresh_choices)
        self._forget_layer(event.value)
        self._refresh_choices()

    def _follow_edits(
        self, layers: Iterable[Layer | None], events: Iterable[str], follow: bool = True
    ) -> None:
        """Start (or stop) recomputing, debounced, after the named events of ``layers``.

        Parameters
        ----------
        layers : iterable of napari.layers.Layer or None
            The input layers; None entries and repeats are skipped.
        events : iterable of str
            Names of their edit events, e.g. ``("data", "paint")``.
        follow : bool
            False to disconnect instead.
        """
        connect_events(layers, events, self._on_labels_edited, connect=follow)

    def _add_output(
        self,
        add: Callable[..., Layer],
        data: Any,
        source: Layer,
        active: Layer | None,
        **kwargs: Any,
    ) -> Layer:
        """Add an output layer with the transform of ``source``, then reactivate ``active``.

        Parameters
        ----------
        add : callable
            A viewer method such as ``viewer.add_image``.
        data : Any
            The layer data.
        source : napari.layers.Layer
            The layer the output shows something of (its transform is copied).
        active : napari.layers.Layer or None
            The layer to activate afterwards (if still in the viewer), so that the
            user keeps painting where they were; None: leave the new layer active.
        **kwargs
            Further keyword arguments of ``add`` (name, colormap…).

        Returns
        -------
        napari.layers.Layer
            The new layer.
        """
        with keep_active_layer(self.viewer, active):
            return add(data, **kwargs, **transforms(source))

    def _on_labels_edited(self, _event: Any = None) -> None:
        self._on_edit()
        self._edit_timer.start()

    # -- status, notifications and progress ------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a computation is queued, debouncing or running."""
        return self._runner.waiting or self._edit_timer.isActive()

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _notify_once(self, message: str, notify: Callable[[str], Any] | None) -> None:
        """Call ``notify(message)`` unless it is the problem notified last.

        Parameters
        ----------
        message : str
            The notification text.
        notify : callable or None
            ``show_error`` or ``show_warning``; None: not a problem to notify, and
            the next problem is notified even if it is the last one again.
        """
        if notify is not None and message != self._problem:
            notify(message)
        self._problem = message if notify is not None else None

    def _on_busy(self, busy: bool) -> None:
        if busy:
            if not self._progress_timer.isActive() and not self.progress_bar.isVisible():
                self._progress_timer.start()
        else:
            self._progress_timer.stop()
            self._set_progress_visible(False)

    def _show_progress(self) -> None:
        if self._runner.waiting:
            self._set_progress_visible(True)

    def _set_progress_visible(self, visible: bool) -> None:
        for widget in self._progress_widgets:
            widget.setVisible(visible)

    # -- teardown ----------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Disconnect from the viewer and drop running jobs when the widget closes."""
        self.teardown()
        super().closeEvent(event)

    def teardown(self) -> None:
        """Disconnect every event this widget listens to and forget pending work."""
        if self._closed:
            return
        self._closed = True
        self._runner.close()
        self._edit_timer.stop()
        self._progress_timer.stop()
        self._disconnect_inputs()
        self._watch_viewer(connect=False)
