"""The widgets' "Export…": a model as a bioimage.io package (.zip), in the background.

:class:`ModelExport` is the button (the host widget lays out :attr:`ModelExport.button`
where it wants it) and a panel below it (status line, a progress bar over the export's
steps and Cancel). A click checks that the ``[export]`` extra is installed, asks the host
for the model (:class:`ExportSource`: :func:`chosen_model` for a
:class:`~.model_choice.ModelChoice`), asks for the file with a save dialog proposing
``<model name>.zip`` and checks that it can be written; then
:func:`~napari_unet_weights.share.export.export_model` runs on a worker
(:class:`~.workers.LatestWinsRunner`), on a new thread of its own (TensorFlow, see
:func:`~napari_unet_weights.unet.device.call_in_new_thread`) and on the host's Keras
backend. Its ``progress`` drives the bar; Cancel sets the flag it polls between steps, and
a cancelled export writes no file. The end is a napari notification: where the package
is and what to open it with; a problem is an error notification and nothing else changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from napari_unet_weights._widgets.common.base import user_message
from napari_unet_weights._widgets.common.controls import push_button
from napari_unet_weights._widgets.common.workers import Job, LatestWinsRunner
from napari_unet_weights.io.files import check_output_file
from napari_unet_weights.runtime.progress import Cancelled
from napari_unet_weights.share.export import STEPS
from napari_unet_weights.share.extra import extra_message, is_export_module, missing_export_modules
from napari_unet_weights.unet.device import call_in_new_thread

if TYPE_CHECKING:
    from napari_unet_weights._widgets.common.backend_choice import BackendChoice
    from napari_unet_weights._widgets.common.model_choice import ModelChoice
    from napari_unet_weights.unet.model_file import UNetModel

__all__ = ["FILE_FILTER", "ExportSource", "ModelExport", "chosen_model"]

FILE_FILTER = "bioimage.io model (*.zip)"
TIP = ("Export the model as a bioimage.io package (.zip: Keras 3 and ONNX weights, test "
       "images, model card) for deepImageJ (Fiji), ilastik, QuPath and bioimage.io")
DONE_TEXT = ("model exported to {path} (a bioimage.io package). Open it in Fiji with "
             "deepImageJ (Install Model, from a ZIP file), in ilastik (Neural Network "
             "Classification: drop the zip on the model field), or upload it to bioimage.io; "
             "check it with: bioimageio test {path}")


@dataclass(frozen=True)
class ExportSource:
    """The model to export and the name the save dialog proposes (``<name>.zip``)."""

    model: Path | UNetModel
    name: str


def chosen_model(choice: ModelChoice) -> ExportSource:
    """The model a picker shows: the bundled one, a ``.keras`` file or a package we wrote.

    Raises
    ------
    ValueError
        The picked file is not a model this plugin reads (the picker's message).
    """
    if choice.error is not None:
        raise ValueError(choice.error)
    return ExportSource(choice.path, choice.path.stem)


def _extra_message(missing: list[str]) -> str:
    return f"{extra_message(missing)}, then restart napari."


def _run_export(model: Path | UNetModel, path: Path, progress: Callable[..., None],
                should_stop: Callable[[], bool]) -> Path:
    """Worker body: the core's export (looked up when called: a seam for tests)."""
    from napari_unet_weights.share import export

    return export.export_model(model, path, progress=progress, should_stop=should_stop)


class ModelExport(QWidget):
    """An "Export…" button and, below it, the export's status, progress and Cancel.

    Parameters
    ----------
    title : str
        The host widget's title: the prefix of the notifications.
    source : callable
        Returns the :class:`ExportSource` to export, on the GUI thread when the button is
        pressed; a ValueError is shown to the user and nothing starts.
    backend : BackendChoice, optional
        The host's backend setting: the export runs on it (or is refused with its problem).

    Attributes
    ----------
    button : QPushButton
        "Export…", for the host to lay out (this widget is the panel below it).
    last_folder : pathlib.Path or None
        Where the last package went (the next dialog starts there, else in the home).

    Notes
    -----
    ``exported`` is emitted with the package's path when an export finishes.
    """

    exported = Signal(object)
    _relay = Signal(int, int, int, str)  # run id, done, total, phase (from the worker)

    def __init__(self, title: str, source: Callable[[], ExportSource],
                 backend: BackendChoice | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self._source, self._backend = title, source, backend
        self.last_folder: Path | None = None
        self._available = True
        self._run_id = 0
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._runner = LatestWinsRunner(on_busy=self._on_busy)
        self.destroyed.connect(self._closed.set)
        self.destroyed.connect(self._runner.close)
        self._relay.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self.button = push_button("Export…", self.export, TIP)
        self._build_panel()
        self._on_busy(False)

    def _build_panel(self) -> None:
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, len(STEPS))
        self.cancel_button = push_button("Cancel", self.cancel,
                                         "Stop the export at its next step: no file is written")
        row = QHBoxLayout()
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status_label)
        layout.addLayout(row)

    # -- state -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether an export's thread is alive (also one being cancelled)."""
        return self._runner.busy

    def set_available(self, available: bool) -> None:
        """Whether the host has a model to export (the button is off while one exports)."""
        self._available = bool(available)
        self.button.setEnabled(self._available and not self._runner.waiting)

    def _on_busy(self, busy: bool) -> None:
        if self._closed.is_set():  # the panel and its button are gone
            return
        self.button.setEnabled(self._available and not busy)
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy and not self._stop.is_set())
        self._show_panel()

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self._show_panel()

    def _show_panel(self) -> None:
        """The panel shows while it has something to say (never as a window of its own)."""
        wanted = self._runner.waiting or bool(self.status_label.text())
        self.setVisible(wanted and self.parentWidget() is not None)

    def _fail(self, message: str) -> None:
        """An error notification ``"<title>: <message>"`` (and the status line)."""
        self._set_status(message[:1].upper() + message[1:])
        show_error(f"{self.title}: {message}")

    # -- exporting ---------------------------------------------------------------------------
    def export(self, path: str | Path | None = None) -> None:
        """Export the host's model (the button; asks for the file when no path is given).

        Problems found before anything runs (the ``[export]`` extra missing, no model, a
        file that cannot be written) are error notifications; nothing starts.

        Parameters
        ----------
        path : str or pathlib.Path, optional
            The package to write; ``.zip`` is appended if the name lacks it.
        """
        if self._runner.waiting:
            return
        source = self._checked_source()
        if source is None:
            return
        if path is None:
            path = self._ask_path(source.name)
            if path is None:
                return
        path = Path(path)
        if path.suffix.lower() != ".zip":
            path = path.with_name(path.name + ".zip")
        try:
            check_output_file(path)
        except OSError as error:
            self._fail(f"cannot export: {user_message(error)}")
            return
        self._runner.request(partial(self._prepare, source, path))

    def _checked_source(self) -> ExportSource | None:
        """The model to export, or None after notifying why there is none."""
        missing = missing_export_modules()
        if missing:
            self._fail(_extra_message(missing))
            return None
        try:
            source = self._source()
        except (ValueError, OSError) as error:
            self._fail(f"cannot export: {user_message(error)}")
            return None
        problem = self._backend.problem() if self._backend is not None else None
        if problem is not None:
            self._fail(problem)
            return None
        return source

    def _ask_path(self, name: str) -> Path | None:
        start = (self.last_folder or Path.home()) / f"{name}.zip"
        path, _ = QFileDialog.getSaveFileName(self, "Export a bioimage.io model package",
                                              str(start), FILE_FILTER)
        return Path(path) if path else None

    def _prepare(self, source: ExportSource, path: Path) -> Job:
        """Runs on the GUI thread when no export is alive: the job and a new stop flag."""
        self._run_id += 1
        self._stop = stop = threading.Event()
        closed = self._closed
        work = _run_export if self._backend is None else self._backend.bound(_run_export)
        self.progress_bar.setValue(0)
        self._set_status(f"Exporting to {path}…")
        return Job(
            work=partial(call_in_new_thread, work, source.model, path,
                         partial(self._emit_progress, self._run_id),
                         lambda: stop.is_set() or closed.is_set()),
            on_result=self._on_result, on_error=partial(self._on_error, path))

    def _emit_progress(self, run_id: int, done: int, total: int, phase: str) -> None:
        if not self._closed.is_set():  # a closed panel's signals are gone
            self._relay.emit(run_id, int(done), int(total), str(phase))

    def _on_progress(self, run_id: int, done: int, total: int, phase: str) -> None:
        if run_id != self._run_id or self._stop.is_set():
            return
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{phase} (%v / %m)")

    def cancel(self) -> None:
        """Stop the export at its next step; it writes no file (the panel says when)."""
        if not self.running or self._stop.is_set():
            return
        self._stop.set()
        self.cancel_button.setEnabled(False)
        self._set_status("Cancelling the export after its current step…")

    def _on_result(self, path: Path) -> None:
        path = Path(path)
        self.last_folder = path.parent
        self._set_status(f"Exported to {path}.")
        show_info(f"{self.title}: {DONE_TEXT.format(path=path)}")
        self.exported.emit(path)

    def _on_error(self, path: Path, error: Exception) -> None:
        if isinstance(error, Cancelled):
            self._set_status(f"Export cancelled: {path.name} was not written.")
        elif isinstance(error, ImportError) and is_export_module(error.name):
            self._fail(_extra_message([str(error.name)]))
        else:
            self._fail(f"export failed: {user_message(error)}")
