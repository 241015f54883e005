"""The correction loop: snapshots into the training set, roles, fine-tuning, "Use this model"."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from napari_unet_weights._widgets.common.layer_roles import SEGMENT_OUTPUT_KEY
from napari_unet_weights._widgets.common.snapshots import REGIONS
from napari_unet_weights._widgets.segment.widget import SegmentWidget
from napari_unet_weights._widgets.train import widget as train_module
from napari_unet_weights._widgets.train.training_set import EMPTY_TEXT
from napari_unet_weights._widgets.train.widget import TrainWidget
from napari_unet_weights.unet.model_file import METADATA_ENTRY
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION
from reference import SCALE, TRANSLATE, discs, noisy_image, run_widget_script
from test_widget_train import TIMEOUT_MS, FakeTrain

pytestmark = pytest.mark.gui

WHOLE, VIEW, RECTANGLE = REGIONS
SHAPE = (64, 80)


@pytest.fixture
def errors(notifications) -> list[str]:
    """Messages of the error notifications the widgets showed."""
    return notifications["error"]


def _scene(viewer, name="cells"):
    """An image and its "predicted" labels, marked as the Segment widget marks its output."""
    truth = discs(SHAPE, ((12, 12), (14, 40), (40, 20), (44, 60)), radius=7)
    placement = {"scale": SCALE, "translate": TRANSLATE}
    image = viewer.add_image(noisy_image(truth), name=name, **placement)
    labels = viewer.add_labels(truth.copy(), name=f"{name} labels", **placement, metadata={
        SEGMENT_OUTPUT_KEY: {"source": name, "output": "labels"}})
    return image, labels


def _segment_widget(viewer, image) -> SegmentWidget:
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    if image is not None:
        widget.image_layer = image
    return widget


def _train_widget(viewer) -> TrainWidget:
    return next(w for w in viewer.window.dock_widgets.values() if isinstance(w, TrainWidget))


def _world(image, row: float, column: float) -> list[float]:
    """World coordinates of a data position of ``image`` (by hand: scale, then translate)."""
    return [row * SCALE[0] + TRANSLATE[0], column * SCALE[1] + TRANSLATE[1]]


def _add_rectangle(viewer, image, rows, columns, layer=None):
    corners = [_world(image, rows[0], columns[0]), _world(image, rows[1], columns[1])]
    if layer is None:
        return viewer.add_shapes([corners], shape_type="rectangle", name="boxes")
    layer.add_rectangles([corners])
    return layer


# -- snapshots ------------------------------------------------------------------------------
def test_whole_view_and_rectangle_snapshots(viewer, qtbot, errors):
    image, labels = _scene(viewer)
    segment = _segment_widget(viewer, image)
    assert segment.snapshot_button.isEnabled()

    train = segment.add_to_training_set(WHOLE)
    assert isinstance(train, TrainWidget) and _train_widget(viewer) is train
    assert train.data_source.use_training_set  # the tab is shown
    whole = train.training_set.snapshots[0]
    assert whole.name == "cells" and whole.shape == SHAPE
    np.testing.assert_array_equal(whole.image, image.data)
    np.testing.assert_array_equal(whole.labels, labels.data)

    # The view: centred on pixel (30, 40), 24 columns wide (a world width of 24 * 2.0);
    # as many rows as the canvas's height shows, clipped to the image's 64.
    height, width = viewer.canvas.size
    zoom = width / (24 * SCALE[1])  # screen pixels per world unit
    viewer.scene.camera.center = tuple(_world(image, 30, 40))
    viewer.scene.camera.zoom = zoom
    half_rows = height / 2 / zoom / SCALE[0]
    rows = slice(max(0, math.floor(30 - half_rows + 0.5)),
                 min(SHAPE[0], math.floor(30 + half_rows + 0.5)))
    columns = slice(28, 52)
    assert rows.stop - rows.start >= 16
    segment.region_combo.setCurrentText(VIEW)
    segment.snapshot_button.click()
    view = train.training_set.snapshots[1]
    assert view.name == f"cells [{rows.start}:{rows.stop}, {columns.start}:{columns.stop}]"
    np.testing.assert_array_equal(view.image, image.data[rows, columns])
    np.testing.assert_array_equal(view.labels, labels.data[rows, columns])

    # A rectangle: the last one drawn, else the selected one.
    boxes = _add_rectangle(viewer, image, (8, 40), (16, 48))
    _add_rectangle(viewer, image, (2, 34), (30, 78), boxes)
    segment.add_to_training_set(RECTANGLE)
    last = train.training_set.snapshots[2]
    assert last.name == "cells [2:34, 30:78]"
    np.testing.assert_array_equal(last.labels, labels.data[2:34, 30:78])
    boxes.selected_data = {0}
    segment.add_to_training_set(RECTANGLE)
    selected = train.training_set.snapshots[3]
    assert selected.name == "cells [8:40, 16:48]"
    np.testing.assert_array_equal(selected.image, image.data[8:40, 16:48])
    np.testing.assert_array_equal(selected.labels, labels.data[8:40, 16:48])
    segment.add_to_training_set(RECTANGLE)  # the same crop again: a numbered name
    assert train.training_set.snapshots[4].name == "cells [8:40, 16:48] (2)"

    rows = train.training_set.rows
    assert [row.size_label.text() for row in rows[:3]] == [
        "64 × 80", f"{rows[1].snapshot.shape[0]} × {rows[1].snapshot.shape[1]}", "32 × 48"]
    assert errors == []


def test_snapshots_are_copies(viewer, qtbot, errors):
    image, labels = _scene(viewer)
    segment = _segment_widget(viewer, image)
    train = segment.add_to_training_set(WHOLE)
    _add_rectangle(viewer, image, (0, 32), (0, 32))
    segment.add_to_training_set(RECTANGLE)
    before = [(s.image.copy(), s.labels.copy()) for s in train.training_set.snapshots]

    labels.paint((12, 12), 9, refresh=True)  # the user goes on correcting
    labels.fill((44, 60), 0)
    image.data[:] = 0
    image.refresh()
    assert labels.data[12, 12] == 9
    for snapshot, (pixels, objects) in zip(train.training_set.snapshots, before):
        np.testing.assert_array_equal(snapshot.image, pixels)
        np.testing.assert_array_equal(snapshot.labels, objects)
    assert errors == []


def test_refused_snapshots_are_notified(viewer, qtbot, errors):
    image, labels = _scene(viewer)
    plain = viewer.add_image(np.zeros(SHAPE, np.float32), name="plain")  # never segmented
    other = viewer.add_image(np.zeros(SHAPE, np.float32), name="other")
    viewer.add_labels(np.ones((SHAPE[0], SHAPE[1] - 1), np.uint8), name="other labels",
                      metadata={SEGMENT_OUTPUT_KEY: {"source": "other", "output": "labels"}})
    segment = _segment_widget(viewer, image)
    truth = labels.data.copy()

    def refused(layer, region, expected) -> None:
        segment.image_layer = layer
        errors.clear()
        assert segment.add_to_training_set(region) is None, expected
        assert len(errors) == 1 and expected in errors[0], (expected, errors)
        assert errors[0].startswith("Segment: ")

    refused(plain, WHOLE, "Segment the image first")
    refused(other, WHOLE, "have shape (64, 79) but image 'other' has shape (64, 80)")
    labels.data = np.zeros(SHAPE, labels.dtype)
    refused(image, WHOLE, "The whole image of 'cells labels' has no object")
    labels.data = truth
    viewer.add_shapes([[[0, 0], [10, 10], [0, 10]]], shape_type="polygon")
    refused(image, RECTANGLE, "Draw a rectangle in a Shapes layer first")
    boxes = _add_rectangle(viewer, image, (100, 120), (0, 40))
    refused(image, RECTANGLE, "The rectangle is outside 'cells'")
    _add_rectangle(viewer, image, (4, 16), (4, 40), boxes)  # 12 rows: fewer than 2**4
    refused(image, RECTANGLE, "'cells [4:16, 4:40]' is 12 × 36 pixels: a training crop "
                              "needs at least 16 × 16")
    train = _train_widget(viewer)  # docked by the last one, but nothing was added
    assert train.training_set.snapshots == []
    assert segment.add_to_training_set(RECTANGLE) is None  # the same crop at depth 3 fits
    train.depth_spin.setValue(3)
    assert segment.add_to_training_set(RECTANGLE) is train
    assert train.training_set.snapshots[0].shape == (12, 36)


# -- the training set in the Train widget ---------------------------------------------------------
def _three_snapshots(viewer):
    image, labels = _scene(viewer)
    segment = _segment_widget(viewer, image)
    train = segment.add_to_training_set(WHOLE)
    for rows, columns in (((0, 32), (0, 40)), ((32, 64), (40, 80))):
        _add_rectangle(viewer, image, rows, columns)
        segment.add_to_training_set(RECTANGLE)
    return image, labels, segment, train


def _start_and_wait(train, qtbot):
    train.start()
    qtbot.waitUntil(lambda: not train.running, timeout=TIMEOUT_MS)


def test_roles_and_removal_reach_train(viewer, qtbot, monkeypatch, errors):
    fake = FakeTrain()
    monkeypatch.setattr(train_module, "_load_train", lambda: fake)
    image, labels, _segment, train = _three_snapshots(viewer)
    train.epochs_spin.setValue(1)
    train.steps_spin.setValue(1)
    listed = train.training_set
    assert "training pairs themselves" not in listed.hint_label.text()  # from scratch
    assert "held-out split" in listed.hint_label.text()

    _start_and_wait(train, qtbot)
    call = fake.calls[-1]
    assert call["validation"] is None and len(call["images"]) == 3
    assert call["initial_model"] is None and call["finish_within"] is None

    listed.rows[1].role_combo.setCurrentText("validation")
    assert listed.hint_label.text() == "Validated on the 1 pair marked validation."
    listed.rows[0].remove_button.click()
    qtbot.waitUntil(lambda: len(listed.rows) == 2)
    _start_and_wait(train, qtbot)
    call = fake.calls[-1]
    np.testing.assert_array_equal(call["images"][0], image.data[32:64, 40:80])
    np.testing.assert_array_equal(call["labels"][0], labels.data[32:64, 40:80])
    assert len(call["images"]) == 1
    val_images, val_labels = call["validation"]
    np.testing.assert_array_equal(val_images[0], image.data[0:32, 0:40])
    np.testing.assert_array_equal(val_labels[0], labels.data[0:32, 0:40])
    assert [s.role for s in listed.snapshots] == ["validation", "train"]

    listed.remove(0)
    listed.remove(0)
    assert not listed.empty_label.isHidden() and listed.empty_label.text() == EMPTY_TEXT
    train.start()
    assert not train.running and "The training set is empty" in errors[-1]
    assert len(fake.calls) == 2


@pytest.mark.parametrize("ending", ["error", "cancel"])
def test_the_list_survives_a_failed_or_cancelled_training(viewer, qtbot, monkeypatch, errors,
                                                          ending):
    _image, _labels, _segment, train = _three_snapshots(viewer)
    snapshots = list(train.training_set.snapshots)
    copies = [(s.image.copy(), s.labels.copy(), s.role) for s in snapshots]
    layers = [(layer, np.array(layer.data)) for layer in viewer.layers]
    if ending == "error":
        def failing(*args, **kwargs):
            raise RuntimeError("out of memory")

        monkeypatch.setattr(train_module, "_load_train", lambda: failing)
        _start_and_wait(train, qtbot)
        assert len(errors) == 1 and "Training failed: RuntimeError('out of memory')" in errors[0]
    else:
        fake = FakeTrain(pause_after=2)  # in the second epoch (one batch each)
        monkeypatch.setattr(train_module, "_load_train", lambda: fake)
        train.steps_spin.setValue(1)
        train.start()
        assert fake.paused.wait(TIMEOUT_MS / 1000)
        train.cancel()
        fake.resume.set()
        qtbot.waitUntil(lambda: not train.running, timeout=TIMEOUT_MS)
        assert train.result.cancelled and errors == []
    assert train.training_set.snapshots == snapshots
    for snapshot, (pixels, objects, role) in zip(snapshots, copies):
        np.testing.assert_array_equal(snapshot.image, pixels)
        np.testing.assert_array_equal(snapshot.labels, objects)
        assert snapshot.role == role
    assert train.data_source.use_training_set and train.start_button.isEnabled()
    assert [layer for layer, _ in layers] == list(viewer.layers)
    for layer, data in layers:
        np.testing.assert_array_equal(layer.data, data)


# -- start from a model ---------------------------------------------------------------------
def _model_file(path, depth=2, base_filters=4):
    """A file with the metadata entry of a model (enough to read, not to load)."""
    metadata = {
        "format": "napari-unet-weights model", "format_version": 1, "n_classes": 3,
        "classes": ["background", "interior", "boundary"], "input": dict(DEFAULT_INPUT),
        "normalization": dict(DEFAULT_NORMALIZATION),
        "architecture": {"type": "unet2d", "n_channels": 1, "depth": depth,
                         "base_filters": base_filters, "multiple": 2**depth},
        "postprocess": dict(DEFAULT_POSTPROCESS), "validation": {"map": 0.5, "n_images": 3},
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(metadata))
    return path


def test_start_from_a_model_fine_tunes(viewer, qtbot, monkeypatch, errors, tmp_path):
    from napari_unet_weights.unet.config import TrainConfig
    from napari_unet_weights.unet.model_file import read_metadata
    from napari_unet_weights.unet.training.parent import INHERITED, fine_tuning_config

    fake = FakeTrain()
    monkeypatch.setattr(train_module, "_load_train", lambda: fake)
    _image, _labels, _segment, train = _three_snapshots(viewer)
    start_from = train.start_from
    assert not start_from.budget_spin.isEnabled() and train.start_button.text() == "Start"
    train.lr_spin.setValue(0.01)  # the user's value, replaced by the model's fine-tuning

    start_from.combo.setCurrentIndex(1)  # the bundled model
    expected = fine_tuning_config(read_metadata(None))
    assert train.parameters() == {name: getattr(expected, name) for name in train.controls}
    assert train.parameters()["learning_rate"] == pytest.approx(3e-4)
    for name in INHERITED:
        assert not train.controls[name].isEnabled(), name
    assert train.epochs_spin.isEnabled() and train.lr_spin.isEnabled()
    assert train.start_button.text() == "Fine-tune"
    assert "training pairs themselves" in train.training_set.hint_label.text()
    train.epochs_spin.setValue(1)
    train.steps_spin.setValue(2)
    start_from.budget_spin.setValue(0.5)
    _start_and_wait(train, qtbot)
    call = fake.calls[-1]
    assert call["initial_model"] == "bundled" and call["finish_within"] == pytest.approx(30)
    assert call["learning_rate"] == pytest.approx(3e-4) and call["epochs"] == 1
    assert call["max_seconds"] is None  # the time budget bounds the whole run
    assert train.train_bar.maximum() == 30 and "time budget" in train.train_bar.format()
    assert train.plot.epochs is None  # the x axis follows the epochs run, not the 200 planned
    assert {name: call[name] for name in INHERITED} == {
        name: getattr(expected, name) for name in INHERITED}

    model = _model_file(tmp_path / "small.keras")
    start_from.choose_file(model)
    assert train.depth_spin.value() == 2 and train.filters_spin.value() == 4
    _start_and_wait(train, qtbot)
    assert fake.calls[-1]["initial_model"] == model and fake.calls[-1]["depth"] == 2

    bad = tmp_path / "notes.keras"  # a file that is not a model: said, nothing runs
    bad.write_text("not a model")
    start_from.choose_file(bad)
    assert len(errors) == 1 and errors[0].startswith("Train U-Net: ")
    train.start()
    assert not train.running and len(fake.calls) == 2 and len(errors) == 2
    errors.clear()

    start_from.combo.setCurrentIndex(0)  # back to scratch: the defaults, all changeable
    assert train.parameters() == {name: getattr(TrainConfig(), name) for name in train.controls}
    assert all(widget.isEnabled() for name, widget in train.controls.items()
               if name not in ("w0", "sigma"))
    assert train.start_button.text() == "Start" and not start_from.budget_spin.isEnabled()
    assert errors == []


# -- use the model ------------------------------------------------------------------------------
def test_use_this_model_switches_the_segment_widget_and_reruns(viewer, qtbot, monkeypatch,
                                                               errors, tmp_path):
    image, _labels, segment, train = _three_snapshots(viewer)
    other = viewer.add_image(np.zeros(SHAPE, np.float32), name="other")
    segment.image_layer = other
    assert not train.use_button.isEnabled()
    model = _model_file(tmp_path / "parent.keras")
    saved = []
    train.result = SimpleNamespace(
        model=SimpleNamespace(save=lambda path: saved.append(_model_file(path)) or path),
        validation={"map": 0.5, "on": "training images"}, cancelled=False)
    runs = []
    monkeypatch.setattr(SegmentWidget, "run", lambda self: runs.append(
        (self, self.image_layer, self.model_path)))
    train._update_enabled()
    assert train.use_button.isEnabled()

    train.use_button.click()
    assert len(saved) == 1 and saved[0].suffix == ".keras" and saved[0].is_file()
    assert runs == [(segment, image, saved[0])]  # the image of the last snapshot
    assert segment.model_choice.metadata is not None
    train.use_model()  # not saved again
    assert len(saved) == 1 and runs[-1][2] == saved[0]

    path = train.save_model(model.with_name("kept.keras"))
    train.use_model()  # the saved file from now on
    assert runs[-1][2] == path and len(saved) == 2
    assert errors == []


def test_the_temporary_model_file_is_removed_when_napari_exits(tmp_path):
    """Use this model's unsaved model goes to a temporary folder, gone after exit (run in a
    fresh interpreter: the folder is removed at its exit)."""
    done = run_widget_script(
        "from pathlib import Path\n"
        "from types import SimpleNamespace\n"
        "from napari_unet_weights._widgets.train.widget import TrainWidget\n"
        "model = SimpleNamespace(save=lambda path: Path(path).write_bytes(b'model'))\n"
        "widget = SimpleNamespace(result=SimpleNamespace(model=model), _model_file=None,\n"
        "                         _report=print)\n"
        "path = TrainWidget._save_temporary(widget)\n"
        "print('saved', path, path.is_file())\n")
    assert done.returncode == 0, done.stderr
    saved = next(line for line in done.stdout.splitlines() if line.startswith("saved "))
    path = Path(saved.split()[1])
    assert saved.endswith(" True") and path.name == "trained.keras"
    assert not path.exists() and not path.parent.exists()


# -- the whole loop, for real ---------------------------------------------------------------------
@pytest.fixture
def tiny_parent(keras, tmp_path):
    """A real, untrained tiny U-Net (depth 2, 4 filters) saved with its metadata."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel, read_metadata

    keras.utils.set_random_seed(0)
    metadata = read_metadata(_model_file(tmp_path / "metadata-only.keras"))
    metadata["postprocess"].update(seed_threshold=0.3, min_size=2)  # objects, untrained
    return UNetModel(build_unet(depth=2, base_filters=4), metadata).save(
        tmp_path / "parent.keras")


def test_correct_fine_tune_and_use_for_real(viewer, qtbot, errors, tiny_parent):
    """Segment, correct, add two pairs, fine-tune the parent for 1 epoch, use the model."""
    truth = discs(SHAPE, ((12, 12), (14, 40), (40, 20), (44, 60)), radius=7)
    image = viewer.add_image(noisy_image(truth), name="cells")
    segment = _segment_widget(viewer, image)
    segment.choose_model_file(tiny_parent)
    segment.run()
    qtbot.waitUntil(lambda: not segment.running, timeout=60_000)
    labels = segment.labels_layer
    assert labels is not None, segment.status_label.text()
    labels.data = truth.copy()  # the user's corrections
    train = segment.add_to_training_set(WHOLE)
    _add_rectangle(viewer, image, (0, 32), (0, 40))
    segment.add_to_training_set(RECTANGLE)
    image_before = image.data.copy()

    train.start_from.choose_file(tiny_parent)
    for name, value in {"epochs": 1, "steps": 2, "batch": 2, "patch": 32}.items():
        getattr(train, f"{name}_spin").setValue(value)
    train.start_button.click()
    qtbot.waitUntil(lambda: not train.running, timeout=120_000)
    assert errors == [], errors
    result = train.result
    assert result.validation["on"] == "training images"
    assert "on the training images" in train.result_label.text()
    assert result.model.metadata["lineage"]["parent"] == str(tiny_parent)
    np.testing.assert_array_equal(image.data, image_before)
    np.testing.assert_array_equal(labels.data, truth)  # training changed no layer
    assert len(train.training_set.snapshots) == 2

    assert train.use_model() is segment
    qtbot.waitUntil(lambda: not segment.running, timeout=60_000)
    assert segment.model_path == train._model_file and segment.model_path.is_file()
    assert " objects · " in segment.status_label.text()
    assert segment.labels_layer is not labels  # a new layer: the corrections stay as they were
    assert (labels.name, segment.labels_layer.name) == ("cells labels", "cells labels [1]")
    np.testing.assert_array_equal(labels.data, truth)
    assert labels in viewer.layers and segment.labels_layer in viewer.layers
    assert errors == []
