"""The "Check labels" dock widget: the annotation errors of a Labels layer, shown and fixed.

A thin shell around :func:`napari_unet_weights.labels.checks.check_labels` and
:mod:`napari_unet_weights.labels.fixes`. The widget checks the picked Labels layer in a
background worker (one job at a time, the latest request winning), again 150 ms after
the annotator stops painting, and shows what it found: counts per problem, a sortable
table (clicking a row selects the label and brings it into view) and the problem pixels
in a Labels layer of their own, ``"<labels> problems"``, one colour per problem. The
Fix buttons (the selected rows, all rows of one problem, everything) are the only
thing that changes the labels: each writes the changed pixels as one edit of the
layer's undo history, so Ctrl-Z restores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, SpinBox
from napari.layers import Labels
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from napari_unet_weights._widgets.common.base import LayerWidget, update_layer, user_message
from napari_unet_weights._widgets.common.camera import focus_on
from napari_unet_weights._widgets.common.controls import push_button
from napari_unet_weights._widgets.common.label_problems import (
    PROBLEM_COLORS,
    PROBLEM_HELP,
    apply_fix,
    counts_text,
    highlight_colormap,
    layer_labels,
)
from napari_unet_weights._widgets.common.layer_roles import CHECK_LABELS_KEY, EVALUATE_VIEW_KEY
from napari_unet_weights._widgets.common.table import DataFrameTable
from napari_unet_weights._widgets.common.workers import Job
from napari_unet_weights.labels.checks import PROBLEMS, LabelReport, check_labels
from napari_unet_weights.labels.fixes import fix_labels, fix_problems

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

    from napari_unet_weights.labels.fixes import LabelFix

__all__ = ["CheckLabelsWidget"]

EDIT_DEBOUNCE_MS = 150
PROGRESS_DELAY_MS = 250
#: paint: brush, fill, data_setitem (the fixes); data: ``layer.data = ...``; set_data:
#: also undo / redo, but also every refresh (a dims step): the job then compares the
#: labels with those last checked and does nothing if they did not change.
EDIT_EVENTS = ("paint", "data", "set_data")
OUTPUT_SUFFIX = " problems"
NO_LABELS = "Add or open a Labels layer to check it."
#: The table's columns (``plane`` too when a stack is checked plane by plane).
TABLE_COLUMNS = ("label", "problem", "other", "area", "detail")
#: A clicked problem's box fills 1/FOCUS_CONTEXT of the canvas.
FOCUS_CONTEXT = 3.0
#: The table's cell colours: the problem colours, dimmed for light text.
CELL_COLORS = {"problem": {
    name: "#" + "".join(f"{round(0.45 * int(color[i:i + 2], 16) + 0.55 * base):02x}"
                        for i, base in zip((1, 3, 5), (0x26, 0x29, 0x30)))
    for name, color in PROBLEM_COLORS.items()}}


@dataclass(frozen=True)
class _Settings:
    """What the controls ask the check for."""

    min_size: float
    spatial_dims: int


@dataclass
class _Outcome:
    """What a check hands back; ``report`` None: the labels had not changed."""

    labels: np.ndarray
    report: LabelReport | None
    image: np.ndarray | None
    seconds: float


def _check(labels: np.ndarray, previous: np.ndarray | None, settings: _Settings) -> _Outcome:
    """Worker body: check ``labels`` unless they equal ``previous``; build the table."""
    if previous is not None and previous.shape == labels.shape \
            and np.array_equal(previous, labels):
        return _Outcome(previous, None, None, 0.0)
    start = perf_counter()
    report = check_labels(labels, min_size=settings.min_size,
                          spatial_dims=settings.spatial_dims)
    report.problems  # noqa: B018 - the table is built here, off the GUI thread
    return _Outcome(labels, report, report.problem_image(), perf_counter() - start)


def _row_key(table: pd.DataFrame, row: int) -> tuple:
    """What identifies a problem across checks: (label, problem, other, plane)."""
    record = table.iloc[row]
    return (int(record["label"]), str(record["problem"]), int(record["other"]),
            tuple(record["plane"]))


class CheckLabelsWidget(LayerWidget):
    """Dock widget listing the annotation errors of a Labels layer, and fixing them.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer: its Labels layers are offered, and the highlight layer added to it.

    Attributes
    ----------
    report : LabelReport or None
        The last check of the picked layer.

    Notes
    -----
    Problems: ``disconnected``, ``small`` (below "min size" pixels), ``hole``,
    ``touching``, ``reused`` (only "per 2D plane": an id in several planes); see
    :func:`~napari_unet_weights.labels.checks.check_labels`. Checking never changes the
    layer; each Fix is one undoable edit (:func:`~..common.label_problems.apply_fix`), made
    from the labels as they are when it is pressed.
    """

    TITLE = "Check labels"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, EDIT_DEBOUNCE_MS, PROGRESS_DELAY_MS)
        self.report: LabelReport | None = None
        self._layer: Labels | None = None
        self._shown_layer: Labels | None = None  # the layer ``report`` is of
        self._checked: np.ndarray | None = None  # the labels ``report`` is of
        self._settings: _Settings | None = None  # and its settings
        self._image: np.ndarray | None = None
        self._output: Labels | None = None
        self._restoring = False
        self._fix_note = ""  # what the last Fix did, shown with the check that follows it
        self._build_layout()
        self._watch_viewer()
        self._refresh_choices()
        self._pick_active_labels()

    # -- controls and layout ----------------------------------------------------------
    def _build_layout(self) -> None:
        self._build_controls()
        self.controls = Container(widgets=[self.layer_combo, self.min_size_spin,
                                           self.per_plane_checkbox, self.merge_checkbox])
        self.summary_label = QLabel("")
        self.summary_label.setStyleSheet("font-weight: bold;")
        self.summary_label.setWordWrap(True)
        self.fix_selected_button = push_button(
            "Fix selected", self.fix_rows, "Fix the problems of the selected table rows "
            "(one undoable edit: Ctrl-Z on the layer restores it)")
        self.fix_all_button = push_button(
            "Fix all", self.fix_all, "Fix every problem, in rounds until none is left "
            "(one undoable edit)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.fix_selected_button)
        buttons.addWidget(self.fix_all_button)
        self._build_status()
        self.progress_bar.setMaximumHeight(8)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.progress_bar)
        self.table = DataFrameTable("label_problems", colors=CELL_COLORS)
        self.table.row_selected.connect(self._on_row_selected)
        self.table.view.selectionModel().selectionChanged.connect(self._update_buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.controls.native)
        layout.addWidget(self.summary_label)
        layout.addWidget(self._build_counts())
        layout.addLayout(buttons)
        layout.addLayout(status_row)
        layout.addWidget(self.table, 1)
        self._set_progress_visible(False)
        self._clear_results()

    def _build_controls(self) -> None:
        self.layer_combo = ComboBox(label="labels", choices=self._labels_choices)
        self.min_size_spin = SpinBox(label="min size (px)", min=0, max=10**9, value=10)
        self.min_size_spin.tooltip = "Objects with fewer pixels are 'small'; 0: no check."
        self.per_plane_checkbox = CheckBox(text="per 2D plane", value=False, enabled=False)
        self.per_plane_checkbox.tooltip = (
            "Check each 2D plane of the last two axes on its own (time-lapse, z-stacks "
            "annotated slice by slice): an id found in several planes is 'reused'.")
        self.merge_checkbox = CheckBox(text="merge small into neighbour", value=False)
        self.merge_checkbox.tooltip = (
            "Fixing 'small': merge each small object into the neighbour it touches most "
            "instead of erasing it.")
        self.layer_combo.changed.connect(self._set_layer)
        self.min_size_spin.changed.connect(self.refresh)
        self.per_plane_checkbox.changed.connect(self.refresh)

    def _build_counts(self) -> QWidget:
        """One row per problem: its colour and name, its count, its Fix button."""
        self.count_labels: dict[str, QLabel] = {}
        self.fix_buttons = {}
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        for row, name in enumerate(PROBLEMS):
            label = QLabel(f"<span style='color:{PROBLEM_COLORS[name]}'>■</span> {name}")
            label.setToolTip(PROBLEM_HELP[name])
            count = QLabel("—")
            count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            button = push_button("Fix", partial(self.fix_problem, name),
                                 f"Fix every '{name}' problem (one undoable edit)")
            grid.addWidget(label, row, 0)
            grid.addWidget(count, row, 1)
            grid.addWidget(button, row, 2)
            self.count_labels[name], self.fix_buttons[name] = count, button
        grid.setColumnStretch(0, 1)
        return box

    def _pick_active_labels(self) -> None:
        active = self.viewer.layers.selection.active
        if isinstance(active, Labels) and self._offers(active):
            self.layer_combo.value = active
        self._set_layer(self.layer_combo.value)

    # -- layer list ---------------------------------------------------------------
    def _offers(self, layer: Labels) -> bool:
        """Not the plugin's views of labels (this widget's highlight, Evaluate's errors)."""
        return CHECK_LABELS_KEY not in layer.metadata and EVALUATE_VIEW_KEY not in layer.metadata

    def _refresh_choices(self, _event: Any = None) -> None:
        self.layer_combo.reset_choices()
        self._set_layer(self.layer_combo.value)

    def _forget_layer(self, layer: Layer) -> None:
        if layer is self._output:
            self._output = None

    @property
    def layer(self) -> Labels | None:
        """The Labels layer checked."""
        return self._layer

    def set_layer(self, layer: Labels) -> None:
        """Check ``layer`` (a Labels layer of the viewer)."""
        self.layer_combo.value = layer

    def _set_layer(self, layer: Labels | None) -> None:
        if layer is self._layer:
            return
        self._disconnect_inputs()
        self._remove_output()
        self._layer = layer
        self._problem = None
        self.per_plane_checkbox.enabled = layer is not None and layer.ndim > 2
        self._clear_results()
        if layer is None:
            self._set_status(NO_LABELS)
            return
        self._follow_edits([layer], EDIT_EVENTS)
        self.refresh()

    def _disconnect_inputs(self) -> None:
        layer, self._layer = self._layer, None
        if layer is not None:
            self._follow_edits([layer], EDIT_EVENTS, follow=False)

    # -- checking -----------------------------------------------------------------
    def settings(self) -> _Settings | None:
        """What the controls ask for; None without a layer."""
        layer = self._layer
        if layer is None:
            return None
        per_plane = bool(self.per_plane_checkbox.value) and layer.ndim > 2
        return _Settings(float(self.min_size_spin.value), 2 if per_plane else layer.ndim)

    def refresh(self, _value: Any = None) -> None:
        """Check the layer again, in the background (at once, not debounced)."""
        self._edit_timer.stop()
        if self._layer is None:
            self._set_status(NO_LABELS)
            return
        self._runner.request(self._prepare_job)

    def _prepare_job(self) -> Job | None:
        """Runs on the GUI thread when the runner is free: snapshot the labels."""
        layer, settings = self._layer, self.settings()
        if layer is None or settings is None:
            return None
        try:
            labels = layer_labels(layer)
        except ValueError as error:
            self._on_error(layer, error)
            return None
        same = layer is self._shown_layer and settings == self._settings
        previous = self._checked if same else None
        return Job(
            work=partial(_check, labels, previous, settings),
            on_result=partial(self._on_result, layer, settings),
            on_error=partial(self._on_error, layer),
        )

    def _on_result(self, layer: Labels, settings: _Settings, outcome: _Outcome) -> None:
        if layer is not self._layer:
            return
        self._problem = None
        if outcome.report is None:  # unchanged: bring back the highlight if deleted
            self._show_highlight()
            return
        previous = self.report if layer is self._shown_layer else None
        self.report, self._shown_layer = outcome.report, layer
        self._checked, self._settings, self._image = outcome.labels, settings, outcome.image
        self._show_report(outcome.seconds, previous)

    def _on_error(self, layer: Labels, error: Exception) -> None:
        if layer is not self._layer:
            return
        self._remove_output()
        self._clear_results()
        self._report(f"'{layer.name}': {user_message(error)}", "error", once=True)

    # -- results --------------------------------------------------------------------
    def _clear_results(self) -> None:
        self.report = self._shown_layer = self._checked = self._settings = self._image = None
        self.summary_label.setText("")
        self.table.set_frame(None)
        for count in self.count_labels.values():
            count.setText("—")
        self._update_buttons()

    def _show_report(self, seconds: float, previous: LabelReport | None) -> None:
        report = self.report
        summary = report.summary
        planes = report.spatial_dims < len(report.shape)  # "reused" needs planes
        for name, count in self.count_labels.items():
            looked = name in summary.index and (planes or name != "reused")
            count.setText(str(int(summary[name])) if looked else "—")
            count.setToolTip("" if looked else "Checked only 'per 2D plane', in a stack.")
        objects = f"{report.n_objects} object{'s' * (report.n_objects != 1)}"
        if report.clean:
            self.summary_label.setText(f"No problems · {objects}")
        else:
            self.summary_label.setText(
                f"{len(report)} problem{'s' * (len(report) != 1)} · {objects}")
        self._show_table(previous)
        self._show_highlight()
        self._update_buttons()
        found = f": {counts_text(summary)}" if not report.clean else ""
        note, self._fix_note = self._fix_note, ""
        self._set_status(f"{note}Checked in {seconds * 1000:.1f} ms{found}")

    def _table_frame(self) -> pd.DataFrame:
        report = self.report
        columns = list(TABLE_COLUMNS)
        if report.spatial_dims < len(report.shape):
            columns.insert(1, "plane")
        frame = report.problems[columns].copy()
        frame["problem"] = frame["problem"].astype(str)
        if "plane" in frame:
            frame["plane"] = [", ".join(map(str, plane)) for plane in frame["plane"]]
        return frame

    def _show_table(self, previous: LabelReport | None) -> None:
        """Show the report's rows; the problem selected in ``previous`` stays selected."""
        selected = self.table.selected_rows()
        key = (_row_key(previous.problems, selected[0])
               if previous is not None and selected and selected[0] < len(previous) else None)
        self.table.name = f"{self._shown_layer.name}_problems"
        self.table.set_frame(self._table_frame())
        if key is None:
            return
        table = self.report.problems
        for row in range(len(table)):
            if _row_key(table, row) == key:
                self._restoring = True  # selected again, not clicked: the camera stays
                try:
                    self.table.select_row(row)
                finally:
                    self._restoring = False
                break

    def _output_layer(self) -> Labels | None:
        """The highlight layer of the checked layer, if in the viewer."""
        output = self._output
        if output is not None and output in self.viewer.layers \
                and output.metadata.get(CHECK_LABELS_KEY) == id(self._shown_layer):
            return output
        return None

    def _show_highlight(self) -> None:
        """Write the problem pixels into the highlight layer (added if missing)."""
        layer, image = self._shown_layer, self._image
        if layer is None or image is None or layer not in self.viewer.layers:
            return
        name = f"{layer.name}{OUTPUT_SUFFIX}"
        output = self._output_layer()
        if output is not None:  # an unchanged re-check (a dims step) does not repaint it
            update_layer(output, layer, **({} if output.data is image else {"data": image}),
                         name=name)
        elif image.any():
            output = self._add_output(
                self.viewer.add_labels, image, layer, self.viewer.layers.selection.active,
                name=name, colormap=highlight_colormap(), opacity=0.9,
                metadata={CHECK_LABELS_KEY: id(layer)})
            output.editable = False
        self._output = output

    def _remove_output(self) -> None:
        output, self._output = self._output_layer(), None
        if output is not None:
            self.viewer.layers.remove(output)

    # -- clicking a row -------------------------------------------------------------
    def _on_row_selected(self, row: int) -> None:
        """Select the row's label in the layer and bring its problem into view."""
        report, layer = self.report, self._shown_layer
        if self._restoring or report is None or row >= len(report) \
                or layer not in self.viewer.layers:
            return
        layer.selected_label = int(report.problems["label"].iat[row])
        region = report.region(row)
        center = [(s.start + s.stop - 1) / 2 for s in region]
        side = max(s.stop - s.start for s in region[len(region) - report.spatial_dims:])
        focus_on(self.viewer, layer, center, FOCUS_CONTEXT * side)

    # -- fixing ---------------------------------------------------------------------
    def _update_buttons(self, *_args: Any) -> None:
        report = self.report
        summary = report.summary if report is not None else {}
        for name, button in self.fix_buttons.items():
            button.setEnabled(bool(summary.get(name, 0)))
        self.fix_all_button.setEnabled(report is not None and not report.clean)
        self.fix_selected_button.setEnabled(report is not None and bool(self.table.selected_rows()))

    def fix_rows(self, rows: list[int] | None = None) -> LabelFix | None:
        """Fix the problems of table rows ``rows`` (default: the selected rows).

        Returns
        -------
        LabelFix or None
            The fix written to the layer; None if there was nothing to fix or it failed
            (reported).
        """
        rows = self.table.selected_rows() if rows is None else list(rows)
        if self.report is None or not rows:
            return None
        chosen = self.report.problems.iloc[rows]
        what = (f"label {int(chosen['label'].iat[0])} ({chosen['problem'].iat[0]})"
                if len(chosen) == 1 else f"{len(chosen)} rows")
        return self._apply(partial(self._fix_rows, chosen), what)

    def fix_problem(self, problem: str) -> LabelFix | None:
        """Fix every row of ``problem`` (one of :data:`~...labels.checks.PROBLEMS`)."""
        if self.report is None:
            return None
        table = self.report.problems
        chosen = table[table["problem"].astype(str) == problem]
        if chosen.empty:
            return None
        return self._apply(partial(self._fix_rows, chosen), f"every '{problem}'")

    def fix_all(self) -> LabelFix | None:
        """Fix every problem (:func:`~napari_unet_weights.labels.fixes.fix_labels`)."""
        report = self.report
        if report is None:
            return None
        return self._apply(partial(fix_labels, min_size=report.min_size,
                                   spatial_dims=report.spatial_dims, checks=report.checks,
                                   merge_small=bool(self.merge_checkbox.value)), "everything")

    def _fix_rows(self, rows: pd.DataFrame, labels: np.ndarray) -> LabelFix:
        report = self.report
        return fix_problems(labels, rows, min_size=report.min_size,
                            merge_small=bool(self.merge_checkbox.value),
                            spatial_dims=report.spatial_dims)

    def _apply(self, make_fix, what: str) -> LabelFix | None:
        """Compute a fix from the layer's current labels and write it as one edit."""
        layer = self._shown_layer
        if layer is None or layer is not self._layer or layer not in self.viewer.layers:
            return None
        try:
            fix = make_fix(layer_labels(layer))
            changed = apply_fix(layer, fix)
        except Exception as error:  # shown to the user, not raised into Qt
            self._report(f"Could not fix '{layer.name}': {user_message(error)}")
            return None
        if not changed:
            self._set_status(f"Fixed {what}: nothing left to change.")
            return fix
        self._fix_note = (f"Fixed {what}: {changed} pixel{'s' * (changed != 1)} changed "
                          "(Ctrl-Z on the layer undoes it). ")
        self._set_status(self._fix_note)  # its paint event brings a re-check
        return fix
