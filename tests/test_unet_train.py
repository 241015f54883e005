"""Training the U-Net: a CI-sized run, save / reload, progress, cancel, bad inputs."""

import math
import random

import numpy as np
import pytest
import tifffile
from skimage.draw import disk

from napari_unet_weights.unet.model_file import read_metadata
from napari_unet_weights.unet.train import _split, load_samples, train

BATCH_KEYS = {"stage", "epoch", "epochs", "step", "steps", "loss"}
EPOCH_KEYS = {"stage", "epoch", "epochs", "loss", "val_loss", "val_map"}
TINY = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "patch_size": 16, "depth": 2,
        "base_filters": 4, "learning_rate": 1e-2, "val_map_every": 1}


def synthetic(n=6, size=32, seed=0):
    """Bright discs (some touching) on a noisy dark background."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(n):
        label = np.zeros((size, size), np.uint16)
        for index in range(1, 5):
            radius = int(rng.integers(3, 6))
            centre = rng.integers(radius, size - radius, 2)
            label[disk(tuple(centre), radius, shape=label.shape)] = index
        images.append((label > 0) * 150 + rng.normal(20, 10, label.shape))
        labels.append(label)
    return images, labels


def write_folder(root, images, labels):
    for kind, arrays in (("images", images), ("labels", labels)):
        (root / kind).mkdir(parents=True)
        for i, array in enumerate(arrays):
            tifffile.imwrite(root / kind / f"s{i}.tif", array)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, keras):
    out = tmp_path_factory.mktemp("model") / "tiny.keras"
    events = []
    images, labels = synthetic()
    result = train(images, labels, n_classes=3, out=out, checkpoint=out.with_name("ck.keras"),
                   progress=events.append, **TINY)
    return result, events, images


def whole_image_loss(keras_model, images, labels):
    """The weighted loss of ``keras_model`` on whole images (inference mode)."""
    from napari_unet_weights.unet.model import weighted_loss
    from napari_unet_weights.unet.predict import pad_to_multiple, prepare_image
    from napari_unet_weights.unet.targets import targets

    values = []
    for image, label in zip(images, labels):
        target, weights = targets(label, 3)
        x, _ = pad_to_multiple(prepare_image(image), 4)  # 32 x 32: no padding
        probabilities = keras_model(x[None], training=False)
        values.append(float(weighted_loss()(target[None], probabilities,
                                            sample_weight=weights[None])))
    return float(np.mean(values))


def test_tiny_training_lowers_the_loss(trained):
    import keras

    from napari_unet_weights.unet.model import build_unet

    result, _, _ = trained
    images, labels = synthetic()
    keras.utils.set_random_seed(0)  # seeds Python's generator as train() does for its build
    initial = build_unet(1, 3, depth=TINY["depth"], base_filters=TINY["base_filters"])
    before = whole_image_loss(initial, images, labels)
    after = whole_image_loss(result.model.keras_model, images, labels)
    assert after < 0.95 * before
    assert result.history["val_loss"].iloc[-1] < result.history["val_loss"].iloc[0]
    assert list(result.history.columns) == ["epoch", "loss", "val_loss", "val_map"]
    assert result.history["epoch"].tolist() == [1, 2]
    assert not result.cancelled
    assert result.device == "CPU" or result.device.startswith("GPU: ")


def test_progress_callbacks_have_the_documented_keys(trained):
    _, events, _ = trained
    batches = [e for e in events if e["stage"] == "batch"]
    epochs = [e for e in events if e["stage"] == "epoch"]
    assert all(set(e) == BATCH_KEYS for e in batches)
    assert all(set(e) == EPOCH_KEYS for e in epochs)
    assert len(batches) == 6 and len(epochs) == 2
    assert [(e["epoch"], e["step"]) for e in batches[:4]] == [(1, 1), (1, 2), (1, 3), (2, 1)]
    assert batches[0]["epochs"] == 2 and batches[0]["steps"] == 3
    assert all(isinstance(e["val_map"], float) for e in epochs)


def test_saved_model_reloads_identically_with_metadata(trained):
    from napari_unet_weights.unet import load_model

    result, _, images = trained
    assert result.path is not None and result.path.exists()
    loaded = load_model(result.path)
    np.testing.assert_allclose(loaded.predict(images[0]), result.model.predict(images[0]),
                               rtol=1e-5, atol=1e-6)
    assert loaded.metadata == read_metadata(result.path)
    metadata = loaded.metadata
    assert metadata["n_classes"] == 3
    assert metadata["classes"] == ["background", "interior", "boundary"]
    assert metadata["weights"]["w0"] == 10.0 and metadata["weights"]["use_weights"] is True
    assert metadata["architecture"]["multiple"] == 4
    assert metadata["split"] == result.split
    assert metadata["validation"]["map"] == pytest.approx(result.validation["map"])
    assert set(metadata["postprocess"]) >= {"threshold", "seed_threshold", "min_size"}
    assert metadata["training"]["epochs_run"] == 2
    assert read_metadata(result.path.with_name("ck.keras"))["training"]["checkpoint"]
    assert loaded.segment(images[0]).shape == images[0].shape


def test_training_is_reproducible_and_leaves_the_global_generators_alone(trained, keras):
    import tensorflow as tf

    # The user's session state that train() must not touch: NumPy's legacy global too.
    def seed_everything() -> None:
        random.seed(7)
        np.random.seed(7)  # noqa: NPY002
        tf.random.set_seed(7)

    def draws() -> tuple:
        return random.random(), np.random.random(), float(tf.random.uniform(()))  # noqa: NPY002

    seed_everything()
    expected = draws()
    seed_everything()
    images, labels = synthetic()
    again = train(images, labels, n_classes=3, **TINY)  # as the fixture, without saving
    assert draws() == expected
    if again.device == "CPU":  # GPU kernels need not be deterministic
        for ours, theirs in zip(again.model.keras_model.get_weights(),
                                trained[0].model.keras_model.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_split_and_validation_scores_are_recorded(trained):
    result, _, _ = trained
    split = result.split
    assert split["by"] == "index" and split["seed"] == 0
    assert len(split["validation"]) == 1 and len(split["train"]) == 5
    assert not set(split["train"]) & set(split["validation"])
    validation = result.validation
    assert 0.0 <= validation["map"] <= 1.0
    assert validation["map"] >= validation["map_default_postprocess"]
    thresholds = [r["threshold"] for r in validation["per_threshold"]]
    assert thresholds == pytest.approx(np.arange(0.5, 0.96, 0.05))
    mean = np.mean([r["map"] for r in validation["per_threshold"]])
    assert mean == pytest.approx(validation["map"])


def test_cancel_stops_within_a_batch_and_keeps_a_usable_model(tmp_path, keras):
    images, labels = synthetic(4, seed=1)
    folder = write_folder(tmp_path / "data", images, labels)
    events = []
    result = train(folder, n_classes=2, progress=events.append,
                   should_stop=lambda: len(events) >= 2, validation_fraction=0.25,
                   **{**TINY, "epochs": 5})
    assert result.cancelled
    assert len(events) == 2 and all(e["stage"] == "batch" for e in events)
    assert result.history.empty
    assert result.split["by"] == "name" and result.split["validation"] == ["s2"]
    probabilities = result.model.predict(images[0])
    assert probabilities.shape == (32, 32, 2) and np.all(np.isfinite(probabilities))
    assert result.model.metadata["training"]["cancelled"] is True


def test_cli_train(tmp_path, capsys, keras):
    from napari_unet_weights.cli import main

    images, labels = synthetic(4, seed=2)
    folder = write_folder(tmp_path / "data", images, labels)
    out = tmp_path / "cli.keras"
    status = main(["train", str(folder), "--out", str(out), "--classes", "2", "--epochs", "1",
                   "--steps", "2", "--batch-size", "2", "--patch-size", "16", "--depth", "2",
                   "--filters", "4", "--val-fraction", "0.25", "--no-weights"])
    assert status == 0
    metadata = read_metadata(out)
    assert metadata["n_classes"] == 2 and metadata["weights"]["use_weights"] is False
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "val_mAP" in err


def test_cli_train_errors(tmp_path, capsys):
    from napari_unet_weights.cli import main

    assert main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.keras")]) == 2
    assert "no such" in capsys.readouterr().err
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.keras")]) == 1
    assert "holds no image files" in capsys.readouterr().err


# -- bad inputs: clear errors before any training ------------------------------------
def test_mismatched_shapes_name_the_pair_and_shapes():
    images, labels = synthetic(3)
    labels[1] = labels[1][:30]
    with pytest.raises(ValueError, match=r"sample 1.*image \(32, 32\), labels \(30, 32\)"):
        train(images, labels)


def test_float_labels_are_rejected():
    images, labels = synthetic(3)
    labels[2] = labels[2].astype(np.float32)
    with pytest.raises(TypeError, match="must hold integers"):
        train(images, labels)


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        train(tmp_path)
    with pytest.raises(ValueError, match="images/ and a labels/ folder"):
        train(tmp_path / "images")


def test_unreadable_file_is_named(tmp_path):
    images, labels = synthetic(3)
    folder = write_folder(tmp_path / "data", images, labels)
    (folder / "images" / "s1.tif").write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(OSError, match=r"s1\.tif"):
        train(folder)


def test_too_few_samples_and_bad_parameters():
    images, labels = synthetic(1)
    with pytest.raises(ValueError, match="too few for a validation split"):
        train(images, labels)
    images, labels = synthetic(3)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth"):
        train(images, labels, patch_size=18, depth=2)
    with pytest.raises(ValueError, match="n_classes must be 2 or 3"):
        train(images, labels, n_classes=4)
    with pytest.raises(ValueError, match="got 3 images but 2"):
        train(images, labels[:2])


def test_a_validation_fraction_too_large_says_what_to_change():
    images, labels = synthetic(3)
    with pytest.raises(ValueError, match=r"a validation fraction of 0\.9 leaves 0 of 3 samples "
                                         r"for training; use a fraction of at most 0\.66"):
        train(images, labels, validation_fraction=0.9)
    train_ids, val_ids = _split(3, 0.66, seed=0)  # the suggested fraction works
    assert len(train_ids) == 1 and len(val_ids) == 2


def test_outputs_are_checked_before_anything_is_read(tmp_path):
    missing_data = tmp_path / "no such folder"  # would fail later, when samples are read
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="file is a file, not a folder"):
        train(missing_data, out=tmp_path / "file" / "m.keras")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        train(missing_data, checkpoint=tmp_path)
    with pytest.raises(ValueError, match=r"must end with \.keras"):
        train(missing_data, out=tmp_path / "m.h5")


def test_nan_in_a_training_image_is_refused_with_its_count():
    images, labels = synthetic(3)
    images[1][3:5, 4:6] = np.nan
    images[1][0, 0] = -np.inf
    with pytest.raises(ValueError, match="sample 1 has 5 NaN or infinite values"):
        train(images, labels, **TINY)


def test_load_samples_accepts_rgb_and_two_folders(tmp_path):
    images, labels = synthetic(2)
    rgb = [np.stack([im] * 3, axis=-1).astype(np.uint8) for im in images]
    folder = write_folder(tmp_path / "data", rgb, labels)
    samples = load_samples(folder / "images", folder / "labels")
    assert [s.name for s in samples] == ["s0", "s1"]
    assert samples[0].image.shape == (32, 32, 3)
    assert not math.isnan(float(samples[0].labels.max()))
    two_channels = [np.stack([im, im], axis=-1) for im in images]
    assert load_samples(two_channels, labels)[1].image.shape == (32, 32, 2)
    with pytest.raises(ValueError, match="sample 0 has 5 channels"):
        load_samples([np.stack([images[0]] * 5, axis=-1)], labels[:1])
