"""Nucleus size: object_diameter, the resize helpers and their limits, predict / segment /
segment_at_diameter with ``diameter`` (shapes restored exactly, the same labels at the
model's own diameter, a 2x upscaled image segmented like the original), "auto", and the
diameter that training records."""

from __future__ import annotations

import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_unet_weights import estimate_diameter, evaluate, object_diameter
from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.unet import predict, segment, segment_at_diameter
from napari_unet_weights.unet.diameter import (
    AUTO_TOLERANCE,
    MAX_FACTOR,
    MIN_FACTOR,
    auto_sizing,
    check_diameter,
    diameter_record,
    equivalent_diameters,
    fixed_sizing,
    model_diameter,
    resize_plane,
    resized_shape,
    restore_labels,
    restore_probabilities,
    scale_factor,
)
from napari_unet_weights.unet.model_file import BUNDLED_MODEL, read_metadata
from napari_unet_weights.unet.preprocess import MissingDataWarning
from reference import discs

ODD_SHAPES = ((37, 53), (101, 77))
FACTORS = (0.37, 0.5, 1.9, 3.0)


def brute_force_diameters(labels: np.ndarray) -> list[float]:
    """2·sqrt(area/π) of every (plane, id), areas counted pixel by pixel."""
    planes = labels.reshape(-1, *labels.shape[-2:])
    result = []
    for plane in planes:
        areas: dict[int, int] = {}
        for value in plane.ravel().tolist():
            if value:
                areas[value] = areas.get(value, 0) + 1
        result += [2 * math.sqrt(area / math.pi) for area in areas.values()]
    return result


# -- object_diameter ---------------------------------------------------------------------
def test_object_diameter_of_discs_is_their_diameter_and_the_median():
    radii = (4, 7, 11)
    labels = discs((60, 80), ((15, 15), (15, 50), (42, 40)), radius=radii)
    found = sorted(equivalent_diameters(labels))
    assert found == pytest.approx(sorted(brute_force_diameters(labels)))
    for diameter, radius in zip(found, radii):  # a digital disc's area is about π r²
        assert diameter == pytest.approx(2 * radius, rel=0.06)
    assert object_diameter(labels) == pytest.approx(statistics.median(found))
    assert object_diameter(labels) == pytest.approx(14, rel=0.05)


def test_object_diameter_of_stacks_even_counts_and_sparse_ids():
    plane = discs((40, 40), ((10, 10), (28, 28)), radius=(3, 8))
    stack = np.stack([plane, plane * 0, plane])  # ids repeat per plane: one object each
    expected = brute_force_diameters(stack)
    assert len(expected) == 4
    assert object_diameter(stack) == pytest.approx(statistics.median(expected))
    sparse = plane.astype(np.uint32) * 10**8  # ids far above the pixel count
    assert object_diameter(sparse) == pytest.approx(object_diameter(plane))
    square = np.zeros((20, 20), np.uint8)
    square[2:12, 2:12] = 1
    assert object_diameter(square) == pytest.approx(2 * math.sqrt(100 / math.pi))


def test_object_diameter_without_objects_is_nan_and_bad_labels_are_refused():
    assert math.isnan(object_diameter(np.zeros((8, 8), np.uint16)))
    assert math.isnan(object_diameter(np.zeros((0, 5), np.uint16)))
    with pytest.raises(TypeError, match="boolean"):
        object_diameter(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="H, W"):
        object_diameter(np.ones(4, np.uint8))


def test_diameter_record_pools_all_images():
    a = discs((30, 30), ((10, 10),), radius=4)
    b = discs((30, 30), ((10, 10), (20, 22)), radius=(6, 8))
    record = diameter_record([a, b])
    assert record["n_objects"] == 3
    assert record["median"] == pytest.approx(statistics.median(
        brute_force_diameters(a) + brute_force_diameters(b)), abs=1e-3)
    assert diameter_record([np.zeros((4, 4), np.uint8)])["median"] is None


# -- the argument and its limits ------------------------------------------------------------
def test_diameter_argument_checks():
    assert check_diameter(None) is None
    assert check_diameter("auto") == check_diameter(" Auto ") == "auto"
    assert check_diameter(12) == 12.0
    for bad in (0, -3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="diameter"):
            check_diameter(bad)
    for bad in (True, "12", [12]):
        with pytest.raises((TypeError, ValueError), match="diameter"):
            check_diameter(bad)


def test_scale_factor_and_its_range():
    assert scale_factor(20.0, 40.0) == pytest.approx(0.5)
    assert scale_factor(20.0, 2.0) == pytest.approx(MAX_FACTOR)
    assert scale_factor(20.0, 200.0) == pytest.approx(MIN_FACTOR)
    for too_far in (1.9, 210.0):
        with pytest.raises(ValueError, match=r"2 to 200 px \(resize factors 0.1 to 10"):
            scale_factor(20.0, too_far)
    with pytest.raises(ValueError, match="diameter must be a finite number > 0"):
        scale_factor(20.0, 0.0)


def test_model_diameter_is_read_or_its_absence_said():
    assert model_diameter({"object_diameter": {"median": 17.5}}) == 17.5
    for metadata in ({}, {"object_diameter": {"median": None}},
                     {"object_diameter": {"median": -1}}, {"object_diameter": 17.5}):
        with pytest.raises(ValueError, match="does not record the size of the nuclei"):
            model_diameter(metadata)
    with pytest.raises(ValueError, match="does not record"):
        fixed_sizing({}, 10.0)


def test_auto_keeps_the_first_pass_within_the_tolerance():
    model = 20.0
    assert not auto_sizing(model, math.nan).resized
    assert not auto_sizing(model, model * (1 + AUTO_TOLERANCE) * 0.999).resized
    assert not auto_sizing(model, model / (1 + AUTO_TOLERANCE) * 1.001).resized
    resized = auto_sizing(model, 40.0)
    assert (resized.factor, resized.diameter, resized.estimate) == (0.5, 40.0, 40.0)
    assert "resized ×0.5" in resized.describe()
    clipped = auto_sizing(model, 0.5)  # a factor of 40: held to the limit
    assert clipped.clipped and clipped.factor == MAX_FACTOR
    assert clipped.diameter == pytest.approx(model / MAX_FACTOR)
    assert "no nuclei found" in auto_sizing(model, math.nan).describe()


# -- resizing planes and back --------------------------------------------------------------
@pytest.mark.parametrize("shape", ODD_SHAPES)
@pytest.mark.parametrize("factor", FACTORS)
def test_planes_go_and_come_back_to_exactly_their_shape(shape, factor):
    labels = discs(shape, ((shape[0] // 3, shape[1] // 3), (2 * shape[0] // 3, shape[1] // 2)),
                   radius=min(shape) // 5)
    small = resized_shape(shape, factor)
    assert small == tuple(max(1, round(n * factor)) for n in shape)
    image = resize_plane(np.dstack([labels * 40] * 3).astype(np.uint8), small)
    assert image.shape == (*small, 3) and image.dtype == np.float32
    back = restore_labels(restore_labels(labels, small), shape)
    assert back.shape == shape and back.dtype == labels.dtype
    assert set(np.unique(back)) == {0, 1, 2}
    probabilities = np.stack([labels == 0, labels > 0, np.zeros(shape, bool)], -1)
    restored = restore_probabilities(resize_plane(probabilities.astype(np.float32), small),
                                     shape)
    assert restored.shape == (*shape, 3)
    np.testing.assert_allclose(restored.sum(-1), 1, atol=1e-5)


def test_an_object_lost_by_shrinking_leaves_no_gap_in_the_ids():
    labels = np.zeros((40, 40), np.uint16)
    labels[0:20, 0:20] = 1
    labels[25, 25] = 2  # one pixel: gone at a quarter of the size
    labels[30:40, 30:40] = 3
    small = restore_labels(labels, (10, 10))
    assert sorted(np.unique(small)) == [0, 1, 2]


def test_missing_pixels_stay_where_they_were():
    plane = np.ones((30, 40), np.float32)
    plane[10:20, 10:20] = np.nan
    big = resize_plane(plane, (60, 80))
    nearest = restore_labels(np.isnan(plane).astype(np.uint8), (60, 80)) > 0
    np.testing.assert_array_equal(np.isnan(big), nearest)
    small = resize_plane(plane, (15, 20))  # anti-aliased: NaN does not spread either
    assert np.isnan(small).sum() == 25 and np.nanmax(np.abs(small - 1)) < 1e-6


# -- prediction at a diameter -------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled(keras):
    from napari_unet_weights.unet.model_file import load_model

    return load_model()


@pytest.fixture(scope="module")
def sample():
    return load_sample("nuclei_fluorescence")


@pytest.fixture(scope="module")
def native(bundled, sample):
    return segment(sample[0], bundled)


def test_the_bundled_model_records_its_training_nuclei_diameter():
    record = read_metadata(BUNDLED_MODEL)["object_diameter"]
    assert record["n_objects"] > 10_000 and "DSB 2018 train" in record["of"]
    assert 10 < record["median"] < 40


@pytest.mark.parametrize("factor", (0.6, 2.3))
def test_outputs_have_exactly_the_input_shape(bundled, sample, factor):
    """Odd sizes, stacks, RGB; nuclei taken as larger (shrunk) and smaller (enlarged)."""
    d = model_diameter(bundled.metadata) / factor
    image = sample[0][:101, :77]
    for array in (image, np.stack([image, image[::-1]]), np.dstack([image] * 3)):
        labels = segment(array, bundled, diameter=d)
        probabilities = predict(array, bundled, diameter=d)
        plane = array.shape[:-1] if array.ndim == 3 and array.shape[-1] == 3 else array.shape
        assert labels.shape == plane and probabilities.shape == (*plane, 3)
        assert labels.max() > 0
        np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-4)
    stack = segment(np.stack([image, image]), bundled, diameter=d)
    assert np.array_equal(stack[0] > 0, stack[1] > 0)  # plane by plane, ids unique
    assert stack[1][stack[1] > 0].min() > stack[0].max()


def test_the_models_own_diameter_gives_the_labels_of_none(bundled, sample, native):
    d = model_diameter(bundled.metadata)
    np.testing.assert_array_equal(segment(sample[0], bundled, diameter=d), native)
    np.testing.assert_array_equal(predict(sample[0], bundled, diameter=d),
                                  predict(sample[0], bundled))
    result = segment_at_diameter(sample[0], bundled, diameter=None, probabilities=True)
    np.testing.assert_array_equal(result.labels, native)
    assert result.sizing.describe() == "diameter: as trained (not resized)"


def test_an_image_twice_as_large_at_twice_the_diameter_gives_the_same_nuclei(
        bundled, sample, native):
    image = sample[0]
    big = resize_plane(image, (2 * image.shape[0], 2 * image.shape[1]))
    d = model_diameter(bundled.metadata)
    labels = segment(big, bundled, diameter=2 * d)
    assert labels.shape == big.shape
    back = restore_labels(labels, image.shape)
    same = evaluate(native, back)
    # the same nuclei (measured with the issue 18 model: 0.92 matched at IoU 0.5, mAP 0.79;
    # the outlines move a little through the two resizings)
    assert same.per_threshold.set_index("threshold").loc[0.5, "accuracy"] >= 0.9
    assert same.map >= 0.75
    as_is = restore_labels(segment(big, bundled), image.shape)  # no diameter: worse
    assert evaluate(native, as_is).map < evaluate(native, back).map


def _count_network_calls(monkeypatch) -> list:
    import importlib

    inference_module = importlib.import_module("napari_unet_weights.unet.inference")
    calls, network = [], inference_module.network_output

    def counted(*args, **kwargs):
        calls.append(1)
        return network(*args, **kwargs)

    monkeypatch.setattr(inference_module, "network_output", counted)
    return calls


def test_auto_estimates_twice_the_diameter_on_twice_the_image(bundled, sample, native,
                                                               monkeypatch):
    image = sample[0]
    estimate = estimate_diameter(image, bundled)
    assert estimate == pytest.approx(object_diameter(native))
    calls = _count_network_calls(monkeypatch)
    first = segment_at_diameter(image, bundled, diameter="auto")
    assert not first.sizing.resized  # the sample's nuclei are the model's size
    assert len(calls) == 1  # the first pass is kept, not run again
    np.testing.assert_array_equal(first.labels, native)
    big = resize_plane(image, (2 * image.shape[0], 2 * image.shape[1]))
    reports = []
    result = segment_at_diameter(big, bundled, diameter="auto", probabilities=True,
                                 progress=lambda done, total: reports.append((done, total)))
    assert result.sizing.estimate == pytest.approx(2 * estimate, rel=0.2)
    assert result.sizing.resized and result.sizing.factor == pytest.approx(
        model_diameter(bundled.metadata) / result.sizing.estimate)
    assert result.labels.shape == big.shape and result.probabilities.shape == (*big.shape, 3)
    np.testing.assert_array_equal(result.labels, segment(big, bundled, diameter="auto"))
    assert reports[-1][0] == reports[-1][1] and len({t for _, t in reports}) == 1
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)


def test_auto_without_objects_keeps_the_first_pass(bundled):
    blank = np.zeros((64, 64), np.float32)
    result = segment_at_diameter(blank, bundled, diameter="auto")
    assert result.labels.max() == 0 and not result.sizing.resized
    assert math.isnan(estimate_diameter(blank, bundled))


def test_refusals_come_before_the_network(bundled, sample, monkeypatch):
    import importlib

    from napari_unet_weights.unet.model_file import UNetModel

    inference_module = importlib.import_module("napari_unet_weights.unet.inference")

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran")

    monkeypatch.setattr(inference_module, "network_output", no_network)
    image = sample[0]
    older = UNetModel(bundled.keras_model, {k: v for k, v in bundled.metadata.items()
                                            if k != "object_diameter"})
    with pytest.raises(ValueError, match="does not record the size"):
        segment(image, older, diameter=15)
    with pytest.raises(ValueError, match="does not record the size"):
        predict(image, older, diameter="auto")
    with pytest.raises(ValueError, match="out of range"):
        segment(image, bundled, diameter=500)
    with pytest.raises(ValueError, match="diameter must be"):
        segment(image, bundled, diameter="large")
    dask = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match=r"not available for chunked.*resize the image"):
        segment(dask.from_array(image), bundled, diameter=15)
    with pytest.raises(ValueError, match="not available for chunked"):
        predict(image, bundled, diameter=15, block_shape=64)


def test_missing_pixels_are_background_and_warned_once(bundled, sample):
    image = sample[0].astype(np.float32)
    image[100:140, 100:140] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = segment(image, bundled, diameter=40)
    assert [w.category for w in caught] == [MissingDataWarning]
    assert labels.shape == image.shape and not labels[105:135, 105:135].any()


# -- training records it --------------------------------------------------------------------
def test_training_records_the_median_diameter_of_its_training_labels(tmp_path, keras):
    from napari_unet_weights.unet.model_file import load_model
    from napari_unet_weights.unet.training.train import train
    from test_unet_train import TINY, synthetic

    images, labels = synthetic()
    result = train(images, labels, n_classes=3, out=tmp_path / "m.keras",
                   **{**TINY, "epochs": 1, "steps_per_epoch": 1})
    trained = [labels[int(name)] for name in result.split["train"]]
    assert 0 < len(trained) < len(labels)  # the validation images are not counted
    record = read_metadata(tmp_path / "m.keras")["object_diameter"]
    pooled = [d for item in trained for d in brute_force_diameters(item)]
    assert record["median"] == pytest.approx(statistics.median(pooled), abs=1e-3)
    assert record["n_objects"] == len(pooled) and record["of"] == "training labels"
    model = load_model(tmp_path / "m.keras")
    assert segment(images[0], model, diameter=2 * record["median"]).shape == images[0].shape


def test_record_diameter_script_adds_the_record_to_an_older_file(tmp_path):
    import json
    import sys
    import zipfile

    import tifffile

    from napari_unet_weights.unet.model_file import METADATA_ENTRY

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import record_diameter

    model = tmp_path / "older.keras"
    older = {"format_version": 1, "n_classes": 3, "input": {}, "normalization": {},
             "architecture": {}, "postprocess": {}}
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("model.weights.h5", b"weights")
        archive.writestr(METADATA_ENTRY, json.dumps(older))
    folder = tmp_path / "labels"
    folder.mkdir()
    a = discs((30, 30), ((10, 10),), radius=4)
    b = discs((30, 30), ((10, 10), (20, 22)), radius=(6, 8))
    tifffile.imwrite(folder / "a.tif", a)
    tifffile.imwrite(folder / "b.tif", b)
    assert record_diameter.main([str(model), "--labels", str(folder), "--dry-run"]) == 0
    with pytest.raises(ValueError, match="does not record"):
        model_diameter(read_metadata(model))
    assert record_diameter.main([str(model), "--labels", str(folder)]) == 0
    record = read_metadata(model)["object_diameter"]
    assert record["median"] == diameter_record([a, b])["median"]
    assert "the 2 files of labels/" in record["of"]
    with zipfile.ZipFile(model) as archive:
        assert archive.read("model.weights.h5") == b"weights"


def test_diameter_experiment_summary_and_other_auto_rules():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import diameter_experiment

    records = [  # estimate 30 for a model of 20: auto resized; 21: kept by any rule
        {"none": 0.2, "true": 0.6, "auto": 0.5, "auto_estimate": 30.0, "true_diameter": 25.0,
         "auto_resized": True, "true_held": False, "modality": "he"},
        {"none": 0.8, "true": 0.7, "auto": 0.8, "auto_estimate": 21.0, "true_diameter": 21.0,
         "auto_resized": False, "true_held": False, "modality": "fluorescence"},
    ]
    result = diameter_experiment.summary(records, 20.0)
    assert result["map"] == {"none": 0.5, "true": 0.65, "auto": 0.65}
    assert result["per_modality"]["he"] == {"n_images": 1, "none": 0.2, "true": 0.6,
                                            "auto": 0.5}
    assert result["auto_estimate_over_true"] == {"median": 1.1, "within_20_percent": 2}
    assert diameter_experiment.auto_with_range(records, 20.0, 0.5, 2.0) == 0.5  # both kept
    assert diameter_experiment.auto_with_range(records, 20.0, 1 / 1.1, 1.1) == 0.65
    assert "| 2× | 2 | 0.500 | 0.650 | 0.650 | 1 |" in diameter_experiment.table({"2": result})
