"""Large layers in the widgets: lazy weight maps of dask / multiscale labels, Segment of a
large image into a zarr store, progress, cancel, and no whole-array copy on either path.

The "large" layers here are small (dask-backed, multiscale or read by slices), so that the
expected results can be computed in memory.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_unet_weights._widgets.common import lazy_layers as _lazy_layers
from napari_unet_weights._widgets.common.lazy_layers import is_large
from napari_unet_weights._widgets.segment import widget as segment_module
from napari_unet_weights._widgets.segment.big import STORE_KEY
from napari_unet_weights._widgets.segment.widget import SegmentWidget
from napari_unet_weights._widgets.weight_map import lazy as lazy_module
from napari_unet_weights._widgets.weight_map.widget import WeightMapWidget
from napari_unet_weights.io import big as big_io
from napari_unet_weights.io.big import open_pyramid
from napari_unet_weights.unet.model_file import BUNDLED_MODEL, METADATA_ENTRY, model_metadata
from napari_unet_weights.weights.exact import weight_map
from reference import SCALE, discs, noisy_image

pytestmark = pytest.mark.gui

TIMEOUT_MS = 30_000
ATOL = 1e-3  # the core is within 1e-4 of the exact map
CENTRES = ((20, 20), (20, 36), (60, 30), (64, 46), (100, 100), (30, 110), (110, 20))


class Unwholesome:
    """Array-like data napari reads by slices, which refuses to be copied whole.

    ``np.asarray`` of it raises, and so does a read of more than ``max_read`` pixels at
    once (napari itself reads one plane at a time).
    """

    def __init__(self, data: np.ndarray, max_read: int) -> None:
        self.data, self.max_read = data, max_read
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.largest_read = 0

    def __getitem__(self, key):
        block = np.asarray(self.data[key])
        if block.size > self.max_read:
            raise AssertionError(f"a read of {block.shape} (more than {self.max_read} px)")
        self.largest_read = max(self.largest_read, block.size)
        return block

    def __array__(self, *args, **kwargs):
        raise AssertionError("a whole-array copy")


def _labels(shape=(128, 128)) -> np.ndarray:
    return discs(shape, CENTRES, radius=7)


def _wait(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)


def _weight_widget(viewer, qtbot) -> WeightMapWidget:
    widget = WeightMapWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Weight map")
    _wait(qtbot, widget)
    return widget


def _output(viewer, layer):
    return viewer.layers[f"{layer.name} weight map"]


# -- "large" -------------------------------------------------------------------------------
def test_large_layers_are_dask_zarr_multiscale_or_many_pixels(viewer, monkeypatch, tmp_path):
    labels = _labels()
    assert not is_large(viewer.add_labels(labels))
    assert is_large(viewer.add_labels(da.from_array(labels, chunks=64)))
    store = zarr.create_array(str(tmp_path / "l.zarr"), shape=labels.shape, dtype=labels.dtype)
    assert is_large(viewer.add_labels(store))
    assert is_large(viewer.add_labels([labels, labels[::2, ::2]], multiscale=True))
    monkeypatch.setattr(big_io, "LARGE_PIXELS", labels.size - 1)
    assert is_large(viewer.add_labels(labels))


# -- the weight map ------------------------------------------------------------------------
def test_dask_labels_get_a_lazy_map_equal_to_the_in_memory_one(viewer, qtbot, monkeypatch):
    counted = []
    counts = lazy_module.foreground_counts
    monkeypatch.setattr(lazy_module, "foreground_counts",
                        lambda *args: counted.append(1) or counts(*args))
    labels = _labels()
    layer = viewer.add_labels(da.from_array(labels, chunks=48), name="cells", scale=SCALE)
    widget = _weight_widget(viewer, qtbot)
    output = _output(viewer, layer)
    assert isinstance(output.data, da.Array) and not output.multiscale
    assert widget._cache is None and "Lazy map" in widget.status_label.text()
    assert "no painting here" in widget.status_label.text()
    crop = (slice(10, 90), slice(30, 128))
    expected = weight_map(labels, 10, 5, spacing=SCALE)
    np.testing.assert_allclose(output.data[crop].compute(), expected[crop], atol=ATOL)
    assert tuple(output.contrast_limits) == pytest.approx((0, 11))
    np.testing.assert_allclose(output.scale, SCALE)

    widget.w0_slider.value = 20  # rebuilt lazily, from the counts taken once
    _wait(qtbot, widget)
    assert isinstance(output.data, da.Array) and _output(viewer, layer) is output
    expected = weight_map(labels, 20, 5, spacing=SCALE)
    np.testing.assert_allclose(output.data[crop].compute(), expected[crop], atol=ATOL)
    assert tuple(output.contrast_limits) == pytest.approx((0, 21))
    assert len(counted) == 1

    widget.class_weights_combo.value = "none"
    _wait(qtbot, widget)
    expected = weight_map(labels, 20, 5, spacing=SCALE, class_weights="none")
    np.testing.assert_allclose(output.data[crop].compute(), expected[crop], atol=ATOL)


def test_a_dask_layer_smaller_than_the_border_radius_gets_its_map(viewer, qtbot,
                                                                  notifications):
    labels = discs((20, 24), [(6, 6), (12, 17)], radius=4)  # σ = 5 reaches 25 px: past it
    layer = viewer.add_labels(da.from_array(labels, chunks=10), name="small")
    _weight_widget(viewer, qtbot)
    output = _output(viewer, layer)
    np.testing.assert_allclose(np.asarray(output.data), weight_map(labels, 10, 5), atol=ATOL)
    assert not notifications["error"]


def test_multiscale_labels_get_a_map_per_level(viewer, qtbot):
    """Level 0 is the exact map; level 1 is the map of level 1's labels, σ in world units."""
    labels = _labels((160, 128))
    coarse = labels[::2, ::2]
    layer = viewer.add_labels([da.from_array(labels, chunks=64), coarse], multiscale=True)
    _weight_widget(viewer, qtbot)
    output = _output(viewer, layer)
    assert output.multiscale and len(output.data) == 2
    assert all(isinstance(level, da.Array) for level in output.data)
    np.testing.assert_allclose(output.data[0][40:120].compute(),
                               weight_map(labels, 10, 5)[40:120], atol=ATOL)
    pair = weight_map(labels, 0, 5)[0, 0]  # the background's class weight, from level 0
    np.testing.assert_allclose(
        output.data[1].compute(),
        weight_map(coarse, 10, 5, spacing=(2, 2), class_weights=(pair, 1 - pair)), atol=ATOL)


def test_a_large_single_scale_layer_gets_a_pyramid(viewer, qtbot, monkeypatch):
    monkeypatch.setattr(big_io, "LEVEL_SIDE", 40)
    layer = viewer.add_labels(da.from_array(_labels(), chunks=64))
    _weight_widget(viewer, qtbot)
    output = _output(viewer, layer)
    assert output.multiscale
    assert [level.shape for level in output.data] == [(128, 128), (64, 64), (32, 32)]


def test_no_whole_copy_of_the_labels_for_the_weight_map(viewer, qtbot, monkeypatch):
    monkeypatch.setattr(_lazy_layers, "CHUNK_SIDE", 64)
    stack = np.stack([_labels(), _labels()[::-1], _labels()[:, ::-1]])
    data = Unwholesome(stack, max_read=stack[0].size)  # at most a plane at once
    layer = viewer.add_labels(data, name="stack")
    widget = _weight_widget(viewer, qtbot)
    widget.per_plane_checkbox.value = True
    _wait(qtbot, widget)
    output = _output(viewer, layer)
    assert isinstance(output.data, da.Array) and widget.labels_warning.findings == []
    np.testing.assert_allclose(output.data[1].compute(), weight_map(stack[1], 10, 5),
                               atol=ATOL)
    viewer.dims.set_current_step(0, 2)  # napari computes the plane it shows
    assert "Lazy map" in widget.status_label.text()


def test_labels_given_large_data_are_mapped_lazily_from_then_on(viewer, qtbot):
    labels = _labels()
    layer = viewer.add_labels(labels.copy())
    widget = _weight_widget(viewer, qtbot)
    assert isinstance(_output(viewer, layer).data, np.ndarray)
    layer.data = Unwholesome(labels[::-1], max_read=labels.size)
    _wait(qtbot, widget)
    output = _output(viewer, layer)
    assert isinstance(output.data, da.Array) and widget.labels_warning.findings == []
    np.testing.assert_allclose(output.data.compute(), weight_map(labels[::-1], 10, 5),
                               atol=ATOL)


# -- Segment ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled(keras):
    """The bundled model, loaded once for the expected results (the widgets load their own)."""
    from napari_unet_weights.unet.model_file import load_model

    return load_model(BUNDLED_MODEL)


def _image(shape=(128, 128)) -> np.ndarray:
    """uint8 (percentiles exact in the chunked path too) noisy discs."""
    return (noisy_image(_labels(shape)) * 255).clip(0, 255).astype(np.uint8)


def _segment_widget(viewer, store: Path | None = None, model=None) -> SegmentWidget:
    """A docked Segment widget (the bundled model unless ``model``), writing to ``store``."""
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    if model is not None:
        widget.choose_model_file(model)
    if store is not None:
        widget.output_zarr.choose(store)
    return widget


def _run(widget, qtbot) -> None:
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def _same_objects(labels: np.ndarray, expected: np.ndarray) -> bool:
    """The same partition of the pixels into objects, whatever the ids."""
    if not np.array_equal(labels > 0, expected > 0):
        return False
    pairs = np.unique(np.stack([labels[labels > 0], expected[labels > 0]]), axis=1)
    return len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]


def test_segment_writes_zarr_and_adds_lazy_labels(viewer, qtbot, bundled, tmp_path,
                                                  notifications):
    from napari_unet_weights import segment

    image = _image()
    layer = viewer.add_image(da.from_array(image, chunks=32), name="big", scale=SCALE,
                             contrast_limits=(0, 255))
    store = tmp_path / "out.zarr"
    widget = _segment_widget(viewer, store)
    assert widget.output_zarr.isVisibleTo(widget)
    reports = []
    relay = widget._on_progress
    widget._on_progress = lambda *report: (reports.append(
        (*report, widget.progress_bar.maximum())), relay(*report))[-1]
    _run(widget, qtbot)
    labels = widget.labels_layer
    assert labels is not None, widget.status_label.text()
    assert labels.multiscale and len(labels.data) == 3  # 128 → 64 → 32: one chunk
    assert all(isinstance(level, da.Array) for level in labels.data)
    assert labels.metadata[STORE_KEY] == str(store.resolve())
    assert widget.probability_layer is None
    np.testing.assert_allclose(labels.scale, SCALE)
    expected = segment(image, bundled)
    assert expected.max() == len(CENTRES)
    found = np.asarray(labels.data[0])
    assert _same_objects(found, expected)
    np.testing.assert_array_equal(found, open_pyramid(store)[0].compute())
    assert f"{int(expected.max())} objects · " in widget.status_label.text()
    assert notifications["info"][-1] == f"Segment: 'big': labels written to {store}."
    # progress reached the bar: the core's steps, with their total as the bar's maximum
    steps = [r for r in reports if r[2].startswith("Segmenting")]
    assert steps and steps[-1][0] == steps[-1][1] == steps[-1][3]
    assert [r[2] for r in reports][-1] == "Writing the pyramid levels"
    assert list(viewer.layers) == [layer, labels]

    other = viewer.add_image(da.from_array(image, chunks=64), name="other")
    widget.image_layer = other  # the store is read by 'big labels': not replaced
    widget.run()
    assert not widget.running and "is read by layer 'big labels'" in notifications["error"][-1]
    widget.image_layer = layer  # but a re-run replaces the image's own labels and store
    _run(widget, qtbot)
    assert widget.labels_layer is labels and len(viewer.layers) == 3
    np.testing.assert_array_equal(np.asarray(labels.data[0]), found)
    weights = widget.send_to_weight_map()  # the lazy labels' weight map is lazy too
    _wait(qtbot, weights)
    assert _output(viewer, labels).multiscale and weights.layer is labels


def test_no_whole_copy_of_the_image_and_a_temporary_store(viewer, qtbot, bundled,
                                                          monkeypatch, notifications):
    from napari_unet_weights import segment

    monkeypatch.setattr(_lazy_layers, "CHUNK_SIDE", 64)
    stack = np.stack([_image(), _image()[::-1]])
    data = Unwholesome(stack, max_read=stack[0].size)
    viewer.add_image(data, name="stack", contrast_limits=(0, 255))
    widget = _segment_widget(viewer)
    widget.block_shape = 64
    _run(widget, qtbot)
    labels = widget.labels_layer
    assert labels is not None, widget.status_label.text()
    store = Path(labels.metadata[STORE_KEY])
    assert store.name == "stack_labels.zarr" and store.is_dir()
    message = notifications["info"][-1]
    assert str(store) in message and "temporary" in message
    expected = segment(stack, bundled)
    assert expected.max() == 2 * len(CENTRES)
    found = np.asarray(labels.data[0] if labels.multiscale else labels.data)
    for plane in range(2):
        assert _same_objects(found[plane], expected[plane])


def _paused_core(first_report: threading.Event):
    """The real core, whose chunked segmentation waits after its first progress report
    until it is cancelled (so that Cancel comes while blocks are being segmented)."""
    core = segment_module._load_core()

    def segment_to_ome_zarr(*args, engine, progress, **kwargs):
        def report(done, total, phase):
            progress(done, total, phase)
            first_report.set()
            deadline = threading.Event()
            while not engine.should_stop() and not deadline.wait(0.02):
                pass

        return core.segment_to_ome_zarr(*args, engine=engine, progress=report, **kwargs)

    return dataclasses.replace(core, segment_to_ome_zarr=segment_to_ome_zarr)


def test_cancel_leaves_the_viewer_and_the_disk_as_they_were(viewer, qtbot, keras, tmp_path,
                                                            monkeypatch):
    first_report = threading.Event()
    core = _paused_core(first_report)
    monkeypatch.setattr(segment_module, "_load_core", lambda: core)
    viewer.add_image(da.from_array(_image(), chunks=32), name="big", contrast_limits=(0, 255))
    before = list(viewer.layers)
    widget = _segment_widget(viewer, tmp_path / "out.zarr")
    widget.block_shape = 32
    widget.run()
    assert first_report.wait(TIMEOUT_MS / 1000)
    qtbot.waitUntil(lambda: "Segmenting" in widget.status_label.text(), timeout=TIMEOUT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert list(viewer.layers) == before
    assert widget.status_label.text() == "Cancelled: no layer was added or changed."
    assert list(tmp_path.iterdir()) == []  # nor a partial store


def test_a_failed_run_leaves_the_viewer_as_it_was(viewer, qtbot, tmp_path, monkeypatch,
                                                  notifications):
    """Without TensorFlow: the core's writer, whose block segmentation fails after the
    store was started (a metadata-only model file: no network)."""
    from napari_unet_weights.unet import inference
    from napari_unet_weights.unet.chunked.zarr_labels import segment_to_ome_zarr

    def failing(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(inference, "block_labels", failing)
    core = SimpleNamespace(load_model=lambda path: path, segment_to_ome_zarr=segment_to_ome_zarr,
                           device_name=lambda use_gpu: "CPU", gpu_available=lambda: False)
    monkeypatch.setattr(segment_module, "_load_core", lambda: core)
    model = tmp_path / "metadata-only.keras"  # enough for the widget, not for Keras
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(model_metadata(BUNDLED_MODEL)))
    viewer.add_image(da.from_array(_image(), chunks=32), name="big", contrast_limits=(0, 255))
    before = list(viewer.layers)
    store = tmp_path / "out" / "labels.zarr"
    widget = _segment_widget(viewer, store, model)
    _run(widget, qtbot)
    assert list(viewer.layers) == before
    assert notifications["error"] and "the disk is full" in notifications["error"][-1]
    assert list(store.parent.iterdir()) == []  # no store, partial or not


def test_a_folder_that_is_not_zarr_is_not_replaced(viewer, qtbot, tmp_path, notifications):
    folder = tmp_path / "photos.zarr"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    viewer.add_image(da.from_array(_image(), chunks=32), name="big", contrast_limits=(0, 255))
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    widget.output_zarr.choose(folder)
    widget.run()
    assert not widget.running
    assert "not a zarr store" in notifications["error"][-1]
    assert (folder / "holiday.jpg").exists()


def test_the_output_row_shows_for_large_images_only(viewer):
    small = viewer.add_image(_image(), name="small")
    large = viewer.add_image(da.from_array(_image(), chunks=64), name="large")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    for layer, shown in ((small, False), (large, True)):
        widget.image_layer = layer
        assert widget.output_zarr.isVisibleTo(widget) is shown
    widget.output_zarr.choose("/somewhere/labels")
    assert widget.output_zarr.path == Path("/somewhere/labels.zarr")


def test_the_cli_and_the_widget_write_the_same_store(bundled, tmp_path, capsys):
    """One writer (unet/zarr_labels.segment_to_ome_zarr): ``predict`` on a zarr image and
    the widget's worker on the same image give the same OME-Zarr store, level by level."""
    from napari_unet_weights._widgets.segment.big import segment_to_zarr
    from napari_unet_weights.cli import main
    from napari_unet_weights.unet.chunked.zarr_labels import segment_to_ome_zarr

    image = _image()
    source = zarr.create_array(store=str(tmp_path / "cells.zarr"), shape=image.shape,
                               dtype=image.dtype, chunks=(64, 48))
    source[...] = image
    cli, widget = tmp_path / "cli" / "labels.zarr", tmp_path / "widget" / "labels.zarr"
    assert main(["predict", str(tmp_path / "cells.zarr"), "-o", str(cli), "--block", "64",
                 "--cpu"]) == 0, capsys.readouterr().err
    request = SimpleNamespace(image=da.from_zarr(source), rgb=False, scale=(1.0, 1.0),
                              store=widget, temporary=False, tile_shape=None, tta=False,
                              block_shape=64, postprocess={})
    phases = []
    written = segment_to_zarr(segment_to_ome_zarr, request, bundled, False,
                              lambda done, total, phase: phases.append(phase), lambda: False)
    assert phases[0].startswith("Segmenting") and phases[-1] == "Writing the pyramid levels"
    assert "Counting the objects" in phases
    ours, theirs = zarr.open_group(str(widget), mode="r"), zarr.open_group(str(cli), mode="r")
    assert dict(ours.attrs) == dict(theirs.attrs)
    levels = open_pyramid(cli)
    assert len(levels) == len(written.levels) == 3 and written.n_objects > 0
    for mine, cli_level in zip(written.levels, levels):
        assert mine.chunksize == cli_level.chunksize
        np.testing.assert_array_equal(mine.compute(), cli_level.compute())
    assert f"{written.n_objects} objects, zarr, chunks (64, 48), 3 levels" in (
        capsys.readouterr().err)
