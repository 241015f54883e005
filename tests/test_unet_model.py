"""The U-Net, its pixel-weighted loss and the model file format."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from napari_unet_weights.unet.model_file import (
    METADATA_ENTRY,
    REQUIRED_KEYS,
    load_model,
    read_metadata,
    record_metadata,
    score_summary,
)
from napari_unet_weights.unet.preprocess import prepare_image


def seed_loss(probabilities, target, weights):
    """The seed's weighted cross-entropy, normalised by the pixel count N."""
    p_true = np.take_along_axis(probabilities, target[..., None], axis=-1)[..., 0]
    return -np.sum(weights * np.log(p_true)) / target.size


def example(rng, shape=(2, 5, 6), n_classes=3):
    logits = rng.normal(size=(*shape, n_classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    target = rng.integers(0, n_classes, shape)
    weights = rng.uniform(0.1, 12.0, shape)
    return probabilities.astype(np.float32), target, weights.astype(np.float32)


def test_weighted_loss_equals_the_seed_formula(keras):
    from napari_unet_weights.unet.model import weighted_loss

    probabilities, target, weights = example(np.random.default_rng(0))
    loss = weighted_loss()
    value = float(loss(target, probabilities, sample_weight=weights))
    np.testing.assert_allclose(value, seed_loss(probabilities, target, weights), rtol=1e-5)


def test_unit_weights_give_plain_cross_entropy(keras):
    from napari_unet_weights.unet.model import weighted_loss

    probabilities, target, _ = example(np.random.default_rng(1), n_classes=2)
    ones = np.ones(target.shape, np.float32)
    weighted = float(weighted_loss()(target, probabilities, sample_weight=ones))
    plain = float(keras.losses.SparseCategoricalCrossentropy()(target, probabilities))
    np.testing.assert_allclose(weighted, plain, rtol=1e-6)
    np.testing.assert_allclose(weighted, seed_loss(probabilities, target, ones), rtol=1e-5)


def test_fit_uses_the_sample_weights_per_pixel(keras):
    """Through ``Model.evaluate`` the (batch, H, W) weights give the same number."""
    from napari_unet_weights.unet.model import build_unet, weighted_loss

    rng = np.random.default_rng(2)
    model = build_unet(1, 3, depth=1, base_filters=2)
    model.compile(loss=weighted_loss())
    x = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
    target = rng.integers(0, 3, (2, 8, 8))
    weights = rng.uniform(0.5, 5, (2, 8, 8)).astype(np.float32)
    value = model.evaluate(x, target, sample_weight=weights, batch_size=2, verbose=0)
    probabilities = np.asarray(model(x, training=False))
    np.testing.assert_allclose(value, seed_loss(probabilities, target, weights), rtol=1e-4)


@pytest.mark.parametrize(("depth", "channels", "classes"), [(1, 1, 2), (2, 3, 3), (3, 5, 4)])
def test_build_unet_shapes_and_softmax(keras, depth, channels, classes):
    from napari_unet_weights.unet.model import build_unet

    model = build_unet(channels, classes, depth=depth, base_filters=2, dropout=0.1)
    size = 2**depth * 3
    x = np.random.default_rng(0).normal(size=(2, size, 2 * size, channels)).astype(np.float32)
    out = np.asarray(model(x, training=False))
    assert out.shape == (2, size, 2 * size, classes)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    assert model.output.dtype == "float32"


@pytest.mark.parametrize(("depth", "batch_norm", "expected"),
                         [(1, False, 434), (1, True, 482), (2, False, 1886)])
def test_build_unet_weights_counted_by_hand(keras, depth, batch_norm, expected):
    """2 filters, 1 channel in, 2 classes out; a k×k convolution a→b has k²·a·b + b weights.

    Depth 1: 3×3 convolutions 1→2, 2→2 (level 0), 2→4, 4→4 (bottom), a 2×2 transposed one
    4→2, then (2 + 2)→2, 2→2 and the 1×1 logits 2→2: 20 + 38 + 76 + 148 + 34 + 74 + 38 + 6
    = 434. With batch norm the 3×3 ones (16 filters) have no bias and 4 batch-norm numbers
    per filter instead: 434 − 16 + 4 · 16 = 482. Depth 2: 20 + 38, 76 + 148 (level 1,
    4 filters), 296 + 584 (bottom, 8), 132 + 292 + 148 (up to level 1), 34 + 74 + 38, 6:
    1886.
    """
    from napari_unet_weights.unet.model import build_unet

    model = build_unet(1, 2, depth=depth, base_filters=2, batch_norm=batch_norm)
    assert model.count_params() == expected


def test_build_unet_rejects_bad_parameters():
    from napari_unet_weights.unet.model import build_unet

    with pytest.raises(ValueError, match="depth"):
        build_unet(depth=0)
    with pytest.raises(ValueError, match="dropout"):
        build_unet(dropout=1.5)


def test_missing_tensorflow_says_how_to_install(monkeypatch):
    from napari_unet_weights.unet.model import keras_or_error

    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match=r'pip install "napari-unet-weights\[unet\]"'):
        keras_or_error("tensorflow")


def test_prepare_image_gray_rgb_and_inversion():
    rng = np.random.default_rng(0)
    dark = rng.uniform(0, 20, (20, 20))
    dark[5:10, 5:10] = 200  # a bright nucleus on a dark background
    x = prepare_image(dark)
    assert x.shape == (20, 20, 1) and x.dtype == np.float32
    assert x[7, 7, 0] > 0.9 and np.median(x) < 0.5
    bright = 255 - np.stack([dark] * 3, axis=-1)  # brightfield: dark nucleus, bright background
    y = prepare_image(bright.astype(np.uint8))
    assert y[7, 7, 0] > 0.9 and np.median(y) < 0.5  # inverted: looks like fluorescence
    no_invert = prepare_image(bright, {"input": {"invert_bright_background": False}})
    assert no_invert[7, 7, 0] < 0.1
    with pytest.raises(ValueError, match="2-D image"):
        prepare_image(np.zeros((4, 5, 6, 2)))


# -- model files ----------------------------------------------------------------
def test_metadata_errors_without_tensorflow(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        read_metadata(tmp_path / "missing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a Keras model file"):
        read_metadata(text)
    plain = tmp_path / "plain.keras"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match=f"no {METADATA_ENTRY} entry"):
        read_metadata(plain)
    partial = tmp_path / "partial.keras"
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps({"format_version": 1, "n_classes": 3}))
    with pytest.raises(ValueError, match="lacks input, normalization"):
        read_metadata(partial)
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr(METADATA_ENTRY, "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_metadata(broken)
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr(METADATA_ENTRY, "3")
    with pytest.raises(ValueError, match="must hold a JSON object, got int"):
        read_metadata(broken)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path / "missing.keras")


def test_a_missing_bundled_model_says_how_to_make_it(tmp_path, monkeypatch):
    from napari_unet_weights.unet import model_file

    monkeypatch.setattr(model_file, "BUNDLED_MODEL", tmp_path / "dsb2018_nuclei.keras")
    for load in (read_metadata, load_model):
        with pytest.raises(FileNotFoundError, match=r"bundled nuclei model is not installed"
                                                    r".*train_bundled_model\.py --install"):
            load()


def test_save_adds_metadata_and_keras_still_loads(keras, tmp_path):
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    metadata = {"format_version": 1, "n_classes": 2, "input": {"mode": "gray"},
                "normalization": {"percentiles": [1, 99.8]},
                "architecture": {"depth": 1, "multiple": 2},
                "postprocess": {"threshold": 0.5}, "validation": {"map": 0.25}}
    net = build_unet(1, 2, depth=1, base_filters=2)
    path = UNetModel(net, metadata).save(tmp_path / "m.keras")
    assert read_metadata(path) == metadata
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    x = np.random.default_rng(0).uniform(size=(1, 8, 12, 1)).astype(np.float32)
    expected = np.asarray(net(x, training=False))
    plain_keras = keras.saving.load_model(path, compile=False)  # Keras ignores our entry
    np.testing.assert_allclose(np.asarray(plain_keras(x, training=False)), expected, atol=1e-6)
    loaded = load_model(path)
    assert loaded.metadata == metadata and loaded.n_classes == 2
    np.testing.assert_allclose(np.asarray(loaded.keras_model(x, training=False)), expected,
                               atol=1e-6)  # the same weights
    plain = tmp_path / "plain.keras"
    build_unet(1, 2, depth=1, base_filters=2).save(plain)
    with pytest.raises(ValueError, match="not a napari-unet-weights model"):
        load_model(plain)
    with pytest.raises(ValueError, match=r"must end with \.keras"):
        UNetModel(loaded.keras_model, metadata).save(tmp_path / "m.h5")


def test_recorded_figures_are_added_and_the_model_still_predicts_the_same(keras, tmp_path):
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    metadata = {**valid_metadata(), "validation": {"map": 0.5, "n_images": 4}}
    net = build_unet(1, 3, depth=1, base_filters=2)
    path = UNetModel(net, metadata).save(tmp_path / "m.keras")
    test = {"map": 0.45, "n_images": 9, "per_image": [{"image": "a", "map": 0.45}]}
    assert record_metadata(path, test=test) == path
    assert read_metadata(path) == {**metadata, "test": test}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]  # nothing left behind
    x = np.random.default_rng(0).uniform(size=(1, 8, 12, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(load_model(path).keras_model(x, training=False)),
                                  np.asarray(net(x, training=False)))


@pytest.mark.parametrize(("metadata", "text"), [
    ({"test": {"map": 0.6123, "n_images": 86}, "validation": {"map": 0.6349}},
     "test mAP 0.612 (86 images; validation 0.635)"),
    ({"test": {"map": 0.6}}, "test mAP 0.600"),
    ({"validation": {"map": 0.54, "n_images": 84}}, "validation mAP 0.540 (84 images)"),
    ({"validation": {"map": 0.46, "n_images": 2, "on": "training images"}},
     "mAP 0.460 on its 2 training images"),
    ({"validation": {"map": None}, "test": "bad"}, "no recorded score"),
    ({}, "no recorded score"),
])
def test_the_score_summary_names_test_and_validation_apart(metadata, text):
    assert score_summary(metadata) == text


def test_read_metadata_does_not_import_tensorflow(tmp_path):
    path = tmp_path / "m.keras"
    metadata = {key: {} for key in REQUIRED_KEYS} | {"format_version": 1, "n_classes": 3,
                                                      "validation": {"map": 0.5}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(metadata))
    code = (
        "import sys, napari_unet_weights\n"
        "from napari_unet_weights.unet import read_metadata\n"
        f"assert read_metadata({str(path)!r})['validation']['map'] == 0.5\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- metadata checked when read -----------------------------------------------------
def valid_metadata() -> dict:
    return {"format_version": 1, "n_classes": 3,
            "input": {"mode": "gray", "n_channels": 1, "invert_bright_background": True},
            "normalization": {"percentiles": [1.0, 99.8]},
            "architecture": {"n_channels": 1, "depth": 1, "base_filters": 2, "multiple": 2},
            "postprocess": {"threshold": 0.5, "seed_threshold": 0.7, "min_size": 10,
                            "fill_holes": True, "expand": 1}}


def rewrite_metadata(source, target, metadata: dict) -> None:
    """Copy the model file ``source`` to ``target`` with another metadata entry."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            if item.filename != METADATA_ENTRY:
                new.writestr(item, old.read(item))
        new.writestr(METADATA_ENTRY, json.dumps(metadata))


@pytest.mark.parametrize(("section", "key", "value"), [
    ("postprocess", "threshold", "abc"),
    ("postprocess", "min_size", -3),
    ("postprocess", "treshold", 0.5),
    ("input", "mode", "rgb"),
    ("input", "n_channels", 0),
    ("normalization", "percentiles", [99.8, 1.0]),
    ("architecture", "depth", "4"),
    (None, "n_classes", 1.5),
    (None, "format_version", 99),
])
def test_bad_metadata_entries_are_named_when_read(tmp_path, section, key, value):
    metadata = valid_metadata()
    (metadata if section is None else metadata[section])[key] = value
    path = tmp_path / "bad.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(metadata))
    name = key if section is None else f"{section}.{key}"
    with pytest.raises(ValueError, match=rf"bad\.keras: bad model metadata .*: {name}:"):
        read_metadata(path)


def test_a_model_file_with_a_bad_threshold_fails_to_load(keras, tmp_path):
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    metadata = valid_metadata()
    good = UNetModel(build_unet(1, 3, depth=1, base_filters=2), metadata).save(
        tmp_path / "good.keras")
    assert load_model(good).postprocess_parameters["threshold"] == 0.5
    bad = tmp_path / "bad.keras"
    rewrite_metadata(good, bad, {**metadata, "postprocess": {"threshold": "abc"}})
    message = r"bad\.keras: bad model metadata .*postprocess\.threshold: .*'abc'"
    with pytest.raises(ValueError, match=message):
        load_model(bad)
    with pytest.raises(ValueError, match=r"postprocess\.expand"):
        UNetModel(load_model(good).keras_model, {**metadata, "postprocess": {"expand": -1}})


# -- atomic saving ---------------------------------------------------------------------
class InterruptedWhileSaving:
    """A stand-in Keras model whose save writes part of a file, then gets Ctrl-C."""

    def save(self, path) -> None:
        with open(path, "wb") as file:
            file.write(b"PK\x03\x04 half a model")
        raise KeyboardInterrupt


def test_an_interrupted_save_leaves_no_file_and_keeps_the_old_one(tmp_path):
    from napari_unet_weights.unet.model_file import UNetModel

    unet = UNetModel(InterruptedWhileSaving(), valid_metadata())
    path = tmp_path / "model.keras"
    with pytest.raises(KeyboardInterrupt):
        unet.save(path)
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"the previous model")
    with pytest.raises(KeyboardInterrupt):
        unet.save(path)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"the previous model"
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="file is a file"):
        unet.save(tmp_path / "file" / "model.keras")
