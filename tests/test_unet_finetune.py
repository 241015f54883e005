"""Fine-tuning (``train(..., initial_model=...)``): its defaults, what it validates on, the
parent's post-processing and weights kept, the hard time budget ``finish_within``."""

import importlib

import numpy as np
import pytest

from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.model_file import UNetModel, read_metadata
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.training.budget import SAVE_SECONDS, TimeBudget
from napari_unet_weights.unet.training.parent import (
    FINE_TUNING_DEFAULTS,
    INHERITED,
    fine_tuning_config,
)
from napari_unet_weights.unet.training.train import train
from test_unet_train import TINY, synthetic

train_module = importlib.import_module("napari_unet_weights.unet.training.train")
#: TINY without what a parent fixes.
TINY_RUN = {k: v for k, v in TINY.items() if k not in INHERITED}
#: A post-processing no run would choose by itself: proof that the parent's is kept.
PARENT_POSTPROCESS = {**DEFAULT_POSTPROCESS, "threshold": 0.45, "seed_threshold": 0.65,
                      "min_size": 7}


@pytest.fixture(scope="module")
def parent(keras):
    """A tiny trained model whose metadata carries :data:`PARENT_POSTPROCESS`."""
    images, labels = synthetic(4, seed=11)
    result = train(images, labels, n_classes=3, tune_postprocess=False, **TINY)
    return UNetModel(result.model.keras_model,
                     {**result.model.metadata, "postprocess": dict(PARENT_POSTPROCESS)})


def same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


@pytest.mark.slow
def test_fine_tuning_defaults_fill_only_what_the_caller_left_unset(parent):
    images, labels = synthetic(3, seed=12)
    # finish_within=0: the budget is spent before the first step, nothing is fitted
    result = train(images, labels, initial_model=parent, learning_rate=5e-4, patch_size=16,
                   finish_within=0)
    assert result.time_limit_reached and result.history.empty
    assert result.config.learning_rate == 5e-4  # given: kept
    for name in ("lr_schedule", "max_seconds", "epochs", "steps_per_epoch",
                 "early_stopping_patience"):
        assert getattr(result.config, name) == FINE_TUNING_DEFAULTS[name], name
    given = TrainConfig(epochs=7, patch_size=16, depth=TINY["depth"])  # non-defaults count
    result = train(images, labels, given, initial_model=parent, base_filters=4,
                   finish_within=0)  # the configuration is settled before any step
    assert (result.config.epochs, result.config.learning_rate) == (
        7, FINE_TUNING_DEFAULTS["learning_rate"])
    scratch = train(images, labels, **TINY, tune_postprocess=False, finish_within=0)
    assert scratch.config.learning_rate == TINY["learning_rate"]
    assert scratch.config.lr_schedule == TrainConfig().lr_schedule  # no parent: no change


def test_fine_tuning_config_is_the_parent_s_architecture_with_the_fine_tuning_defaults():
    metadata = read_metadata(None)
    config = fine_tuning_config(metadata)
    assert config.base_filters == metadata["architecture"]["base_filters"]
    assert config.colour == metadata["input"]["colour"] == "hematoxylin"
    assert config.learning_rate == 3e-4 and config.max_seconds == 300.0
    assert config.w0 == TrainConfig().w0


@pytest.mark.slow
def test_few_images_validate_on_themselves_and_keep_the_parent_s_post_processing(parent):
    images, labels = synthetic(3, seed=13)
    result = train(images, labels, initial_model=parent, epochs=2, steps_per_epoch=2,
                   batch_size=4, patch_size=16)
    assert result.split["source"] == "training"
    assert result.split["train"] == result.split["validation"] == [0, 1, 2]
    assert result.validation["on"] == "training images"
    assert result.validation["postprocess_from"] == "parent"
    assert result.model.metadata["postprocess"] == PARENT_POSTPROCESS
    assert result.model.metadata["lineage"]["validated_on"] == "training"


@pytest.mark.slow
def test_enough_separate_validation_images_tune_the_post_processing(parent):
    images, labels = synthetic(2, seed=14)
    for n_validation, tuned in ((2, False), (3, True)):
        result = train(images, labels, initial_model=parent, validation=synthetic(
            n_validation, seed=15), epochs=1, steps_per_epoch=1, batch_size=4, patch_size=16)
        assert result.validation["on"] == "validation set"
        assert (result.validation["postprocess_from"] == "tuned") is tuned
        if not tuned:
            assert result.validation["postprocess"] == PARENT_POSTPROCESS


@pytest.mark.slow
def test_validation_on_the_training_images_can_be_asked_for_without_a_parent(keras):
    images, labels = synthetic(1, seed=16)
    result = train(images, labels, validation="training", **TINY)
    assert result.validation["on"] == "training images"
    assert result.validation["postprocess_from"] == "defaults"  # never tuned on them
    with pytest.raises(ValueError, match="validation='training'"):
        train(images, labels, **TINY)


@pytest.mark.parametrize(("scripted_maps", "parent_kept"), [
    ((0.9, 0.5, 0.6), True),  # no epoch beats the parent: its weights come back
    ((0.2, 0.5, 0.6), False),
])
@pytest.mark.slow
def test_the_parent_s_weights_are_kept_unless_an_epoch_beats_them(
        parent, monkeypatch, scripted_maps, parent_kept):
    maps = iter(scripted_maps)
    monkeypatch.setattr(train_module, "_val_map", lambda state, model: next(maps))
    images, labels = synthetic(3, seed=17)
    result = train(images, labels, initial_model=parent, epochs=2, steps_per_epoch=2,
                   batch_size=4, patch_size=16, learning_rate=1e-2)
    assert same_weights(result.model.keras_model, parent.keras_model) is parent_kept
    assert result.model.metadata["lineage"]["parent_val_map"] == scripted_maps[0]
    assert result.model.metadata["training"]["best_epoch"] == (0 if parent_kept else 2)


def test_the_budget_keeps_time_for_the_measured_final_validation(fake_clock):
    fake_clock.advance(0.5)  # 9.5 s left
    budget = TimeBudget(clock=fake_clock, end_by=10, final_scorings=3,
                        predict_seconds=4.0, score_seconds=1.0)  # 4 + 3 × 1 + 3 = 10 s kept
    assert SAVE_SECONDS == 3.0 and budget.reserve() == 10.0
    assert budget.out_of_time() and not budget.final_validation_fits()
    budget.predict_seconds = 3.0  # 9 s kept
    assert not budget.out_of_time() and budget.final_validation_fits()


def test_the_budget_keeps_time_for_a_batch_and_an_epoch_s_end(fake_clock):
    fake_clock.advance(0.5)
    budget = TimeBudget(clock=fake_clock, end_by=10, step_seconds=2.0,
                        epoch_end_seconds=2.0)  # 0.5 + 2 + 2 + 3 (saving) = 7.5 s
    assert not budget.out_of_time()
    budget.epoch_end_seconds = 5.5  # the next check may come after the epoch's validation
    assert budget.out_of_time()


def test_max_seconds_is_a_deadline_for_fitting_alone(fake_clock):
    budget = TimeBudget.starting_now(fake_clock)
    fake_clock.advance(100)  # reading, building: not counted
    budget.limit_fitting(5.0)
    fake_clock.advance(5.0)
    assert not budget.out_of_time()  # at the deadline: not past it
    fake_clock.advance(0.01)
    assert budget.out_of_time()
    assert budget.final_validation_fits()  # no budget for the whole call
    budget.limit_fitting(None)
    assert not budget.out_of_time()


def test_a_batch_and_an_epoch_s_end_are_measured_on_the_clock(fake_clock):
    budget = TimeBudget.starting_now(fake_clock, finish_within=20)
    budget.fitting_begins()
    budget.batch_begins()
    fake_clock.advance(1.5)
    assert not budget.batch_ends() and budget.step_seconds == 1.5
    fake_clock.advance(4.0)  # the epoch's validation
    budget.epoch_ends()
    assert budget.epoch_end_seconds == 4.0
    budget.batch_begins()
    fake_clock.advance(1.0)
    # at 6.5 s: 6.5 + 1 (a batch) + 4 (an epoch's end) + 3 (saving) = 14.5 s, within 20
    assert not budget.batch_ends()
    budget.batch_begins()
    fake_clock.advance(6.0)
    assert budget.batch_ends()  # 12.5 + 6 + 4 + 3 > 20
    assert budget.elapsed() == 12.5


@pytest.mark.slow
def test_a_run_with_a_hard_budget_stops_on_its_clock(keras, fake_clock):
    images, labels = synthetic(4, seed=18)
    events: list = []
    # each batch takes 1 s and each epoch's end 2 s on the fake clock; 3 batches an epoch
    result = train(images, labels, finish_within=10.0, clock=fake_clock,
                   progress=fake_clock.progress(events, batch=1.0, epoch=2.0),
                   **{**TINY, "epochs": 10_000, "early_stopping_patience": 10_000})
    # after epoch 1 (5 s), a batch (6 s): 6 + 1 (a batch) + 2 (an epoch's end) + 3 (saving)
    # > 10: it stops; the final validation and saving (3 s) still fit, tuning too
    assert [(e["stage"], e["epoch"], e.get("step")) for e in events] == [
        ("batch", 1, 1), ("batch", 1, 2), ("batch", 1, 3), ("epoch", 1, None),
        ("batch", 2, 1)]
    assert result.time_limit_reached and not result.cancelled
    assert result.history["epoch"].tolist() == [1]  # the last finished epoch is kept
    assert result.seconds == 6.0 <= 10.0  # returned within the budget, on its clock
    training = result.model.metadata["training"]
    assert (training["finish_within"], training["seconds"]) == (10.0, 6.0)
    assert result.validation["postprocess_tuned_on"] == "validation"


def test_no_time_left_skips_tuning_but_still_returns_a_model(keras, fake_clock):
    images, labels = synthetic(4, seed=19)
    events: list = []
    result = train(images, labels, finish_within=2.0, clock=fake_clock,
                   progress=events.append, **TINY)
    assert events == [] and result.history.empty  # 3 s of saving do not fit: no step
    assert result.time_limit_reached
    assert result.validation["postprocess_tuned_on"] is None
    assert result.validation["postprocess"] == DEFAULT_POSTPROCESS


@pytest.mark.slow
def test_options_are_checked_against_the_parent_s_depth_not_the_default_one(parent):
    from napari_unet_weights.unet.training.parent import Parent, run_config

    config = run_config(None, {"patch_size": 36}, Parent(parent, "tiny", "0"))
    assert (config.depth, config.patch_size) == (TINY["depth"], 36)  # 36: not a multiple of 2**4
    with pytest.raises(ValueError, match=rf"depth=4 \(the model has {TINY['depth']}\)"):
        run_config(None, {"depth": 4}, Parent(parent, "tiny", "0"))
