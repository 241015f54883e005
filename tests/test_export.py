"""bioimage.io packages written by share/export.py, checked against the spec's own test."""
import zipfile

import numpy as np
import pytest
import yaml

pytest.importorskip("bioimageio.core")
pytest.importorskip("onnxruntime")

from napari_unet_weights.share.export import CONFIG_KEY
from napari_unet_weights.unet.model_file import load_model
from napari_unet_weights.unet.predict import predict


@pytest.fixture(scope="module")
def package(bundled_package):
    """The bundled model's package (exported once per session: tests/conftest.py)."""
    return bundled_package


def _rdf(package):
    with zipfile.ZipFile(package) as z:
        return yaml.safe_load(z.read("rdf.yaml")), set(z.namelist())


def test_package_files_and_fields(package):
    rdf, names = _rdf(package)
    assert rdf["format_version"].startswith("0.5.")
    assert {"rdf.yaml", "model.keras", "model.onnx", "test_input.npy", "test_output.npy",
            "cover.png", "README.md"} <= names
    axes = rdf["inputs"][0]["axes"]
    assert [a["type"] for a in axes] == ["batch", "space", "space", "channel"]
    depth = load_model().metadata["architecture"]["depth"]
    for axis in axes[1:3]:
        assert axis["size"] == {"min": 2 ** depth, "step": 2 ** depth}
    assert rdf["outputs"][0]["axes"][3]["channel_names"] == ["background", "interior",
                                                             "boundary"]
    assert rdf["weights"]["onnx"]["parent"] == "keras_v3"
    assert rdf["config"][CONFIG_KEY]["postprocess"] == load_model().postprocess_parameters


def test_stored_tensors_repredicted(package, tmp_path):
    with zipfile.ZipFile(package) as z:
        z.extract("test_input.npy", tmp_path)
        z.extract("test_output.npy", tmp_path)
    image = np.load(tmp_path / "test_input.npy")
    expected = np.load(tmp_path / "test_output.npy")
    assert image.shape[1] % 16 == 0 and image.shape[2] % 16 == 0
    again = predict(image[0, ..., 0], model=load_model(), tta=False)
    np.testing.assert_allclose(again[None], expected, atol=1e-5)


@pytest.mark.parametrize("weight_format", ["keras_v3", "onnx"])
def test_bioimageio_core_test_passes(package, weight_format):
    from bioimageio.core import test_model
    summary = test_model(str(package), weight_format=weight_format)
    assert summary.status == "passed", summary


@pytest.mark.parametrize("sample", ["nuclei_fluorescence", "nuclei_crowded",
                                    "nuclei_histology"])
def test_round_trip_same_labels(package, sample):
    from napari_unet_weights import evaluate, segment
    from napari_unet_weights._sample_data import load_sample
    image = load_sample(sample)[0]
    original = segment(image, model=load_model())
    again = segment(image, model=load_model(package))
    assert np.array_equal(original, again)
    assert evaluate(original, again).map == pytest.approx(1.0)


def test_foreign_package_refused(tmp_path, package):
    with zipfile.ZipFile(package) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    del rdf["config"], rdf["weights"]["keras_v3"]
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("rdf.yaml", yaml.safe_dump(rdf))
    with pytest.raises(ValueError, match=r"not a model package exported by napari-unet-"
                       r"weights; it lacks config.napari_unet_weights .* and keras_v3"):
        load_model(foreign)


def test_metadata_of_a_package(package):
    from napari_unet_weights.unet.model_file import read_metadata
    assert read_metadata(package) == load_model().metadata
