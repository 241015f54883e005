"""``napari-unet-weights train``: options → train()'s arguments (only the options given),
--from / --minutes / --val-dir / --val-on-training, checks made before TensorFlow starts,
progress and the summary line, and one real fine-tuning run within its budget."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import napari_unet_weights.cli.train as cli_train
from napari_unet_weights.cli import build_parser, main
from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.model_file import BUNDLED_MODEL

train_module = importlib.import_module("napari_unet_weights.unet.training.train")

needs_bundled = pytest.mark.skipif(not BUNDLED_MODEL.exists(),
                                   reason="the bundled model is not installed")


def fake_result(call: dict, **validation) -> SimpleNamespace:
    """What train() returns, as far as the command reads it."""
    return SimpleNamespace(
        validation={"n_images": 2, "map": 0.625, "on": "held-out split",
                    "postprocess_from": "tuned", **validation},
        model=SimpleNamespace(metadata={}), history=[object()], device="CPU",
        path=call["out"], time_limit_reached=False, stopped_early=False)


@pytest.fixture
def runs(monkeypatch) -> list:
    """What each run did: ``True``/``False`` when TensorFlow started (``--verbose``), then
    the arguments of ``train`` (bound to its real signature; the training parameters
    passed, and only those, in ``overrides``); training is a stand-in that reports one
    epoch."""
    calls: list = []
    signature = inspect.signature(train_module.train)
    parameters = {field.name for field in TrainConfig.fields()}

    def fake_train(*args, **kwargs):
        call = signature.bind(*args, **kwargs).arguments
        call["overrides"] = {name: call.pop(name) for name in list(call) if name in parameters}
        for name, parameter in signature.parameters.items():
            if name not in parameters:
                call.setdefault(name, parameter.default)
        calls.append(call)
        call["progress"]({"stage": "epoch", "epoch": 1, "epochs": 1, "loss": 0.25,
                          "val_loss": 0.5, "val_map": 0.75})
        return fake_result(call)

    monkeypatch.setattr(train_module, "train", fake_train)
    monkeypatch.setattr(cli_train, "start_backend",
                        lambda verbose, backend=None: calls.append(verbose))
    return calls


def run_train(argv: list, clock) -> int:
    """``napari-unet-weights train ARGV`` in this process, its time read from ``clock``
    (as :func:`main` runs it: the budget starts when the command starts)."""
    args = build_parser().parse_args(["train", *argv])
    args.started = clock()
    return cli_train.run(args, clock)


def _folder(path: Path) -> Path:
    for name in ("images", "labels"):
        (path / name).mkdir(parents=True)
    return path


@pytest.fixture
def data(tmp_path):
    return _folder(tmp_path / "data")


# -- the options given, and only those, reach train() -------------------------------------
def test_options_reach_train_as_given(data, tmp_path, runs, capsys):
    out = str(tmp_path / "m.keras")
    assert main(["train", str(data), "--out", out, "--classes", "2", "--no-weights",
                 "--epochs", "4", "--steps", "7", "--batch-size", "2", "--patch-size", "64",
                 "--depth", "3", "--filters", "8", "--val-fraction", "0.25", "--lr", "0.001",
                 "--seed", "5", "--patience", "3", "--max-seconds", "60", "--no-tune"]) == 0
    assert runs[0] is False  # TensorFlow started quietly, then training
    call = runs[1]
    assert str(call["images"]) == str(data) and call["out"] == out
    assert call["config"] is None
    # --lr 0.001 is TrainConfig's default, passed all the same: with --from it would win
    # over the fine-tuning default
    assert call["overrides"] == {
        "n_classes": 2, "use_weights": False, "epochs": 4, "steps_per_epoch": 7,
        "batch_size": 2, "patch_size": 64, "depth": 3, "base_filters": 8,
        "validation_fraction": 0.25, "learning_rate": 0.001, "seed": 5,
        "early_stopping_patience": 3, "max_seconds": 60.0, "tune_postprocess": False}
    assert call["initial_model"] is None and call["validation"] is None
    assert call["finish_within"] is None
    err = capsys.readouterr().err
    assert "epoch 1/1 loss 0.2500 val_loss 0.5000 val_mAP 0.7500\n" in err
    assert err.splitlines()[-1].startswith("validation mAP 0.6250 on 2 held-out images, "
                                           "post-processing tuned on them; 1 epoch")
    assert err.rstrip().endswith(f"saved {out}")


def test_without_options_train_gets_no_overrides(data, tmp_path, runs):
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras")]) == 0
    assert runs[1]["overrides"] == {}


@needs_bundled
def test_from_a_model_passes_it_and_only_the_options_given(data, tmp_path, runs,
                                                          monkeypatch):
    assert main(["train", str(data), "--out", str(tmp_path / "a.keras"), "--from", "bundled",
                 "--lr", "0.001", "--epochs", "3", "--classes", "3"]) == 0
    assert runs[1]["initial_model"] == "bundled"
    assert runs[1]["overrides"] == {"learning_rate": 0.001, "epochs": 3, "n_classes": 3}
    parent = tmp_path / "sub" / "parent.keras"
    parent.parent.mkdir()
    parent.write_bytes(BUNDLED_MODEL.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(data), "--out", str(tmp_path / "b.keras"),
                 "--from", "sub/parent.keras"]) == 0
    assert runs[3]["initial_model"] == str(parent.resolve())  # the lineage's full path
    assert runs[3]["overrides"] == {}


def test_the_validation_options(data, tmp_path, runs, capsys):
    val = _folder(tmp_path / "val")
    assert main(["train", str(data), "--out", str(tmp_path / "a.keras"),
                 "--val-dir", str(val)]) == 0
    assert runs[1]["validation"] == str(val)
    assert main(["train", str(data), "--out", str(tmp_path / "b.keras"),
                 "--val-on-training"]) == 0
    assert runs[3]["validation"] == "training"
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        main(["train", str(data), "--out", str(tmp_path / "c.keras"), "--val-dir", str(val),
              "--val-on-training"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_val_dir_called_training_is_a_folder(data, tmp_path, runs, monkeypatch):
    _folder(tmp_path / "training")
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(data), "--out", str(tmp_path / "a.keras"),
                 "--val-dir", "training"]) == 0
    assert runs[1]["validation"] == str(tmp_path / "training")  # not --val-on-training


@pytest.mark.parametrize(("options", "message"), [
    (["--val-dir", "{tmp}/nothing"], "--val-dir {tmp}/nothing: no such folder."),
    (["--val-dir", "{tmp}/val/images"], "must hold an images/ and a labels/ folder"),
    (["--val-dir", "{tmp}/val", "--val-fraction", "0.2"],
     "--val-fraction holds images out of DATA_DIR: it does nothing with --val-dir"),
    (["--val-on-training", "--tune"], "leave --tune out, or validate on --val-dir"),
    (["--from", "{tmp}/missing.keras"], "--from: {tmp}/missing.keras: no such model file."),
    (["--from", "{tmp}/model.h5"], "--from takes 'bundled' or a .keras model file, got"),
    (["--from", "{tmp}/fake.keras"], "is not a Keras model file"),
    (["--patch-size", "100"], "patch_size must be a multiple of 2**depth = 16"),
])
def test_usage_errors_say_what_to_change_before_tensorflow_starts(
        options, message, data, tmp_path, runs, capsys):
    _folder(tmp_path / "val")
    (tmp_path / "model.h5").write_bytes(b"")
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    options = [option.format(tmp=tmp_path) for option in options]
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras"), *options]) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert runs == []  # neither TensorFlow nor training started


@needs_bundled
def test_asking_for_other_classes_than_the_model_is_a_usage_error(data, tmp_path, runs,
                                                                   capsys):
    out = str(tmp_path / "m.keras")
    assert main(["train", str(data), "--out", out, "--from", "bundled", "--classes", "2",
                 "--no-batch-norm"]) == 2
    err = capsys.readouterr().err
    assert ("--from bundled keeps what its weights were trained for: --classes 2 (the model "
            "has --classes 3), --no-batch-norm (the model has --batch-norm). Leave these "
            "options out, or train from scratch (without --from).") in err
    assert runs == []


# -- the time budget -----------------------------------------------------------------
@pytest.fixture
def start_up(runs, monkeypatch, fake_clock):
    """``start_up(seconds)``: TensorFlow's start takes that long on ``fake_clock``."""
    taken = {"seconds": 0.0}

    def start_backend(verbose, backend=None):
        fake_clock.advance(taken["seconds"])
        runs.append(verbose)

    monkeypatch.setattr(cli_train, "start_backend", start_backend)
    return lambda seconds: taken.update(seconds=seconds)


def test_minutes_is_a_budget_from_the_start_of_the_command(data, tmp_path, runs, start_up,
                                                           fake_clock):
    start_up(7.0)  # TensorFlow's start-up counts
    assert run_train([str(data), "--out", str(tmp_path / "m.keras"), "--minutes", "0.5"],
                     fake_clock) == 0
    call = runs[1]
    assert call["finish_within"] == 30 - 7 - cli_train.EXIT_SECONDS
    assert call["clock"] is fake_clock  # train() reads the budget on the command's clock
    assert call["overrides"] == {"max_seconds": None}  # the budget, not a fitting limit
    assert run_train([str(data), "--out", str(tmp_path / "n.keras"), "--minutes", "2",
                      "--max-seconds", "60"], fake_clock) == 0
    assert runs[3]["overrides"] == {"max_seconds": 60.0}
    assert runs[3]["finish_within"] == 120 - 7 - cli_train.EXIT_SECONDS


def test_a_budget_that_start_up_uses_up_is_a_usage_error(data, tmp_path, runs, start_up,
                                                          fake_clock, capsys):
    out = str(tmp_path / "m.keras")
    # 12 s: 10 s left to train after the 2 s margin; 0.5 s of start-up leaves 9.5 s
    start_up(0.5)
    assert run_train([str(data), "--out", out, "--minutes", "0.2"], fake_clock) == 2
    assert ("--minutes 0.2: start-up took 0.5 s of the 12 s, leaving less than 10 s to "
            "train, validate and save; give --minutes 0.3 or more") in capsys.readouterr().err
    assert runs == [False]  # TensorFlow started, training did not
    start_up(0.0)  # exactly 10 s left: training starts
    assert run_train([str(data), "--out", out, "--minutes", "0.2"], fake_clock) == 0
    assert runs[2]["finish_within"] == pytest.approx(cli_train.MIN_TRAIN_SECONDS)
    with pytest.raises(SystemExit) as caught:
        main(["train", str(data), "--out", out, "--minutes", "0"])
    assert caught.value.code == 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_run_as_a_program_the_budget_counts_from_the_process_start_to_its_end(data, tmp_path):
    code = f"""
import time
script_began = time.monotonic()  # after the interpreter's start, before the imports
import sys
import importlib
import napari_unet_weights.cli.train as cli_train
from napari_unet_weights.cli import main
train_module = importlib.import_module("napari_unet_weights.unet.training.train")
import atexit
atexit.register(print, "the interpreter's shutdown ran")
cli_train.start_backend = lambda verbose, backend=None: None
def fake_train(data, **kwargs):
    print("finish_within", kwargs["finish_within"], "called", time.monotonic(),
          "script_began", script_began, "monotonic", kwargs["clock"] is time.monotonic)
    raise ValueError("stop here")
train_module.train = fake_train
sys.argv = ["napari-unet-weights", "train", {str(data)!r}, "--out",
            {str(tmp_path / "m.keras")!r}, "--minutes", "1"]
sys.exit(main())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "stop here" in done.stderr
    said = done.stdout.split()
    finish_within, called, script_began = float(said[1]), float(said[3]), float(said[5])
    assert said[7] == "True"  # the real clock
    # the budget started before this script's first line: with the interpreter's start
    budget_started = called - (60 - cli_train.EXIT_SECONDS - finish_within)
    assert budget_started < script_began
    # TensorFlow's shutdown takes seconds: with a budget the process ends without it
    assert "shutdown ran" not in done.stdout


# -- the summary -------------------------------------------------------------------------
def test_the_summary_says_what_the_score_was_measured_on(data, tmp_path, runs, monkeypatch,
                                                         capsys):
    def fine_tuned(**kwargs):
        result = fake_result(kwargs, n_images=3, on="training images",
                             postprocess_from="parent")
        result.model.metadata["lineage"] = {"parent_val_map": 0.5}
        result.history, result.time_limit_reached = [1, 2, 3], True
        return result

    monkeypatch.setattr(train_module, "train", lambda data, **kwargs: fine_tuned(**kwargs))
    out = tmp_path / "m.keras"
    assert main(["train", str(data), "--out", str(out), "--minutes", "1"]) == 0
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(
        "validation mAP 0.6250 (starting model: 0.5000) on the 3 training images (not an "
        "independent score), the starting model's post-processing; 3 epochs, ended by the "
        "time limit; CPU; ")
    assert " s of the 60 s budget; saved " in last and last.endswith(str(out))


# -- a real run ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_parent(tmp_path_factory, keras):
    """A tiny untrained U-Net (depth 1) saved with complete metadata (no training: Keras
    traces a first fit for seconds), and a folder of 3 images of bright discs."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
    from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION
    from test_unet_data import write_folder
    from test_unet_train import synthetic

    keras.utils.set_random_seed(0)
    metadata = {"format_version": 1, "n_classes": 3, "input": dict(DEFAULT_INPUT),
                "normalization": dict(DEFAULT_NORMALIZATION),
                "architecture": {"type": "unet2d", "n_channels": 1, "depth": 1,
                                 "base_filters": 4},
                "postprocess": dict(DEFAULT_POSTPROCESS)}
    root = tmp_path_factory.mktemp("fine_tuning")
    parent = UNetModel(build_unet(1, 3, depth=1, base_filters=4), metadata).save(
        root / "parent.keras")
    return parent, write_folder(root / "few", *synthetic(3, 32, seed=1))


def test_options_are_checked_with_the_model_s_architecture(tiny_parent, data, tmp_path,
                                                            runs, capsys):
    parent, _ = tiny_parent
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras"), "--from",
                 str(parent), "--patch-size", "33"]) == 2
    assert "multiple of 2**depth = 2 (depth 1)" in capsys.readouterr().err  # not 16 (depth 4)
    assert runs == []


@pytest.mark.slow
def test_fine_tuning_a_file_within_the_budget_records_its_lineage(tiny_parent, tmp_path,
                                                                  fake_clock, capsys):
    from napari_unet_weights.unet.model_file import read_metadata

    parent, few = tiny_parent
    out = tmp_path / "new.keras"
    fake_clock.tick = 0.5  # every reading of the clock takes half a second
    assert run_train([str(few), "--from", str(parent), "--minutes", "0.25", "--out",
                      str(out), "--patience", "1000", "--patch-size", "32"], fake_clock) == 0
    metadata = read_metadata(out)
    lineage = metadata["lineage"]
    assert lineage["parent_sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    assert lineage["parent"] == str(parent.resolve())
    assert lineage["validated_on"] == "training"  # 3 images: no split
    assert metadata["training"]["time_limit_reached"]  # the budget ended it
    assert metadata["training"]["learning_rate"] == 3e-4  # a fine-tuning default
    assert metadata["training"]["early_stopping_patience"] == 1000  # as given
    last = capsys.readouterr().err.splitlines()[-1]
    assert "on the 3 training images" in last and "of the 15 s budget;" in last
    assert "OVER the budget" not in last and last.endswith(f"saved {out}")


@pytest.mark.slow
def test_a_val_dir_of_the_training_images_is_no_independent_score(tiny_parent, tmp_path,
                                                                  fake_clock, capsys):
    from napari_unet_weights.unet.model_file import read_metadata

    parent, few = tiny_parent
    out = tmp_path / "m.keras"
    fake_clock.tick = 0.5
    assert run_train([str(few), "--from", str(parent), "--val-dir", str(few),
                      "--minutes", "0.25", "--out", str(out), "--patch-size", "32"],
                     fake_clock) == 0
    last = capsys.readouterr().err.splitlines()[-1]
    assert "on the 3 training images (not an independent score)" in last
    assert read_metadata(out)["validation"]["on"] == "training images"


def test_some_val_dir_images_that_train_are_counted(data, tmp_path, runs, monkeypatch,
                                                    capsys):
    monkeypatch.setattr(train_module, "train", lambda data, **kwargs: fake_result(
        kwargs, n_images=4, on="validation set", also_training=1))
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras"), "--val-dir",
                 str(data)]) == 0
    assert ("on 4 images of --val-dir (1 of them training images: not an independent "
            "score)") in capsys.readouterr().err.splitlines()[-1]


# -- output and data checks ---------------------------------------------------------------
def test_missing_data_and_an_empty_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_train, "start_backend", lambda verbose, backend=None: None)
    assert main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.keras")]) == 2
    assert "DATA_DIR" in (err := capsys.readouterr().err) and "no such folder" in err
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.keras")]) == 2
    assert "must hold an images/ and a labels/ folder" in capsys.readouterr().err
    _folder(tmp_path / "empty")
    assert main(["train", str(tmp_path / "empty"), "--out", str(tmp_path / "m.keras")]) == 1
    assert "holds no image files" in capsys.readouterr().err  # the real train() said so


def test_labels_without_any_object_are_refused_before_training(tmp_path, monkeypatch,
                                                               capsys):
    import numpy as np
    import tifffile

    def no_training():
        raise AssertionError("training started")

    monkeypatch.setattr(cli_train, "start_backend", lambda verbose, backend=None: None)
    monkeypatch.setattr(train_module, "keras_or_error", no_training)
    data = _folder(tmp_path / "data")
    tifffile.imwrite(data / "images" / "a.tif", np.random.default_rng(0).random((32, 32)))
    tifffile.imwrite(data / "labels" / "a.tif", np.zeros((32, 32), np.uint16))
    out = tmp_path / "m.keras"
    assert main(["train", str(data), "--out", str(out), "--val-on-training"]) == 1
    assert ("the label image of the training data holds no object (every pixel is 0)"
            in capsys.readouterr().err)
    assert not out.exists()


def test_out_under_a_file_fails_at_once(data, tmp_path, runs, capsys):
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = tmp_path / "blocker" / "m.keras"
    assert main(["train", str(data), "--out", str(out)]) == 2
    assert "blocker is a file, not a folder" in capsys.readouterr().err
    assert runs == []  # neither TensorFlow nor training started


def test_out_that_is_a_folder_fails_at_once(data, tmp_path, runs, capsys):
    (tmp_path / "m.keras").mkdir()
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras")]) == 2
    assert "m.keras is a folder" in capsys.readouterr().err
    assert runs == []


def test_existing_model_is_replaced_only_with_overwrite(data, tmp_path, runs, capsys):
    out = tmp_path / "m.keras"
    out.write_bytes(b"an earlier model")
    assert main(["train", str(data), "--out", str(out)]) == 2
    assert "m.keras exists; --overwrite replaces it" in capsys.readouterr().err
    assert runs == []
    assert main(["train", str(data), "--out", str(out), "--overwrite", "--verbose"]) == 0
    assert runs[0] is True  # TensorFlow started with --verbose, then training
    assert runs[1]["out"] == str(out)
    assert f"saved {out}" in capsys.readouterr().err


def test_values_that_do_not_go_together_are_refused_by_the_parser(data, tmp_path, runs,
                                                                  capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", str(data), "--out", str(tmp_path / "m.keras"), "--epochs", "0"])
    assert caught.value.code == 2
    assert "argument --epochs: epochs must be an integer >= 1" in capsys.readouterr().err
    assert runs == []


# -- runs that resume: --run-dir, --resume ------------------------------------------------
def test_resume_repeats_the_command_recorded_in_the_run_folder(data, tmp_path, runs,
                                                                capsys):
    out, run_dir = tmp_path / "m.keras", tmp_path / "run"
    assert main(["train", str(data), "--out", str(out), "--run-dir", str(run_dir),
                 "--epochs", "3", "--lr", "0.01", "--val-on-training"]) == 0
    first = runs[1]
    assert (first["run_dir"], first["checkpoint_minutes"]) == (str(run_dir), 5.0)
    assert first["overrides"] == {"epochs": 3, "learning_rate": 0.01}
    record = json.loads((run_dir / "command.json").read_text())
    assert record["options"] == {"epochs": 3, "learning_rate": 0.01}
    assert record["out"] == str(out) and record["val_on_training"] is True
    capsys.readouterr()
    # nothing else needed; --minutes and --checkpoint-minutes are this call's
    assert main(["train", "--resume", str(run_dir), "--minutes", "10",
                 "--checkpoint-minutes", "0"]) == 0
    again = runs[3]
    assert str(again["images"]) == str(data) and again["out"] == str(out)
    assert again["validation"] == "training" and again["run_dir"] == str(run_dir)
    assert again["overrides"] == {"epochs": 3, "learning_rate": 0.01, "max_seconds": None}
    assert again["checkpoint_minutes"] == 0.0 and again["finish_within"] is not None
    # the same values may be given again; --max-seconds is this call's
    assert main(["train", str(data), "--resume", str(run_dir), "--epochs", "3",
                 "--max-seconds", "60"]) == 0
    assert runs[5]["overrides"] == {"epochs": 3, "learning_rate": 0.01, "max_seconds": 60.0}


def test_resume_with_other_values_is_a_usage_error_before_tensorflow(data, tmp_path, runs,
                                                                     capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras"), "--run-dir",
                 str(run_dir), "--epochs", "3"]) == 0
    del runs[:]
    capsys.readouterr()
    other = _folder(tmp_path / "other")
    assert main(["train", "--resume", str(run_dir), "--epochs", "4", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"DATA_DIR {other} (the run has {data})" in err
    assert "--epochs 4 (the run has --epochs 3)" in err
    assert "only --minutes, --max-seconds and --checkpoint-minutes are this call's" in err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["train", "--resume", str(other)]) == 2
    assert "holds no run started by this command (no command.json)" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert ("the following arguments are required: DATA_DIR, --out (or --resume DIR"
            in capsys.readouterr().err)
    assert runs == []  # neither TensorFlow nor training started
    with pytest.raises(SystemExit) as caught:
        main(["train", str(data), "--run-dir", str(run_dir), "--resume", str(run_dir)])
    assert caught.value.code == 2


def test_a_run_folder_with_other_parameters_is_a_usage_error(data, tmp_path, runs, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recorded = TrainConfig(epochs=3, batch_size=4).to_metadata()
    (run_dir / "run.json").write_text(json.dumps({"config": recorded}))
    out = str(tmp_path / "m.keras")
    other = ["train", str(data), "--out", out, "--run-dir", str(run_dir), "--epochs", "4",
             "--batch-size", "4"]
    (run_dir / "state.json").write_text(json.dumps({"epochs_done": 1}))
    assert main(other) == 2
    assert (f"--run-dir {run_dir} holds a run with other training parameters: epochs=3 "
            "then, 4 now. Give the run's options") in capsys.readouterr().err
    assert runs == []
    (run_dir / "state.json").write_text(json.dumps({"epochs_done": 0}))
    assert main(other) == 0  # a run that saved no epoch starts again
    del runs[:]
    (run_dir / "state.json").write_text(json.dumps({"epochs_done": 1}))
    assert main(["train", str(data), "--out", out, "--run-dir", str(run_dir), "--epochs",
                 "3", "--batch-size", "4", "--max-seconds", "9"]) == 0
    # --resume passes the run's whole configuration, whatever TrainConfig's defaults now
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert runs[-1]["overrides"] == {k: v for k, v in recorded.items() if k != "max_seconds"}


@pytest.mark.slow
def test_a_real_run_in_a_folder_resumed_and_finished(tiny_parent, tmp_path, capsys):
    from napari_unet_weights.unet.model_file import read_metadata

    _, few = tiny_parent
    out, run_dir = tmp_path / "m.keras", tmp_path / "run"
    assert main(["train", str(few), "--out", str(out), "--run-dir", str(run_dir),
                 "--epochs", "2", "--steps", "2", "--batch-size", "2", "--patch-size", "32",
                 "--depth", "1", "--filters", "4", "--val-on-training",
                 "--checkpoint-minutes", "0"]) == 0
    err = capsys.readouterr().err
    assert "checkpoint of epoch 1: " in err and "checkpoint of epoch 2: " in err
    made = out.read_bytes()
    # finished, its model saved: nothing to do
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert (f"the run in {run_dir} has finished: it ran all its epochs (2 epochs"
            in capsys.readouterr().err)
    assert out.read_bytes() == made
    out.unlink()  # made again from the run folder, without training
    assert main(["train", "--resume", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert f"resuming the run in {run_dir} after epoch 2/2" in err
    assert "epoch 1/2" not in err and "checkpoint of" not in err
    training = read_metadata(out)["training"]
    assert (training["epochs_run"], training["steps"], training["resumed"]) == (2, 4, 1)


@pytest.mark.slow
def test_sigterm_ends_a_run_in_a_folder_with_its_last_epoch_saved(tiny_parent, tmp_path):
    import signal

    _, few = tiny_parent
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "napari_unet_weights.cli", "train", str(few), "--out",
               str(tmp_path / "m.keras"), "--run-dir", str(run_dir), "--epochs", "1000",
               "--steps", "2", "--batch-size", "2", "--patch-size", "32", "--depth", "1",
               "--filters", "4", "--val-on-training", "--patience", "1000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # the third epoch ends: a kill comes mid-training
            if line.startswith("epoch 3/1000"):
                process.send_signal(signal.SIGTERM)
                break
        remaining = process.communicate(timeout=120)[1]
    finally:
        process.kill()
    assert process.returncode == 130, remaining
    assert "interrupted" in remaining
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epochs_done"] >= 2 and state["parts"][0]["ended_by"] == "interrupted"
    assert (run_dir / state["files"]["last"]).is_file()
