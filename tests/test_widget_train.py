"""The "Train U-Net" dock widget: inputs, progress, cancel, save, errors, a real tiny run."""

from __future__ import annotations

import inspect
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytest.importorskip("qtpy")

from qtpy.QtWidgets import QFileDialog

from napari_unet_weights._widgets import train as widget_module
from napari_unet_weights._widgets.train import PREVIEW_SUFFIX, LossPlot, TrainWidget, status_text
from reference import SCALE, TRANSLATE, discs, noisy_image, run_widget_script

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def _discs(shape=(48, 48), centres=((12, 12), (12, 30), (34, 20)), radius=7) -> np.ndarray:
    """uint16 labels with one disc per centre (the first two nearly touch)."""
    return discs(shape, centres, radius)


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    """Messages passed to napari's show_error by the widget."""
    messages: list[str] = []
    monkeypatch.setattr(widget_module, "show_error", messages.append)
    monkeypatch.setattr(widget_module, "show_info", lambda _message: None)
    return messages


class FakeModel:
    """Stands in for ``UNetModel``: ``save`` writes a small file."""

    def __init__(self):
        self.metadata = {"n_classes": 3}

    def save(self, path):
        with open(path, "w") as handle:
            handle.write("fake model")


class FakeTrain:
    """A ``train`` that reports progress like the real one and polls ``should_stop``.

    Each batch waits ``delay`` seconds, or until ``gate`` is set if one is given.
    """

    def __init__(self, delay: float = 0.005, gate: threading.Event | None = None):
        self.delay = delay
        self.gate = gate
        self.calls: list[dict] = []
        self.batches = 0
        self.thread: threading.Thread | None = None

    def __call__(self, images, labels, *, progress=None, should_stop=None, **kwargs):
        self.calls.append({"images": images, "labels": labels, **kwargs})
        self.thread = threading.current_thread()
        epochs, steps = kwargs["epochs"], kwargs["steps_per_epoch"]
        rows, cancelled = [], False
        for epoch in range(1, epochs + 1):
            for step in range(1, steps + 1):
                if should_stop():
                    cancelled = True
                    break
                if self.gate is not None:
                    self.gate.wait(5)
                time.sleep(self.delay)
                self.batches += 1
                progress({"stage": "batch", "epoch": epoch, "epochs": epochs, "step": step,
                          "steps": steps, "loss": 1.0 / (self.batches + 1)})
            if cancelled:
                break
            row = {"epoch": epoch, "loss": 1.0 / epoch, "val_loss": 1.2 / epoch,
                   "val_map": 0.1 * epoch}
            rows.append(row)
            progress({"stage": "epoch", "epochs": epochs, **row})
        return SimpleNamespace(
            model=FakeModel(), history=pd.DataFrame(rows, columns=list(row)),
            validation={"map": 0.1 * len(rows)}, split=None, cancelled=cancelled, path=None,
            device="CPU (fake)",
        )


def _add_pair(viewer, shape=(48, 48), name="cells"):
    labels = _discs(shape)
    kwargs = {"scale": SCALE, "translate": TRANSLATE}
    image = viewer.add_image(noisy_image(labels), name=name, **kwargs)
    return image, viewer.add_labels(labels, name=f"{name} labels", **kwargs)


def _make_widget(viewer, qtbot, **parameters) -> TrainWidget:
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train U-Net")
    for name, value in parameters.items():
        getattr(widget, f"{name}_spin").setValue(value)
    return widget


def _wait_done(widget, qtbot) -> None:
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def test_widget_does_not_import_tensorflow():
    """Constructing the widget (in a fresh interpreter) leaves TensorFlow unimported."""
    done = run_widget_script(
        "from napari_unet_weights._widgets.train import TrainWidget\n"
        "widget = TrainWidget(ViewerModel())\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_defaults_match_train_signature(viewer, qtbot):
    train_module = pytest.importorskip("napari_unet_weights.unet.train")
    defaults = {
        name: p.default for name, p in inspect.signature(train_module.train).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    parameters = _make_widget(viewer, qtbot).parameters()
    assert set(parameters) <= set(defaults)
    for name, value in parameters.items():
        assert value == pytest.approx(defaults[name]), name


def test_starts_with_a_guessed_pair(viewer, qtbot):
    image, labels = _add_pair(viewer)
    viewer.add_image(np.zeros((8, 8), np.float32), name="other")
    widget = _make_widget(viewer, qtbot)
    assert widget.pairs == [(image, labels)]
    assert not widget.running
    assert not widget.save_button.isEnabled()
    assert widget.start_button.isEnabled()

    # Pickers follow renames, additions and removals.
    labels.name = "renamed"
    assert widget._pairs[0].labels_combo.currentText() == "renamed"
    image2, labels2 = _add_pair(viewer, name="more")
    widget.add_pair()
    assert widget.pairs[1] == (image2, labels2)
    viewer.layers.remove(labels2)
    assert widget.pairs[1][1] is not labels2
    widget.remove_pair(1)
    assert widget.pairs == [(image, labels)]


def test_training_reports_progress(viewer, qtbot, monkeypatch, errors):
    image, labels = _add_pair(viewer)
    fake = FakeTrain()
    monkeypatch.setattr(widget_module, "_load_train", lambda: fake)
    widget = _make_widget(viewer, qtbot, epochs=3, steps=4)
    widget.w0_spin.setValue(7.0)
    results = []
    widget.trained.connect(results.append)
    layers_before = list(viewer.layers)

    widget.start()
    assert widget.running and not widget.start_button.isEnabled()
    _wait_done(widget, qtbot)

    assert errors == []
    call = fake.calls[0]
    assert fake.thread is not threading.main_thread()
    np.testing.assert_array_equal(call["labels"][0], labels.data)
    np.testing.assert_array_equal(call["images"][0], image.data)
    assert call["labels"][0] is not labels.data  # a snapshot
    assert call["w0"] == 7.0 and call["epochs"] == 3 and call["steps_per_epoch"] == 4
    assert call["n_classes"] == 3 and call["use_weights"] is True
    assert widget.train_bar.maximum() == 12 and widget.train_bar.value() == 12
    assert len(widget.plot.batch_loss) == 12
    assert [x for x, _ in widget.plot.loss] == [1, 2, 3]
    assert [y for _, y in widget.plot.val_map] == pytest.approx([0.1, 0.2, 0.3])
    assert "Finished 3 epochs" in widget.status_label.text()
    assert "val mAP 0.3" in widget.status_label.text()
    assert "CPU (fake)" in widget.status_label.text()
    assert results == [widget.result] and widget.result.validation["map"] == pytest.approx(0.3)
    assert widget.save_button.isEnabled()
    assert list(viewer.layers) == layers_before


def test_status_text():
    batch = {"stage": "batch", "epoch": 3, "epochs": 30, "step": 12, "steps": 50, "loss": 0.41}
    epoch = {"stage": "epoch", "epoch": 2, "epochs": 30, "loss": 0.5, "val_loss": 0.39,
             "val_map": float("nan")}
    text = status_text(batch, epoch, "GPU:0")
    assert text == ("epoch 3/30 · step 12/50 · loss 0.41 · val loss 0.39 · val mAP — · GPU:0")
    assert status_text(None, None) == "Starting…"


def test_plot_paints(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 180)
    plot.grab()  # empty
    plot.clear(epochs=2)
    plot.add_batch(0.5, 1.0)
    plot.add_epoch(1, 0.8, None, float("nan"))
    plot.add_epoch(2, 0.6, 0.7, 0.4)
    assert len(plot.val_loss) == 1 and len(plot.val_map) == 1
    assert not plot.grab().isNull()


def test_cancel_keeps_best_model_and_layers(viewer, qtbot, monkeypatch, errors):
    _add_pair(viewer)
    gate = threading.Event()
    fake = FakeTrain(delay=0.0, gate=gate)
    monkeypatch.setattr(widget_module, "_load_train", lambda: fake)
    widget = _make_widget(viewer, qtbot, epochs=50, steps=10)
    layers_before = [(layer, np.array(layer.data)) for layer in viewer.layers]

    widget.start()
    gate.set()
    qtbot.waitUntil(lambda: len(widget.plot.loss) >= 2, timeout=TIMEOUT_MS)
    gate.clear()  # hold the next batch until cancelled
    widget.cancel()
    assert "Cancelling" in widget.status_label.text()
    assert not widget.stop_button.isEnabled()
    gate.set()
    _wait_done(widget, qtbot)

    assert widget.result.cancelled
    assert fake.batches < 50 * 10
    assert "Cancelled after" in widget.status_label.text()
    assert widget.save_button.isEnabled() and widget.start_button.isEnabled()
    assert errors == []
    assert [layer for layer, _ in layers_before] == list(viewer.layers)
    for layer, data in layers_before:
        np.testing.assert_array_equal(layer.data, data)


def test_save_writes_file(viewer, qtbot, monkeypatch, errors, tmp_path):
    _add_pair(viewer)
    monkeypatch.setattr(widget_module, "_load_train", lambda: FakeTrain())
    widget = _make_widget(viewer, qtbot, epochs=1, steps=2)
    widget.start()
    _wait_done(widget, qtbot)
    target = tmp_path / "model"  # .keras is appended
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(target), "Keras model (*.keras)"))
    widget.save_button.click()
    saved = tmp_path / "model.keras"
    assert saved.read_text() == "fake model"
    assert widget.saved_path == saved
    assert str(saved) in widget.result_label.text()
    assert "validation mAP 0.1" in widget.result_label.text()
    assert errors == []


@pytest.mark.parametrize("problem", ["no pairs", "shape", "image as labels", "folder"])
def test_bad_inputs_notify(viewer, qtbot, monkeypatch, errors, problem, tmp_path):
    fake = FakeTrain()
    monkeypatch.setattr(widget_module, "_load_train", lambda: fake)
    image, labels = _add_pair(viewer)
    widget = _make_widget(viewer, qtbot)
    if problem == "no pairs":
        widget.remove_pair(0)
        expected = "at least one"
    elif problem == "shape":
        small = viewer.add_labels(_discs((40, 48)), name="small")
        widget._pairs[0].set_layers(image, small)
        expected = "'cells' has shape (48, 48) but labels 'small' have shape (40, 48)"
    elif problem == "image as labels":
        mask = viewer.add_image(labels.data.astype(np.int32), name="mask")
        widget._pairs[0].set_layers(image, mask)
        expected = "'mask' (pair 1) is an Image layer"
    else:
        (tmp_path / "images").mkdir()
        widget.choose_folder(str(tmp_path))
        assert widget.use_folder
        expected = "no labels/ subfolder"
    widget.start()
    assert not widget.running
    assert fake.calls == []
    assert len(errors) == 1 and expected in errors[0], errors
    assert expected in widget.status_label.text()


def test_errors_from_train_notify(viewer, qtbot, monkeypatch, errors):
    _add_pair(viewer)
    widget = _make_widget(viewer, qtbot)

    def bad_train(*args, **kwargs):
        raise ValueError("patch_size 128 is larger than the smallest image (48, 48)")

    monkeypatch.setattr(widget_module, "_load_train", lambda: bad_train)
    widget.start()
    _wait_done(widget, qtbot)
    assert len(errors) == 1 and "patch_size 128 is larger" in errors[0]
    assert widget.result is None and widget.start_button.isEnabled()

    def no_tensorflow():
        raise ImportError("the U-Net needs TensorFlow and Keras 3, which are not installed: "
                          'pip install "napari-unet-weights[unet]"')

    monkeypatch.setattr(widget_module, "_load_train", no_tensorflow)
    widget.start()
    _wait_done(widget, qtbot)
    assert len(errors) == 2 and "TensorFlow" in errors[1] and "pip install" in errors[1]


def test_weight_preview(viewer, qtbot, errors):
    targets = pytest.importorskip("napari_unet_weights.unet.targets")
    _image_layer, labels = _add_pair(viewer)
    widget = _make_widget(viewer, qtbot)
    active = viewer.layers.selection.active
    widget.preview_weights()
    name = f"{labels.name}{PREVIEW_SUFFIX}"
    qtbot.waitUntil(lambda: name in viewer.layers and not widget.busy, timeout=TIMEOUT_MS)
    preview = viewer.layers[name]
    expected = targets.training_weights(labels.data, 3, 10.0, 5.0, True)
    np.testing.assert_allclose(preview.data, expected)
    np.testing.assert_allclose(preview.scale, SCALE)
    np.testing.assert_allclose(preview.translate, TRANSLATE)
    assert viewer.layers.selection.active is active
    assert preview not in [image for image, _ in widget.pairs]
    assert all(widget._pairs[0].image_combo.itemData(i) is not preview
               for i in range(widget._pairs[0].image_combo.count()))

    widget.w0_spin.setValue(20.0)  # the shown preview follows the parameters
    expected = targets.training_weights(labels.data, 3, 20.0, 5.0, True)
    qtbot.waitUntil(lambda: not widget.busy and np.allclose(preview.data, expected),
                    timeout=TIMEOUT_MS)
    assert sum(layer.name == name for layer in viewer.layers) == 1
    assert errors == []


def test_real_tiny_training(keras, viewer, qtbot, errors, tmp_path):
    """One real run through the widget: 2 images of 32×32, depth 2, 1 epoch of 2 steps."""
    for seed in range(2):
        labels = _discs((32, 32), centres=((9, 9), (9, 22), (23, 16)), radius=5 + seed)
        viewer.add_image(noisy_image(labels, seed), name=f"img{seed}")
        viewer.add_labels(labels, name=f"lab{seed}")
    widget = _make_widget(viewer, qtbot, epochs=1, steps=2, batch=2, patch=32, depth=2,
                          filters=4, validation=0.5)
    widget.add_pair()
    assert len(widget.pairs) == 2 and widget.pairs[1][0].name == "img1"
    widget.start()
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert errors == []
    assert widget.result is not None and widget.result.model is not None
    assert widget.plot.batch_loss and widget.train_bar.value() == 2
    path = widget.save_model(tmp_path / "tiny.keras")
    assert path is not None and path.is_file()
