"""Runs that resume (``train(..., run_dir=)``): a run stopped and resumed is the run that
never stopped (same batches, steps, losses and weights: exactly, on the CPU), checkpoints
on time and at the end, the early-stopping count across the interruption, a finished run
made again, refusals of other data / parameters, and what killed writes leave behind."""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import re
import shutil
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.training.run_dir import (
    data_differences,
    interrupt_on_sigterm,
    open_run,
    read_run,
    release,
)
from napari_unet_weights.unet.training.train import train
from test_unet_data import write_folder
from test_unet_train import TINY, synthetic

train_module = importlib.import_module("napari_unet_weights.unet.training.train")

EPOCHS = 4
RUN = {**TINY, "epochs": EPOCHS, "n_classes": 3}
STEPS = RUN["steps_per_epoch"]


def batches_of(events: list) -> list:
    return [(e["epoch"], e["step"]) for e in events if e["stage"] == "batch"]


def checkpoints_of(events: list) -> list:
    return [e["epoch"] for e in events if e["stage"] == "checkpoint"]


def stop_in_epoch(events: list, epoch: int):
    """``should_stop`` that stops at the first batch of ``epoch``."""
    return lambda: any(e["stage"] == "batch" and e["epoch"] == epoch for e in events)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, keras):
    """An uninterrupted run without a run folder; the same run in a folder, cancelled in
    its third epoch (one batch of it done) and resumed to the end (with a different
    fitting budget and a checkpoint every epoch); the folder's state after each part."""
    root = tmp_path_factory.mktemp("resume")
    folder = write_folder(root / "data", *synthetic())
    plain = train(folder, **RUN)
    run_dir = root / "run"
    first_events: list = []
    first = train(folder, run_dir=run_dir, progress=first_events.append,
                  should_stop=stop_in_epoch(first_events, 3), **RUN)
    after_first = root / "after_first"
    shutil.copytree(run_dir, after_first)
    events: list = []
    second = train(folder, run_dir=run_dir, progress=events.append, checkpoint_minutes=0,
                   **{**RUN, "max_seconds": 1e6})
    return SimpleNamespace(folder=folder, plain=plain, first=first, first_events=first_events,
                           after_first=after_first, second=second, events=events,
                           run_dir=run_dir, root=root)


def assert_same_weights(model, other):
    for ours, theirs in zip(model.keras_model.get_weights(), other.keras_model.get_weights(),
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_a_resumed_run_is_the_run_that_never_stopped(resumed):
    plain, second = resumed.plain, resumed.second
    assert second.history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    # CPU TensorFlow is deterministic here: the losses continue exactly
    assert second.history.equals(plain.history)
    assert_same_weights(second.model, plain.model)
    assert second.validation["map"] == plain.validation["map"]
    ours, theirs = second.model.metadata["training"], plain.model.metadata["training"]
    assert ours["steps"] == theirs["steps"] == EPOCHS * STEPS
    assert (ours["resumed"], theirs["resumed"]) == (1, 0)
    assert ours["best_epoch"] == theirs["best_epoch"]
    assert ours["epochs_run"] == EPOCHS and not ours["cancelled"]


@pytest.mark.slow
def test_the_second_part_starts_at_the_first_batch_of_the_unfinished_epoch(resumed):
    # the first part's one batch of epoch 3 is run again, with the same patches
    assert batches_of(resumed.first_events)[-1] == (3, 1)
    assert batches_of(resumed.events) == [(e, s) for e in (3, 4) for s in range(1, STEPS + 1)]
    assert resumed.first.cancelled and resumed.first.history["epoch"].tolist() == [1, 2]


@pytest.mark.slow
def test_the_state_of_a_stopped_run(resumed):
    # the end of the cancelled call wrote the end of epoch 2 (kept in memory: the
    # 5-minute interval had not passed), not its batch of epoch 3
    assert checkpoints_of(resumed.first_events) == [2]
    record, state = read_run(resumed.after_first)
    assert record["format"] == "napari-unet-weights run"
    assert TrainConfig(**record["config"]) == resumed.plain.config
    assert [name for name, *_ in record["data"]["train"]] == resumed.plain.split["train"]
    assert [row[:2] for row in record["data"]["validation"]] == [["s3", [32, 32]]]
    assert (state["epochs_done"], state["step"], state["finished"]) == (2, 2 * STEPS, False)
    assert [row[0] for row in state["history"]] == [1, 2]
    assert state["parts"][0]["ended_by"] == "cancelled"
    assert set(state["files"]) == {"last", "best"}
    assert {p.name for p in resumed.after_first.iterdir()} == {
        "run.json", "state.json", "run.lock", *filter(None, state["files"].values())}


@pytest.mark.slow
def test_the_optimizer_state_is_restored(resumed, keras):
    config = resumed.plain.config
    model = train_module._build(keras, config, mixed_precision=False)
    model.compile(optimizer=keras.optimizers.Adam(train_module._learning_rate(keras, config)),
                  loss="sparse_categorical_crossentropy")
    run = open_run(resumed.after_first, 5, 0.0)
    state = SimpleNamespace(best_weights=None)
    try:
        assert run.restore(model, state)
    finally:
        release(resumed.after_first)
    assert int(model.optimizer.iterations) == 2 * STEPS  # the cosine schedule's step
    assert state.first_epoch == 2 and len(state.history) == 2
    moments = [v for v in model.optimizer.variables if "momentum" in v.path]
    assert moments and all(np.any(np.asarray(v)) for v in moments)


@pytest.mark.slow
def test_checkpoints_every_epoch_and_the_seconds_over_all_parts(resumed):
    assert checkpoints_of(resumed.events) == [3, 4]  # checkpoint_minutes=0
    _, state = read_run(resumed.run_dir)
    assert state["finished"] and state["epochs_done"] == EPOCHS
    assert [(p["first_epoch"], p["epochs_done"], p["ended_by"]) for p in state["parts"]] == [
        (0, 2, "cancelled"), (2, 4, "finished")]
    assert state["seconds"] == pytest.approx(sum(p["seconds"] for p in state["parts"]),
                                             abs=0.11)
    seconds = resumed.second.model.metadata["training"]["seconds"]
    assert seconds >= state["parts"][0]["seconds"] + state["parts"][1]["seconds"] - 0.11
    assert [c["epoch"] for c in state["checkpoints"]] == [2, 3, 4]
    assert all(c["mb"] > 0 and "T" in c["time"] for c in state["checkpoints"])
    assert state["final"]["val_map"] == resumed.second.validation["map"]


@pytest.mark.slow
def test_a_finished_run_only_makes_its_final_model_again(resumed, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(resumed.run_dir, run_dir)
    events: list = []
    again = train(resumed.folder, run_dir=run_dir, progress=events.append,
                  out=tmp_path / "again.keras", **RUN)
    assert batches_of(events) == [] and checkpoints_of(events) == []
    assert again.history.equals(resumed.plain.history)
    assert_same_weights(again.model, resumed.plain.model)
    assert again.validation["map"] == resumed.plain.validation["map"]
    training = again.model.metadata["training"]
    assert (training["steps"], training["resumed"]) == (EPOCHS * STEPS, 2)
    _, state = read_run(run_dir)
    assert state["parts"][-1]["ended_by"] == "already finished"
    assert state["final"]["out"] == str((tmp_path / "again.keras").resolve())


@pytest.mark.slow
def test_checkpoints_wait_for_checkpoint_minutes(resumed, tmp_path, fake_clock):
    events: list = []
    # two minutes pass per epoch (before the run folder's check at its end)
    train(resumed.folder, run_dir=tmp_path / "run", clock=fake_clock,
          progress=fake_clock.progress(events, epoch=120.0), checkpoint_minutes=5, **RUN)
    # 6 minutes at the end of epoch 3; epoch 4, two minutes later, ends the run
    assert checkpoints_of(events) == [3, 4]
    _, state = read_run(tmp_path / "run")
    assert state["seconds"] == state["parts"][0]["seconds"] == EPOCHS * 120.0


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.slow
def test_other_parameters_are_refused_naming_them(resumed, monkeypatch):
    monkeypatch.setattr(train_module, "keras_or_error", pytest.fail)  # refused before
    with pytest.raises(ValueError, match=r"other training parameters: batch_size=4 then, 2 "
                                         r"now; epochs=4 then, 5 now\. Resume it with"):
        train(resumed.folder, run_dir=resumed.after_first,
              **{**RUN, "epochs": 5, "batch_size": 2})


@pytest.mark.slow
def test_other_data_is_refused_naming_the_difference(resumed, tmp_path):
    images, labels = synthetic()
    images[1] = images[1] + 1.0
    with pytest.raises(ValueError) as refused:
        train(write_folder(tmp_path / "other", images, labels),
              run_dir=resumed.after_first, **RUN)
    assert str(refused.value) == (
        f"{resumed.after_first} holds a run on other data: other pixels in 1 training "
        "sample ('s1'). Resume it with its own data, or start a new run in another folder.")


def test_the_data_differences_are_named():
    then = {"source": "split", "train": [["a", [8, 8], "x"], ["b", [8, 8], "y"]],
            "validation": [["c", [8, 8], "z"]]}
    now = {"source": "given", "train": [["a", [8, 8, 3], "q"], ["d", [8, 8], "y"]],
           "validation": [["c", [8, 8], "z"], ["e", [4, 4], "w"], ["f", [4, 4], "v"]]}
    assert data_differences(then, then) == []
    assert data_differences(then, now) == [
        "validation on 'split' then, 'given' now",
        "1 training sample of the run missing now ('b')", "1 new training sample ('d')",
        "training images of another shape: 'a' [8, 8] then, [8, 8, 3] now",
        "2 new validation samples ('e', 'f')"]
    reordered = {**then, "train": then["train"][::-1]}
    assert data_differences(then, reordered) == ["the training samples in another order"]


def test_another_process_training_in_the_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / "run.lock", "a") as other:  # another open file: as a process
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OSError, match="another process is training in"):
            open_run(tmp_path / "run", 5, 0.0)
    open_run(tmp_path / "run", 5, 0.0)
    release(tmp_path / "run")


@pytest.mark.parametrize("minutes", [-1, float("nan"), "5", True])
def test_checkpoint_minutes_is_checked(tmp_path, minutes):
    with pytest.raises(ValueError, match="checkpoint_minutes must be a number >= 0"):
        open_run(tmp_path / "run", minutes, 0.0)


# -- killed writes ----------------------------------------------------------------------------
@pytest.mark.slow
def test_what_a_killed_write_leaves_does_not_break_resuming(resumed, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(resumed.after_first, run_dir)
    _, state = read_run(run_dir)
    last = run_dir / state["files"]["last"]
    leftovers = [
        run_dir / f".{last.name}.0a1b2c3d.partial.npz",   # a checkpoint killed in writing
        run_dir / "last-000003-abcdef.npz",               # written, state.json not yet
        run_dir / ".state.json.0a1b2c3d.partial.json",    # state.json killed in writing
    ]
    leftovers[0].write_bytes(last.read_bytes()[:1000])
    leftovers[1].write_bytes(last.read_bytes()[:-100])
    leftovers[2].write_text('{"epochs_done": 3, "st')
    events: list = []
    result = train(resumed.folder, run_dir=run_dir, progress=events.append, **RUN)
    assert batches_of(events)[0] == (3, 1)
    assert result.history.equals(resumed.plain.history)
    assert not any(path.exists() for path in leftovers)


@pytest.mark.slow
def test_a_damaged_checkpoint_is_said(resumed, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(resumed.after_first, run_dir)
    _, state = read_run(run_dir)
    last = run_dir / state["files"]["last"]
    last.write_bytes(last.read_bytes()[:-100])
    with pytest.raises(ValueError, match=re.escape(f"the checkpoint {last} cannot be read")):
        train(resumed.folder, run_dir=run_dir, **RUN)
    (run_dir / "state.json").write_text('{"epochs_done": 2, "st')
    with pytest.raises(ValueError, match=r"state\.json cannot be read"):
        train(resumed.folder, run_dir=run_dir, **RUN)


@pytest.mark.slow
def test_ctrl_c_within_an_epoch_saves_the_epoch_before(resumed, tmp_path):
    events: list = []

    def interrupt():
        if batches_of(events)[-1] == (2, 1):
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        train(resumed.folder, run_dir=tmp_path / "run", progress=events.append,
              should_stop=interrupt, **RUN)
    assert checkpoints_of(events) == [1]
    _, state = read_run(tmp_path / "run")
    assert (state["epochs_done"], state["parts"][0]["ended_by"]) == (1, "interrupted")
    result = train(resumed.folder, run_dir=tmp_path / "run", **RUN)
    assert result.history.equals(resumed.plain.history)
    assert_same_weights(result.model, resumed.plain.model)


def test_sigterm_is_ctrl_c_within_interrupt_on_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupt_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_a_run_that_saved_no_epoch_starts_again_with_other_parameters(resumed, tmp_path):
    run_dir = tmp_path / "run"
    first = train(resumed.folder, run_dir=run_dir, should_stop=lambda: True, **RUN)
    assert first.cancelled and read_run(run_dir)[1]["epochs_done"] == 0
    # finish_within=0: the folder is taken over before the budget, spent, ends the call
    again = train(resumed.folder, run_dir=run_dir, finish_within=0,
                  **{**RUN, "batch_size": 2})
    assert again.time_limit_reached and again.history.empty
    record, state = read_run(run_dir)
    assert record["config"]["batch_size"] == 2 and len(state["parts"]) == 1


# -- early stopping across an interruption ------------------------------------------------
#: Validation losses by epoch: the best at epoch 2, then two epochs without a lower one.
SCRIPTED_VAL_LOSS = [1.0, 0.5, 0.7, 0.6, 0.9, 0.8]


@pytest.mark.slow
def test_early_stopping_counts_across_the_interruption(tmp_path, monkeypatch, keras):
    monitor = train_module._monitor
    snapshots = {}

    def scripted(keras_module, state):
        callback = monitor(keras_module, state)
        on_epoch_end = callback.on_epoch_end

        def replaced(epoch, logs=None):
            snapshots[epoch + 1] = callback.model.get_weights()
            on_epoch_end(epoch, {**(logs or {}), "val_loss": SCRIPTED_VAL_LOSS[epoch]})

        callback.on_epoch_end = replaced
        return callback

    monkeypatch.setattr(train_module, "_monitor", scripted)
    images, labels = synthetic(4, seed=3)
    run = {**TINY, "epochs": len(SCRIPTED_VAL_LOSS), "steps_per_epoch": 2,
           "early_stopping_patience": 2, "select_by": "val_loss", "val_map_every": 100,
           "tune_postprocess": False}
    events: list = []
    first = train(images, labels, run_dir=tmp_path / "run", progress=events.append,
                  should_stop=stop_in_epoch(events, 3), **run)
    assert first.history["epoch"].tolist() == [1, 2]
    result = train(images, labels, run_dir=tmp_path / "run", **run)
    # epochs 3 and 4 without a lower loss than epoch 2's: stopped after epoch 4
    assert result.stopped_early and result.history["epoch"].tolist() == [1, 2, 3, 4]
    assert result.model.metadata["training"]["best_epoch"] == 2
    for ours, best in zip(result.model.keras_model.get_weights(), snapshots[2], strict=True):
        np.testing.assert_array_equal(ours, best)  # epoch 2's, read from the run folder
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stopped_early"] and state["finished"]


# -- mixed precision (the GPU path, on the CPU) --------------------------------------------
@pytest.mark.slow
def test_a_mixed_precision_run_resumes_with_its_loss_scale(resumed, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "_device", lambda: ("GPU: stand-in", True))
    run = {**RUN, "epochs": 3}
    plain = train(resumed.folder, **run)
    events: list = []
    train(resumed.folder, run_dir=tmp_path / "run", progress=events.append,
          should_stop=stop_in_epoch(events, 2), **run)
    arrays = np.load(next((tmp_path / "run").glob("last-*.npz")))
    assert any("scale" in str(path) for path in arrays["optimizer_paths"])  # loss scale
    result = train(resumed.folder, run_dir=tmp_path / "run", **run)
    assert result.history.equals(plain.history)  # exactly, on the CPU
    assert_same_weights(result.model, plain.model)
    assert result.model.metadata["training"]["steps"] == 3 * STEPS
    monkeypatch.setattr(train_module, "_device", lambda: ("CPU", False))
    with pytest.raises(ValueError, match=r"trained with mixed precision .* resume it on the "
                                         r"same kind of device"):
        train(resumed.folder, run_dir=tmp_path / "run", **run)
