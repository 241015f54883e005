"""The "Model QA" dock widget: one or two models scored on an annotated set of images.

The widget is a shell around the model QA core (:mod:`napari_unet_weights.qa`). Run
hands the data (a folder with ``images/`` and ``labels/``, or the open image / labels
layer pairs: :class:`~..common.train_data.DataSource`) and the models (the bundled
model, a model file or a folder of another tool's label images:
:class:`~.choices.QAModelChoice`) to a background worker, which runs
:func:`~napari_unet_weights.qa.evaluate_models` (on its own thread,
:func:`~napari_unet_weights.unet.device.call_in_new_thread`, as TensorFlow needs), with
progress after each (image, model) pair and Cancel between them (:func:`.run.run_qa`).
A run changes no layer: a cancelled or failed one leaves the viewer as it was and says
why in a napari notification.

The outcome: one line per model (mean mAP with its 95 % interval; with two models, the
mean difference and its verdict), a sortable per-image table worst first, a plot
(per-image mAP, or B against A with the diagonal) and a gallery of the worst objects.
Clicking a row or a point opens that image, its ground truth and the prediction(s) as
the widget's own layers (:class:`~.layers.QALayers`, reused from image to image) and
points the Evaluate widget at the (ground truth, prediction) pair with its IoU view on;
clicking a thumbnail also centres the viewer on the object. "Save report…" writes the
HTML report and its CSV (:func:`.run.save_report`) in the background.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_unet_weights._widgets.common.base import RunWidget, user_message
from napari_unet_weights._widgets.common.camera import focus_on
from napari_unet_weights._widgets.common.controls import push_button
from napari_unet_weights._widgets.common.handoff import dock_plugin_widget
from napari_unet_weights._widgets.common.table import DataFrameTable
from napari_unet_weights._widgets.common.train_data import BadInput, DataSource
from napari_unet_weights._widgets.common.workers import Job
from napari_unet_weights._widgets.model_qa.choices import QAModelChoice, model_names
from napari_unet_weights._widgets.model_qa.layers import QALayers
from napari_unet_weights._widgets.model_qa.run import (
    THUMBNAIL,
    QARequest,
    QARun,
    image_table,
    run_qa,
    save_report,
    summary_text,
)
from napari_unet_weights._widgets.model_qa.views import Gallery, PlotView
from napari_unet_weights.runtime.progress import Cancelled
from napari_unet_weights.unet.device import call_in_new_thread

if TYPE_CHECKING:
    import napari

    from napari_unet_weights.qa import ObjectCrop

__all__ = ["ModelQAWidget"]

PROGRESS_DELAY_MS = 0
#: The object fills 1/FOCUS_CONTEXT of the canvas when a thumbnail is clicked.
FOCUS_CONTEXT = 4.0
CANCELLED = "Cancelled: no layer was added or changed."


class ModelQAWidget(RunWidget):
    """Dock widget scoring one or two models on annotated images (see the module docstring).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer.

    Attributes
    ----------
    outcome : QARun or None
        The last run's outcome (result, comparison, plot, gallery crops).
    layers : QALayers
        The layers the widget opened.
    """

    TITLE = "Model QA"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, 0, PROGRESS_DELAY_MS)
        self.outcome: QARun | None = None
        self.layers = QALayers(napari_viewer)
        self._build_layout()
        self._watch_viewer()
        pair_list = self.data_source.pair_list
        if pair_list.images() and pair_list.labels_like():
            pair_list.add_pair()
        self._update_enabled()

    # -- construction ------------------------------------------------------------------
    def _build_layout(self) -> None:
        self._build_status(cancel=self.cancel)
        self.cancel_button.setToolTip("Stop after the current image; nothing is added")
        self.data_source = DataSource(self.viewer.layers)
        self.model_a = QAModelChoice()
        self.model_b = QAModelChoice(optional=True)
        self.tta_checkbox = QCheckBox("test-time augmentation (U-Net models)")
        self.tta_checkbox.setToolTip("Average the network over 8 flips and rotations: "
                                     "slower, often a little better")
        form = QFormLayout()
        form.addRow("model A", self.model_a)
        form.addRow("model B", self.model_b)
        form.addRow("", self.tta_checkbox)
        self.run_button = push_button("Run", self.run, "Score the models on the images "
                                      "(in the background)")
        self.report_button = push_button("Save report…", self.save_report_dialog,
                                         "Write the HTML report and its CSV table")
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.report_button)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.plot_view = PlotView()
        self.plot_view.point_clicked.connect(self.open_image)
        plot_area = QScrollArea()
        plot_area.setWidget(self.plot_view)
        plot_area.setWidgetResizable(True)
        self.table = DataFrameTable("model_qa_per_image")
        self.table.row_selected.connect(self._on_row_selected)
        self.gallery = Gallery(THUMBNAIL)
        self.gallery.crop_clicked.connect(self.focus_crop)
        setup = QWidget()
        setup_layout = QVBoxLayout(setup)
        setup_layout.addWidget(QLabel("Data: a folder with images/ and labels/, or layer pairs"))
        setup_layout.addWidget(self.data_source)
        setup_layout.addLayout(form)
        setup_layout.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(setup, "Setup")
        self.tabs.addTab(self.table, "Images")
        self.tabs.addTab(plot_area, "Plot")
        self.tabs.addTab(self.gallery, "Gallery")
        layout = QVBoxLayout(self)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.tabs, 1)
        self._set_progress_visible(False)
        self._set_status("Pick the data and one or two models (Setup), then Run.")

    # -- layer list (the data box's pickers) ---------------------------------------------
    def _refresh_choices(self, _event: Any = None) -> None:
        self.data_source.pair_list.refresh_choices()

    def refresh(self, _value: Any = None) -> None:
        """Nothing runs until Run is pressed."""

    # -- running -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a run's thread is alive (also one being cancelled)."""
        return self._runner.busy

    def run(self) -> None:
        """Score the models on the data in the background (Run).

        Problems found before anything runs (no data, a folder without ``images/`` and
        ``labels/``, a model file that is not one) are napari notifications; so are
        those the core finds (unpaired files, a labels folder missing an image).
        """
        if not self._closed:
            self._runner.request(self._prepare_job)

    def _request(self) -> QARequest:
        """The run's inputs, checked and snapshotted (raises :class:`BadInput`)."""
        data = self.data_source.training_data()
        for choice, which in ((self.model_a, "model A"), (self.model_b, "model B")):
            if choice.chosen and choice.error is not None:
                raise BadInput(f"{which}: {choice.error}")
        names = None
        if data.labels is not None:
            names = [image.name for image, _ in self.data_source.pair_list.pairs]
        return QARequest(images=data.images, truths=data.labels, image_names=names,
                         models=model_names(self.model_a, self.model_b),
                         tta=self.tta_checkbox.isChecked(), source=data.description)

    def _prepare_job(self) -> Job | None:
        try:
            request = self._request()
        except BadInput as error:
            self._report(str(error))
            return None
        run_id, stop = self._begin_run()
        self._set_status(f"Scoring {', '.join(request.models)} on {request.source}…")
        ratio = float(self.devicePixelRatioF())
        return Job(
            work=partial(call_in_new_thread, run_qa, request,
                         self._progress_callback(run_id), stop.is_set, ratio),
            on_result=partial(self._on_result, run_id),
            on_error=partial(self._on_error, run_id),
        )

    def cancel(self) -> None:
        """Stop the run after the current image; the viewer is left as it was."""
        if not self._runner.waiting:
            return
        self._stop.set()
        self._runner.cancel()
        self._set_status(CANCELLED)

    def _on_progress(self, done: int, total: int) -> None:
        if self._stop.is_set():
            return
        self.progress_bar.setRange(0, max(int(total), 1))
        self.progress_bar.setValue(int(done))
        self._set_status(f"Scored {done} of {total} (image, model) pairs…")

    def _on_result(self, run_id: int, outcome: QARun) -> None:
        if not self._is_current(run_id):
            return
        self.outcome = outcome
        result, comparison = outcome.result, outcome.comparison
        self.summary_label.setText(summary_text(result, comparison))
        self.table.set_frame(image_table(result, comparison))
        self.plot_view.set_plot(outcome.plot, float(self.devicePixelRatioF()))
        self.gallery.set_crops(outcome.crops, result.models)
        self.tabs.setCurrentWidget(self.table)
        self._problem = None
        self._set_status(f"{len(result.images)} images scored from {outcome.request.source}. "
                         "Click a row, a point or a thumbnail to open the image.")
        self._update_enabled()

    def _on_error(self, run_id: int, error: Exception) -> None:
        if not self._is_current(run_id):
            return
        if isinstance(error, Cancelled):
            self._set_status(CANCELLED)
            return
        self._report(f"Run failed: {user_message(error)}")

    def _on_busy(self, busy: bool) -> None:
        super()._on_busy(busy)
        self._update_enabled()

    def _update_enabled(self) -> None:
        waiting = self._runner.waiting
        self.run_button.setEnabled(not waiting)
        self.report_button.setEnabled(not waiting and self.outcome is not None)

    # -- opening an image ----------------------------------------------------------------
    def _on_row_selected(self, row: int) -> None:
        self.open_image(str(self.table.frame.iloc[row]["image"]))

    def open_image(self, image: str, model: str | None = None) -> None:
        """Open ``image``, its ground truth and the predictions; point Evaluate at them.

        Parameters
        ----------
        image : str
            The image's name (the table's ``image`` column).
        model : str, optional
            Whose prediction Evaluate scores (default: the first model; a plot point's
            "A vs B" also means the first).
        """
        if self.outcome is None:
            return
        result = self.outcome.result
        model = model if model in result.models else result.models[0]
        try:
            arrays = result.arrays(image)
        except (OSError, ValueError, KeyError) as error:
            self._report(f"Cannot open {image}: {user_message(error)}")
            return
        self.layers.show(arrays)
        evaluate = dock_plugin_widget(self.viewer, "Evaluate")
        evaluate.set_layers(self.layers.truth, self.layers.prediction(model))
        evaluate.iou_view_checkbox.value = True
        self._set_status(f"{image}: ground truth and {', '.join(result.models)} opened; "
                         f"Evaluate scores {model}.")

    def focus_crop(self, crop: ObjectCrop) -> None:
        """Open the crop's image (unless shown) and centre the viewer on the object."""
        if self.layers.shown != crop.image or self.layers.image is None:
            self.open_image(crop.image, crop.model)
        layer = self.layers.image
        if layer is None:
            return
        top, left, bottom, right = crop.bbox
        focus_on(self.viewer, layer, list(crop.centroid),
                 FOCUS_CONTEXT * max(bottom - top, right - left))

    # -- the report ------------------------------------------------------------------------
    def save_report_dialog(self) -> None:
        """Ask for the HTML file's name, then :meth:`save_report`."""
        if self.outcome is None:
            return
        path, _filter = QFileDialog.getSaveFileName(
            self, "Save the model QA report", str(Path.home() / "model_qa_report.html"),
            "HTML files (*.html);;All files (*)")
        if path:
            self.save_report(path)

    def save_report(self, path: str | Path) -> None:
        """Write the HTML report to ``path`` and its CSV beside it, in the background."""
        outcome = self.outcome
        if outcome is None or self._closed:
            return

        def prepare() -> Job:
            self._set_status(f"Writing the report to {path}…")
            return Job(work=partial(save_report, outcome, path),
                       on_result=self._on_report_written, on_error=self._on_report_failed)

        self._runner.request(prepare)

    def _on_report_written(self, paths: tuple[Path, Path]) -> None:
        html, csv = paths
        self._set_status(f"Report written: {html} (table: {csv.name}).")
        self._notify(f"report written to {html}", "info")

    def _on_report_failed(self, error: Exception) -> None:
        self._report(f"Could not write the report: {user_message(error)}")
