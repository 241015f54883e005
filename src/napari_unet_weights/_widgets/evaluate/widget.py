"""The "Evaluate" dock widget: mAP of IoU of a predicted Labels layer against ground truth.

The widget is a thin shell around :func:`napari_unet_weights.metrics.matching.evaluate`: it
snapshots the two picked Labels layers, runs ``evaluate`` in a background worker (one
job at a time, the latest request winning) and shows the result: the mAP, the
per-threshold and per-object tables, per-object values in both layers' ``features``
(columns prefixed ``eval_``, merged with the user's own columns) and, on request, an
"IoU view" (predictions coloured by their IoU, unmatched objects outlined). Label
data are never modified, nor any features column the widget did not write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container
from napari.layers import Image, Labels
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QLabel, QTabWidget, QVBoxLayout

from napari_unet_weights._widgets.common.base import LayerWidget, update_layer, user_message
from napari_unet_weights._widgets.common.camera import focus_on
from napari_unet_weights._widgets.common.layer_roles import (
    EVALUATE_VIEW_KEY,
    PRED_HINTS,
    likely_ground_truth,
    likely_prediction,
    named_like,
    same_shape,
)
from napari_unet_weights._widgets.common.table import DataFrameTable
from napari_unet_weights._widgets.common.workers import Job
from napari_unet_weights._widgets.evaluate.features import INDEX, merge_features
from napari_unet_weights._widgets.evaluate.views import (
    FALSE_POSITIVE_COLOR,
    MISS_COLOR,
    error_labels,
    iou_image,
)
from napari_unet_weights.metrics.matching import Evaluation, evaluate

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = [
    "EvaluateWidget", "error_labels", "evaluation_features", "iou_image", "write_features",
]

EDIT_DEBOUNCE_MS = 200
PROGRESS_DELAY_MS = 200
#: Events of the picked layers after which the scores are recomputed (debounced).
EDIT_EVENTS = ("data", "paint")
IOU_SUFFIX = " IoU"
ERRORS_SUFFIX = " errors"
#: The object's estimated diameter fills 1/FOCUS_CONTEXT of the canvas when focused.
FOCUS_CONTEXT = 6.0
OBJECT_COLUMNS = (
    "kind", "label", "status", "matched_iou", "best_iou", "matched_pred", "best_pred",
    "best_gt", "max_tp_threshold", "area",
)
#: Prefix of the ``features`` columns this widget writes (all others are the user's).
FEATURE_PREFIX = "eval_"
#: ``per_object`` columns written to the ground truth's features (prefixed).
GT_FEATURE_COLUMNS = (
    "status", "matched_pred", "matched_iou", "best_pred", "best_iou", "max_tp_threshold", "area",
)
#: ``pred_features`` columns written to the prediction's features (prefixed).
PRED_FEATURE_COLUMNS = ("iou", "matched_gt", "status")
#: Every features column this widget may have written, whichever role the layer had.
OWN_FEATURE_COLUMNS = frozenset(
    FEATURE_PREFIX + column for column in GT_FEATURE_COLUMNS + PRED_FEATURE_COLUMNS
)
STATUS_COLORS = {
    "status": {
        "matched": "#2f6b3b",
        "missed": "#8a2c2c",
        "merged": "#83601d",
        "split": "#6f6a1f",
        "false positive": "#7a3478",
    }
}


@dataclass
class _Outcome:
    """What a background job hands back: the scores and the arrays they were made of."""

    evaluation: Evaluation
    gt: np.ndarray
    pred: np.ndarray
    seconds: float


def _run_evaluation(gt: np.ndarray, pred: np.ndarray, strict: bool) -> _Outcome:
    """Worker body: :func:`~napari_unet_weights.metrics.matching.evaluate`, timed."""
    start = perf_counter()
    evaluation = evaluate(gt, pred, strict=strict)
    return _Outcome(evaluation, gt, pred, perf_counter() - start)


def _ball_diameter(volume: float, ndim: int) -> float:
    """Diameter of the ``ndim``-ball of the given volume (area in 2D)."""
    unit_ball = math.pi ** (ndim / 2) / math.gamma(ndim / 2 + 1)
    return 2.0 * (max(volume, 1.0) / unit_ball) ** (1.0 / ndim)


def _own_features(ids: pd.Series, values: pd.DataFrame) -> pd.DataFrame:
    """Labels features of this widget: ``index`` = ``ids``, ``values`` columns prefixed."""
    table = values.add_prefix(FEATURE_PREFIX)
    table.insert(0, INDEX, ids.to_numpy())
    return table.reset_index(drop=True)


def evaluation_features(evaluation: Evaluation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This widget's features of the ground truth and of the prediction.

    Parameters
    ----------
    evaluation : Evaluation
        The scores.

    Returns
    -------
    gt, pred : pandas.DataFrame
        ``index`` (the label id) and ``eval_…`` columns: one row per ground-truth
        object (from :attr:`Evaluation.per_object`), one per predicted object (from
        :attr:`Evaluation.pred_features`).
    """
    objects = evaluation.per_object
    gt_rows = objects[objects["kind"] == "gt"]
    predictions = evaluation.pred_features
    return (
        _own_features(gt_rows["label"], gt_rows[list(GT_FEATURE_COLUMNS)]),
        _own_features(predictions["index"], predictions[list(PRED_FEATURE_COLUMNS)]),
    )


def write_features(layer: Labels, ours: pd.DataFrame) -> None:
    """Replace this widget's columns in ``layer.features`` by ``ours``, keep the rest.

    Parameters
    ----------
    layer : napari.layers.Labels
        The layer to write into (its data are not touched).
    ours : pandas.DataFrame
        One of the tables of :func:`evaluation_features`.
    """
    layer.features = merge_features(layer.features, ours, OWN_FEATURE_COLUMNS)


def _object_table(per_object: pd.DataFrame) -> pd.DataFrame:
    """``per_object`` with the most telling columns first (all columns kept)."""
    first = [c for c in OBJECT_COLUMNS if c in per_object.columns]
    return per_object[first + [c for c in per_object.columns if c not in first]]


def _guess_pair(layers: list[Labels]) -> tuple[Labels | None, Labels | None]:
    """A (ground truth, prediction) pair of the same shape, guessed from layer names.

    Predictions are tried in order of likelihood (named like one, topmost first);
    the first with a layer of its shape is paired with the likeliest of those. With
    no such pair, the lowest layer is the ground truth and the prediction is None.
    """
    hinted = named_like(PRED_HINTS, layers)[::-1]
    for pred in hinted + [layer for layer in layers[::-1] if layer not in hinted]:
        gt = likely_ground_truth(same_shape(pred, layers))
        if gt is not None:
            return gt, pred
    return next(iter(layers), None), None


def _fill_pair(
    gt: Labels | None, pred: Labels | None, layers: list[Labels]
) -> tuple[Labels | None, Labels | None]:
    """Fill whichever of ``gt`` and ``pred`` is None from ``layers`` (same shape, no repeat)."""
    if gt is None and pred is None:
        return _guess_pair(layers)
    if gt is None:
        return likely_ground_truth(same_shape(pred, layers)), pred
    return gt, likely_prediction(same_shape(gt, layers))


class EvaluateWidget(LayerWidget):
    """Dock widget scoring a prediction Labels layer against a ground-truth one.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose Labels layers are offered.

    Notes
    -----
    Scores are recomputed in a background worker whenever a picker or the "strict"
    box changes and (debounced) when either layer is edited. The prediction's
    ``features`` get :attr:`Evaluation.pred_features`, the ground truth's the
    ground-truth rows of :attr:`Evaluation.per_object` (``index`` = label), as
    ``eval_…`` columns merged with the columns already there, which are kept. Picking
    a table row selects the object in both layers and centres the camera on it.

    Empty pickers are filled with a guess of the same shape; problems of a guessed
    pair show in the status line only, those of a pair the user picked also as a
    napari notification.
    """

    TITLE = "Evaluate"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, EDIT_DEBOUNCE_MS, PROGRESS_DELAY_MS)
        self.evaluation: Evaluation | None = None
        self._outcome: _Outcome | None = None
        self._shown_pair: tuple[Labels, Labels] | None = None
        self._pair: tuple[Labels | None, Labels | None] = (None, None)
        self._generation = 0
        self._views: dict[str, Layer] = {}
        self._choosing = False
        self._guessed = False  # whether the widget, not the user, picked the current pair
        self._build_controls()
        self._build_layout()
        self._watch_viewer()
        self._refresh_choices()

    # -- construction -------------------------------------------------------------

    def _build_controls(self) -> None:
        self.gt_combo = ComboBox(label="ground truth", choices=self._labels_choices, nullable=True)
        self.pred_combo = ComboBox(label="prediction", choices=self._labels_choices, nullable=True)
        self.strict_checkbox = CheckBox(text="strict (IoU > t)", value=False)
        self.strict_checkbox.tooltip = (
            "Count a match only if IoU > t (Kaggle's text) instead of IoU ≥ t (stardist). "
            "The two differ only where an IoU equals a threshold exactly."
        )
        self.iou_view_checkbox = CheckBox(text="IoU view", value=False)
        self.iou_view_checkbox.tooltip = (
            "Show the predictions coloured by IoU, misses outlined in red and false "
            "positives in orange."
        )
        self.gt_combo.changed.connect(self._on_picked)
        self.pred_combo.changed.connect(self._on_picked)
        self.strict_checkbox.changed.connect(self.refresh)
        self.iou_view_checkbox.changed.connect(self._update_views)

    def _build_layout(self) -> None:
        self.controls = Container(
            widgets=[self.gt_combo, self.pred_combo, self.strict_checkbox, self.iou_view_checkbox]
        )
        self.map_label = QLabel("mAP —")
        self.map_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.summary_label = QLabel("")
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.summary_label.setWordWrap(True)
        self.legend_label = QLabel(
            "colour: IoU of each prediction · "
            f"<span style='color:{MISS_COLOR}'>■ missed</span> · "
            f"<span style='color:{FALSE_POSITIVE_COLOR}'>■ false positive</span>"
        )
        self.legend_label.setWordWrap(True)
        self.legend_label.setVisible(False)
        self._build_status()
        self.progress_bar.setMaximumHeight(8)
        self.objects_table = DataFrameTable("per_object", colors=STATUS_COLORS)
        self.objects_table.row_selected.connect(self._on_object_selected)
        self.thresholds_table = DataFrameTable("per_threshold")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.objects_table, "Objects")
        self.tabs.addTab(self.thresholds_table, "Thresholds")
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.progress_bar)
        layout = QVBoxLayout(self)
        layout.addWidget(self.controls.native)
        layout.addWidget(self.map_label)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.legend_label)
        layout.addLayout(status_row)
        layout.addWidget(self.tabs, 1)
        self._set_progress_visible(False)
        self._set_map_text(None)

    # -- layer pickers ------------------------------------------------------------
    def _offers(self, layer: Labels) -> bool:
        """Whether the pickers offer ``layer``: not the IoU view's own layers."""
        return EVALUATE_VIEW_KEY not in layer.metadata

    @property
    def gt_layer(self) -> Labels | None:
        """The ground-truth layer picked."""
        return self.gt_combo.value

    @property
    def pred_layer(self) -> Labels | None:
        """The prediction layer picked."""
        return self.pred_combo.value

    def set_layers(self, gt: Labels | None, pred: Labels | None) -> None:
        """Pick ``gt`` and ``pred`` (layers of the viewer), then recompute once."""
        self._choosing = True
        try:
            self.gt_combo.value = gt
            self.pred_combo.value = pred
        finally:
            self._choosing = False
        self._guessed = False
        self._on_pair_changed()

    def _refresh_choices(self, _event=None) -> None:
        """Re-read the layer list; fill empty pickers with a guess."""
        self._choosing = True
        try:
            self.gt_combo.reset_choices()
            self.pred_combo.reset_choices()
            gt, pred = self.gt_combo.value, self.pred_combo.value
            if gt is None or pred is None:
                choices = [layer for _, layer in self._labels_choices()]
                filled = _fill_pair(gt, pred, choices)
                self._guessed = self._guessed or filled != (gt, pred)
                self.gt_combo.value, self.pred_combo.value = filled
        finally:
            self._choosing = False
        self._on_pair_changed()
        self._rename_views()

    def _forget_layer(self, layer: Layer) -> None:
        for role, view in list(self._views.items()):
            if view is layer:
                del self._views[role]

    def _on_picked(self, _value: Any = None) -> None:
        """The user changed a picker: the pair is theirs now."""
        if not self._choosing:
            self._guessed = False
        self._on_pair_changed()

    def _on_pair_changed(self, _value: Any = None) -> None:
        """Follow the picked layers' edits; recompute if the pair changed."""
        if self._choosing:
            return
        pair = (self.gt_layer, self.pred_layer)
        if pair[0] is self._pair[0] and pair[1] is self._pair[1]:
            return
        self._disconnect_inputs()
        self._pair = pair
        self._follow_edits(pair, EDIT_EVENTS)
        self.refresh()

    def _disconnect_inputs(self) -> None:
        self._follow_edits(self._pair, EDIT_EVENTS, follow=False)
        self._pair = (None, None)

    def _on_edit(self) -> None:
        self._invalidate()

    # -- computing ----------------------------------------------------------------
    def refresh(self, _value: Any = None) -> None:
        """Recompute the scores of the picked layers in the background."""
        self._edit_timer.stop()
        self._invalidate()
        self._runner.request(self._prepare_job)

    def _invalidate(self) -> None:
        """Inputs changed: results still in flight are for old inputs."""
        self._generation += 1
        if self.evaluation is not None:
            self._set_map_text(self.evaluation.map, stale=True)

    def _input_problem(self, gt: Any, pred: Any) -> tuple[str, str | None] | None:
        """Why the pair cannot be scored, as (message, notification level), or None."""
        if gt is None or pred is None:
            return "Pick a ground-truth and a prediction Labels layer.", None
        if gt is pred:
            return (f"'{gt.name}' is picked as both ground truth and prediction: "
                    "pick two different Labels layers."), "warning"
        for role, layer in (("ground truth", gt), ("prediction", pred)):
            if not isinstance(layer, Labels):
                return f"The {role} '{layer.name}' is not a Labels layer.", "error"
            if layer.multiscale:
                return f"The {role} '{layer.name}' is multiscale: not supported.", "error"
        if tuple(gt.data.shape) != tuple(pred.data.shape):
            return (f"Shapes differ: ground truth '{gt.name}' is {tuple(gt.data.shape)}, "
                    f"prediction '{pred.name}' is {tuple(pred.data.shape)}."), "error"
        return None

    def _prepare_job(self) -> Job | None:
        """Runs on the GUI thread when the runner is free: check and snapshot inputs."""
        gt, pred = self.gt_layer, self.pred_layer
        problem = self._input_problem(gt, pred)
        if problem is not None:
            message, level = problem
            self._show_problem(message, None if self._guessed else level)  # no pop-up for a guess
            return None
        token = self._generation
        gt_data, pred_data = np.array(gt.data), np.array(pred.data)  # snapshots
        self._set_status("Computing…")
        return Job(
            work=partial(_run_evaluation, gt_data, pred_data, bool(self.strict_checkbox.value)),
            on_result=partial(self._on_result, token, gt, pred),
            on_error=partial(self._on_error, token),
        )

    def _on_result(self, token: int, gt: Labels, pred: Labels, outcome: _Outcome) -> None:
        if token != self._generation or (gt, pred) != (self.gt_layer, self.pred_layer):
            return  # stale: a newer request follows
        self._problem = None
        self._show(gt, pred, outcome)

    def _on_error(self, token: int, error: Exception) -> None:
        if token != self._generation:
            return
        self._show_problem(user_message(error), "error")

    def _show_problem(self, message: str, level: str | None) -> None:
        """Clear the results, show ``message``; notify once per distinct problem."""
        self._clear_results()
        self._report(message, level, once=True)

    # -- results ------------------------------------------------------------------
    def _show(self, gt: Labels, pred: Labels, outcome: _Outcome) -> None:
        evaluation = outcome.evaluation
        self.evaluation, self._outcome, self._shown_pair = evaluation, outcome, (gt, pred)
        self._set_map_text(evaluation.map)
        self._set_summary(evaluation)
        self.objects_table.name = f"{pred.name}_per_object"
        self.thresholds_table.name = f"{pred.name}_per_threshold"
        self.objects_table.set_frame(_object_table(evaluation.per_object))
        self.thresholds_table.set_frame(evaluation.per_threshold)
        self.tabs.setTabText(0, f"Objects ({len(evaluation.per_object)})")
        gt_table, pred_table = evaluation_features(evaluation)
        write_features(gt, gt_table)
        write_features(pred, pred_table)
        self._update_views()
        self._set_status(f"Up to date · computed in {outcome.seconds * 1000:.0f} ms")

    def _clear_results(self) -> None:
        self.evaluation = self._outcome = self._shown_pair = None
        self._set_map_text(None)
        self.summary_label.setText("")
        self.objects_table.set_frame(None)
        self.thresholds_table.set_frame(None)
        self.tabs.setTabText(0, "Objects")
        self._remove_views()

    def _set_map_text(self, value: float | None, stale: bool = False) -> None:
        text = "mAP —" if value is None else f"mAP {value:.3f}"
        color = "#8c8c8c" if stale or value is None else "palette(text)"
        self.map_label.setText(text)
        self.map_label.setStyleSheet(f"font-size: 26pt; font-weight: bold; color: {color};")
        self.map_label.setToolTip("Outdated: recomputing…" if stale else "")

    def _set_summary(self, evaluation: Evaluation) -> None:
        rows = evaluation.per_threshold
        first = rows.iloc[int(np.argmin(rows["threshold"].to_numpy()))]
        thresholds = evaluation.thresholds
        criterion = ">" if evaluation.strict else "≥"
        self.summary_label.setText(
            f"{evaluation.n_true} ground-truth · {evaluation.n_pred} predicted objects<br>"
            f"at IoU {criterion} {first['threshold']:.2f}: TP {int(first['tp'])} · "
            f"FP {int(first['fp'])} · FN {int(first['fn'])}<br>"
            f"mean over IoU {criterion} {min(thresholds):.2f} … {max(thresholds):.2f} "
            f"({len(thresholds)} thresholds)"
        )

    # -- clicking a row -------------------------------------------------------------
    def _on_object_selected(self, row: int) -> None:
        """Select the object of table row ``row`` in both layers and centre on it."""
        if self._shown_pair is None or row >= len(self.objects_table.frame):
            return
        gt, pred = self._shown_pair
        if gt not in self.viewer.layers or pred not in self.viewer.layers:
            return
        record = self.objects_table.frame.iloc[row]
        if record["kind"] == "gt":
            owner, gt_id = gt, int(record["label"])
            pred_id = int(record["matched_pred"]) or int(record["best_pred"])
        else:
            owner, pred_id, gt_id = pred, int(record["label"]), int(record["best_gt"])
        if gt_id:
            gt.selected_label = gt_id
        if pred_id:
            pred.selected_label = pred_id
        centroid = [float(record[f"centroid-{axis}"]) for axis in range(owner.ndim)]
        self.focus(owner, centroid, float(record["area"]))

    def focus(self, layer: Layer, centroid: list[float], area: float) -> None:
        """Centre the camera on ``centroid`` (data coordinates of ``layer``) and zoom in.

        Parameters
        ----------
        layer : napari.layers.Layer
            The layer whose data coordinates ``centroid`` is in.
        centroid : list of float
            The object's centre, one value per layer axis.
        area : float
            Its size in pixels (voxels), to estimate how far to zoom.
        """
        focus_on(self.viewer, layer, centroid, FOCUS_CONTEXT * _ball_diameter(area, layer.ndim))

    # -- IoU view -------------------------------------------------------------------
    def _update_views(self, _value: Any = None) -> None:
        """Create or update the IoU view layers (remove them when unchecked)."""
        show = bool(self.iou_view_checkbox.value) and self._outcome is not None
        self.legend_label.setVisible(show)
        if not show:
            self._remove_views()
            return
        outcome, (_gt, pred) = self._outcome, self._shown_pair
        if pred not in self.viewer.layers:
            return
        active = self.viewer.layers.selection.active  # keep painting where the user was
        image = iou_image(outcome.pred, outcome.evaluation.pred_features)
        errors, colormap = error_labels(outcome.gt, outcome.pred, outcome.evaluation)
        self._upsert_image(pred, image, active)
        self._upsert_errors(pred, errors, colormap, active)

    def _view_layer(self, role: str, pred: Labels, kind: type) -> Layer | None:
        """The existing view layer ``role`` of ``pred`` (removed if made for another)."""
        layer = self._views.get(role)
        if layer is None or layer not in self.viewer.layers:
            return None
        if layer.metadata.get(EVALUATE_VIEW_KEY) != (role, id(pred)) or not isinstance(layer, kind):
            self.viewer.layers.remove(layer)
            return None
        return layer

    def _upsert_image(self, pred: Labels, image: np.ndarray, active: Layer | None) -> None:
        name = f"{pred.name}{IOU_SUFFIX}"
        layer = self._view_layer("iou", pred, Image)
        if layer is None:
            layer = self._add_output(
                self.viewer.add_image, image, pred, active, name=name, colormap="viridis",
                contrast_limits=(0.0, 1.0), opacity=0.7,
                metadata={EVALUATE_VIEW_KEY: ("iou", id(pred))},
            )
            layer.colorbar.visible = True
            self._views["iou"] = layer
        else:
            update_layer(layer, pred, data=image, name=name)

    def _upsert_errors(
        self, pred: Labels, errors: np.ndarray, colormap, active: Layer | None
    ) -> None:
        name = f"{pred.name}{ERRORS_SUFFIX}"
        layer = self._view_layer("errors", pred, Labels)
        if layer is None:
            layer = self._add_output(
                self.viewer.add_labels, errors, pred, active, name=name, colormap=colormap,
                metadata={EVALUATE_VIEW_KEY: ("errors", id(pred))},
            )
            layer.contour = 2
            layer.editable = False
            self._views["errors"] = layer
        else:
            update_layer(layer, pred, data=errors, colormap=colormap, name=name)

    def _rename_views(self) -> None:
        """Keep the view layers named after the prediction they show."""
        if self._shown_pair is None:
            return
        pred_name = self._shown_pair[1].name
        suffixes = {"iou": IOU_SUFFIX, "errors": ERRORS_SUFFIX}
        for role, layer in self._views.items():
            if layer in self.viewer.layers and layer.name != pred_name + suffixes[role]:
                layer.name = pred_name + suffixes[role]

    def _remove_views(self) -> None:
        views, self._views = self._views, {}
        for layer in views.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
