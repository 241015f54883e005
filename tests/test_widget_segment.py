"""The "Segment" dock widget: outputs, re-runs, cancel, errors, model info, hand-offs."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("qtpy")

from napari_unet_weights._widgets import segment as widget_module
from napari_unet_weights._widgets.evaluate import EvaluateWidget
from napari_unet_weights._widgets.segment import (
    BUNDLED_CHOICE,
    NO_GPU_TIP,
    OUTPUT_KEY,
    SegmentWidget,
)
from napari_unet_weights._widgets.weight_map import WeightMapWidget
from napari_unet_weights.unet.model_file import BUNDLED_MODEL, METADATA_ENTRY
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS, to_instances
from napari_unet_weights.unet.predict import DEFAULT_INPUT, DEFAULT_NORMALIZATION
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
def errors(monkeypatch) -> list[str]:
    """Messages the widget passed to napari's show_error."""
    messages: list[str] = []
    monkeypatch.setattr(widget_module, "show_error", messages.append)
    return messages


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

    Probabilities are 3-class: interior where the image is bright. Each batch waits
    until ``gate`` is set when one is given, then ``delay`` seconds.
    """

    def __init__(self, batches: int = 3, gate: threading.Event | None = None,
                 gpu: bool = False, delay: float = 0.0):
        self.batches = batches
        self.delay = delay
        self.gate = gate
        self.gpu = gpu
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
            if self.gate is not None:
                self.gate.wait(5)
            time.sleep(self.delay)
            self.done += 1
            progress(index + 1, self.batches)
        gray = np.asarray(image, dtype=np.float32)
        gray = gray.mean(axis=-1) if kwargs.get("rgb") else gray
        inside = gray > 0.5
        probabilities = np.zeros((*gray.shape, 3), dtype=np.float32)
        probabilities[..., 0] = ~inside
        probabilities[..., 1] = inside
        return probabilities

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
    return [layer for layer in viewer.layers if OUTPUT_KEY in layer.metadata]


# -- without TensorFlow ----------------------------------------------------------------------
def test_widget_does_not_import_tensorflow():
    """Constructing the widget (in a fresh interpreter) leaves TensorFlow unimported."""
    done = run_widget_script(
        "from napari_unet_weights._widgets.segment import SegmentWidget\n"
        "viewer = ViewerModel()\n"
        "import numpy\nviewer.add_image(numpy.eye(8))\n"
        "widget = SegmentWidget(viewer)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_model_info_shows_recorded_score_and_postprocess(viewer, fake_model):
    widget = _make_widget(viewer, fake_model)
    assert "0.432" in widget.model_label.text()
    assert "interior" in widget.model_label.text()
    expected = _metadata()["postprocess"]
    assert widget.postprocess() == pytest.approx(expected)
    assert widget.model_path == fake_model
    widget.choose_model_file(str(fake_model))  # the same file again: no second entry
    assert widget.model_combo.count() == 2


def test_bundled_model_missing_is_said(viewer, errors, tmp_path, monkeypatch):
    monkeypatch.setattr(widget_module, "BUNDLED_MODEL", tmp_path / "not_installed.keras")
    _add_scene(viewer)
    widget = _make_widget(viewer)
    assert widget.model_combo.currentText() == BUNDLED_CHOICE
    assert "not installed" in widget.model_label.text()
    widget.run()
    assert errors and "bundled" in errors[-1]
    assert not _outputs(viewer)


def test_bundled_model_info(viewer):
    if not BUNDLED_MODEL.exists():
        pytest.skip("the bundled model is not installed")
    _add_scene(viewer)
    widget = _make_widget(viewer)
    assert "validation mAP 0." in widget.model_label.text()
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
    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    assert widget.gpu_checkbox.isEnabled()
    _run(widget, qtbot)
    assert fake_core.calls[0]["use_gpu"] is False  # no GPU seen: asked for CPU
    assert fake_core.calls[0]["tile_shape"] is None
    assert widget.progress_bar.maximum() == fake_core.batches
    assert not widget.gpu_checkbox.isEnabled() and not widget.gpu_checkbox.isChecked()
    assert widget.gpu_checkbox.toolTip() == NO_GPU_TIP
    assert "s on CPU" in widget.status_label.text()
    assert "3 objects" in widget.status_label.text()
    names = [layer.name for layer in _outputs(viewer)]
    assert names == ["cells probability", "cells labels"]


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
    gate = threading.Event()
    core = FakeCore(batches=50, gate=gate, delay=0.05)
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    _add_scene(viewer)
    before = list(viewer.layers)
    widget = _make_widget(viewer, fake_model)
    widget.run()
    assert widget.busy and not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=TIMEOUT_MS)
    gate.set()
    qtbot.waitUntil(lambda: core.done >= 2, timeout=TIMEOUT_MS)
    widget.cancel()
    done_at_cancel = core.done
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert core.done <= done_at_cancel + 1
    assert list(viewer.layers) == before
    assert "Cancelled" in widget.status_label.text()
    assert not widget.weight_map_button.isEnabled()


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


# -- with the real core (TensorFlow) ---------------------------------------------------------
def test_run_matches_the_core_and_rerun_replaces(viewer, qtbot, tiny_model):
    from napari_unet_weights.unet.predict import segment

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
    assert probability.data.shape == image.data.shape
    assert " s on " in widget.status_label.text()
    count = len(viewer.layers)
    widget.min_size_spin.setValue(10**6)
    _run(widget, qtbot)
    assert len(viewer.layers) == count
    assert widget.labels_layer is labels and widget.probability_layer is probability
    assert labels.data.max() == 0


def test_real_cancel_adds_nothing(viewer, qtbot, tiny_model):
    _add_scene(viewer, shape=(256, 256))
    before = list(viewer.layers)
    widget = _make_widget(viewer, tiny_model)
    widget.tile_combo.setCurrentText("256")
    widget.run()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert list(viewer.layers) == before


def test_stack_and_rgb_run(viewer, qtbot, tiny_model):
    labels = _discs()
    stack = viewer.add_image(np.stack([noisy_image(labels)] * 2), name="stack")
    rgb = viewer.add_image(np.repeat(noisy_image(labels)[..., None], 3, axis=-1), name="rgb",
                           rgb=True)
    widget = _make_widget(viewer, tiny_model)
    for layer, shape in ((stack, (2, *labels.shape)), (rgb, labels.shape)):
        widget.image_layer = layer
        _run(widget, qtbot)
        assert widget.labels_layer.data.shape == shape, widget.status_label.text()
        assert widget.labels_layer.name == f"{layer.name} labels"
    assert len(_outputs(viewer)) == 4


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
    core = FakeCore(batches=10, delay=0.05)
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    _add_scene(viewer)
    widget = _make_widget(viewer, fake_model)
    ticks = []
    from qtpy.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    _run(widget, qtbot)
    timer.stop()
    assert len(ticks) >= 5


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
    gate = threading.Event()
    core = FakeCore(batches=2, gate=gate)
    monkeypatch.setattr(widget_module, "_load_core", lambda: core)
    image, _ = _add_scene(viewer)
    before = list(viewer.layers)
    widget = _make_widget(viewer, fake_model)
    widget.run()
    qtbot.waitUntil(lambda: widget.running, timeout=TIMEOUT_MS)
    image.data = np.zeros((20, 30), dtype=np.float32)
    gate.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert list(viewer.layers) == before
    assert errors and "got new data while it was segmented" in errors[-1]


def test_missing_pixels_are_notified(viewer, qtbot, fake_model, fake_core, monkeypatch):
    warned: list[str] = []
    monkeypatch.setattr(widget_module, "show_warning", warned.append)
    image, _ = _add_scene(viewer)
    data = image.data.copy()
    data[:10, :10] = np.nan
    image.data = data
    widget = _make_widget(viewer, fake_model)
    _run(widget, qtbot)
    assert len(_outputs(viewer)) == 2
    assert len(warned) == 1 and "100 of 1920 pixels" in warned[0] and "cells" in warned[0]


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
