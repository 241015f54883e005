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


def test_predict_with_a_package_equals_the_keras_file(tmp_path, bundled_package):
    """``predict --model PKG.zip``: the labels of the bundled .keras file (the package:
    the session's export of it, the one the command above writes)."""
    import numpy as np
    import tifffile

    from napari_unet_weights._sample_data import load_sample
    image = tmp_path / "in" / "nuclei.tif"
    image.parent.mkdir()
    tifffile.imwrite(image, load_sample("nuclei_fluorescence")[0])
    outputs = {}
    for name, model in [("zip", str(bundled_package)), ("keras", None)]:
        out = tmp_path / name
        args = ["predict", str(image), "-o", str(out)] + (["--model", model] if model else [])
        assert main(args) == 0
        outputs[name] = [tifffile.imread(p) for p in sorted(out.glob("*.tif"))]
    assert len(outputs["zip"]) == 1
    assert np.array_equal(outputs["zip"][0], outputs["keras"][0])


def test_export_of_a_missing_model_is_an_error_message_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "x.zip"
    assert main(["export", str(tmp_path / "nowhere.keras"), "-o", str(out)]) == 2
    assert "nowhere.keras" in capsys.readouterr().err
    assert not out.exists()
