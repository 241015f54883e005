"""The "Weight map" dock widget: layer output, live sliders, painting, bad input.

Expected maps come from ``reference.brute_force_weight_map`` (a full-image distance
transform per object), not from the core the widget calls.
"""

from __future__ import annotations

import threading
from functools import partial

import numpy as np
import pytest
from napari.layers import Image

from napari_unet_weights._widgets.weight_map import lazy as lazy_module
from napari_unet_weights._widgets.weight_map import widget as widget_module
from napari_unet_weights._widgets.weight_map.widget import WeightMapWidget
from reference import brute_force_weight_map

pytestmark = pytest.mark.gui

#: The core is within 1e-4 of the brute force; the tests allow 1e-3, as tests/test_weights.
ATOL = 1e-3
TIMEOUT_MS = 10_000


def weight_map(labels, w0=10.0, sigma=5.0, *, spatial_dims=None, **kwargs):
    """The expected map: brute force, each 2-D plane on its own with ``spatial_dims=2``."""
    labels = np.asarray(labels)
    if spatial_dims is None or spatial_dims == labels.ndim:
        return brute_force_weight_map(labels, w0, sigma, **kwargs)
    planes = labels.reshape(-1, *labels.shape[-spatial_dims:])
    maps = [brute_force_weight_map(plane, w0, sigma, **kwargs) for plane in planes]
    return np.stack(maps).reshape(labels.shape)


def _discs(shape=(64, 64), centres=((20, 20), (20, 34), (44, 28), (46, 48)), radius=7):
    """Integer labels with a few discs, two of them nearly touching."""
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, dtype=np.uint16)
    for value, (cy, cx) in enumerate(centres, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = value
    return labels


def _output(viewer, labels_layer):
    return viewer.layers[f"{labels_layer.name} weight map"]


def _image_layers(viewer):
    return [layer for layer in viewer.layers if isinstance(layer, Image)]


@pytest.fixture
def make_widget(dock_widget):
    """``make_widget()``: a docked WeightMapWidget, once its first computation is done."""
    return partial(dock_widget, WeightMapWidget, "Weight map")


@pytest.fixture
def discs_scene(viewer, make_widget):
    """The labels of :func:`_discs`, their layer, a docked widget and its weight map layer."""
    labels = _discs()
    layer = viewer.add_labels(labels.copy())
    widget = make_widget()
    return labels, layer, widget, _output(viewer, layer)


def test_creates_weight_map_layer(viewer, make_widget):
    labels = _discs()
    layer = viewer.add_labels(labels.copy(), name="cells", scale=(0.5, 0.5), translate=(3, 4))
    widget = make_widget()

    output = _output(viewer, layer)
    assert len(_image_layers(viewer)) == 1
    np.testing.assert_allclose(output.scale, layer.scale)
    np.testing.assert_allclose(output.translate, layer.translate)
    expected = weight_map(labels, w0=10, sigma=5, spacing=(0.5, 0.5))
    np.testing.assert_allclose(output.data, expected, atol=ATOL)
    assert tuple(output.contrast_limits) == pytest.approx((0, 11))
    assert "4 objects" in widget.status_label.text()
    assert viewer.layers.selection.active is layer  # painting stays on the labels
    np.testing.assert_array_equal(layer.data, labels)


def test_sliders_update_layer(viewer, discs_scene, wait_idle):
    labels, layer, widget, output = discs_scene

    # Covered by the cache: rendered at once, on the GUI thread.
    widget.w0_slider.value = 6
    np.testing.assert_allclose(output.data, weight_map(labels, w0=6, sigma=5), atol=ATOL)
    assert tuple(output.contrast_limits) == pytest.approx((0, 7))
    widget.sigma_slider.value = 3.5
    np.testing.assert_allclose(output.data, weight_map(labels, w0=6, sigma=3.5), atol=ATOL)

    # A larger radius is computed in the background.
    widget.w0_slider.value = 40
    widget.sigma_slider.value = 12
    wait_idle(widget)
    np.testing.assert_allclose(output.data, weight_map(labels, w0=40, sigma=12), atol=ATOL)

    widget.border_combo.value = "all"
    widget.class_weights_combo.value = "inverse"
    wait_idle(widget)
    expected = weight_map(labels, w0=40, sigma=12, border="all", class_weights="inverse")
    np.testing.assert_allclose(output.data, expected, atol=ATOL)
    assert output is _output(viewer, layer)
    assert len(_image_layers(viewer)) == 1
    np.testing.assert_array_equal(layer.data, labels)


def test_painting_updates_after_debounce(qtbot, discs_scene):
    labels, layer, widget, output = discs_scene

    layer.brush_size = 5
    layer.paint((20, 27), 7)  # a new object in the gap between discs 1 and 2
    layer.paint((46, 38), 4)  # grow disc 4 towards disc 3
    edited = np.array(layer.data)
    assert not np.array_equal(edited, labels)
    expected = weight_map(edited, w0=10, sigma=5)
    qtbot.waitUntil(
        lambda: not widget.busy and np.allclose(output.data, expected, atol=ATOL),
        timeout=TIMEOUT_MS,
    )
    np.testing.assert_array_equal(layer.data, edited)  # the widget never writes labels

    layer.undo()  # napari 0.9 fires only set_data for undo / redo
    qtbot.waitUntil(
        lambda: not widget.busy and np.allclose(output.data, weight_map(layer.data), atol=ATOL),
        timeout=TIMEOUT_MS,
    )
    assert not np.array_equal(layer.data, edited)

    layer.data = _discs(centres=((30, 30), (30, 46)))  # replacing the data also updates
    qtbot.waitUntil(
        lambda: (
            not widget.busy
            and np.allclose(output.data, weight_map(layer.data, w0=10, sigma=5), atol=ATOL)
        ),
        timeout=TIMEOUT_MS,
    )


def test_deleted_output_is_recreated(viewer, discs_scene, wait_idle):
    labels, layer, widget, output = discs_scene
    viewer.layers.remove(output)

    widget.w0_slider.value = 5
    wait_idle(widget)
    np.testing.assert_allclose(
        _output(viewer, layer).data, weight_map(labels, w0=5, sigma=5), atol=ATOL
    )
    assert len(_image_layers(viewer)) == 1


def test_layer_picker_follows_layers(viewer, make_widget, wait_idle):
    widget = make_widget()
    assert widget.layer is None
    assert "Labels layer" in widget.status_label.text()

    first = viewer.add_labels(_discs(), name="first")
    wait_idle(widget)
    assert widget.layer is first
    viewer.add_image(np.zeros((8, 8)), name="not labels")
    second = viewer.add_labels(_discs(centres=((32, 32),)), name="second")
    names = [choice for choice in widget.layer_combo.choices]
    assert names == [first, second]

    second.name = "renamed"
    combo = widget.layer_combo.native
    assert [combo.itemText(i) for i in range(combo.count())] == ["first", "renamed"]

    widget.layer_combo.value = second
    wait_idle(widget)
    assert "renamed weight map" in viewer.layers

    viewer.layers.remove(second)
    assert widget.layer is first
    viewer.layers.remove(first)
    assert widget.layer is None
    wait_idle(widget)
    first.paint((5, 5), 3)  # disconnected: no update is scheduled
    assert not widget.busy


def test_per_plane_3d(viewer, make_widget, wait_idle):
    labels = np.stack([_discs(), _discs(centres=((30, 30), (30, 44))), _discs()])
    layer = viewer.add_labels(labels.copy())
    widget = make_widget()
    output = _output(viewer, layer)
    assert widget.per_plane_checkbox.enabled
    np.testing.assert_allclose(output.data, weight_map(labels), atol=ATOL)

    widget.per_plane_checkbox.value = True
    wait_idle(widget)
    np.testing.assert_allclose(output.data, weight_map(labels, spatial_dims=2), atol=ATOL)

    shown = output.data
    viewer.dims.set_current_step(0, 2)  # a refresh, not an edit: nothing is re-rendered
    assert widget.busy  # the refresh fired set_data: the labels are compared with the cache
    wait_idle(widget)
    assert output.data is shown


def test_2d_disables_per_plane(viewer, make_widget):
    viewer.add_labels(_discs())
    widget = make_widget()
    assert not widget.per_plane_checkbox.enabled


def test_negative_labels_notify(viewer, make_widget, wait_idle, notifications):
    labels = _discs().astype(np.int16)
    labels[0, 0] = -1
    viewer.add_labels(labels)
    widget = make_widget()
    assert len(notifications["error"]) == 1
    assert notifications["error"][0].startswith("Weight map: 'labels': ")
    assert "negative" in notifications["error"][0]
    assert "weight map" not in " ".join(layer.name for layer in viewer.layers)
    widget.w0_slider.value = 3  # the same bad labels: no second pop-up
    wait_idle(widget)
    assert len(notifications["error"]) == 1


def test_boolean_mask_warns(viewer, make_widget, notifications):
    viewer.add_labels(_discs() > 0)  # napari stores a bool mask as uint8: one id
    make_widget()
    assert any("single object id" in text for text in notifications["warning"])
    assert not notifications["error"]


def test_no_labels_layer_warns(make_widget, notifications):
    widget = make_widget()
    widget.w0_slider.value = 3
    widget.w0_slider.value = 4
    assert len(notifications["warning"]) == 1


def test_invalid_dtype_is_reported(viewer, make_widget, notifications, monkeypatch):
    # napari 0.9 refuses float Labels layers, so hand the core a float snapshot.
    real_compute = widget_module._compute

    def float_compute(settings, cache, labels, *rest):
        return real_compute(settings, cache, None if labels is None else labels * 1.0, *rest)

    monkeypatch.setattr(widget_module, "_compute", float_compute)
    viewer.add_labels(_discs())
    make_widget()
    assert len(notifications["error"]) == 1
    assert "must hold integers" in notifications["error"][0]


def test_cancel_keeps_previous_result(viewer, qtbot, discs_scene, monkeypatch):
    _, layer, widget, output = discs_scene
    before = np.array(output.data)
    real_compute = widget_module._compute
    cancelled = threading.Event()

    def held_compute(*args):  # finishes only after Cancel was clicked
        assert cancelled.wait(TIMEOUT_MS / 1000)
        return real_compute(*args)

    monkeypatch.setattr(widget_module, "_compute", held_compute)
    widget.border_combo.value = "all"
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=TIMEOUT_MS)
    widget.cancel_button.click()
    cancelled.set()
    assert not widget.busy
    assert "Cancelled" in widget.status_label.text()
    qtbot.waitUntil(lambda: not widget._runner.busy, timeout=TIMEOUT_MS)
    np.testing.assert_array_equal(_output(viewer, layer).data, before)
    assert widget.cancel_button.isHidden()


def test_close_disconnects(viewer, discs_scene):
    _, layer, widget, output = discs_scene
    before = np.array(output.data)
    widget.close()
    layer.paint((20, 27), 9)  # connected, this would start the debounce timer at once
    viewer.add_labels(_discs(), name="later")  # connected, this would pick the new layer
    assert not widget.busy
    assert widget.layer is None
    np.testing.assert_array_equal(_output(viewer, layer).data, before)
    assert "later weight map" not in viewer.layers


def test_output_follows_a_renamed_labels_layer(viewer, discs_scene):
    _, layer, _widget, output = discs_scene
    layer.name = "nuclei"
    assert output.name == "nuclei weight map"  # at once, without a recomputation
    assert "nuclei weight map" in viewer.layers
    layer.name = "nuclei v2"
    assert output.name == "nuclei v2 weight map"
    assert len(_image_layers(viewer)) == 1


def test_output_renamed_by_the_user_keeps_its_name(viewer, discs_scene, wait_idle):
    labels, layer, widget, output = discs_scene
    output.name = "my weights"
    layer.name = "nuclei"
    widget.w0_slider.value = 4  # a render into the same layer
    wait_idle(widget)
    assert output.name == "my weights"
    assert output in viewer.layers and len(_image_layers(viewer)) == 1
    np.testing.assert_allclose(output.data, weight_map(labels, w0=4, sigma=5), atol=ATOL)


# -- a run widget: progress and cancel as in the other widgets ---------------------------
def _dask_discs():
    """The discs, 256² in 64 dask chunks."""
    import dask.array as da

    labels = _discs((256, 256), centres=((40, 40), (40, 60), (200, 180)), radius=12)
    return labels, da.from_array(labels, chunks=32)


def test_a_large_layers_count_shows_its_progress(viewer, qtbot, make_widget):
    labels, lazy = _dask_discs()
    layer = viewer.add_labels(lazy, name="cells")
    widget = make_widget()
    assert "Lazy map" in widget.status_label.text()
    bar = widget.progress_bar
    qtbot.waitUntil(lambda: bar.maximum() == 64 and bar.value() == 64,
                    timeout=TIMEOUT_MS)  # the count's 64 chunks, all done
    output = _output(viewer, layer)
    np.testing.assert_allclose(output.data[:128, :128].compute(),
                               weight_map(labels)[:128, :128], atol=ATOL)


def test_cancel_stops_a_large_layers_count(viewer, qtbot, monkeypatch):
    counted, gate = [], threading.Event()

    def held(block):  # a chunk of the count waits until Cancel was clicked
        counted.append(1)
        assert gate.wait(TIMEOUT_MS / 1000)
        return block

    real = lazy_module.foreground_counts
    monkeypatch.setattr(lazy_module, "foreground_counts", lambda labels, *rest: real(
        labels.map_blocks(held, dtype=labels.dtype), *rest))
    viewer.add_labels(_dask_discs()[1], name="cells")
    widget = WeightMapWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Weight map")
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=TIMEOUT_MS)
    widget.cancel_button.click()
    gate.set()
    assert "Cancelled" in widget.status_label.text() and not widget.busy
    qtbot.waitUntil(lambda: not widget._runner.busy, timeout=TIMEOUT_MS)
    assert 0 < len(counted) < 64  # the count stopped between chunks
    assert "cells weight map" not in viewer.layers
