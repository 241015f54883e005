"""``napari-unet-weights train``: its output is checked before TensorFlow or training start."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

import napari_unet_weights.cli as cli
from napari_unet_weights.cli import main


@pytest.fixture
def runs(monkeypatch) -> list:
    """The keyword arguments of each training; TensorFlow and training are stand-ins."""
    calls: list = []
    train_module = importlib.import_module("napari_unet_weights.unet.train")

    def fake_train(data, **kwargs):
        calls.append(kwargs)
        return SimpleNamespace(validation={"n_images": 1, "map": 0.5}, device="CPU",
                               seconds=1.0, path=kwargs["out"])

    monkeypatch.setattr(train_module, "train", fake_train)
    monkeypatch.setattr(cli, "_start_tensorflow", lambda verbose: calls.append(verbose))
    return calls


@pytest.fixture
def data(tmp_path):
    for name in ("images", "labels"):
        (tmp_path / "data" / name).mkdir(parents=True)
    return tmp_path / "data"


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
