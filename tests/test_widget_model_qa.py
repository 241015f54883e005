"""The "Model QA" dock widget: run, table, plot, gallery, layers, Evaluate hand-off, report.

The models are folders of label images (precomputed "predictions"), so no network runs;
the bundled model runs once, on one small image.
"""

from __future__ import annotations

import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from napari.layers import Labels
from qtpy.QtCore import Qt

from napari_unet_weights._widgets.evaluate.widget import EvaluateWidget
from napari_unet_weights._widgets.model_qa import run as run_module
from napari_unet_weights._widgets.model_qa.layers import MODEL_QA_KEY
from napari_unet_weights._widgets.model_qa.widget import ModelQAWidget
from napari_unet_weights.io.files import write_tiff
from napari_unet_weights.metrics.matching import evaluate
from reference import discs

pytestmark = pytest.mark.gui

SHAPE = (48, 48)
CENTRES = ((10, 10), (10, 36), (36, 10), (36, 36))
NAMES = ("a", "b", "c")
#: The first run of the bundled model imports Keras and loads the model.
BUNDLED_TIMEOUT_MS = 120_000


def _truth() -> np.ndarray:
    return discs(SHAPE, CENTRES, 6)


def _image(truth: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 5, SHAPE)
    return ((truth > 0) * 100.0 + 20 + noise).astype(np.float32)


def _predictions() -> dict[str, dict[str, np.ndarray]]:
    """Two "models" of the three images: A exact on a, poor on b, one miss on c; B the
    reverse.

    A misses objects 1, 2 of b, where it adds a false positive, and object 4 of c (a
    large missed object for the gallery); B is shifted by 2 px on a, exact on b and c.
    Worst first by A is b, c, a: neither the input order nor its reverse.
    """
    truth = _truth()
    b_poor = truth.copy()
    b_poor[np.isin(b_poor, (1, 2))] = 0
    b_poor[20:28, 20:28] = 9
    c_missing = truth.copy()
    c_missing[c_missing == 4] = 0
    shifted = discs(SHAPE, [(y, x + 2) for y, x in CENTRES], 6)
    return {"model_a": {"a": truth, "b": b_poor, "c": c_missing},
            "model_b": {"a": shifted, "b": truth, "c": truth}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """``images/``, ``labels/`` and the two models' label folders ``model_a/``, ``model_b/``."""
    root = tmp_path_factory.mktemp("qa")
    for i, name in enumerate(NAMES):
        truth = _truth()
        write_tiff(root / "images" / f"{name}.tif", _image(truth, i))
        write_tiff(root / "labels" / f"{name}.tif", truth)
    for model, predictions in _predictions().items():
        for name, labels in predictions.items():
            write_tiff(root / model / f"{name}.tif", labels)
    return root


@pytest.fixture
def widget(dock_widget) -> ModelQAWidget:
    return dock_widget(ModelQAWidget, "Model QA")


def _run(widget: ModelQAWidget, wait_idle, dataset: Path, *models: str) -> None:
    """Pick the folder and the models (labels folders), press Run, wait for the outcome."""
    widget.data_source.choose_folder(str(dataset))
    widget.model_a.choose_folder(dataset / models[0])
    if len(models) > 1:
        widget.model_b.choose_folder(dataset / models[1])
    widget.run_button.click()
    wait_idle(widget)


def _expected_maps(model: str) -> dict[str, float]:
    truth = _truth()
    return {name: evaluate(truth, labels).map for name, labels in _predictions()[model].items()}


def _click_row(widget: ModelQAWidget, qtbot, row: int) -> None:
    """Click the view row showing frame row ``row`` of the per-image table."""
    table = widget.table
    index = table.proxy.mapFromSource(table.model.index(row, 0))
    rect = table.view.visualRect(index)
    qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _qa_layers(viewer) -> list:
    return [layer for layer in viewer.layers if MODEL_QA_KEY in layer.metadata]


def test_one_model_table_worst_first_with_evaluate_figures(widget, wait_idle, dataset):
    """A row per image, worst first; each mAP is evaluate()'s on that pair; the summary
    gives the mean with its interval; the plot has a point per image."""
    _run(widget, wait_idle, dataset, "model_a")
    expected = _expected_maps("model_a")
    frame = widget.table.frame
    assert frame["image"].tolist() == sorted(NAMES, key=expected.get)
    assert frame["mAP"].tolist() == pytest.approx([expected[n] for n in frame["image"]])
    assert frame["image"].tolist() == ["b", "c", "a"]
    assert frame["missed"].tolist() == [2, 1, 0]  # b misses 2 objects, c one
    mean = np.mean(list(expected.values()))
    assert f"mAP {mean:.3f} [" in widget.summary_label.text()
    assert sorted(widget.plot_view.plot.points["image"]) == sorted(NAMES)
    assert not _qa_layers(widget.viewer)  # nothing opens before a click


def test_row_click_opens_layers_and_points_evaluate(widget, wait_idle, dataset, viewer,
                                                    qtbot):
    """Clicking a row opens exactly that image, truth and predictions as new layers,
    reused for the next row and the next run; Evaluate scores (truth, model A) with its
    IoU view on; the user's layers are not touched."""
    users = viewer.add_labels(np.zeros(SHAPE, np.uint16), name="mine")
    _run(widget, wait_idle, dataset, "model_a", "model_b")
    frame = widget.table.frame
    first = frame["image"].iloc[0]
    assert first == "b"  # model A's worst
    difference = frame["model_b − model_a"].to_numpy()
    a, b = _expected_maps("model_a"), _expected_maps("model_b")
    assert difference.tolist() == pytest.approx([b[n] - a[n] for n in frame["image"]])

    for row in (0, 1):
        name = frame["image"].iloc[row]
        _click_row(widget, qtbot, row)
        layers = widget.layers
        np.testing.assert_array_equal(layers.image.data, _image(_truth(), NAMES.index(name)))
        np.testing.assert_array_equal(layers.truth.data, _truth())
        for model in ("model_a", "model_b"):
            np.testing.assert_array_equal(layers.prediction(model).data,
                                          _predictions()[model][name])
        evaluate_widget = next(w for w in viewer.window.dock_widgets.values()
                               if isinstance(w, EvaluateWidget))
        assert evaluate_widget.gt_layer is layers.truth
        assert evaluate_widget.pred_layer is layers.prediction("model_a")
        assert evaluate_widget.iou_view_checkbox.value
        wait_idle(evaluate_widget)
        assert evaluate_widget.evaluation.map == pytest.approx(a[name])
        assert len(_qa_layers(viewer)) == 4  # image, truth, two predictions: reused
    assert users in viewer.layers and not users.data.any()
    assert MODEL_QA_KEY not in users.metadata

    widget.model_b.combo.setCurrentIndex(0)  # none: a second run scores model A only
    widget.run_button.click()
    wait_idle(widget)
    kept = widget.layers.truth
    _click_row(widget, qtbot, 0)
    assert len(_qa_layers(viewer)) == 3  # the same layers; model B's removed
    assert widget.layers.truth is kept and widget.layers.prediction("model_b") is None


def test_plot_point_click_opens_its_image(widget, wait_idle, dataset, qtbot):
    """A click on a point of the A-vs-B scatter opens that point's image."""
    _run(widget, wait_idle, dataset, "model_a", "model_b")
    assert set(widget.plot_view.plot.points["model"]) == {"model_a vs model_b"}
    widget.tabs.setCurrentIndex(2)  # the Plot tab
    position = widget.plot_view.position_of("b")
    qtbot.mouseClick(widget.plot_view, Qt.MouseButton.LeftButton, pos=position)
    assert widget.layers.shown == "b"
    np.testing.assert_array_equal(widget.layers.prediction("model_a").data,
                                  _predictions()["model_a"]["b"])


def test_gallery_click_centres_on_the_object(widget, wait_idle, dataset, viewer):
    """A thumbnail opens its image and centres the camera on the object's centre."""
    _run(widget, wait_idle, dataset, "model_a")
    crops = widget.outcome.crops
    missed = next(i for i, crop in enumerate(crops) if crop.error == "missed"
                  and crop.image == "c")
    assert crops[missed].label == 4
    widget.gallery.buttons[missed].click()
    assert widget.layers.shown == "c"
    rows, columns = np.nonzero(_truth() == 4)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:],
                               (rows.mean(), columns.mean()), atol=1e-6)


def test_cancel_leaves_the_viewer_as_it_was(widget, wait_idle, dataset, viewer, qtbot,
                                            monkeypatch):
    """Cancel while the run is under way: nothing shown, no layer added, said so."""
    release, stopped = threading.Event(), []
    real = run_module.evaluate_models

    def held(*args, should_stop, **kwargs):
        release.wait(10)
        stopped.append(should_stop())
        return real(*args, should_stop=should_stop, **kwargs)

    monkeypatch.setattr(run_module, "evaluate_models", held)
    viewer.add_labels(np.zeros(SHAPE, np.uint16), name="mine")
    before = list(viewer.layers)
    widget.data_source.choose_folder(str(dataset))
    widget.model_a.choose_folder(dataset / "model_a")
    widget.run_button.click()
    try:
        qtbot.waitUntil(lambda: widget.cancel_button.isVisibleTo(widget))  # under way
        widget.cancel_button.click()
    finally:
        release.set()
    qtbot.waitUntil(lambda: not widget.running)  # the worker has seen the stop and ended
    assert stopped == [True]
    assert list(viewer.layers) == before
    assert widget.outcome is None and widget.table.frame.empty
    assert widget.status_label.text().startswith("Cancelled")


def test_bad_folder_and_missing_predictions_notify(widget, wait_idle, dataset, tmp_path,
                                                   viewer, notifications):
    """A folder without images/ and labels/, or a labels folder missing an image: a
    notification that says what to change, and no layer."""
    widget.data_source.choose_folder(str(tmp_path))
    widget.run_button.click()
    wait_idle(widget)
    assert len(notifications["error"]) == 1
    assert "images/" in notifications["error"][0] and "labels/" in notifications["error"][0]

    partial = tmp_path / "partial"
    write_tiff(partial / "a.tif", _truth())
    _run(widget, wait_idle, dataset, str(partial))
    assert len(notifications["error"]) == 2
    assert "has no file for 2 image(s): b, c" in notifications["error"][1]
    assert len(viewer.layers) == 0 and widget.outcome is None


def test_layer_pairs_as_data(widget, wait_idle, dataset, viewer):
    """The open (image, labels) pairs are scored under the image layers' names (the
    labels folder's files are paired by them)."""
    truths = {"a": _truth(), "b": _predictions()["model_a"]["c"]}  # b: one object less
    for i, name in enumerate(("a", "b")):
        viewer.add_image(_image(truths[name], i), name=name)
        viewer.add_labels(truths[name], name=f"{name} labels")
    pair_list = widget.data_source.pair_list
    pair_list.add_pair(viewer.layers["a"], viewer.layers["a labels"])
    pair_list.add_pair(viewer.layers["b"], viewer.layers["b labels"])
    widget.data_source.setCurrentIndex(0)
    widget.model_a.choose_folder(dataset / "model_a")
    widget.run_button.click()
    wait_idle(widget)
    predictions = _predictions()["model_a"]
    expected = {name: evaluate(truths[name], predictions[name]).map for name in truths}
    assert expected["a"] != expected["b"]
    frame = widget.table.frame.set_index("image")
    assert sorted(frame.index) == ["a", "b"]
    assert frame["mAP"].to_dict() == pytest.approx(expected)

    # painting on the opened ground truth (unlocked, in place) leaves what was scored
    widget.open_image("a")
    widget.layers.truth.data[:] = 0
    widget.open_image("b")
    widget.open_image("a")
    np.testing.assert_array_equal(widget.layers.truth.data, truths["a"])


class _Rows(HTMLParser):
    """The ``data-image`` of every ``<tr>`` of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        if tag == "tr" and "data-image" in attributes:
            self.images.append(attributes["data-image"])


def test_save_report_writes_html_and_csv(widget, wait_idle, dataset, tmp_path, notifications):
    """Save report: an HTML file with a row per image (worst first) and the CSV."""
    _run(widget, wait_idle, dataset, "model_a", "model_b")
    widget.save_report(tmp_path / "report")
    wait_idle(widget)
    parser = _Rows()
    parser.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert parser.images == widget.table.frame["image"].tolist()
    table = pd.read_csv(tmp_path / "report.csv")
    assert len(table) == 2 * len(NAMES)
    assert "report written" in notifications["info"][-1]


def test_bundled_model_on_a_small_image(widget, viewer, qtbot):
    """The bundled model runs (once, on a 64 × 64 crop of a DSB sample) and its
    prediction opens as a layer that evaluate() scores as the table says."""
    from napari_unet_weights._sample_data import nuclei_fluorescence

    (image, _, _), (labels, _, _) = nuclei_fluorescence()
    viewer.add_image(image[:64, :64], name="crop")
    viewer.add_labels(labels[:64, :64], name="crop labels")
    widget.data_source.pair_list.add_pair(viewer.layers["crop"], viewer.layers["crop labels"])
    widget.data_source.setCurrentIndex(0)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=BUNDLED_TIMEOUT_MS)  # Keras starts
    assert widget.table.frame["image"].tolist() == ["crop"]
    widget.open_image("crop")
    prediction = widget.layers.prediction("bundled")
    assert isinstance(prediction, Labels)
    assert widget.table.frame["mAP"].iloc[0] == pytest.approx(
        evaluate(labels[:64, :64], prediction.data).map)
