"""The widgets' "Export…" (Segment, beside its model picker; Train U-Net): a bioimage.io package.

Most tests replace :func:`napari_unet_weights.share.export.export_model` (the seam the
widgets call) with a fake that records its arguments; the cancel tests wrap the real one,
and one slow test exports the bundled model for real and segments with the package.
"""

from __future__ import annotations

import json
import sys
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtWidgets import QFileDialog

from napari_unet_weights._widgets.common.export_model import FILE_FILTER
from napari_unet_weights._widgets.segment.widget import SegmentWidget
from napari_unet_weights._widgets.train import widget as train_module
from napari_unet_weights._widgets.train.widget import TrainWidget
from napari_unet_weights.runtime.progress import check_stop
from napari_unet_weights.share import export
from napari_unet_weights.unet.model_file import BUNDLED_MODEL, METADATA_ENTRY
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION
from reference import discs, noisy_image

pytestmark = pytest.mark.gui

TIMEOUT_MS = 20_000
REAL_EXPORT_TIMEOUT_MS = 600_000  # a whole export (about 10 s alone) on busy shared cores
PIP = 'pip install "napari-unet-weights[export]"'


class FakeExport:
    """Stands in for ``export_model``: reports the steps, polls ``should_stop``, writes a
    small file; records its arguments and thread. ``error`` is raised instead."""

    def __init__(self, error: Exception | None = None):
        self.error = error
        self.calls: list[dict] = []
        self.reports: list[tuple] = []

    def __call__(self, model, path, *, name=None, progress=None, should_stop=None):
        self.calls.append({"model": model, "path": Path(path), "name": name,
                           "thread": threading.current_thread()})
        if self.error is not None:
            raise self.error
        for done, phase in enumerate(export.STEPS):
            check_stop(should_stop, "cancelled")
            progress(done, len(export.STEPS), phase)
            self.reports.append((done, phase))
        Path(path).write_bytes(b"PK fake package")
        progress(len(export.STEPS), len(export.STEPS), "done")
        return Path(path)


@pytest.fixture
def fake_export(monkeypatch) -> FakeExport:
    fake = FakeExport()
    monkeypatch.setattr(export, "export_model", fake)
    return fake


@pytest.fixture
def dialog(monkeypatch):
    """The save dialog: answers ``dialog.answer`` (None: cancelled) and records its calls."""
    state = SimpleNamespace(answer=None, calls=[])

    def ask(parent, caption, start, file_filter):
        state.calls.append({"start": Path(start), "filter": file_filter})
        return (str(state.answer) if state.answer is not None else "", file_filter)

    monkeypatch.setattr(QFileDialog, "getSaveFileName", ask)
    return state


def _metadata() -> dict:
    return {"format": "napari-unet-weights model", "format_version": 1, "n_classes": 3,
            "classes": ["background", "interior", "boundary"], "input": dict(DEFAULT_INPUT),
            "normalization": dict(DEFAULT_NORMALIZATION),
            "architecture": {"type": "unet2d", "n_channels": 1, "depth": 2, "base_filters": 4,
                             "multiple": 4},
            "postprocess": dict(DEFAULT_POSTPROCESS), "validation": {"map": 0.5, "n_images": 3}}


def _model_file(path: Path) -> Path:
    """A file with our metadata entry only: enough for the picker, not for Keras."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(_metadata()))
    return path


def _segment_widget(viewer) -> SegmentWidget:
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    return widget


def _wait(exporter, qtbot, timeout=TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: not exporter.running, timeout=timeout)


# -- Segment: the model picked ---------------------------------------------------------------
@pytest.mark.parametrize("picked", ["bundled", "file"])
def test_segment_exports_the_picked_model(viewer, qtbot, fake_export, dialog, notifications,
                                          tmp_path, picked):
    widget = _segment_widget(viewer)
    model = BUNDLED_MODEL
    if picked == "file":
        model = _model_file(tmp_path / "my model.keras")
        widget.choose_model_file(model)
    dialog.answer = tmp_path / "shared"  # ".zip" is appended
    exported = []
    widget.exporter.exported.connect(exported.append)
    widget.exporter.button.click()
    _wait(widget.exporter, qtbot)

    target = tmp_path / "shared.zip"
    assert dialog.calls == [{"start": Path.home() / f"{model.stem}.zip", "filter": FILE_FILTER}]
    assert FILE_FILTER == "bioimage.io model (*.zip)"
    [call] = fake_export.calls
    assert call["model"] == model and call["path"] == target
    assert call["thread"] is not threading.main_thread()
    assert target.read_bytes() == b"PK fake package" and exported == [target]
    assert notifications["error"] == []
    [info] = notifications["info"]
    assert info.startswith(f"Segment: model exported to {target} (a bioimage.io package).")
    for consumer in ("deepImageJ", "ilastik", "bioimage.io", f"bioimageio test {target}"):
        assert consumer in info
    assert widget.exporter.status_label.text() == f"Exported to {target}."
    assert widget.exporter.progress_bar.value() == len(export.STEPS)
    assert widget.exporter.button.isEnabled() and widget.exporter.progress_bar.isHidden()
    # the next dialog starts where the last package went (cancelled: no second export)
    dialog.answer = None
    widget.exporter.button.click()
    assert dialog.calls[-1]["start"] == tmp_path / f"{model.stem}.zip"
    assert len(fake_export.calls) == 1


def test_progress_reaches_the_bar(viewer, qtbot, monkeypatch, dialog, tmp_path):
    """Each step's report moves the bar and names the step, on the GUI thread."""
    widget = _segment_widget(viewer)
    paused, resume = threading.Event(), threading.Event()

    def pausing(model, path, *, progress=None, should_stop=None, **_):
        progress(2, 5, "Keras weights")
        paused.set()
        resume.wait(TIMEOUT_MS / 1000)
        return Path(path)

    monkeypatch.setattr(export, "export_model", pausing)
    dialog.answer = tmp_path / "p.zip"
    widget.exporter.button.click()
    qtbot.waitUntil(paused.is_set, timeout=TIMEOUT_MS)
    bar = widget.exporter.progress_bar
    qtbot.waitUntil(lambda: bar.value() == 2, timeout=TIMEOUT_MS)
    assert bar.maximum() == 5 and bar.text() == "Keras weights (2 / 5)"
    assert not bar.isHidden() and not widget.exporter.cancel_button.isHidden()
    assert not widget.exporter.button.isEnabled()  # one export at a time
    resume.set()
    _wait(widget.exporter, qtbot)
    assert widget.exporter.button.isEnabled() and widget.exporter.cancel_button.isHidden()


def test_dialog_cancelled_exports_nothing(viewer, fake_export, dialog, notifications):
    widget = _segment_widget(viewer)
    widget.exporter.button.click()
    assert len(dialog.calls) == 1 and fake_export.calls == []
    assert notifications == {"error": [], "warning": [], "info": []}
    assert not widget.exporter.running


def test_unusable_model_disables_the_button(viewer, fake_export, dialog, notifications,
                                            tmp_path):
    widget = _segment_widget(viewer)
    assert widget.exporter.button.isEnabled()
    broken = tmp_path / "broken.keras"
    broken.write_text("not a model")
    widget.choose_model_file(broken)
    assert not widget.exporter.button.isEnabled()
    notifications["error"].clear()
    widget.exporter.export()  # called anyway: said, nothing asked, nothing run
    [error] = notifications["error"]
    assert error == f"Segment: cannot export: {widget.model_choice.error}"
    assert dialog.calls == [] and fake_export.calls == []
    widget.model_choice.combo.setCurrentIndex(0)  # the bundled model again
    assert widget.exporter.button.isEnabled()


@pytest.mark.parametrize("where", ["folder is a file", "path is a folder"])
def test_unwritable_path_is_notified(viewer, fake_export, dialog, notifications, tmp_path,
                                     where):
    widget = _segment_widget(viewer)
    (tmp_path / "a file").write_text("")
    (tmp_path / "folder.zip").mkdir()
    dialog.answer = (tmp_path / "a file" / "x.zip" if where == "folder is a file"
                     else tmp_path / "folder.zip")
    widget.exporter.button.click()
    [error] = notifications["error"]
    expected = ("is a file, not a folder" if where == "folder is a file"
                else "is a folder; give a file name")
    assert error.startswith("Segment: cannot export: ") and expected in error
    assert fake_export.calls == [] and not widget.exporter.running
    assert notifications["info"] == []


# -- errors ----------------------------------------------------------------------------------
def test_missing_extra_is_notified_before_the_dialog(viewer, fake_export, dialog,
                                                     notifications, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx fails
    widget = _segment_widget(viewer)
    widget.exporter.button.click()
    [error] = notifications["error"]
    assert error == (f"Segment: exporting needs the [export] extra (tf2onnx missing): {PIP}, "
                     "then restart napari.")
    assert dialog.calls == [] and fake_export.calls == []


@pytest.mark.parametrize("error, expected", [
    (ModuleNotFoundError("No module named 'onnx'", name="onnx"),
     f"exporting needs the [export] extra (onnx missing): {PIP}, then restart napari."),
    (OSError("No space left on device"), "export failed: No space left on device"),
    (ImportError("the U-Net's PyTorch backend is not installed", name=None),
     "export failed: the U-Net's PyTorch backend is not installed"),
])
def test_failure_during_the_export_is_notified(viewer, qtbot, monkeypatch, dialog,
                                               notifications, tmp_path, error, expected):
    monkeypatch.setattr(export, "export_model", FakeExport(error))
    widget = _segment_widget(viewer)
    dialog.answer = tmp_path / "x.zip"
    widget.exporter.button.click()
    _wait(widget.exporter, qtbot)
    assert notifications["error"] == [f"Segment: {expected}"]
    assert notifications["info"] == [] and not (tmp_path / "x.zip").exists()
    assert widget.exporter.button.isEnabled()


# -- cancel ----------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", [
    "loading the model", pytest.param("writing the package", marks=pytest.mark.slow)])
def test_cancel_leaves_no_file(viewer, qtbot, monkeypatch, dialog, notifications, tmp_path,
                               keras, phase):
    """The real export, paused at ``phase``'s report while Cancel is pressed: it stops at
    its next check (the last one: after the zip was written, before it gets its name)."""
    real, paused, resume = export.export_model, threading.Event(), threading.Event()

    def pausing_progress(progress):
        def report(done, total, name):
            progress(done, total, name)
            if name == phase:
                paused.set()
                resume.wait(REAL_EXPORT_TIMEOUT_MS / 1000)
        return report

    monkeypatch.setattr(export, "export_model", lambda model, path, *, progress, **kwargs: real(
        model, path, progress=pausing_progress(progress), **kwargs))
    widget = _segment_widget(viewer)
    folder = tmp_path / "packages"
    folder.mkdir()
    dialog.answer = folder / "cancelled.zip"
    widget.exporter.button.click()
    qtbot.waitUntil(paused.is_set, timeout=REAL_EXPORT_TIMEOUT_MS)
    widget.exporter.cancel_button.click()
    assert not widget.exporter.cancel_button.isEnabled()
    assert "Cancelling" in widget.exporter.status_label.text()
    resume.set()
    _wait(widget.exporter, qtbot, REAL_EXPORT_TIMEOUT_MS)
    assert list(folder.iterdir()) == []  # neither the package nor a partial file
    assert widget.exporter.status_label.text() == "Export cancelled: cancelled.zip was not written."
    assert notifications["info"] == [] and notifications["error"] == []
    assert widget.exporter.button.isEnabled()


# -- Train U-Net ------------------------------------------------------------------------------
class FakeModel:
    """Stands in for a trained ``UNetModel``: ``save`` writes a small file."""

    def save(self, path):
        Path(path).write_text("fake model")
        return Path(path)


def _fake_train(images, labels, *, progress=None, should_stop=None, **kwargs):
    return SimpleNamespace(model=FakeModel(), history=None, validation={"map": 0.5},
                           cancelled=False, device="CPU")


def test_train_export_is_off_until_a_model_is_trained(viewer, qtbot, monkeypatch, fake_export,
                                                      dialog, notifications, tmp_path):
    labels = discs((48, 48), ((12, 12), (34, 30)), 7)
    viewer.add_image(noisy_image(labels), name="cells")
    viewer.add_labels(labels, name="cells labels")
    monkeypatch.setattr(train_module, "_load_train", lambda: _fake_train)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train U-Net")
    assert not widget.exporter.button.isEnabled()
    widget.exporter.export(tmp_path / "early.zip")  # called anyway: said, nothing runs
    assert notifications["error"] == [
        "Train U-Net: cannot export: there is no trained model yet (train one first)."]
    assert fake_export.calls == []

    widget.start()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert widget.exporter.button.isEnabled()
    dialog.answer = tmp_path / "trained.zip"
    widget.exporter.button.click()
    _wait(widget.exporter, qtbot)
    [call] = fake_export.calls
    assert dialog.calls[-1]["start"].name == "unet.zip"  # not saved: Save's default name
    assert call["model"].suffix == ".keras" and call["model"].read_text() == "fake model"
    assert call["path"] == tmp_path / "trained.zip"

    saved = widget.save_model(tmp_path / "my model.keras")
    widget.exporter.button.click()
    _wait(widget.exporter, qtbot)
    assert dialog.calls[-1]["start"] == tmp_path / "my model.zip"
    assert fake_export.calls[-1]["model"] == saved
    assert notifications["info"][-1].startswith(
        f"Train U-Net: model exported to {tmp_path / 'trained.zip'}")


# -- the real thing --------------------------------------------------------------------------
@pytest.mark.slow
def test_real_export_loads_back_and_segments_the_same(viewer, qtbot, dialog, notifications,
                                                      tmp_path, keras, monkeypatch):
    from napari_unet_weights._sample_data import load_sample
    from napari_unet_weights.unet.model_file import load_model
    from napari_unet_weights.unet.predict import segment

    widget = _segment_widget(viewer)
    target = tmp_path / "nuclei.zip"
    dialog.answer = target
    widget.exporter.button.click()
    _wait(widget.exporter, qtbot, REAL_EXPORT_TIMEOUT_MS)
    assert notifications["error"] == []
    assert notifications["info"][0].startswith(f"Segment: model exported to {target}")
    with zipfile.ZipFile(target) as archive:
        assert {"rdf.yaml", "model.keras", "model.onnx"} <= set(archive.namelist())
    image = load_sample("nuclei_crowded")[0]
    expected = segment(image, model=load_model())
    assert np.array_equal(segment(image, model=load_model(target)), expected)
    assert expected.max() > 0

    # a package chosen in the picker is exported again, under its own name
    fake = FakeExport()
    monkeypatch.setattr(export, "export_model", fake)
    widget.choose_model_file(target)
    assert widget.exporter.button.isEnabled()
    dialog.answer = tmp_path / "again.zip"
    widget.exporter.button.click()
    _wait(widget.exporter, qtbot)
    assert dialog.calls[-1]["start"] == tmp_path / "nuclei.zip"
    assert fake.calls[-1]["model"] == target
