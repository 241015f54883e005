"""The "Check labels" dock widget, and the labels warnings of Weight map and Train U-Net.

Labels with known, injected errors (a hole, a touching pair, a split id, a stray
fragment, an id reused in another plane) give the rows, counts and highlighted pixels
to expect; fixes are compared with the core's fix of the same rows and must undo in one
step; clean labels must report nothing.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_unet_weights._widgets.check_labels.widget import CheckLabelsWidget
from napari_unet_weights._widgets.common.layer_roles import CHECK_LABELS_KEY, is_plugin_output
from napari_unet_weights._widgets.common.snapshots import Snapshot
from napari_unet_weights._widgets.train.widget import TrainWidget
from napari_unet_weights._widgets.weight_map.widget import WeightMapWidget
from napari_unet_weights.labels.checks import PROBLEMS
from napari_unet_weights.labels.fixes import fix_labels, fix_problems
from reference import discs

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000
#: The value of each problem in the highlight layer.
CODE = {name: 1 + PROBLEMS.index(name) for name in PROBLEMS}
HOLE = (10, 10)
SMALL = (slice(60, 62), slice(90, 92))  # 4 px, centre (60.5, 90.5)
SPLIT_PIECE = (slice(40, 50), slice(30, 36))  # the smaller piece of id 3


def _bad_labels() -> np.ndarray:
    """One error of each 2-D kind, at known places."""
    labels = np.zeros((64, 96), dtype=np.uint16)
    labels[5:20, 5:20] = 1
    labels[HOLE] = 0  # a hole in 1
    labels[5:20, 20:30] = 2  # 2 touches 1 along columns 19 | 20
    labels[40:50, 5:15] = 3
    labels[SPLIT_PIECE] = 3  # 3 painted in two places
    labels[SMALL] = 4  # a stray fragment
    labels[30:38, 60:70] = 5  # a clean object
    return labels


EXPECTED_ROWS = {(1, "hole", 0), (1, "touching", 2), (3, "disconnected", 0), (4, "small", 0)}


def _rows(widget) -> set[tuple[int, str, int]]:
    frame = widget.table.frame
    return {(int(a), str(p), int(o)) for a, p, o in
            zip(frame["label"], frame["problem"], frame["other"])}


def _row(widget, problem: str) -> int:
    return int(np.flatnonzero(widget.table.frame["problem"] == problem)[0])


def _highlight(viewer, layer):
    return viewer.layers[f"{layer.name} problems"]


@pytest.fixture
def make_widget(dock_widget):
    """``make_widget()``: a docked CheckLabelsWidget, once its first check is done."""
    return partial(dock_widget, CheckLabelsWidget, "Check labels")


@pytest.fixture
def bad_scene(viewer, make_widget):
    labels = _bad_labels()
    layer = viewer.add_labels(labels.copy(), name="cells")
    return labels, layer, make_widget()


def test_injected_errors_give_rows_counts_and_highlight(viewer, bad_scene):
    labels, layer, widget = bad_scene

    assert _rows(widget) == EXPECTED_ROWS
    counts = {name: label.text() for name, label in widget.count_labels.items()}
    assert counts == {"disconnected": "1", "small": "1", "hole": "1", "touching": "1",
                      "reused": "—"}  # reused: only per 2D plane, of a stack
    assert widget.summary_label.text().startswith("4 problems · 5 objects")
    highlight = _highlight(viewer, layer)
    assert is_plugin_output(highlight) and highlight.metadata[CHECK_LABELS_KEY] == id(layer)
    assert highlight not in [choice for _, choice in widget._labels_choices()]
    expected = np.zeros(labels.shape, dtype=np.uint8)
    expected[SPLIT_PIECE] = CODE["disconnected"]
    expected[SMALL] = CODE["small"]
    expected[HOLE] = CODE["hole"]
    expected[5:20, 19:21] = CODE["touching"]  # the contact pixels of both objects
    np.testing.assert_array_equal(highlight.data, expected)
    assert viewer.layers.selection.active is layer  # painting stays on the labels
    np.testing.assert_array_equal(layer.data, labels)  # checking changes nothing


def test_clean_labels_show_no_problems(viewer, make_widget):
    labels = discs((48, 48), ((12, 12), (12, 30), (34, 20)), 7)
    layer = viewer.add_labels(labels.copy(), name="clean")
    widget = make_widget()

    assert widget.report.clean
    assert "no problems" in widget.summary_label.text().lower()
    assert widget.table.frame.empty
    assert f"{layer.name} problems" not in viewer.layers  # nothing to highlight
    assert not widget.fix_all_button.isEnabled()
    assert not any(button.isEnabled() for button in widget.fix_buttons.values())
    np.testing.assert_array_equal(layer.data, labels)


def test_clicking_a_row_selects_the_label_and_centres_on_it(viewer, qtbot, bad_scene):
    _labels, layer, widget = bad_scene
    zoom = viewer.scene.camera.zoom
    view = widget.table.view
    proxy_row = widget.table.proxy.mapFromSource(widget.table.model.index(_row(widget, "small"), 0))
    rect = view.visualRect(proxy_row)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    assert layer.selected_label == 4
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (60.5, 90.5), atol=1e-6)
    assert viewer.scene.camera.zoom > zoom


def test_reused_ids_of_a_stack_per_plane(viewer, make_widget, wait_idle):
    stack = np.zeros((4, 32, 32), dtype=np.uint8)
    stack[0, 4:12, 4:12] = 1
    stack[2, 20:28, 18:26] = 1  # the same id again, two planes on
    stack[2, 4:12, 4:12] = 2
    layer = viewer.add_labels(stack.copy(), name="stack")
    widget = make_widget()
    # Checked as one volume, id 1 is one object in two pieces.
    assert _rows(widget) == {(1, "disconnected", 0)}

    widget.per_plane_checkbox.value = True
    wait_idle(widget)
    assert _rows(widget) == {(1, "reused", 0)}
    assert widget.count_labels["reused"].text() == "1"
    assert list(widget.table.frame["plane"]) == ["2"]
    highlight = _highlight(viewer, layer)
    assert (highlight.data == CODE["reused"]).sum() == 64
    assert (highlight.data[2, 20:28, 18:26] == CODE["reused"]).all()

    widget.table.select_row(0)  # the slider moves to plane 2
    assert viewer.dims.point[0] == 2
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (23.5, 21.5), atol=1e-6)

    fix = widget.fix_problem("reused")
    np.testing.assert_array_equal(
        layer.data, fix_problems(stack, widget.report.problems, spatial_dims=2).labels)
    assert fix.changed == 64 and set(np.unique(layer.data[2])) == {0, 2, 3}
    layer.undo()
    np.testing.assert_array_equal(layer.data, stack)


def test_fix_all_of_a_kind_is_the_core_fix_and_one_undo(viewer, qtbot, bad_scene):
    labels, layer, widget = bad_scene
    for problem in ("disconnected", "small", "hole", "touching"):
        rows = widget.report.problems
        expected = fix_problems(labels, rows[rows["problem"] == problem]).labels
        assert not np.array_equal(expected, labels)

        qtbot.mouseClick(widget.fix_buttons[problem], Qt.MouseButton.LeftButton)

        np.testing.assert_array_equal(layer.data, expected)
        assert len(layer._undo_history) == 1  # one edit
        others = {row for row in EXPECTED_ROWS if row[1] != problem}
        qtbot.waitUntil(lambda others=others: _rows(widget) == others, timeout=TIMEOUT_MS)
        layer.undo()
        np.testing.assert_array_equal(layer.data, labels)
        assert layer.data.dtype == labels.dtype and not layer._undo_history
        qtbot.waitUntil(lambda: _rows(widget) == EXPECTED_ROWS, timeout=TIMEOUT_MS)


def test_fix_selected_row_and_fix_all(viewer, qtbot, bad_scene, wait_idle):
    labels, layer, widget = bad_scene
    assert not widget.fix_selected_button.isEnabled()
    row = _row(widget, "touching")
    widget.table.select_row(row)
    assert widget.fix_selected_button.isEnabled()
    expected = fix_problems(labels, widget.report.problems.iloc[[row]]).labels

    qtbot.mouseClick(widget.fix_selected_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(layer.data, expected)
    assert not (layer.data[5:20, 19] == 1).any()  # the gap: the smaller id gives way
    qtbot.waitUntil(lambda: (1, "touching", 2) not in _rows(widget), timeout=TIMEOUT_MS)
    assert widget.status_label.text().startswith(
        "Fixed label 1 (touching): 15 pixels changed (Ctrl-Z")
    layer.undo()
    np.testing.assert_array_equal(layer.data, labels)
    wait_idle(widget)

    qtbot.mouseClick(widget.fix_all_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(layer.data, fix_labels(labels).labels)
    assert layer.data[HOLE] == 1 and not layer.data[SMALL].any()
    qtbot.waitUntil(lambda: "no problems" in widget.summary_label.text().lower(),
                    timeout=TIMEOUT_MS)
    layer.undo()
    np.testing.assert_array_equal(layer.data, labels)


def test_painting_rechecks_and_the_highlight_follows(viewer, qtbot, bad_scene):
    _labels, layer, widget = bad_scene
    highlight = _highlight(viewer, layer)
    widget.table.select_row(_row(widget, "touching"))
    viewer.scene.camera.center = (50.0, 70.0)  # the annotator looks elsewhere
    camera = (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom)

    layer.brush_size = 1
    layer.paint((2, 60), 9)  # a new one-pixel fragment
    layer.paint(HOLE, 1)  # the hole painted over
    assert widget._edit_timer.isActive()  # debounced, not checked at once
    qtbot.waitUntil(lambda: (9, "small", 0) in _rows(widget), timeout=TIMEOUT_MS)
    assert _rows(widget) == (EXPECTED_ROWS - {(1, "hole", 0)}) | {(9, "small", 0)}
    assert widget.count_labels["small"].text() == "2"
    assert highlight is _highlight(viewer, layer)
    assert highlight.data[2, 60] == CODE["small"] and highlight.data[HOLE] == 0
    # The problem selected before is selected again, and the camera stays where it was.
    assert widget.table.selected_rows() == [_row(widget, "touching")]
    assert (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom) == camera

    layer.undo()  # the hole is back
    qtbot.waitUntil(lambda: (1, "hole", 0) in _rows(widget), timeout=TIMEOUT_MS)
    assert highlight.data[HOLE] == CODE["hole"]


def test_unchanged_recheck_does_not_repaint_the_highlight(viewer, bad_scene, wait_idle):
    _labels, layer, widget = bad_scene
    highlight = _highlight(viewer, layer)
    report, repaints = widget.report, []
    highlight.events.data.connect(repaints.append)
    layer.refresh()  # a refresh (a dims step) emits set_data: labels unchanged
    widget.refresh()
    wait_idle(widget)
    assert widget.report is report and repaints == []
    viewer.layers.remove(highlight)  # deleted by the user: an unchanged check brings it back
    widget.refresh()
    wait_idle(widget)
    assert _highlight(viewer, layer).data[HOLE] == CODE["hole"]


def test_bad_input_is_notified_and_nothing_is_written(viewer, make_widget, wait_idle,
                                                      notifications):
    negative = np.zeros((16, 16), dtype=np.int32)
    negative[2:5, 2:5] = -3
    bad = viewer.add_labels(negative.copy(), name="negative")
    widget = make_widget()
    assert any(m.startswith("Check labels: 'negative': ") and "negative" in m[26:]
               for m in notifications["error"])
    assert widget.report is None and widget.table.frame.empty

    full = np.zeros((16, 16), dtype=np.uint8)
    full[1:4, 1:4] = 255
    full[10:14, 10:14] = 255  # a split id, but no id left in uint8 for the second piece
    layer = viewer.add_labels(full.copy(), name="full")
    widget.set_layer(layer)
    wait_idle(widget)
    assert widget.fix_problem("disconnected") is None
    assert any("uint8" in message for message in notifications["error"])
    np.testing.assert_array_equal(layer.data, full)
    np.testing.assert_array_equal(bad.data, negative)
    assert len(layer._undo_history) == 0


def test_fix_all_of_the_largest_int64_id_says_to_renumber(viewer, make_widget, wait_idle,
                                                          notifications):
    labels = np.zeros((16, 16), dtype=np.int64)
    labels[1:4, 1:4] = np.iinfo(np.int64).max
    labels[8:14, 8:14] = np.iinfo(np.int64).max  # split, and no larger id to give a piece
    layer = viewer.add_labels(labels.copy(), name="largest")
    widget = make_widget()
    widget.set_layer(layer)
    wait_idle(widget)
    assert widget.fix_all() is None
    message = notifications["error"][-1]
    assert "Could not fix 'largest'" in message and "renumber the labels first" in message
    assert "float64" not in message
    np.testing.assert_array_equal(layer.data, labels)
    assert layer.data.dtype == np.int64 and len(layer._undo_history) == 0


def test_large_lazy_labels_are_refused_without_reading_them():
    import dask.array as da
    from napari.layers import Labels

    from napari_unet_weights._widgets.common.label_problems import layer_labels

    calls = []

    def block(x):
        calls.append(1)
        return x

    lazy = da.zeros((9000, 9000), dtype=np.uint16, chunks=3000).map_blocks(block)
    layer = Labels(lazy)
    read = len(calls)  # napari's own slicing reads some blocks
    with pytest.raises(ValueError, match="too large"):
        layer_labels(layer)
    assert len(calls) == read
    small = da.ones((8, 8), dtype=np.uint8, chunks=4)
    np.testing.assert_array_equal(layer_labels(Labels(small)), np.ones((8, 8)))


# -- the warnings of Weight map and Train U-Net ------------------------------------------
def _wait_warning(qtbot, warning):
    qtbot.waitUntil(lambda: not warning.busy, timeout=TIMEOUT_MS)


def test_weight_map_warns_about_bad_labels_and_links_to_check_labels(viewer, qtbot,
                                                                      dock_widget):
    clean = viewer.add_labels(discs((48, 48), ((12, 12), (34, 20)), 7), name="clean")
    bad = viewer.add_labels(_bad_labels(), name="cells")
    weight_map = dock_widget(WeightMapWidget, "Weight map")
    warning = weight_map.labels_warning
    assert weight_map.layer is bad
    _wait_warning(qtbot, warning)
    assert not warning.isHidden()
    assert "4 label problems" in warning.text()
    assert warning.toolTip() == "cells: 1 disconnected, 1 small, 1 hole, 1 touching"

    weight_map.layer_combo.value = clean
    _wait_warning(qtbot, warning)
    assert warning.isHidden() and warning.findings == []

    weight_map.layer_combo.value = bad
    _wait_warning(qtbot, warning)
    assert not warning.isHidden()
    warning.linkActivated.emit("check")
    docked = [w for w in viewer.window.dock_widgets.values() if isinstance(w, CheckLabelsWidget)]
    assert len(docked) == 1 and docked[0].layer is bad

    bad.data = discs((64, 96), ((20, 20),), 6)  # the labels were cleaned up
    qtbot.waitUntil(warning.isHidden, timeout=TIMEOUT_MS)


def test_train_warns_about_the_labels_of_its_pairs_and_training_set(viewer, qtbot):
    image = viewer.add_image(np.random.default_rng(0).random((64, 96)), name="image")
    labels = viewer.add_labels(_bad_labels(), name="cells")
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train U-Net")
    warning = train.labels_warning
    assert train.pairs == [(image, labels)]
    _wait_warning(qtbot, warning)
    assert not warning.isHidden() and warning.toolTip().startswith("cells: 1 disconnected")

    labels.data = discs((64, 96), ((20, 20), (40, 60)), 6)  # fixed in the viewer
    qtbot.waitUntil(warning.isHidden, timeout=TIMEOUT_MS)

    train.add_snapshot(Snapshot("crop", np.zeros((64, 96)), _bad_labels()))  # shows its tab
    _wait_warning(qtbot, warning)
    assert not warning.isHidden() and warning.toolTip().startswith("crop: 1 disconnected")
    assert "copies" in warning.toolTip()

    train.data_source.setCurrentIndex(0)  # back to the (now clean) layer pair
    _wait_warning(qtbot, warning)
    assert warning.isHidden()
    labels.data = _bad_labels()
    qtbot.waitUntil(lambda: not warning.isHidden(), timeout=TIMEOUT_MS)
    check = warning.open_check_labels()
    assert isinstance(check, CheckLabelsWidget) and check.layer is labels
