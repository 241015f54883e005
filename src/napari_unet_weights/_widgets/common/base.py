"""What the plugin's dock widgets share: :class:`LayerWidget`, :class:`RunWidget`, helpers.

:class:`LayerWidget` holds the plumbing of a dock widget that reads layers and computes
in the background: the :class:`~.workers.LatestWinsRunner`, an edit debounce timer, a
delayed indeterminate progress bar, a status line and its notifications (``_report``,
``_notify``, notify-once), the viewer's layer-list events (layer pickers follow inserts,
removals, moves and renames) and teardown. :class:`RunWidget` adds what a widget with
long, cancellable runs needs (Segment, Train, Weight map): a run id and a stop flag per run, and the
relay that carries the core's progress reports from the worker thread to the GUI thread.
The functions copy a layer's transform to an output layer, add output layers without
taking the active layer from the user, and word errors and scores for the user.
"""

from __future__ import annotations

import atexit
import itertools
import math
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from napari_unet_weights._widgets.common.workers import LatestWinsRunner

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = [
    "LayerWidget",
    "RunWidget",
    "connect_events",
    "keep_active_layer",
    "number_text",
    "sync_transforms",
    "temporary_folder",
    "transforms",
    "update_layer",
    "user_message",
]


def temporary_folder() -> Path:
    """A new folder in the system's temporary folder, deleted with all it holds when
    Python (napari) exits: where the widgets put what they write for themselves (a
    large image's labels store, the model "Use this model" segments with)."""
    folder = Path(tempfile.mkdtemp(prefix="napari-unet-weights-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


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


# -- text for the user -------------------------------------------------------------------
def user_message(error: BaseException) -> str:
    """The text of an error for the user: its message, or its repr if it has none.

    Errors of the kinds the core raises for bad input (TypeError, ValueError, OSError,
    ImportError) read as their message; anything else, an unexpected failure, keeps its
    type name.
    """
    if isinstance(error, TypeError | ValueError | OSError | ImportError) and str(error):
        return str(error)
    return repr(error)


def number_text(value: Any, spec: str = ".3f") -> str:
    """A number for the user, formatted by ``spec``; "—" when missing or not finite.

    The default, 3 decimals, is for scores in [0, 1] such as an mAP; losses use
    significant digits (``".4g"``).
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return format(value, spec) if math.isfinite(value) else "—"


# -- base widget -------------------------------------------------------------------------
class LayerWidget(QWidget):
    """Base of a dock widget that offers Labels layers and computes in the background.

    Subclasses set :attr:`TITLE`, build their controls and layout (using
    :meth:`_build_status`), then call :meth:`_watch_viewer`, and implement
    :meth:`_refresh_choices` (re-read the layer list), :meth:`refresh` (ask for a
    computation) and the hooks :meth:`_on_edit`, :meth:`_forget_layer` and
    :meth:`_disconnect_inputs`.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers are offered.
    edit_debounce_ms : int
        How long edits must pause before :meth:`refresh` runs.
    progress_delay_ms : int
        How long a job must run before the progress bar shows.
    """

    #: The widget's name, as in the Plugins menu: the prefix of its notifications.
    TITLE: ClassVar[str] = ""

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

    def _notify(self, message: str, level: str = "error") -> None:
        """A napari notification ``"<TITLE>: <message>"``.

        Parameters
        ----------
        message : str
            The text after the widget's title.
        level : {"error", "warning", "info"}
            The kind of notification.
        """
        notify = {"error": show_error, "warning": show_warning, "info": show_info}[level]
        notify(f"{self.TITLE}: {message}")

    def _report(self, message: str, level: str | None = "error", once: bool = False) -> None:
        """Show ``message`` in the status line and as a napari notification.

        Parameters
        ----------
        message : str
            What went wrong, for the user.
        level : {"error", "warning"} or None
            The notification's kind; None: the status line only.
        once : bool
            Notify only if ``message`` is not the problem notified last (a problem
            that recurs on every slider step or edit pops up once).
        """
        self._set_status(message)
        if once:
            self._notify_once(message, level)
        elif level is not None:
            self._notify(message, level)

    def _notify_once(self, message: str, level: str | None) -> None:
        """:meth:`_notify` ``message`` unless it is the problem notified last.

        Parameters
        ----------
        message : str
            The notification text (after the title).
        level : {"error", "warning"} or None
            The notification's kind; None: not a problem to notify, and the next
            problem is notified even if it is the last one again.
        """
        if level is not None and message != self._problem:
            self._notify(message, level)
        self._problem = message if level is not None else None

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


# -- widgets with long, cancellable runs ---------------------------------------------------
class _Relay(QObject):
    """Carries progress reports from a worker thread to the GUI thread (queued signal)."""

    progress = Signal(object)


class RunWidget(LayerWidget):
    """A :class:`LayerWidget` whose runs (a prediction, a training, a weight map) may take long.

    Each run gets an id and a stop flag of its own from :meth:`_begin_run`. The core's
    progress callback, :meth:`_progress_callback`, may be called on any thread: the
    report travels by a queued signal and reaches :meth:`_on_progress` on the GUI thread
    only while its run is the current one and the widget is open; result and error
    handlers check :meth:`_is_current` the same way. :meth:`teardown` stops the current
    run and makes every run stale, so nothing a worker hands back touches a closed widget.

    Parameters
    ----------
    napari_viewer, edit_debounce_ms, progress_delay_ms
        As for :class:`LayerWidget`.
    """

    def __init__(
        self, napari_viewer: napari.viewer.Viewer, edit_debounce_ms: int, progress_delay_ms: int
    ) -> None:
        super().__init__(napari_viewer, edit_debounce_ms, progress_delay_ms)
        self._stop = threading.Event()
        self._run_ids = itertools.count(1)
        self._run_id = 0
        self._relay = _Relay(self)
        self._relay.progress.connect(self._relay_progress, Qt.ConnectionType.QueuedConnection)

    def _begin_run(self) -> tuple[int, threading.Event]:
        """Start a new run: its id and its stop flag (a cancelled run keeps its own flag).

        The progress bar is indeterminate until the run reports its progress.
        """
        self._run_id = next(self._run_ids)
        self._stop = threading.Event()
        self.progress_bar.setRange(0, 0)
        return self._run_id, self._stop

    def _is_current(self, run_id: int) -> bool:
        """Whether run ``run_id`` is the latest one and the widget still open."""
        return run_id == self._run_id and not self._closed

    def _progress_callback(self, run_id: int) -> Callable[..., None]:
        """The core's ``progress`` callback for run ``run_id`` (safe on any thread)."""
        return partial(self._emit_progress, run_id)

    def _emit_progress(self, run_id: int, *report: Any) -> None:
        # A dict report is copied here, on the worker thread: the core may reuse it.
        report = tuple(dict(item) if isinstance(item, dict) else item for item in report)
        self._relay.progress.emit((run_id, report))

    def _relay_progress(self, message: tuple[int, tuple]) -> None:
        run_id, report = message
        if self._is_current(run_id):
            self._on_progress(*report)

    def _on_progress(self, *report: Any) -> None:
        """Show a progress report of the current run (the core's callback arguments)."""

    def teardown(self) -> None:
        """Stop the running job, drop whatever it hands back, and disconnect."""
        self._stop.set()
        self._run_id = -1
        super().teardown()
