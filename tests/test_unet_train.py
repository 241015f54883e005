"""Training the U-Net: CI-sized runs, save / reload, progress, cancel, validation, early
stopping, time limit, mixed precision, bad inputs."""

import importlib
import inspect
import random
import re

import numpy as np
import pytest
from skimage.draw import disk

from napari_unet_weights.unet.config import TrainConfig, TrainConfigError
from napari_unet_weights.unet.model_file import read_metadata
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.predict import predict
from napari_unet_weights.unet.training.train import train
from test_unet_data import write_folder

train_module = importlib.import_module("napari_unet_weights.unet.training.train")
tuning_module = importlib.import_module("napari_unet_weights.unet.training.tuning")

BATCH_KEYS = {"stage", "epoch", "epochs", "step", "steps", "loss"}
EPOCH_KEYS = {"stage", "epoch", "epochs", "loss", "val_loss", "val_map"}
#: CI-sized runs: depth 1 (Keras traces a train step about 40 % faster than at depth 2; the
#: depths themselves: test_unet_model.py).
TINY = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "patch_size": 16, "depth": 1,
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
    from napari_unet_weights.unet import pad_to_multiple, prepare_image
    from napari_unet_weights.unet.model import weighted_loss
    from napari_unet_weights.unet.targets import targets

    values = []
    for image, label in zip(images, labels):
        target, weights = targets(label, 3)
        x, _ = pad_to_multiple(prepare_image(image), 2 ** TINY["depth"])  # 32 x 32: no padding
        probabilities = keras_model(x[None], training=False)
        values.append(float(weighted_loss()(target[None], probabilities,
                                            sample_weight=weights[None])))
    return float(np.mean(values))


@pytest.mark.slow
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
    assert re.fullmatch(r"(CPU|GPU: .+) \((tensorflow|torch|jax)\)", result.device)


@pytest.mark.slow
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


@pytest.mark.slow
def test_saved_model_reloads_identically_with_metadata(trained):
    from napari_unet_weights.unet import load_model

    result, _, images = trained
    assert result.path is not None and result.path.exists()
    loaded = load_model(result.path)
    np.testing.assert_allclose(predict(images[0], loaded), predict(images[0], result.model),
                               rtol=1e-5, atol=1e-6)
    metadata = loaded.metadata
    assert metadata == result.model.metadata
    assert metadata["n_classes"] == 3
    assert metadata["classes"] == ["background", "interior", "boundary"]
    assert metadata["weights"]["w0"] == 10.0 and metadata["weights"]["use_weights"] is True
    assert metadata["architecture"]["multiple"] == 2 ** TINY["depth"]
    assert metadata["split"] == result.split
    assert metadata["validation"]["map"] == pytest.approx(result.validation["map"])
    assert set(metadata["postprocess"]) >= {"threshold", "seed_threshold", "min_size"}
    assert metadata["training"]["epochs_run"] == 2
    assert TrainConfig.from_metadata(metadata) == TrainConfig(n_classes=3, **TINY)
    assert result.config == TrainConfig(n_classes=3, **TINY)
    assert read_metadata(result.path.with_name("ck.keras"))["training"]["checkpoint"]


@pytest.mark.slow
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
    if again.device.startswith("CPU"):  # GPU kernels need not be deterministic
        for ours, theirs in zip(again.model.keras_model.get_weights(),
                                trained[0].model.keras_model.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
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


@pytest.mark.slow
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
    probabilities = predict(images[0], result.model)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)  # 2 classes
    assert result.model.metadata["training"]["cancelled"] is True
    assert result.model.metadata["postprocess"] == DEFAULT_POSTPROCESS  # not tuned


# -- a given validation set, early stopping, no tuning (one run) ----------------------------
#: The validation losses the scripted run reports, epoch by epoch: best at epoch 2, then
#: two epochs without improvement end it with a patience of 2.
SCRIPTED_VAL_LOSS = [1.0, 0.5, 0.7, 0.6, 0.9, 0.8]


@pytest.fixture(scope="module")
def scripted(keras):
    """A run on 4 samples (32 x 32) with 3 given validation samples (40 x 40), no
    post-processing tuning, and the validation loss of each epoch replaced by
    :data:`SCRIPTED_VAL_LOSS`. Kept: the weights at each epoch's end, the shapes of the
    images the network was run on whole (the validation scoring)."""
    snapshots, scored_shapes = [], []
    monitor, predict_prepared = train_module._monitor, tuning_module.predict_prepared

    def scripted_monitor(keras_module, state):
        callback = monitor(keras_module, state)
        on_epoch_end = callback.on_epoch_end

        def replaced(epoch, logs=None):
            snapshots.append(callback.model.get_weights())
            on_epoch_end(epoch, {**(logs or {}), "val_loss": SCRIPTED_VAL_LOSS[epoch]})

        callback.on_epoch_end = replaced
        return callback

    def recording_predict(keras_model, x, multiple, **options):
        scored_shapes.append(x.shape)
        return predict_prepared(keras_model, x, multiple, **options)

    images, labels = synthetic(4, seed=3)
    val_images, val_labels = synthetic(3, size=40, seed=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "_monitor", scripted_monitor)
        patch.setattr(tuning_module, "predict_prepared", recording_predict)
        result = train(images, labels, validation=(val_images, val_labels),
                       tune_postprocess=False, early_stopping_patience=2, select_by="val_loss",
                       **{**TINY, "epochs": len(SCRIPTED_VAL_LOSS), "steps_per_epoch": 2,
                          "val_map_every": 100})
    return result, snapshots, scored_shapes


@pytest.mark.slow
def test_early_stopping_ends_after_the_patience_and_restores_the_best_weights(scripted):
    result, snapshots, _ = scripted
    assert result.stopped_early and not result.cancelled and not result.time_limit_reached
    assert result.history["epoch"].tolist() == [1, 2, 3, 4]
    assert result.history["val_loss"].tolist() == SCRIPTED_VAL_LOSS[:4]
    training = result.model.metadata["training"]
    assert (training["best_epoch"], training["best_val_loss"]) == (2, 0.5)
    assert training["stopped_early"] is True and training["epochs_run"] == 4
    final = result.model.keras_model.get_weights()
    for ours, best in zip(final, snapshots[1]):  # the end of epoch 2
        np.testing.assert_array_equal(ours, best)
    assert any(not np.array_equal(ours, last) for ours, last in zip(final, snapshots[3]))


@pytest.mark.slow
def test_a_given_validation_set_is_used_and_recorded(scripted):
    result, _, scored_shapes = scripted
    assert result.split == {"by": "index", "source": "given", "train": [0, 1, 2, 3],
                            "validation": [0, 1, 2]}
    training = result.model.metadata["training"]
    assert (training["n_train"], training["n_validation"]) == (4, 3)
    assert scored_shapes == [(40, 40, 1)] * 3  # the given images (training ones are 32 x 32)
    assert [r["image"] for r in result.validation["per_image"]] == [0, 1, 2]


@pytest.mark.slow
def test_without_tuning_the_default_post_processing_is_recorded(scripted):
    result, _, _ = scripted
    assert result.model.metadata["postprocess"] == DEFAULT_POSTPROCESS
    assert result.validation["postprocess_tuned_on"] is None
    assert result.validation["map"] == result.validation["map_default_postprocess"]
    assert result.config.tune_postprocess is False


# -- time limit, mixed precision ------------------------------------------------------------
@pytest.mark.slow
def test_max_seconds_stops_after_the_batch_that_passes_it_and_still_tunes(keras,
                                                                        fake_clock):
    images, labels = synthetic(3, seed=5)
    events: list = []
    # each batch takes 1 s on the fake clock: the fourth ends at 4 s, past 3.5 s
    result = train(images, labels, progress=fake_clock.progress(events, batch=1.0),
                   clock=fake_clock, max_seconds=3.5, **{**TINY, "epochs": 5})
    assert result.time_limit_reached and not result.cancelled and not result.stopped_early
    assert [(e["stage"], e["epoch"]) for e in events] == [("batch", 1)] * 3 + [
        ("epoch", 1), ("batch", 2)]
    assert result.history["epoch"].tolist() == [1]  # the last finished epoch is kept
    assert result.model.metadata["training"]["time_limit_reached"] is True
    assert result.model.metadata["training"]["max_seconds"] == 3.5
    assert result.validation["postprocess_tuned_on"] == "validation"


@pytest.mark.slow
def test_mixed_precision_trains_in_float16_and_saves_float32(monkeypatch, keras):
    """The GPU path on a CPU: train() decides on mixed precision in ``_device``."""
    built = []
    build_unet = train_module.build_unet

    def recording_build(*args, **kwargs):
        built.append((keras.mixed_precision.global_policy().name, build_unet(*args, **kwargs)))
        return built[-1][1]

    monkeypatch.setattr(train_module, "_device", lambda: ("GPU: stand-in", True))
    monkeypatch.setattr(train_module, "build_unet", recording_build)
    images, labels = synthetic(3, seed=6)
    result = train(images, labels, tune_postprocess=False,
                   **{**TINY, "epochs": 1, "steps_per_epoch": 2})
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    (policy, trained), (export_policy, _) = built  # the training model, the export copy
    assert (policy, export_policy) == ("mixed_float16", "float32")
    assert trained.get_layer("down0_conv1").compute_dtype == "float16"
    assert np.isfinite(result.history["loss"]).all()  # loss scaling kept it finite
    exported = result.model.keras_model
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    assert {w.dtype for w in exported.get_weights()} == {np.dtype(np.float32)}
    for ours, theirs in zip(exported.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    assert predict(images[0], result.model).dtype == np.float32
    training = result.model.metadata["training"]
    assert training["mixed_precision"] is True and training["device"] == "GPU: stand-in"


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
    with pytest.raises(TrainConfigError, match="multiple of 2\\*\\*depth"):
        train(images, labels, patch_size=18, depth=2)
    with pytest.raises(TrainConfigError, match="n_classes must be 2 or 3"):
        train(images, labels, TrainConfig(epochs=2), n_classes=4)
    with pytest.raises(ValueError, match="got 3 images but 2"):
        train(images, labels[:2])


def test_training_parameters_are_the_config_fields():
    images, labels = synthetic(3)
    with pytest.raises(TypeError, match=r"train\(\) got unknown training parameter 'epoch' "
                                        r"\(did you mean 'epochs'\?\); the parameters are: "):
        train(images, labels, epoch=3)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(images, labels, {"epochs": 3})
    # help(train) and forms see every parameter with its default
    signature = inspect.signature(train).parameters
    for parameter in TrainConfig.fields():
        assert signature[parameter.name].default == parameter.default
        assert signature[parameter.name].kind is inspect.Parameter.KEYWORD_ONLY


def test_a_validation_fraction_too_large_says_what_to_change():
    images, labels = synthetic(3)
    with pytest.raises(ValueError, match=r"a validation fraction of 0\.9 leaves 0 of 3 samples "
                                         r"for training; use a fraction of at most 0\.66"):
        train(images, labels, validation_fraction=0.9)


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


# -- epoch choice by validation mAP, learning-rate schedule, recorded options -------------
#: The validation mAP of each epoch; the validation loss keeps falling meanwhile.
SCRIPTED_VAL_MAP = [0.2, 0.5, 0.4, 0.45, 0.3]


@pytest.fixture(scope="module")
def map_selected(keras):
    """A run that keeps the epoch of the best validation mAP (scripted: epoch 2) while the
    validation loss falls every epoch; the other new options set."""
    snapshots = []
    monitor = train_module._monitor
    scripted_maps = iter(SCRIPTED_VAL_MAP)

    def scripted_monitor(keras_module, state):
        callback = monitor(keras_module, state)
        on_epoch_end = callback.on_epoch_end

        def replaced(epoch, logs=None):
            snapshots.append(callback.model.get_weights())
            on_epoch_end(epoch, {**(logs or {}), "val_loss": 1.0 - 0.1 * epoch})

        callback.on_epoch_end = replaced
        return callback

    images, labels = synthetic(4, seed=6)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "_monitor", scripted_monitor)
        patch.setattr(train_module, "_val_map", lambda state, model: next(scripted_maps))
        result = train(images, labels, validation=synthetic(2, seed=7), select_by="val_map",
                       early_stopping_patience=2, tune_postprocess=False,
                       lr_schedule="cosine", colour="hematoxylin", class_weights="none",
                       **{**TINY, "epochs": len(SCRIPTED_VAL_MAP), "steps_per_epoch": 2})
    return result, snapshots


@pytest.mark.slow
def test_select_by_val_map_keeps_the_best_map_epoch_not_the_lowest_loss(map_selected):
    result, snapshots = map_selected
    training = result.model.metadata["training"]
    assert (training["best_epoch"], training["best_val_map"]) == (2, 0.5)
    assert training["best_val_loss"] == pytest.approx(0.7)  # epoch 4: not the one kept
    assert result.stopped_early and result.history["epoch"].tolist() == [1, 2, 3, 4]
    for ours, best in zip(result.model.keras_model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(ours, best)


@pytest.mark.slow
def test_the_new_options_are_recorded_where_prediction_reads_them(map_selected):
    result, _ = map_selected
    metadata = result.model.metadata
    assert metadata["input"]["colour"] == "hematoxylin"
    assert metadata["weights"]["class_weights"] == "none"
    assert (metadata["training"]["lr_schedule"], metadata["training"]["select_by"]) == (
        "cosine", "val_map")
    assert TrainConfig.from_metadata(metadata) == result.config


def test_the_cosine_schedule_decays_to_zero_at_the_last_planned_step(keras):
    config = TrainConfig(learning_rate=0.01, epochs=4, steps_per_epoch=25, lr_schedule="cosine")
    schedule = train_module._learning_rate(keras, config)
    rates = [float(schedule(step)) for step in (0, 50, 100)]
    assert rates == pytest.approx([0.01, 0.005, 0.0], abs=1e-7)
    assert train_module._learning_rate(keras, config.replace(lr_schedule="constant")) == 0.01


def test_tuning_searches_the_thresholds_then_the_minimum_size(monkeypatch):
    """A scripted score peaking at threshold 0.5, seed 0.8, min_size 30: both stages find it."""
    class Score:
        def __init__(self, parameters):
            self.map = -(abs(parameters["threshold"] - 0.5) + abs(parameters["seed_threshold"]
                         - 0.8) + abs(parameters["min_size"] - 30) / 100)

    monkeypatch.setattr(tuning_module, "score_samples", lambda samples, probs, parameters: Score(
        parameters))
    best, score = tuning_module._tune([], [], 3)
    assert (best["threshold"], best["seed_threshold"], best["min_size"]) == (0.5, 0.8, 30)
    assert score == pytest.approx(0.0)
    assert {k: v for k, v in best.items() if k not in ("threshold", "seed_threshold",
                                                         "min_size")} == {
        k: v for k, v in DEFAULT_POSTPROCESS.items() if k not in ("threshold",
                                                                    "seed_threshold", "min_size")}


# -- starting from a trained model (fine-tuning) --------------------------------------------
@pytest.mark.slow
def test_a_run_starts_from_the_parent_weights_and_keeps_what_they_were_trained_for(
        trained, tmp_path):
    parent_result, _, _ = trained
    parent_path = parent_result.path
    images, labels = synthetic(3, seed=8)
    # finish_within=0: the budget is spent before the first step: the start itself
    result = train(images, labels, initial_model=parent_path, tune_postprocess=False,
                   finish_within=0,
                   **{k: v for k, v in TINY.items() if k not in ("depth", "base_filters")})
    assert result.history.empty and result.model.metadata["training"]["steps"] == 0
    for ours, theirs in zip(result.model.keras_model.get_weights(),
                            parent_result.model.keras_model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    parent_config = parent_result.config
    assert (result.config.depth, result.config.base_filters, result.config.n_classes) == (
        parent_config.depth, parent_config.base_filters, parent_config.n_classes)
    assert (TrainConfig().depth, TrainConfig().base_filters) != (
        TINY["depth"], TINY["base_filters"])  # really inherited
    lineage = result.model.metadata["lineage"]
    import hashlib
    assert lineage["parent"] == str(parent_path)
    assert lineage["parent_sha256"] == hashlib.sha256(parent_path.read_bytes()).hexdigest()
    assert lineage["added_train"] == result.split["train"] and lineage["seconds"] >= 0


@pytest.mark.slow
def test_asking_for_other_classes_than_the_parent_names_them(trained):
    parent_result, _, _ = trained
    images, labels = synthetic(3, seed=8)
    with pytest.raises(ValueError, match=r"n_classes=2 \(the model has 3\).*initial_model=None"):
        train(images, labels, initial_model=parent_result.model, n_classes=2, **TINY)
    with pytest.raises(ValueError, match=rf"depth=3 \(the model has {TINY['depth']}\)"):
        train(images, labels, initial_model=parent_result.model,
              config=TrainConfig(depth=3, patch_size=16))
    with pytest.raises(TypeError, match="initial_model must be None, 'bundled'"):
        train(images, labels, initial_model=42, **TINY)


@pytest.mark.slow
def test_fine_tuning_the_bundled_model_records_it_as_the_parent(keras):
    from napari_unet_weights.unet.model_file import BUNDLED_MODEL

    images, labels = synthetic(2, seed=9)
    result = train(images, labels, initial_model="bundled", epochs=1, steps_per_epoch=1,
                   batch_size=2, patch_size=32, tune_postprocess=False)
    assert result.model.metadata["lineage"]["parent"] == "bundled"
    assert result.model.metadata["input"]["colour"] == read_metadata(BUNDLED_MODEL)["input"][
        "colour"]
    assert result.config.base_filters == read_metadata(BUNDLED_MODEL)["architecture"][
        "base_filters"]
