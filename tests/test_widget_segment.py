"""The "Segment" dock widget: outputs, re-runs, cancel, errors, model info, hand-offs."""

from __future__ import annotations

import json
import re
import threading
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_unet_weights._widgets.common.layer_roles import SEGMENT_OUTPUT_KEY
from napari_unet_weights._widgets.common.model_choice import BUNDLED_CHOICE
from napari_unet_weights._widgets.evaluate.widget import EvaluateWidget
from napari_unet_weights._widgets.segment import widget as widget_module
from napari_unet_weights._widgets.segment.widget import NO_GPU_TIP, SegmentWidget
from napari_unet_weights._widgets.weight_map.widget import WeightMapWidget
from napari_unet_weights.unet.model_file import BUNDLED_MODEL, METADATA_ENTRY
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS, to_instances
from napari_unet_weights.unet.preprocess import (
    DEFAULT_INPUT,
    DEFAULT_NORMALIZATION,
    count_missing,
)
from reference import SCALE, TRANSLATE, discs, noisy_image, run_widget_script

pytestmark = pytest.mark.gui

TIMEOUT_MS = 20_000
SCORE = 0.4321


def _metadata(n_classes: int = 3, **postprocess) -> dict:
    """Model-file metadata like training writes, with a recorded validation score."""
    return {
        "format": "napari-unet-weights model", "format_version": 1, "n_classes": n_classes,
        "classes": ["background", "interior", "boundary"][:n_classes],
        "input": dict(DEFAULT_INPUT), "normalization": dict(DEFAULT_NORMALIZATION),
        "architecture": {"type": "unet2d", "n_channels": 1, "depth": 2, "base_filters": 4,
                         "multiple": 4},
        "postprocess": {**DEFAULT_POSTPROCESS, **postprocess},
        "validation": {"map": SCORE, "n_images": 3},
    }


def _discs(shape=(40, 48)) -> np.ndarray:
    """Three separate discs."""
    return discs(shape, ((10, 10), (10, 26), (28, 20)), radius=6)


@pytest.fixture
def errors(notifications) -> list[str]:
    """Messages of the error notifications the widgets showed."""
    return notifications["error"]


def _same_objects(labels: np.ndarray, expected: np.ndarray) -> bool:
    """Whether ``labels`` has exactly the objects of ``expected``, whatever their ids."""
    if not np.array_equal(labels > 0, expected > 0):
        return False
    pairs = np.unique(np.stack([labels[labels > 0], expected[labels > 0]]), axis=1)
    return len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]


@pytest.fixture(scope="module")
def tiny_model(keras, tmp_path_factory):
    """A real (untrained) tiny U-Net saved as a model file with metadata."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    keras.utils.set_random_seed(0)
    # seeds at p(interior) > 0.3 so that the untrained network gives some objects
    metadata = _metadata(seed_threshold=0.3, min_size=2)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return UNetModel(build_unet(depth=2, base_filters=4), metadata).save(path)


@pytest.fixture
def fake_model(tmp_path):
    """A file with our metadata entry only: enough for the widget, not for Keras."""
    path = tmp_path / "fake.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(_metadata()))
    return path


class FakeCore:
    """Stands in for the prediction core: tile batches that poll ``should_stop``.

    Probabilities are 3-class: interior where the image is bright (> 0.5), background
    elsewhere. With ``pause_after=n``, batch ``n`` sets ``paused`` and waits for
    ``resume`` (``resumed`` records whether it came within ``wait_s``): the test acts
    while the prediction is known to be inside that batch.
    """

    def __init__(self, batches: int = 3, gpu: bool = False, pause_after: int | None = None,
                 wait_s: float = TIMEOUT_MS / 1000):
        self.batches = batches
        self.gpu = gpu
        self.pause_after = pause_after
        self.wait_s = wait_s
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.resumed: list[bool] = []
        self.done = 0
        self.calls: list[dict] = []
        self.to_instances = to_instances

    def load_model(self, path):
        return SimpleNamespace(n_classes=3, path=path)

    def predict(self, image, model, *, progress=None, should_stop=None, **kwargs):
        self.calls.append(kwargs)
        for index in range(self.batches):
            if should_stop():
                raise RuntimeError("cancelled")
            self.done += 1
            if self.done == self.pause_after:
                self.paused.set()
                self.resumed.append(self.resume.wait(self.wait_s))
            progress(index + 1, self.batches)
        gray = np.asarray(image, dtype=np.float32)
        gray = gray.mean(axis=-1) if kwargs.get("rgb") else gray
        inside = gray > 0.5
        probabilities = np.zeros((*gray.shape, 3), dtype=np.float32)
        probabilities[..., 0] = ~inside
        probabilities[..., 1] = inside
        return probabilities

    def infer(self, image, model, *, probabilities, diameter=None, **kwargs):
        """The core's one run: the fake probabilities, their labels, the missing pixels."""
        postprocess = {key: kwargs.pop(key) for key in DEFAULT_POSTPROCESS}
        found = self.predict(image, model, **kwargs)
        if diameter is not None:
            self.calls[-1].update(diameter=diameter, probabilities=probabilities, **postprocess)
        labels = self.to_instances(found, n_classes=model.n_classes, **postprocess)
        return SimpleNamespace(labels=labels, probabilities=found if probabilities else None,
                               n_missing=count_missing(image, kwargs.get("rgb")),
                               n_pixels=labels.size, sizing=self.sizing(diameter))

    def sizing(self, diameter):
        return None

    def device_name(self, use_gpu=None) -> str:
        return "GPU: fake" if use_gpu is not False and self.gpu else "CPU"

    def gpu_available(self) -> bool:
        return self.gpu


@pytest.fixture
def fake_core(monkeypatch) -> FakeCore:
    core = FakeCore()
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    return core


def _add_scene(viewer, shape=(40, 48)):
    labels = _discs(shape)
    kwargs = {"scale": SCALE, "translate": TRANSLATE}
    image = viewer.add_image(noisy_image(labels), name="cells", **kwargs)
    gt = viewer.add_labels(labels, name="cells ground truth", **kwargs)
    return image, gt


def _make_widget(viewer, model=None) -> SegmentWidget:
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    if model is not None:
        widget.choose_model_file(model)
    return widget


def _run(widget, qtbot) -> None:
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def _outputs(viewer) -> list:
    return [layer for layer in viewer.layers if SEGMENT_OUTPUT_KEY in layer.metadata]


# -- without TensorFlow ----------------------------------------------------------------------
def test_widget_does_not_import_tensorflow():
    """Constructing the widget (in a fresh interpreter) leaves TensorFlow unimported."""
    done = run_widget_script(
        "from napari_unet_weights._widgets.segment.widget import SegmentWidget\n"
        "viewer = ViewerModel()\n"
        "import numpy\nviewer.add_image(numpy.eye(8))\n"
        "widget = SegmentWidget(viewer)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_model_info_shows_recorded_score_and_postprocess(viewer, fake_model, tmp_path):
    widget = _make_widget(viewer, fake_model)
    assert widget.model_choice.label.text() == (
        "validation mAP 0.432 (3 images) · 3 classes: background, interior, boundary")
    expected = _metadata()["postprocess"]
    assert widget.postprocess() == pytest.approx(expected)
    assert widget.model_path == fake_model
    assert not widget.seed_spin.isHidden() and widget.expand_spin.isHidden()
    widget.choose_model_file(str(fake_model))  # the same file again: no second entry
    assert widget.model_choice.combo.count() == 2

    two_class = tmp_path / "two.keras"
    with zipfile.ZipFile(two_class, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(_metadata(2, threshold=0.35, expand=3)))
    widget.choose_model_file(two_class)
    assert widget.model_choice.label.text().endswith("2 classes: background, interior")
    assert widget.postprocess()["threshold"] == pytest.approx(0.35)
    assert widget.postprocess()["expand"] == 3
    assert widget.seed_spin.isHidden() and not widget.expand_spin.isHidden()


def test_bundled_model_missing_is_said(viewer, errors, tmp_path, monkeypatch):
    monkeypatch.setattr(widget_module, "BUNDLED_MODEL", tmp_path / "not_installed.keras")
    _add_scene(viewer)
    widget = _make_widget(viewer)
    assert widget.model_choice.combo.currentText() == BUNDLED_CHOICE
    assert "not installed" in widget.model_choice.label.text()
    widget.run()
    assert errors and "bundled" in errors[-1]
    assert not _outputs(viewer)


def test_bundled_model_info(viewer):
    """The bundled model's record, as the README states it: test mAP 0.560 on 86 test images,
    the validation figure apart."""
    assert BUNDLED_MODEL.is_file(), "the bundled model ships with the package"
    _add_scene(viewer)
    widget = _make_widget(viewer)
    assert widget.model_choice.label.text() == (
        "test mAP 0.560 (86 images; validation 0.541) · 3 classes: background, interior, "
        "boundary")
    assert widget.run_button.isEnabled()


def test_corrupt_model_file_is_notified(viewer, tmp_path, errors):
    _add_scene(viewer)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"this is not a zip")
    widget = _make_widget(viewer, broken)
    assert errors and "corrupt" in errors[-1]
    widget.run()
    assert not widget.running and not _outputs(viewer)


def test_fake_run_outputs_progress_and_gpu_box(viewer, qtbot, fake_model, fake_core):
    image, gt = _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    assert widget.gpu_checkbox.isEnabled()
    _run(widget, qtbot)
    assert fake_core.calls[0]["use_gpu"] is False  # no GPU seen: asked for CPU
    assert fake_core.calls[0]["tile_shape"] is None
    assert fake_core.calls[0]["tta"] is False  # test-time augmentation is off by default
    assert widget.progress_bar.maximum() == fake_core.batches
    assert not widget.gpu_checkbox.isEnabled() and not widget.gpu_checkbox.isChecked()
    assert widget.gpu_checkbox.toolTip() == NO_GPU_TIP
    assert "s on CPU" in widget.status_label.text()
    assert "3 objects" in widget.status_label.text()
    names = [layer.name for layer in _outputs(viewer)]
    assert names == ["cells probability", "cells labels"]
    # The fake's interior class is the bright pixels, which are the discs: the
    # probability layer shows class 1, the labels are the three discs.
    inside = np.asarray(image.data) > 0.5
    assert np.array_equal(inside, gt.data > 0)
    np.testing.assert_array_equal(widget.probability_layer.data, inside.astype(np.float32))
    assert _same_objects(widget.labels_layer.data, gt.data)
    for layer in (widget.probability_layer, widget.labels_layer):
        np.testing.assert_allclose(layer.scale, SCALE)
        np.testing.assert_allclose(layer.translate, TRANSLATE)


def test_missing_tensorflow_is_notified(viewer, qtbot, fake_model, errors, monkeypatch):
    def no_tensorflow():
        raise ImportError('the U-Net needs TensorFlow: pip install "napari-unet-weights[unet]"')

    monkeypatch.setattr(widget_module, "_load_core", no_tensorflow)
    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    _run(widget, qtbot)
    assert errors and "pip install" in errors[-1]
    assert not _outputs(viewer)
    assert widget.run_button.isEnabled()


def test_cancel_stops_within_a_batch_and_adds_nothing(viewer, qtbot, fake_model, monkeypatch):
    core = FakeCore(batches=50, pause_after=2)
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    _add_scene(viewer)
    before = list(viewer.layers)
    widget = _make_widget(viewer, fake_model)
    widget.run()
    assert widget.busy and not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=TIMEOUT_MS)
    assert core.paused.wait(TIMEOUT_MS / 1000)
    widget.cancel()
    core.resume.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert core.done == 2  # the batch running at Cancel was the last one
    assert list(viewer.layers) == before
    assert widget.status_label.text() == "Cancelled: no layer was added or changed."
    assert not widget.weight_map_button.isEnabled() and widget.run_button.isEnabled()


def test_handoffs_dock_the_other_widgets(viewer, qtbot, fake_model, fake_core, errors):
    _, gt = _add_scene(viewer)
    viewer.add_labels(np.zeros((7, 7), dtype=np.uint8), name="other shape")
    widget = _make_widget(viewer, fake_model)
    assert widget.send_to_weight_map() is None and errors  # nothing to send yet
    _run(widget, qtbot)
    labels = widget.labels_layer
    weights = widget.send_to_weight_map()
    assert isinstance(weights, WeightMapWidget) and weights.layer is labels
    evaluate = widget.send_to_evaluate()
    assert isinstance(evaluate, EvaluateWidget)
    assert evaluate.pred_layer is labels and evaluate.gt_layer is gt
    docked = list(viewer.window.dock_widgets.values())
    assert sum(isinstance(w, WeightMapWidget) for w in docked) == 1
    assert widget.send_to_weight_map() is weights  # raised again, not docked twice
    qtbot.waitUntil(lambda: not weights.busy and not evaluate.busy, timeout=TIMEOUT_MS)
    assert evaluate.evaluation is not None and evaluate.evaluation.map == pytest.approx(1.0)


def test_reruns_keep_the_names_and_new_layers_get_napari_s_numbering(viewer, qtbot, fake_model,
                                                                    fake_core):
    image, gt = _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    _run(widget, qtbot)
    first = widget.labels_layer
    assert first.name == "cells labels"
    widget.release_labels(image)  # as "Use this model" does: the corrections are kept
    for _ in range(2):
        _run(widget, qtbot)
        assert widget.labels_layer is not first and widget.labels_layer.name == "cells labels [1]"
    assert first.name == "cells labels" and first in viewer.layers
    widget.labels_layer.name = "mine"  # a name the user gave
    _run(widget, qtbot)
    assert widget.labels_layer.name == "mine"
    assert widget.probability_layer.name == "cells probability"
    gt.name = "nuclei labels"  # the user's ground truth holds the name: napari numbers
    other = viewer.add_image(image.data, name="nuclei")
    widget.image_layer = other
    _run(widget, qtbot)
    assert widget.labels_layer.name == "nuclei labels [1]" and gt.name == "nuclei labels"


def test_add_to_training_set_follows_the_prediction(viewer, qtbot, fake_model, fake_core,
                                                    errors):
    """The button needs the image's predicted labels; it hands a copy of them to Train U-Net."""
    from napari_unet_weights._widgets.train.widget import TrainWidget

    image, _ = _add_scene(viewer)
    other = viewer.add_image(np.zeros((8, 8), np.float32), name="other")
    widget = _make_widget(viewer, fake_model)
    widget.image_layer = image
    assert not widget.snapshot_button.isEnabled()
    _run(widget, qtbot)
    assert widget.snapshot_button.isEnabled()
    widget.image_layer = other
    assert not widget.snapshot_button.isEnabled()
    widget.image_layer = image
    widget.labels_layer.data[0, :] = 7  # a correction
    widget.snapshot_button.click()
    train = next(w for w in viewer.window.dock_widgets.values() if isinstance(w, TrainWidget))
    (snapshot,) = train.training_set.snapshots
    assert snapshot.name == "cells" and snapshot.source is image
    np.testing.assert_array_equal(snapshot.labels, widget.labels_layer.data)
    assert snapshot.labels is not widget.labels_layer.data
    assert widget.status_label.text() == "Added 'cells' to the training set."
    viewer.layers.remove(widget.labels_layer)
    assert not widget.snapshot_button.isEnabled()
    assert errors == []


# -- with the real core (TensorFlow) ---------------------------------------------------------
def test_run_matches_the_core_and_rerun_replaces(viewer, qtbot, tiny_model):
    """The widget's layers are what the public API gives for the same file and image."""
    from napari_unet_weights import predict, segment

    image, _ = _add_scene(viewer)
    widget = _make_widget(viewer, tiny_model)
    _run(widget, qtbot)
    probability, labels = widget.probability_layer, widget.labels_layer
    assert probability is not None and labels is not None, widget.status_label.text()
    assert labels.name == "cells labels" and probability.name == "cells probability"
    for layer in (probability, labels):
        np.testing.assert_allclose(layer.scale, SCALE)
        np.testing.assert_allclose(layer.translate, TRANSLATE)
    expected = segment(image.data, str(tiny_model))
    assert expected.max() > 0
    np.testing.assert_array_equal(labels.data, expected)
    interior = predict(image.data, str(tiny_model))[..., 1]  # class 1 of 3: the interior
    np.testing.assert_allclose(probability.data, interior, atol=1e-6)
    assert f"{int(expected.max())} objects · " in widget.status_label.text()
    assert " s on CPU" in widget.status_label.text()
    count = len(viewer.layers)
    widget.min_size_spin.setValue(10**6)  # every object is smaller: none is left
    _run(widget, qtbot)
    assert len(viewer.layers) == count
    assert widget.labels_layer is labels and widget.probability_layer is probability
    assert np.count_nonzero(labels.data) == 0
    assert widget.status_label.text().startswith("0 objects · ")


def test_tta_checkbox_runs_test_time_augmentation(viewer, qtbot, tiny_model):
    """Checked, the widget's layers are segment / predict with tta=True."""
    from napari_unet_weights import predict, segment

    image, _ = _add_scene(viewer)
    widget = _make_widget(viewer, tiny_model)
    box = widget.tta_checkbox
    assert not box.isChecked() and box.text() == "Test-time augmentation (8× slower)"
    assert "8 orientations" in box.toolTip() and "8× slower" in box.toolTip()
    box.setChecked(True)
    _run(widget, qtbot)
    expected = segment(image.data, str(tiny_model), tta=True)
    assert expected.max() > 0, widget.status_label.text()
    np.testing.assert_array_equal(widget.labels_layer.data, expected)
    interior = predict(image.data, str(tiny_model), tta=True)[..., 1]
    np.testing.assert_allclose(widget.probability_layer.data, interior, atol=1e-6)
    plain = predict(image.data, str(tiny_model))[..., 1]
    assert np.abs(interior - plain).max() > 1e-3  # TTA changed the probabilities
    box.setChecked(False)
    _run(widget, qtbot)
    np.testing.assert_allclose(widget.probability_layer.data, plain, atol=1e-6)


def test_real_cancel_adds_nothing(viewer, qtbot, tiny_model):
    _add_scene(viewer, shape=(256, 256))
    before = list(viewer.layers)
    widget = _make_widget(viewer, tiny_model)
    widget.tile_combo.setCurrentText("256")
    widget.run()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)  # the result is in
    assert list(viewer.layers) == before
    assert widget.status_label.text() == "Cancelled: no layer was added or changed."


def test_stack_and_rgb_run(viewer, qtbot, tiny_model):
    """A stack of one plane twice, and that plane as grey RGB, give that plane's objects."""
    plane = noisy_image(_discs())
    flat = viewer.add_image(plane, name="plane")
    stack = viewer.add_image(np.stack([plane, plane]), name="stack")
    rgb = viewer.add_image(np.repeat(plane[..., None], 3, axis=-1), name="rgb", rgb=True)
    widget = _make_widget(viewer, tiny_model)
    found = {}
    for layer in (flat, stack, rgb):
        widget.image_layer = layer
        _run(widget, qtbot)
        assert widget.labels_layer.name == f"{layer.name} labels", widget.status_label.text()
        found[layer.name] = widget.labels_layer.data
    expected = found["plane"]
    assert expected.max() > 0
    assert found["stack"].shape == (2, *plane.shape)
    assert _same_objects(found["stack"][0], expected)
    assert _same_objects(found["stack"][1], expected)
    assert not set(np.unique(found["stack"][0])[1:]) & set(np.unique(found["stack"][1]))
    assert _same_objects(found["rgb"], expected)
    assert len(_outputs(viewer)) == 6


def test_unusable_model_file_is_notified_by_the_run(viewer, qtbot, tmp_path, errors, keras):
    _add_scene(viewer)
    path = tmp_path / "weights-missing.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(_metadata()))
    widget = _make_widget(viewer, path)
    _run(widget, qtbot)
    assert errors and "could not load" in errors[-1]
    assert not _outputs(viewer)


def test_unsupported_image_is_notified(viewer, qtbot, tiny_model, errors):
    viewer.add_image(_discs() > 0, name="mask")
    widget = _make_widget(viewer, tiny_model)
    _run(widget, qtbot)
    assert errors and "must hold numbers" in errors[-1]
    assert not _outputs(viewer)


def test_ui_stays_responsive(viewer, qtbot, fake_model, monkeypatch):
    """The GUI thread handles events while a batch runs: the run waits for one of them."""
    core = FakeCore(batches=3, pause_after=1, wait_s=3.0)
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    QTimer.singleShot(0, core.resume.set)  # fires only when the event loop runs
    _run(widget, qtbot)
    assert core.resumed == [True]
    assert len(_outputs(viewer)) == 2


def test_error_after_a_cancel_is_reported_as_an_error(viewer, qtbot, fake_model, errors):
    """Only PredictionCancelled reads as a cancellation; any other error is notified."""
    from napari_unet_weights.unet.predict import PredictionCancelled

    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    widget._stop.set()
    widget._on_error(widget._run_id, ValueError("the model file is damaged"))
    assert errors and "the model file is damaged" in errors[-1]
    widget._on_error(widget._run_id, PredictionCancelled())
    assert len(errors) == 1 and "Cancelled" in widget.status_label.text()


def test_new_image_data_during_a_run_adds_nothing(viewer, qtbot, fake_model, errors,
                                                  monkeypatch):
    core = FakeCore(batches=2, pause_after=1)
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    image, _ = _add_scene(viewer)
    before = list(viewer.layers)
    widget = _make_widget(viewer, fake_model)
    widget.run()
    assert core.paused.wait(TIMEOUT_MS / 1000)
    image.data = np.zeros((20, 30), dtype=np.float32)
    core.resume.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert list(viewer.layers) == before
    assert errors and "got new data while it was segmented" in errors[-1]


def test_missing_pixels_are_notified(viewer, qtbot, fake_model, fake_core, notifications):
    warned = notifications["warning"]
    image, _ = _add_scene(viewer)
    data = image.data.copy()
    data[:10, :10] = np.nan
    image.data = data
    widget = _make_widget(viewer, fake_model)
    _run(widget, qtbot)
    assert len(_outputs(viewer)) == 2
    assert len(warned) == 1 and "100 of 1920 pixels" in warned[0]
    assert warned[0].startswith("Segment: 'cells': ")


def test_channel_axis_is_left_to_the_core_unless_the_layer_is_rgb(viewer, qtbot, fake_model,
                                                                   fake_core):
    """A non-RGB layer lets the core read a trailing (H, W, 1|2) axis as channels."""
    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    _run(widget, qtbot)
    assert fake_core.calls[-1]["rgb"] is None
    rgb = viewer.add_image(np.zeros((40, 48, 3), dtype=np.uint8), name="colour", rgb=True)
    widget.image_combo.value = rgb
    _run(widget, qtbot)
    assert fake_core.calls[-1]["rgb"] is True


# -- nucleus diameter ----------------------------------------------------------------------
class SizingCore(FakeCore):
    """FakeCore whose runs with a diameter say which one was used."""

    def sizing(self, diameter):
        from napari_unet_weights.unet.diameter import Sizing

        if diameter is None:
            return None
        return Sizing(diameter, 20.0, 40.0, 0.5, 40.0 if diameter == "auto" else None)


def _diameter_model(tmp_path, median=20.0):
    """A fake model file (metadata only) that records its nuclei's median diameter."""
    path = tmp_path / "sized.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(
            {**_metadata(), "object_diameter": {"median": median, "n_objects": 9}}))
    return path


def test_diameter_control_reaches_the_core_and_the_status(viewer, qtbot, tmp_path,
                                                          monkeypatch):
    core = SizingCore()
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    _add_scene(viewer)
    widget = _make_widget(viewer, _diameter_model(tmp_path))
    choice = widget.diameter_choice
    assert choice.value() is None and not choice.number.isEnabled()  # as trained
    assert choice.number.value() == 20.0 and "20.0 px for this model" in choice.toolTip()
    assert (choice.number.minimum(), choice.number.maximum()) == (2.1, 199.9)
    _run(widget, qtbot)
    assert "diameter" not in core.calls[-1]  # as trained
    assert "diameter" not in widget.status_label.text()
    choice.set_value("auto")
    _run(widget, qtbot)
    assert core.calls[-1]["diameter"] == "auto" and core.calls[-1]["probabilities"]
    assert core.calls[-1]["threshold"] == widget.postprocess()["threshold"]
    assert "diameter auto: 40.0 px; resized ×0.5 to the model's 20.0 px" in (
        widget.status_label.text())
    assert len(_outputs(viewer)) == 2
    choice.set_value(33.5)
    assert choice.number.isEnabled()
    _run(widget, qtbot)
    assert core.calls[-1]["diameter"] == 33.5
    assert "3 objects" in widget.status_label.text()


def test_diameter_needs_a_model_that_records_it_and_an_in_memory_image(
        viewer, qtbot, fake_model, fake_core, errors, tmp_path):
    import dask.array as da

    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)  # no object_diameter in its metadata
    widget.diameter_choice.set_value(25)
    assert "only 'as trained'" in widget.diameter_choice.toolTip()
    widget.run()
    assert errors and "does not record the size of the nuclei" in errors[-1]
    assert not fake_core.calls and not _outputs(viewer)
    widget.choose_model_file(_diameter_model(tmp_path))
    widget.image_layer = viewer.add_image(da.zeros((64, 64), chunks=32), name="lazy")
    widget.run()
    assert "not available for large images" in errors[-1]
    assert not fake_core.calls


def test_auto_diameter_with_the_bundled_model(viewer, qtbot, keras):
    """A real run: the sample at twice its size, auto, labels of the image's shape."""
    from napari_unet_weights._sample_data import load_sample
    from napari_unet_weights.unet.diameter import resize_plane

    image = load_sample("nuclei_fluorescence")[0][:128, :128]
    layer = viewer.add_image(resize_plane(image, (256, 256)), name="twice")
    widget = _make_widget(viewer)
    widget.image_layer = layer
    widget.diameter_choice.set_value("auto")
    _run(widget, qtbot)
    assert widget.labels_layer.data.shape == (256, 256)
    assert widget.probability_layer.data.shape == (256, 256)
    assert widget.labels_layer.data.max() > 3
    assert re.search(r"diameter auto: \d+\.\d px; resized ×0\.\d+ to the model's 20\.3 px",
                     widget.status_label.text())
