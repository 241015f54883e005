"""Tests of the ``predict`` subcommand of napari-unet-weights."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.cli import main
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.predict import DEFAULT_INPUT, DEFAULT_NORMALIZATION, segment


@pytest.fixture(scope="module")
def model_file(keras, tmp_path_factory) -> Path:
    """A small untrained U-Net (depth 2) saved with complete metadata."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    keras.utils.set_random_seed(0)
    metadata = {"format_version": 1, "n_classes": 3, "input": dict(DEFAULT_INPUT),
                "normalization": dict(DEFAULT_NORMALIZATION),
                "architecture": {"type": "unet2d", "n_channels": 1, "depth": 2,
                                 "base_filters": 4},
                "postprocess": {**DEFAULT_POSTPROCESS, "threshold": 0.3, "min_size": 1}}
    unet = UNetModel(build_unet(1, 3, depth=2, base_filters=4), metadata)
    return unet.save(tmp_path_factory.mktemp("model") / "small.keras")


@pytest.fixture
def image_files(tmp_path) -> dict[str, np.ndarray]:
    """Two good images (grayscale TIFF, RGB PNG) and one corrupt TIFF in ``tmp_path/in``."""
    folder = tmp_path / "in"
    folder.mkdir()
    gray = load_sample("nuclei_crowded")[0][:96, :128]
    rgb = load_sample("nuclei_histology")[0][:80, :72]
    tifffile.imwrite(folder / "crowded.tif", gray)
    iio.imwrite(folder / "histology.png", rgb)
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    return {"crowded": gray, "histology": rgb}


def test_predict_batch_skips_corrupt_file(tmp_path, model_file, image_files, capsys):
    out = tmp_path / "out"
    status = main(["predict", str(tmp_path / "in"), "-o", str(out), "--model", str(model_file),
                   "--tile", "64", "--batch-size", "2", "--cpu"])
    err = capsys.readouterr().err
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == ["crowded_labels.tif",
                                                     "histology_labels.tif"]
    for stem, image in image_files.items():
        labels = tifffile.imread(out / f"{stem}_labels.tif")
        assert labels.dtype == np.uint16 and labels.shape == image.shape[:2]
        np.testing.assert_array_equal(labels, segment(image, model_file, tile_shape=64))
    assert "skipped" in err and "broken.tif" in err
    assert "Traceback" not in err
    assert "[3/3]" in err and "device CPU" in err
    assert "wrote 2 label image(s)" in err


def test_predict_stack_all_ok(tmp_path, model_file, capsys):
    image = load_sample("nuclei_crowded")[0][:64, :64]
    np.save(tmp_path / "stack.npy", np.stack([image, image[::-1]]))
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "stack.npy"), "-o", str(out),
                 "--model", str(model_file)]) == 0
    labels = tifffile.imread(out / "stack_labels.tif")
    assert labels.shape == (2, 64, 64)
    assert "objects" in capsys.readouterr().err


def test_predict_usage_errors(tmp_path, model_file, image_files, capsys):
    out = str(tmp_path / "out")
    assert main(["predict", str(tmp_path / "missing.tif"), "-o", out,
                 "--model", str(model_file)]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    assert main(["predict", str(tmp_path / "in"), "-o", out, "--model", str(bad)]) == 2
    assert "bad.keras" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "in"), "-o", out, "--tile", "0"])
