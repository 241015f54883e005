"""``napari-unet-weights export``: the package written and the output checks."""
import zipfile

import pytest

pytest.importorskip("bioimageio.spec")
pytest.importorskip("onnx")

from napari_unet_weights.cli import main


def test_export_writes_a_package(tmp_path, capsys):
    out = tmp_path / "nuclei.zip"
    assert main(["export", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        assert {"rdf.yaml", "model.keras", "model.onnx"} <= set(z.namelist())
    assert "bioimageio test" in capsys.readouterr().out
    assert main(["export", "-o", str(out)]) == 2  # exists: kept without --overwrite


def test_export_refuses_other_suffix(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path / "x.keras")]) == 2
    assert ".zip" in capsys.readouterr().err
