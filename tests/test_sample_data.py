"""Tests of the sample data providers (no napari needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unet_weights import _sample_data
from napari_unet_weights._sample_data import SAMPLES, load_sample, touching_discs
from napari_unet_weights.weights.exact import validate_labels, weight_map
from reference import dsb_folder

MANIFEST = Path(_sample_data.__file__).with_name("napari.yaml")
DATA = Path(_sample_data.__file__).with_name("data")
DSB = dsb_folder()
EXPECTED = {  # name: (image shape, number of nuclei)
    "nuclei_fluorescence": ((256, 256), 34),
    "nuclei_crowded": ((256, 256), 98),
    "nuclei_histology": ((256, 320, 3), 65),
    "touching_discs": ((64, 64), 3),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_commands_return_image_and_labels_layers(name):
    layers = getattr(_sample_data, name)()
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    (image, image_meta, _), (labels, labels_meta, _) = layers
    validate_labels(labels)
    assert labels.dtype.kind in "ui"
    assert image.shape[:2] == labels.shape
    assert image.shape == EXPECTED[name][0]
    assert labels_meta["name"] == image_meta["name"] + " labels"
    assert image_meta.get("rgb", False) == (image.ndim == 3)
    ids = np.unique(labels)
    assert ids[0] == 0
    assert len(ids) - 1 == EXPECTED[name][1] > 0
    np.testing.assert_array_equal(ids, np.arange(len(ids)))  # sequential 0..N


def test_histology_is_rgb():
    image, labels = load_sample("nuclei_histology")
    assert image.dtype == np.uint8
    assert image.shape == (*labels.shape, 3)
    layers = _sample_data.nuclei_histology()
    assert layers[0][1]["rgb"] is True


def test_crowded_sample_has_touching_nuclei():
    _, labels = load_sample("nuclei_crowded")
    right = (labels[:, :-1] != 0) & (labels[:, 1:] != 0) & (labels[:, :-1] != labels[:, 1:])
    down = (labels[:-1] != 0) & (labels[1:] != 0) & (labels[:-1] != labels[1:])
    assert right.sum() + down.sum() > 100


def test_touching_discs_match_seed_example():
    (image, _, _), (labels, _, _) = touching_discs()
    assert labels.shape == (64, 64)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, (labels > 0).astype(np.float32))
    for value, (row, column, radius) in enumerate(_sample_data.DISC_PARAMS, start=1):
        assert labels[row, column] == value
        rows, columns = np.nonzero(labels == value)
        assert np.ptp(rows) == 2 * (radius - 1)
        assert columns.min() == column - radius + 1
    # the seed's point: the weights peak in the narrow gap between discs 1 and 2
    weights = weight_map(labels, w0=10, sigma=5)
    assert weights[32, 16] > 5 > weights[32, 60]


def test_load_sample_unknown_name():
    with pytest.raises(ValueError, match="unknown sample 'cells'"):
        load_sample("cells")


def test_manifest_sample_commands_exist():
    text = MANIFEST.read_text()
    for name in SAMPLES:
        assert f"napari_unet_weights._sample_data:{name}" in text


def test_packaged_files_are_small_and_zlib_compressed():
    for name in ("nuclei_fluorescence", "nuclei_crowded", "nuclei_histology"):
        files = [DATA / f"{name}.tif", DATA / f"{name}_labels.tif"]
        assert sum(f.stat().st_size for f in files) < 300_000
        for path in files:
            with tifffile.TiffFile(path) as tiff:
                assert tiff.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    assert "CC0" in (DATA / "README.md").read_text()


@pytest.mark.skipif(not DSB.is_dir(), reason="shared DSB 2018 copy not available")
@pytest.mark.parametrize(
    ("name", "source", "window"),
    [
        ("nuclei_fluorescence", "44ab6a09eedee848", np.s_[:, :]),
        ("nuclei_crowded", "0ea221716cf13710", np.s_[192:448, 120:376]),
        ("nuclei_histology", "3934a094e8537841", np.s_[:, :]),
    ],
)
def test_samples_are_unchanged_copies_of_the_source(name, source, window):
    from skimage.segmentation import relabel_sequential

    image, labels = load_sample(name)
    source_image = tifffile.imread(DSB / "images" / f"{source}.tif")[window]
    source_labels = tifffile.imread(DSB / "labels" / f"{source}.tif")[window]
    grayscale = json.loads((DSB / "index.json").read_text())[source]["grayscale"]
    expected_image = source_image[..., 0] if grayscale else source_image
    np.testing.assert_array_equal(image, expected_image)
    np.testing.assert_array_equal(labels, relabel_sequential(source_labels)[0])
