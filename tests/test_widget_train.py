"""The "Train U-Net" dock widget: inputs, progress, plot, cancel, save, errors, a real tiny run."""

from __future__ import annotations

import dataclasses
import threading
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QFileDialog

from napari_unet_weights._widgets.train import widget as widget_module
from napari_unet_weights._widgets.train.plot import LOSS_COLOR, MAP_COLOR, VAL_LOSS_COLOR, LossPlot
from napari_unet_weights._widgets.train.widget import PREVIEW_SUFFIX, TrainWidget, status_text
from reference import (
    SCALE,
    TRANSLATE,
    brute_force_weight_map,
    discs,
    noisy_image,
    run_widget_script,
)

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def _discs(shape=(48, 48), centres=((12, 12), (12, 30), (34, 20)), radius=7) -> np.ndarray:
    """uint16 labels with one disc per centre (the first two 4 px apart)."""
    return discs(shape, centres, radius)


@pytest.fixture
def errors(notifications) -> list[str]:
    """Messages of the error notifications the widget showed."""
    return notifications["error"]


class FakeModel:
    """Stands in for ``UNetModel``: ``save`` writes a small file."""

    def __init__(self):
        self.metadata = {"n_classes": 3}

    def save(self, path):
        with open(path, "w") as handle:
            handle.write("fake model")


class FakeTrain:
    """A ``train`` that reports progress like the real one and polls ``should_stop``.

    With ``pause_after=n``, the ``n``-th batch sets ``paused`` and waits for ``resume``
    before it reports: the test acts while the training is known to be in that batch.
    """

    def __init__(self, pause_after: int | None = None):
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.calls: list[dict] = []
        self.batches = 0
        self.thread: threading.Thread | None = None

    def __call__(self, images, labels, config=None, *, progress=None, should_stop=None,
                 **kwargs):
        kwargs = {**(dataclasses.asdict(config) if config is not None else {}), **kwargs}
        self.calls.append({"images": images, "labels": labels, **kwargs})
        self.thread = threading.current_thread()
        epochs, steps = kwargs["epochs"], kwargs["steps_per_epoch"]
        rows, cancelled = [], False
        for epoch in range(1, epochs + 1):
            for step in range(1, steps + 1):
                if should_stop():
                    cancelled = True
                    break
                self.batches += 1
                if self.batches == self.pause_after:
                    self.paused.set()
                    assert self.resume.wait(TIMEOUT_MS / 1000)
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


def _row(widget: TrainWidget, index: int):
    return widget.data_source.pair_list.rows[index]


def _wait_done(widget, qtbot) -> None:
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def test_widget_does_not_import_tensorflow():
    """Constructing the widget (in a fresh interpreter) leaves TensorFlow unimported."""
    done = run_widget_script(
        "from napari_unet_weights._widgets.train.widget import TrainWidget\n"
        "widget = TrainWidget(ViewerModel())\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_defaults_match_the_training_configuration(viewer, qtbot):
    from napari_unet_weights.unet.config import TrainConfig

    defaults = dataclasses.asdict(TrainConfig())
    parameters = _make_widget(viewer, qtbot).parameters()
    assert set(parameters) <= set(defaults)
    for name, value in parameters.items():
        assert value == pytest.approx(defaults[name]), name


def test_the_choice_options_reach_the_training_configuration(viewer, qtbot):
    from napari_unet_weights.unet.config import TrainConfig

    widget = _make_widget(viewer, qtbot)
    chosen = {"colour": "hematoxylin", "class_weights": "balanced", "lr_schedule": "constant",
              "select_by": "val_loss"}  # none of them the default
    for name, value in chosen.items():
        combo = widget.choice_combos[name]
        combo.setCurrentIndex(combo.findData(value))
    config = TrainConfig(**widget.parameters())
    assert {name: getattr(config, name) for name in chosen} == chosen
    assert widget._weight_parameters()["class_weights"] == "balanced"  # the preview follows


def test_the_augmentation_options_reach_the_training_configuration(viewer, qtbot):
    from napari_unet_weights._widgets.common.controls import set_control_value
    from napari_unet_weights.unet.config import TrainConfig

    widget = _make_widget(viewer, qtbot)
    chosen = {"augment_noise": False, "augment_blur": False, "augment_stain": False,
              "augment_scale": 1.5}  # none of them the default
    for name, value in chosen.items():
        set_control_value(widget.augment_controls[name], value)
    config = TrainConfig(**widget.parameters())
    assert {name: getattr(config, name) for name in chosen} == chosen
    assert config.augment_objects and config.augment_intensity  # the others untouched


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
    assert _row(widget, 0).labels_combo.currentText() == "renamed"
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
    # Every batch report is plotted, at its fraction of the epoch, with its loss.
    expected = [((n - 1) // 4 + ((n - 1) % 4 + 1) / 4, 1.0 / (n + 1)) for n in range(1, 13)]
    np.testing.assert_allclose(widget.plot.batch_loss, expected)
    np.testing.assert_allclose(widget.plot.loss, [(1, 1.0), (2, 0.5), (3, 1 / 3)])
    assert [y for _, y in widget.plot.val_map] == pytest.approx([0.1, 0.2, 0.3])
    assert "Finished 3 epochs" in widget.status_label.text()
    assert "val mAP 0.300" in widget.status_label.text()
    assert "CPU (fake)" in widget.status_label.text()
    assert results == [widget.result] and widget.result.validation["map"] == pytest.approx(0.3)
    assert widget.save_button.isEnabled()
    assert list(viewer.layers) == layers_before


def test_status_text():
    batch = {"stage": "batch", "epoch": 3, "epochs": 30, "step": 12, "steps": 50,
             "loss": 0.412345}
    epoch = {"stage": "epoch", "epoch": 2, "epochs": 30, "loss": 0.5, "val_loss": 0.39,
             "val_map": float("nan")}
    text = status_text(batch, epoch, "GPU:0")
    assert text == "epoch 3/30 · step 12/50 · loss 0.4123 · val loss 0.39 · val mAP — · GPU:0"
    epoch["val_map"] = 0.51249
    assert status_text(None, epoch) == "epoch 2/30 · loss 0.5 · val loss 0.39 · val mAP 0.512"
    assert status_text(None, None) == "Starting…"


def _has_color(image, x: float, y: float, color: str, radius: int = 1, tolerance: int = 40):
    """Whether a pixel within ``radius`` of (x, y) (logical pixels) has about ``color``."""
    want = QColor(color)
    ratio = image.devicePixelRatio()
    cx, cy = round(x * ratio), round(y * ratio)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            got = image.pixelColor(cx + dx, cy + dy)
            if max(abs(got.red() - want.red()), abs(got.green() - want.green()),
                   abs(got.blue() - want.blue())) <= tolerance:
                return True
    return False


def test_plot_draws_each_series_where_its_axis_puts_it(qtbot):
    """Pixels of the painted plot: each point in its colour at hand-computed positions."""
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 180)
    plot.clear(epochs=4)
    plot.add_batch(0.5, 2.0)  # the largest loss: the left axis runs from 0 to 2
    plot.add_epoch(1, 1.0, None, float("nan"))
    plot.add_epoch(2, 0.5, 1.5, 0.5)
    image = plot.grab().toImage()

    # The frame inside MARGINS (44, 22, 40, 22): x 44…260 for epochs 0…4, y 158…22.
    def point(epoch, fraction):
        return 44 + 216 * epoch / 4, 158 - 136 * fraction

    assert _has_color(image, *point(1, 1.0 / 2), LOSS_COLOR)
    assert _has_color(image, *point(2, 0.5 / 2), LOSS_COLOR)
    assert _has_color(image, *point(1.5, 0.75 / 2), LOSS_COLOR)  # the line between them
    assert _has_color(image, *point(2, 1.5 / 2), VAL_LOSS_COLOR)
    assert _has_color(image, *point(2, 0.5), MAP_COLOR)  # the mAP on the right axis (0…1)
    for colour in (LOSS_COLOR, VAL_LOSS_COLOR, MAP_COLOR):  # nothing in an empty corner
        assert not _has_color(image, *point(3.5, 0.1), colour, radius=3)


def test_cancel_stops_within_a_batch_and_keeps_the_model(viewer, qtbot, monkeypatch, errors):
    _add_pair(viewer)
    fake = FakeTrain(pause_after=13)  # the 3rd batch of epoch 2
    monkeypatch.setattr(widget_module, "_load_train", lambda: fake)
    widget = _make_widget(viewer, qtbot, epochs=50, steps=10)
    layers_before = [(layer, np.array(layer.data)) for layer in viewer.layers]

    widget.start()
    assert fake.paused.wait(TIMEOUT_MS / 1000)
    widget.cancel()
    assert "Cancelling" in widget.status_label.text()
    assert not widget.stop_button.isEnabled()
    fake.resume.set()
    _wait_done(widget, qtbot)

    assert widget.result.cancelled
    assert fake.batches == 13  # the batch that ran when Cancel was pressed is the last
    assert widget.train_bar.value() == 13 and len(widget.plot.batch_loss) == 13
    assert "Cancelled after 1 epoch: kept the best model" in widget.status_label.text()
    assert widget.save_button.isEnabled() and widget.start_button.isEnabled()
    assert errors == []
    assert [layer for layer, _ in layers_before] == list(viewer.layers)
    for layer, data in layers_before:
        np.testing.assert_array_equal(layer.data, data)


def test_save_writes_file(viewer, qtbot, monkeypatch, notifications, tmp_path):
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
    assert "validation mAP 0.100" in widget.result_label.text()
    assert notifications["error"] == []
    assert notifications["info"] == [f"Train U-Net: model saved to {saved}"]


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
        _row(widget, 0).set_layers(image, small)
        expected = "'cells' has shape (48, 48) but labels 'small' have shape (40, 48)"
    elif problem == "image as labels":
        mask = viewer.add_image(labels.data.astype(np.int32), name="mask")
        _row(widget, 0).set_layers(image, mask)
        expected = "'mask' (pair 1) is an Image layer"
    else:
        (tmp_path / "images").mkdir()
        widget.choose_folder(str(tmp_path))
        assert widget.data_source.use_folder
        expected = "no labels/ subfolder"
    widget.start()
    assert not widget.running
    assert fake.calls == []
    assert len(errors) == 1 and expected in errors[0], errors
    assert errors[0].startswith("Train U-Net: ")
    assert expected in widget.status_label.text()


def test_errors_from_train_notify(viewer, qtbot, monkeypatch, errors):
    _add_pair(viewer)
    widget = _make_widget(viewer, qtbot)

    def bad_train(*args, **kwargs):
        raise ValueError("patch_size 128 is larger than the smallest image (48, 48)")

    monkeypatch.setattr(widget_module, "_load_train", lambda: bad_train)
    widget.start()
    _wait_done(widget, qtbot)
    assert errors == ["Train U-Net: Training failed: patch_size 128 is larger than the "
                      "smallest image (48, 48)"]
    assert widget.result is None and widget.start_button.isEnabled()

    def no_tensorflow():
        raise ImportError("the U-Net needs TensorFlow and Keras 3, which are not installed: "
                          'pip install "napari-unet-weights[unet]"')

    monkeypatch.setattr(widget_module, "_load_train", no_tensorflow)
    widget.start()
    _wait_done(widget, qtbot)
    assert len(errors) == 2 and "TensorFlow" in errors[1] and "pip install" in errors[1]


def test_weight_preview(viewer, qtbot, errors):
    """The preview is the U-Net weight map of the first labels (no touching objects here)."""
    _image_layer, labels = _add_pair(viewer)
    widget = _make_widget(viewer, qtbot)
    active = viewer.layers.selection.active
    widget.preview_weights()
    name = f"{labels.name}{PREVIEW_SUFFIX}"
    qtbot.waitUntil(lambda: name in viewer.layers and not widget.busy, timeout=TIMEOUT_MS)
    preview = viewer.layers[name]
    np.testing.assert_allclose(preview.data, brute_force_weight_map(
        labels.data, class_weights="none"), atol=1e-3)  # the training default
    np.testing.assert_allclose(preview.scale, SCALE)
    np.testing.assert_allclose(preview.translate, TRANSLATE)
    assert viewer.layers.selection.active is active
    assert preview not in [image for image, _ in widget.pairs]
    combo = _row(widget, 0).image_combo
    assert all(combo.itemData(i) is not preview for i in range(combo.count()))

    widget.w0_spin.setValue(20.0)  # the shown preview follows the parameters
    combo = widget.choice_combos["class_weights"]
    combo.setCurrentIndex(combo.findData("balanced"))
    expected = brute_force_weight_map(labels.data, w0=20.0)
    qtbot.waitUntil(lambda: not widget.busy and np.allclose(preview.data, expected, atol=1e-3),
                    timeout=TIMEOUT_MS)
    widget.weights_checkbox.setChecked(False)  # plain cross-entropy: every weight is 1
    qtbot.waitUntil(lambda: not widget.busy and np.array_equal(preview.data, np.ones((48, 48))),
                    timeout=TIMEOUT_MS)
    assert sum(layer.name == name for layer in viewer.layers) == 1
    assert errors == []


def test_real_tiny_training(keras, viewer, qtbot, errors, tmp_path):
    """One real run through the widget: 2 images of 32×32, depth 2, 1 epoch of 2 steps."""
    from napari_unet_weights.unet.model_file import read_metadata

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
    result = widget.result
    assert not result.cancelled and len(result.history) == 1
    assert len(result.split["train"]) == 1 and len(result.split["validation"]) == 1
    # What the plot and the bar show is what the run reported: 2 batches, 1 epoch.
    assert len(widget.plot.batch_loss) == 2 and widget.train_bar.value() == 2
    np.testing.assert_allclose(widget.plot.loss, [(1, result.history["loss"].iloc[0])])
    path = widget.save_model(tmp_path / "tiny")
    assert path == tmp_path / "tiny.keras"
    recorded = read_metadata(path)
    assert {key: recorded["training"][key] for key in
            ("epochs", "steps_per_epoch", "batch_size", "patch_size", "depth", "base_filters",
             "validation_fraction")} == {
        "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 32, "depth": 2,
        "base_filters": 4, "validation_fraction": 0.5}
    assert recorded["validation"]["map"] == pytest.approx(result.validation["map"])


def test_settings_the_configuration_refuses_are_said_before_anything_starts(
        viewer, qtbot, monkeypatch, errors):
    """A 40-pixel patch does not fit a depth-4 U-Net (multiples of 16): nothing runs."""
    fake = FakeTrain()
    monkeypatch.setattr(widget_module, "_load_train", lambda: fake)
    _add_pair(viewer)
    widget = _make_widget(viewer, qtbot, patch=40, depth=4)
    widget.start()
    assert not widget.running and fake.calls == []
    assert errors and "patch_size must be a multiple of 2**depth = 16" in errors[-1]


def test_controls_take_their_limits_and_help_from_the_configuration(viewer, qtbot):
    from napari_unet_weights.unet.config import TrainConfig

    widget = _make_widget(viewer, qtbot)
    assert widget.sigma_spin.minimum() > 0  # sigma > 0
    assert widget.validation_spin.minimum() > 0 and widget.validation_spin.maximum() < 1
    assert widget.dropout_spin.maximum() < 1
    assert widget.seed_spin.minimum() == 0 and widget.patch_spin.minimum() == 16
    assert TrainConfig.parameter("seed").help in widget.seed_spin.toolTip().lower()
