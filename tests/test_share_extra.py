"""The ``[export]`` extra, found without importing it, and the CLI's message without it."""
import sys

import pytest

from napari_unet_weights.cli import main
from napari_unet_weights.share.extra import EXPORT_MODULES, PIP_COMMAND, missing_export_modules


def test_nothing_is_missing_where_the_extra_is_installed():
    assert missing_export_modules() == []  # the test environment installs [export]


def test_a_module_that_cannot_be_imported_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` fails
    assert missing_export_modules() == ["tf2onnx"]
    assert set(missing_export_modules()) <= set(EXPORT_MODULES)


def test_export_without_the_extra_says_what_to_install_before_any_work(monkeypatch, tmp_path,
                                                                     capsys):
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    out = tmp_path / "nuclei.zip"
    assert main(["export", "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "bioimageio.spec, onnx missing" in error and PIP_COMMAND in error
    assert not out.exists()


def test_converting_without_onnx_says_what_to_install(monkeypatch):
    from napari_unet_weights.unet.model_cache import load_cached
    from napari_unet_weights.unet.onnx_runtime import to_onnx

    network = load_cached(None).keras_model.locked_network[0]
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"needs onnx: pip install .napari-unet-weights\[export"):
        to_onnx(network)
