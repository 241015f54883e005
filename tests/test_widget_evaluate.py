"""The "Evaluate" dock widget: scores, tables, features, row focus, live updates, errors."""

from __future__ import annotations

import threading
from fractions import Fraction
from functools import partial

import numpy as np
import pandas as pd
import pytest
from napari.layers import Image, Labels
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFileDialog

from napari_unet_weights._widgets.evaluate import widget as widget_module
from napari_unet_weights._widgets.evaluate.widget import EvaluateWidget
from napari_unet_weights.metrics.matching import evaluate
from reference import SCALE, TRANSLATE, discs

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000
CENTRES = ((12, 12), (12, 40), (40, 14), (44, 44), (28, 28))


def _discs(shape=(64, 64), centres=CENTRES, radii=6, ids=None) -> np.ndarray:
    """uint16 labels with one disc per centre."""
    return discs(shape, centres, radii, ids)


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and an imperfect prediction: shifted, eroded, dropped, spurious.

    Prediction 11 is ground truth 1, 12 is 2 shifted by 2 px, 13 is 3 with radius 4,
    14 is 4; 5 has no prediction; 20 is a false positive away from every object.
    """
    gt = _discs()
    # object 2 shifted, 3 eroded, 5 dropped
    centres = [(12, 12), (12, 42), (40, 14), (44, 44)]
    pred = _discs(centres=centres, radii=[6, 6, 4, 6], ids=[11, 12, 13, 14])
    pred[2:6, 56:62] = 20  # false positive
    return gt, pred


@pytest.fixture
def make_widget(dock_widget):
    """``make_widget()``: a docked EvaluateWidget, once its first computation is done."""
    return partial(dock_widget, EvaluateWidget, "Evaluate")


def _iou(a: np.ndarray, b: np.ndarray) -> Fraction:
    """The IoU of two masks, exact."""
    return Fraction(int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b)))


def _expected_map(ious: list[Fraction], n_true: int, n_pred: int) -> float:
    """mAP over IoU 0.5:0.95 when the matches are obvious (each object overlaps one).

    At each threshold t, TP = matches with IoU ≥ t, FP = n_pred − TP, FN = n_true − TP,
    and the score is TP / (TP + FP + FN), as the DSB 2018 defines it.
    """
    scores = []
    for k in range(10, 20):
        tp = sum(iou >= Fraction(k, 20) for iou in ious)
        scores.append(Fraction(tp, n_true + n_pred - tp))
    return float(sum(scores) / len(scores))


def _pair_ious() -> dict[int, Fraction]:
    """IoU of each prediction of :func:`_pair` with its ground-truth object (0: none)."""
    gt, pred = _pair()
    return {11: Fraction(1), 12: _iou(gt == 2, pred == 12), 13: _iou(gt == 3, pred == 13),
            14: Fraction(1), 20: Fraction(0)}


@pytest.fixture
def problems(notifications) -> dict[str, list[str]]:
    """The error and warning notifications the widgets showed."""
    return {"error": notifications["error"], "warning": notifications["warning"]}


def _add_pair(viewer, gt=None, pred=None) -> tuple[Labels, Labels]:
    default_gt, default_pred = _pair()
    gt = default_gt if gt is None else gt
    pred = default_pred if pred is None else pred
    kwargs = {"scale": SCALE, "translate": TRANSLATE}
    return (
        viewer.add_labels(gt.copy(), name="ground truth", **kwargs),
        viewer.add_labels(pred.copy(), name="prediction", **kwargs),
    )


def _click_row(widget: EvaluateWidget, qtbot, frame_row: int) -> None:
    """Click the view row showing ``frame_row`` of the per-object table."""
    table = widget.objects_table
    index = table.proxy.mapFromSource(table.model.index(frame_row, 1))
    table.view.scrollTo(index)
    rect = table.view.visualRect(index)
    qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_map_tables_and_features(viewer, make_widget):
    """The scores shown are the ones computed by hand from the pixel overlaps."""
    gt_layer, pred_layer = _add_pair(viewer)
    gt, pred = gt_layer.data.copy(), pred_layer.data.copy()
    viewer.add_image(np.zeros((64, 64)), name="image")  # not offered
    widget = make_widget()
    ious = _pair_ious()
    expected_map = _expected_map([ious[i] for i in (11, 12, 13, 14)], n_true=5, n_pred=5)
    # IoU 0.65 (shifted) and 0.43 (eroded): 3 TP up to t = 0.6, then 2; (3 · 3/7 + 7 · 2/8) / 10
    assert expected_map == pytest.approx((3 * 3 / 7 + 7 * 2 / 8) / 10)

    assert widget.gt_layer is gt_layer and widget.pred_layer is pred_layer
    assert all(isinstance(layer, Labels) for _, layer in widget._labels_choices())
    assert widget.evaluation.map == pytest.approx(expected_map)
    assert widget.map_label.text() == f"mAP {expected_map:.3f}"
    # 5 ground-truth objects + the predictions unmatched at IoU 0.5: 13 (0.43) and 20
    assert widget.objects_table.model.rowCount() == 7
    assert widget.thresholds_table.model.rowCount() == 10
    first = widget.thresholds_table.frame.iloc[0]  # IoU ≥ 0.5: 11, 12, 14; not 13
    tp = sum(iou >= Fraction(1, 2) for iou in ious.values())
    assert (first["threshold"], first["tp"], first["fp"], first["fn"]) == (0.5, tp, 5 - tp,
                                                                           5 - tp)

    features = pred_layer.features
    assert set(features.columns) == {"index", "eval_iou", "eval_matched_gt", "eval_status"}
    iou_by_label = dict(zip(features["index"], features["eval_iou"], strict=True))
    assert iou_by_label == pytest.approx({i: float(iou) for i, iou in ious.items()})
    matched = dict(zip(features["index"], features["eval_matched_gt"], strict=True))
    assert matched[11] == 1 and matched[14] == 4 and matched[20] == 0
    gt_features = gt_layer.features
    assert list(gt_features["index"]) == [1, 2, 3, 4, 5]
    assert gt_features.set_index("index").loc[5, "eval_status"] == "missed"
    assert all(column == "index" or column.startswith("eval_") for column in gt_features)

    np.testing.assert_array_equal(gt_layer.data, gt)
    np.testing.assert_array_equal(pred_layer.data, pred)


def test_row_click_selects_and_centres(viewer, qtbot, make_widget):
    gt_layer, pred_layer = _add_pair(viewer)
    widget = make_widget()
    frame = widget.objects_table.frame

    row = int(np.flatnonzero((frame["kind"] == "gt") & (frame["label"] == 4))[0])
    _click_row(widget, qtbot, row)
    assert gt_layer.selected_label == 4
    assert pred_layer.selected_label == 14
    record = frame.iloc[row]
    centroid = [record["centroid-0"], record["centroid-1"]]
    world = gt_layer.data_to_world(centroid)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], world, atol=1e-6)
    np.testing.assert_allclose(world, np.multiply(centroid, SCALE) + TRANSLATE)
    zoom_on_object = viewer.scene.camera.zoom

    fp_row = int(np.flatnonzero((frame["kind"] == "pred") & (frame["label"] == 20))[0])
    _click_row(widget, qtbot, fp_row)
    assert pred_layer.selected_label == 20
    record = frame.iloc[fp_row]
    expected = pred_layer.data_to_world([record["centroid-0"], record["centroid-1"]])
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], expected, atol=1e-6)
    assert viewer.scene.camera.zoom > zoom_on_object  # the spurious blob is smaller


def _click_view_row(widget: EvaluateWidget, qtbot, view_row: int) -> None:
    """Click the ``view_row``-th row from the top of the (sorted) per-object table."""
    view = widget.objects_table.view
    index = view.model().index(view_row, 0)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())


def test_sorted_table_rows_map_to_their_objects(viewer, qtbot, make_widget):
    """After sorting, a clicked row selects the object it shows, not the frame's n-th."""
    gt_layer, pred_layer = _add_pair(viewer)
    widget = make_widget()
    table = widget.objects_table
    column = list(table.frame.columns).index("label")
    table.view.sortByColumn(column, Qt.SortOrder.DescendingOrder)  # as a header click does
    shown = [table.view.model().index(row, column).data() for row in range(7)]
    assert shown == ["20", "13", "5", "4", "3", "2", "1"]  # unmatched predictions first

    _click_view_row(widget, qtbot, 0)  # the false positive, the frame's last row
    assert pred_layer.selected_label == 20
    record = table.frame.set_index("label").loc[20]
    centre = pred_layer.data_to_world([record["centroid-0"], record["centroid-1"]])
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre, atol=1e-6)

    _click_view_row(widget, qtbot, 3)  # ground truth 4 and its match 14
    assert (gt_layer.selected_label, pred_layer.selected_label) == (4, 14)
    assert table.selected_rows() == [int(np.flatnonzero(table.frame["label"] == 4)[0])]

    table.select_row(int(np.flatnonzero(table.frame["label"] == 2)[0]))  # frame → view
    assert table.view.currentIndex().row() == 5
    assert gt_layer.selected_label == 2


def test_row_focus_sets_slice_in_3d(viewer, make_widget):
    gt = np.zeros((5, 32, 32), dtype=np.uint16)
    gt[3, 10:20, 10:20] = 1
    gt[1, 2:8, 2:8] = 2
    pred = gt.copy()
    pred[1] = 0
    gt_layer = viewer.add_labels(gt, name="gt", scale=(3.0, 1.0, 1.0))
    viewer.add_labels(pred, name="pred", scale=(3.0, 1.0, 1.0))
    widget = make_widget()
    frame = widget.objects_table.frame
    row = int(np.flatnonzero(frame["label"] == 1)[0])
    widget.objects_table.select_row(row)
    assert gt_layer.selected_label == 1
    assert viewer.dims.point[0] == pytest.approx(9.0)  # slice 3 at scale 3
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (14.5, 14.5))


def test_painting_recomputes(viewer, qtbot, make_widget):
    _, pred_layer = _add_pair(viewer)
    pred = pred_layer.data.copy()
    widget = make_widget()

    pred_layer.fill((44, 44), 0)  # erase the prediction of object 4 (a paint event)
    edited = np.asarray(pred_layer.data).copy()
    np.testing.assert_array_equal(edited, np.where(pred == 14, 0, pred))  # only that one
    ious = _pair_ious()
    expected = _expected_map([ious[11], ious[12], ious[13]], n_true=5, n_pred=4)
    assert expected != pytest.approx(widget.evaluation.map)
    qtbot.waitUntil(
        lambda: not widget.busy and widget.evaluation is not None
        and widget.evaluation.map == pytest.approx(expected),
        timeout=TIMEOUT_MS,
    )
    assert widget.map_label.text() == f"mAP {expected:.3f}"
    np.testing.assert_array_equal(pred_layer.data, edited)


def test_latest_inputs_win(viewer, qtbot, make_widget):
    gt_layer, pred_layer = _add_pair(viewer)
    widget = make_widget()
    final = gt_layer.data.copy()
    widget.strict_checkbox.value = True  # starts a job
    pred_layer.data = final  # changes the inputs while it runs
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    assert widget.evaluation.map == pytest.approx(1.0)
    assert widget.evaluation.strict


def test_stale_result_is_dropped(viewer, qtbot, make_widget, wait_idle, monkeypatch):
    gt_layer, pred_layer = _add_pair(viewer)
    widget = make_widget()
    started = []
    edited = threading.Event()

    def held_evaluate(gt, pred, **kwargs):
        started.append(pred.copy())
        if len(started) == 1:  # the first job finishes only after the edit
            assert edited.wait(TIMEOUT_MS / 1000)
        return evaluate(gt, pred, **kwargs)

    shown = []
    monkeypatch.setattr(widget_module, "evaluate", held_evaluate)
    monkeypatch.setattr(widget, "_show", lambda *args: shown.append(args[2].evaluation.map))
    widget.refresh()
    qtbot.waitUntil(lambda: len(started) == 1, timeout=TIMEOUT_MS)
    pred_layer.data = gt_layer.data.copy()  # edited while the job runs
    edited.set()
    wait_idle(widget)
    assert len(started) == 2  # rerun with the new data afterwards
    assert shown == [pytest.approx(1.0)]  # the first, stale result never shown


def test_shape_mismatch_notifies_and_clears(viewer, make_widget, wait_idle, problems):
    gt_layer, _ = _add_pair(viewer)
    small = viewer.add_labels(np.ones((40, 40), dtype=np.uint8), name="small")
    widget = make_widget()
    assert widget.evaluation is not None

    widget.set_layers(gt_layer, small)
    wait_idle(widget)
    assert widget.evaluation is None
    assert any("Shapes differ" in message for message in problems["error"])
    assert "—" in widget.map_label.text()
    assert widget.objects_table.model.rowCount() == 0
    assert widget.thresholds_table.model.rowCount() == 0


def test_same_layer_twice_warns(viewer, make_widget, wait_idle, problems):
    gt_layer, _ = _add_pair(viewer)
    widget = make_widget()
    widget.set_layers(gt_layer, gt_layer)
    wait_idle(widget)
    assert widget.evaluation is None
    assert any("both ground truth and prediction" in m for m in problems["warning"])


def test_evaluate_error_is_notified(viewer, make_widget, problems, monkeypatch):
    def broken(*_args, **_kwargs):
        raise TypeError("prediction must hold integers")

    monkeypatch.setattr(widget_module, "evaluate", broken)
    _add_pair(viewer)
    widget = make_widget()
    assert widget.evaluation is None
    assert problems["error"] == ["Evaluate: prediction must hold integers"]
    assert "integers" in widget.status_label.text()


def test_csv_export(viewer, make_widget, tmp_path, monkeypatch):
    _, pred_layer = _add_pair(viewer)
    widget = make_widget()
    targets = iter([tmp_path / "objects.csv", tmp_path / "thresholds"])
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(next(targets)), "")
    )
    widget.objects_table.save_button.click()
    widget.thresholds_table.save_button.click()

    objects = pd.read_csv(tmp_path / "objects.csv")
    thresholds = pd.read_csv(tmp_path / "thresholds.csv")
    assert len(objects) == len(widget.evaluation.per_object)
    assert {"kind", "label", "status", "best_iou", "centroid-0"} <= set(objects.columns)
    assert len(thresholds) == 10
    assert thresholds["accuracy"].mean() == pytest.approx(widget.evaluation.map)
    assert widget.objects_table.name == f"{pred_layer.name}_per_object"


def test_iou_view(viewer, make_widget):
    _, pred_layer = _add_pair(viewer)
    widget = make_widget()
    pred = pred_layer.data.copy()
    widget.iou_view_checkbox.value = True

    image = viewer.layers[f"{pred_layer.name} IoU"]
    errors = viewer.layers[f"{pred_layer.name} errors"]
    assert isinstance(image, Image) and isinstance(errors, Labels)
    for layer in (image, errors):
        np.testing.assert_allclose(layer.scale, pred_layer.scale)
        np.testing.assert_allclose(layer.translate, pred_layer.translate)
    features = widget.evaluation.pred_features.set_index("index")
    assert image.data[12, 12] == pytest.approx(features.loc[11, "iou"])
    assert np.isnan(image.data[0, 0])
    assert errors.data[28, 28] == 5  # the missed object
    assert errors.data[3, 58] > 0  # the false positive
    assert errors.data[12, 12] == 0  # matched: not marked
    assert errors not in [layer for _, layer in widget._labels_choices()]
    assert viewer.layers.selection.active is not image

    pred_layer.name = "renamed"
    assert image.name == "renamed IoU" and errors.name == "renamed errors"

    widget.iou_view_checkbox.value = False
    assert image not in viewer.layers and errors not in viewer.layers
    np.testing.assert_array_equal(pred_layer.data, pred)


def test_pickers_follow_layer_list(viewer, make_widget, wait_idle):
    only = viewer.add_labels(_discs(), name="annotations")
    widget = make_widget()
    assert widget.gt_layer is only and widget.pred_layer is None
    assert "Pick" in widget.status_label.text()

    pred_layer = viewer.add_labels(_pair()[1], name="unet prediction")
    wait_idle(widget)
    assert widget.pred_layer is pred_layer
    assert widget.evaluation is not None

    pred_layer.name = "renamed"
    assert "renamed" in [name for name, _ in widget._labels_choices()]
    assert widget.pred_combo.value is pred_layer

    viewer.layers.remove(pred_layer)
    wait_idle(widget)
    assert widget.pred_layer is not pred_layer


# -- the user's features and layers ---------------------------------------------------
def _wait_for_label(widget, qtbot, label: int, present: bool = True) -> None:
    """Wait until the shown evaluation has (or no longer has) prediction ``label``."""
    qtbot.waitUntil(
        lambda: not widget.busy and widget.evaluation is not None
        and (label in set(widget.evaluation.pred_features["index"])) == present,
        timeout=TIMEOUT_MS,
    )


def test_user_features_are_kept_and_recomputing_replaces_only_ours(viewer, qtbot, make_widget):
    gt_layer, pred_layer = _add_pair(viewer)
    gt_user = pd.DataFrame({
        "index": [5, 3, 1, 2, 4, 99],  # unsorted, and an id the evaluation does not know
        "cell_type": ["b", "a", "a", "b", "c", "gone"],
        "status": ["checked"] * 6,  # a column name the evaluation also uses
        "count": np.array([50, 30, 10, 20, 40, 990], dtype=np.int32),
    })
    gt_layer.features = gt_user
    # No "index" column: napari reads row i as label i.
    pred_types = {i: f"type {i}" for i in (11, 12, 13, 14, 20)}
    pred_layer.features = {"cell_type": np.array([pred_types.get(i) for i in range(21)], object),
                           "size": np.arange(21, dtype=np.int64) * 10}
    widget = make_widget()
    expected = widget.evaluation

    gt_features = gt_layer.features
    assert list(gt_features["index"]) == [1, 2, 3, 4, 5, 99]  # ordered by label id
    mine = gt_user.sort_values("index").reset_index(drop=True)
    for column in ("cell_type", "status", "count"):
        pd.testing.assert_series_equal(gt_features[column], mine[column])
    by_id = gt_features.set_index("index")
    assert by_id.loc[5, "eval_status"] == "missed"
    assert pd.isna(by_id.loc[99, "eval_status"])
    per_object = expected.per_object.set_index("label")
    assert by_id.loc[2, "eval_best_iou"] == pytest.approx(per_object.loc[2, "best_iou"])

    pred_by_id = pred_layer.features.set_index("index")
    assert {i: pred_by_id.loc[i, "cell_type"] for i in pred_types} == pred_types
    assert pred_by_id.loc[7, "size"] == 70 and pred_by_id["size"].dtype == np.int64
    assert pred_by_id.loc[20, "eval_status"] == "false positive"

    pred_layer.brush_size = 5
    pred_layer.paint((56, 8), 30)  # a new object, unknown to the user's table
    _wait_for_label(widget, qtbot, 30)
    pred_layer.fill((44, 44), 0)  # erase object 14: the user's row stays
    _wait_for_label(widget, qtbot, 14, present=False)

    features = pred_layer.features
    assert len(set(features.columns)) == len(features.columns)
    assert set(features.columns) == {"index", "cell_type", "size",
                                     "eval_iou", "eval_matched_gt", "eval_status"}
    assert list(features["index"]) == sorted(features["index"])
    pred_by_id = features.set_index("index")
    assert {i: pred_by_id.loc[i, "cell_type"] for i in pred_types} == pred_types
    assert [pred_by_id.loc[i, "size"] for i in range(21)] == list(range(0, 210, 10))
    assert pd.api.types.is_integer_dtype(features["size"])  # nullable: row 30 has no size
    assert pd.isna(pred_by_id.loc[30, "cell_type"]) and pd.isna(pred_by_id.loc[30, "size"])
    assert pred_by_id.loc[30, "eval_status"] == "false positive"
    assert pd.isna(pred_by_id.loc[14, "eval_status"])  # erased: no stale score
    for column in ("cell_type", "status", "count"):  # the ground truth's too
        pd.testing.assert_series_equal(gt_layer.features[column], mine[column])


def test_layer_used_in_both_roles_keeps_only_its_current_scores(viewer, make_widget, wait_idle):
    gt_layer, pred_layer = _add_pair(viewer)
    gt_layer.features = {"index": [1, 2, 3, 4, 5], "note": list("vwxyz")}
    widget = make_widget()
    assert "eval_best_pred" in gt_layer.features
    widget.set_layers(pred_layer, gt_layer)  # swap the roles
    wait_idle(widget)
    columns = set(gt_layer.features.columns)
    assert columns == {"index", "note", "eval_iou", "eval_matched_gt", "eval_status"}
    assert list(gt_layer.features["note"]) == list("vwxyz")


def test_huge_ids_stay_exact_in_tables_and_features(viewer, make_widget, tmp_path):
    top = int(np.iinfo(np.uint64).max)
    gt, pred = _pair()
    gt, pred = gt.astype(np.uint64), pred.astype(np.uint64)
    gt[gt == 1] = top
    pred[pred == 11] = 2**63
    gt_layer, pred_layer = _add_pair(viewer, gt, pred)
    widget = make_widget()
    widget.iou_view_checkbox.value = True

    frame = widget.objects_table.frame
    assert int(frame.loc[frame["label"] == top, "matched_pred"].iloc[0]) == 2**63
    assert frame["label"].min() >= 0
    assert {top, 2, 3, 4, 5} == {int(i) for i in gt_layer.features["index"]}
    pred_by_id = pred_layer.features.set_index("index")
    assert int(pred_by_id.loc[2**63, "eval_matched_gt"]) == top
    written = pd.read_csv(widget.objects_table.save(tmp_path / "objects.csv"), dtype=str)
    assert {str(top), str(2**63)} <= set(written["label"]) | set(written["matched_pred"])
    image = viewer.layers[f"{pred_layer.name} IoU"]
    assert image.data[12, 12] == pytest.approx(pred_by_id.loc[2**63, "eval_iou"])


def test_auto_pairing_ignores_layers_of_another_shape(viewer, make_widget, wait_idle, problems):
    gt_layer, pred_layer = _add_pair(viewer)
    widget = make_widget()
    viewer.add_labels(np.zeros((3, 64, 64), np.uint8), name="volume prediction")
    wait_idle(widget)
    assert (widget.gt_layer, widget.pred_layer) == (gt_layer, pred_layer)
    assert widget.evaluation is not None
    assert problems == {"error": [], "warning": []}


def test_auto_pairing_waits_for_a_layer_of_the_same_shape(viewer, make_widget, wait_idle, problems):
    annotations = viewer.add_labels(_discs(), name="annotations")
    widget = make_widget()
    viewer.add_labels(np.zeros((3, 64, 64), np.uint8), name="volume prediction")
    wait_idle(widget)
    # no "Shapes differ" pop-up for a pair nobody picked
    assert problems == {"error": [], "warning": []}
    assert widget.gt_layer is annotations and widget.pred_layer is None
    assert "Pick" in widget.status_label.text()

    pred_layer = viewer.add_labels(_pair()[1], name="result")
    wait_idle(widget)
    assert (widget.gt_layer, widget.pred_layer) == (annotations, pred_layer)
    assert widget.evaluation is not None
    assert problems == {"error": [], "warning": []}


def test_first_guess_pairs_layers_of_the_same_shape(viewer, make_widget, problems):
    gt_layer = viewer.add_labels(_discs(), name="ground truth")
    pred_layer = viewer.add_labels(_pair()[1], name="prediction")
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="small prediction")  # topmost
    widget = make_widget()
    assert (widget.gt_layer, widget.pred_layer) == (gt_layer, pred_layer)
    assert widget.evaluation is not None
    assert problems == {"error": [], "warning": []}
