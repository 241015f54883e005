"""``napari-unet-weights train``: options → TrainConfig, output checked before TensorFlow or
training start, progress and result lines, errors."""

from __future__ import annotations

import importlib
import inspect
from types import SimpleNamespace

import pytest

import napari_unet_weights.cli as cli
from napari_unet_weights.cli import main
from napari_unet_weights.unet.config import TrainConfig

train_module = importlib.import_module("napari_unet_weights.unet.train")


@pytest.fixture
def runs(monkeypatch) -> list:
    """What each run did: ``True``/``False`` when TensorFlow started (``--verbose``), then
    the arguments of ``train`` (bound to its real signature); training is a stand-in that
    reports one epoch."""
    calls: list = []
    signature = inspect.signature(train_module.train)

    def fake_train(*args, **kwargs):
        call = signature.bind(*args, **kwargs).arguments
        calls.append(call)
        call["progress"]({"stage": "epoch", "epoch": 1, "epochs": 1, "loss": 0.25,
                          "val_loss": 0.5, "val_map": 0.75})
        return SimpleNamespace(validation={"n_images": 2, "map": 0.625}, device="CPU",
                               seconds=3.0, path=call["out"])

    monkeypatch.setattr(train_module, "train", fake_train)
    monkeypatch.setattr(cli, "_start_tensorflow", lambda verbose: calls.append(verbose))
    return calls


@pytest.fixture
def data(tmp_path):
    for name in ("images", "labels"):
        (tmp_path / "data" / name).mkdir(parents=True)
    return tmp_path / "data"


def test_options_reach_train_as_one_config(data, tmp_path, runs, capsys):
    out = str(tmp_path / "m.keras")
    assert main(["train", str(data), "--out", out, "--classes", "2", "--no-weights",
                 "--epochs", "4", "--steps", "7", "--batch-size", "2", "--patch-size", "64",
                 "--depth", "3", "--filters", "8", "--val-fraction", "0.25", "--lr", "0.01",
                 "--seed", "5", "--patience", "3", "--max-seconds", "60", "--no-tune"]) == 0
    assert runs[0] is False  # TensorFlow started quietly, then training
    call = runs[1]
    assert str(call["images"]) == str(data) and call["out"] == out
    assert call["config"] == TrainConfig(
        n_classes=2, use_weights=False, epochs=4, steps_per_epoch=7, batch_size=2,
        patch_size=64, depth=3, base_filters=8, validation_fraction=0.25, learning_rate=0.01,
        seed=5, early_stopping_patience=3, max_seconds=60.0, tune_postprocess=False)
    err = capsys.readouterr().err
    assert "epoch 1/1 loss 0.2500 val_loss 0.5000 val_mAP 0.7500" in err
    assert "validation mAP (0.5:0.95, per image, 2 images): 0.6250; device CPU; 3 s" in err
    assert f"saved {out}" in err


def test_without_options_train_gets_the_default_config(data, tmp_path, runs):
    assert main(["train", str(data), "--out", str(tmp_path / "m.keras")]) == 0
    assert runs[1]["config"] == TrainConfig()


def test_values_that_do_not_go_together_are_a_usage_error(data, tmp_path, runs, capsys):
    out = str(tmp_path / "m.keras")
    assert main(["train", str(data), "--out", out, "--patch-size", "100"]) == 2
    assert "patch_size must be a multiple of 2**depth = 16" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:  # refused by the parser itself
        main(["train", str(data), "--out", out, "--epochs", "0"])
    assert caught.value.code == 2
    assert "argument --epochs: epochs must be an integer >= 1" in capsys.readouterr().err
    assert runs == []  # neither TensorFlow nor training started


def test_missing_data_and_an_empty_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_start_tensorflow", lambda verbose: None)
    assert main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.keras")]) == 2
    assert "no such" in capsys.readouterr().err
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.keras")]) == 1
    assert "holds no image files" in capsys.readouterr().err  # the real train() said so


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
