"""engine="onnx" (unet/inference_engine.py, unet/onnx_runtime.py) and the ONNX fallback of
exported packages (unet/model_file.load_model), checked against the Keras path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.cli import main
from napari_unet_weights.metrics.matching import evaluate
from napari_unet_weights.unet import model_file
from napari_unet_weights.unet.inference_engine import engine_model, onnx_model
from napari_unet_weights.unet.model_file import load_model, read_metadata
from napari_unet_weights.unet.onnx_runtime import OnnxNetwork, is_onnx
from napari_unet_weights.unet.predict import infer, predict, segment
from reference import dsb_folder, require_dsb_folder

if os.environ.get("CI") != "true":
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")

SAMPLES = ("nuclei_fluorescence", "nuclei_crowded", "nuclei_histology")
#: The largest |Δp| allowed between the engines: float32 rounding of two implementations
#: of the same network (measured ≈ 1e-6 on the samples).
MAX_DELTA = 1e-4


@pytest.fixture(scope="module")
def bundled(keras):
    """The bundled model on Keras."""
    return load_model()


@pytest.fixture(scope="module")
def bundled_onnx(bundled):
    """The bundled model's ONNX conversion (converted once for the module)."""
    return onnx_model(bundled)


@pytest.fixture(scope="module")
def keras_runs(bundled):
    """The Keras path's probabilities and labels of the three samples."""
    return {name: infer(load_sample(name)[0], bundled, probabilities=True)
            for name in SAMPLES}


def _agree(result, reference) -> None:
    """Probabilities within MAX_DELTA, labels with mAP 1.0 and the same pixels."""
    assert np.abs(result.probabilities - reference.probabilities).max() < MAX_DELTA
    assert evaluate(reference.labels, result.labels).map == 1.0
    np.testing.assert_array_equal(result.labels, reference.labels)


@pytest.fixture
def onnx_calls(monkeypatch) -> list[tuple]:
    """The shapes of the batches that onnxruntime ran (OnnxNetwork calls), in order."""
    calls = []
    run = OnnxNetwork.__call__

    def counted(self, batch, training=False):
        calls.append(np.shape(batch))
        return run(self, batch, training)
    monkeypatch.setattr(OnnxNetwork, "__call__", counted)
    return calls


def _keras_missing(monkeypatch) -> None:
    """Keras / TensorFlow as if not installed, for model files (the public seam)."""
    def missing(*args, **kwargs):
        raise ImportError("TensorFlow is missing (simulated)")
    monkeypatch.setattr(model_file, "keras_or_error", missing)


# -- the engine -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLES)
def test_onnx_agrees_with_keras_on_samples(name, bundled_onnx, keras_runs):
    result = infer(load_sample(name)[0], bundled_onnx, probabilities=True, engine="onnx")
    assert is_onnx(bundled_onnx)
    _agree(result, keras_runs[name])


def test_onnx_agrees_on_real_dsb_test_images(bundled, bundled_onnx):
    """Three images of the recorded test split, one per modality where there is one."""
    require_dsb_folder("images")
    split = json.loads((Path(__file__).parents[1] / "scripts" / "dsb2018_split.json")
                       .read_text())
    picked = {}
    for sample_id in split["test"]:
        picked.setdefault(split["modality"][sample_id], sample_id)
    for sample_id in list(picked.values())[:3]:
        image = tifffile.imread(dsb_folder() / "images" / f"{sample_id}.tif")[:256, :256]
        reference = infer(image, bundled, probabilities=True)
        _agree(infer(image, bundled_onnx, probabilities=True, engine="onnx"), reference)


def test_tiled_onnx_equals_tiled_keras_with_the_same_tiles(bundled, bundled_onnx, onnx_calls):
    """A Keras model with engine="onnx": its conversion runs every batch of the same tiles."""
    image = load_sample("nuclei_histology")[0]
    totals, outputs, batches = {}, {}, {}
    for engine in ("keras", "onnx"):
        seen = []
        outputs[engine] = predict(image, bundled, tile_shape=96, overlap=32, batch_size=3,
                                  engine=engine,
                                  progress=lambda done, total, seen=seen: seen.append(total))
        totals[engine], batches[engine] = set(seen), list(onnx_calls)
        onnx_calls.clear()
    assert totals["keras"] == totals["onnx"] and min(totals["onnx"]) > 1
    assert batches["keras"] == []
    assert [shape[1:3] for shape in batches["onnx"]] == [(96, 96)] * len(batches["onnx"])
    assert sum(shape[0] for shape in batches["onnx"]) == totals["onnx"].pop()
    assert np.abs(outputs["onnx"] - outputs["keras"]).max() < MAX_DELTA


def test_tta_and_stacks_run_through_the_same_path(bundled, bundled_onnx):
    plane = load_sample("nuclei_crowded")[0][:128, :128]
    stack = np.stack([plane, plane[::-1]])
    keras_out = predict(stack, bundled, tta=True)
    onnx_out = predict(stack, bundled_onnx, tta=True, engine="onnx")
    assert onnx_out.shape == keras_out.shape == (2, 128, 128, 3)
    assert np.abs(onnx_out - keras_out).max() < MAX_DELTA
    labels = segment(stack, bundled, engine="onnx")
    assert labels[1].min() == 0 and labels[1][labels[1] > 0].min() > labels[0].max()


def test_chunked_prediction_runs_onnx_in_each_block(bundled, bundled_onnx, onnx_calls):
    image = load_sample("nuclei_fluorescence")[0]
    keras_out = np.asarray(predict(image, bundled, block_shape=128))
    assert onnx_calls == []
    onnx_out = np.asarray(predict(image, bundled, block_shape=128, engine="onnx"))
    assert len(onnx_calls) >= 4  # at least one per block (a lazy array: computed above)
    assert np.abs(onnx_out - np.asarray(keras_out)).max() < MAX_DELTA


def test_chunked_prediction_converts_once_and_runs_a_packages_own_weights(
        bundled_package, bundled, keras_runs, monkeypatch):
    image = load_sample("nuclei_fluorescence")[0]
    conversions = []
    original = onnx_model

    def counted(unet):
        conversions.append(unet)
        return original(unet)

    monkeypatch.setattr("napari_unet_weights.unet.inference_engine.onnx_model", counted)
    chunked = np.asarray(segment(image, bundled, block_shape=128, engine="onnx"))
    blocks = np.prod([-(-side // 128) for side in chunked.shape])
    assert len(conversions) == 1 + blocks  # once, then each block's no-op
    assert all(is_onnx(unet) for unet in conversions[1:])  # the blocks get the ONNX model
    _keras_missing(monkeypatch)  # a package: its own ONNX weights, Keras never loaded
    labels = np.asarray(segment(image, bundled_package, block_shape=128, engine="onnx"))
    assert evaluate(chunked, labels).map == 1.0


def test_a_model_on_onnx_weights_is_not_saved_as_keras(bundled_onnx, tmp_path):
    from napari_unet_weights.unet.model_cache import serialized

    assert is_onnx(serialized(bundled_onnx))
    with pytest.raises(ValueError, match=r"runs ONNX weights.*engine='keras'"):
        bundled_onnx.save(tmp_path / "onnx.keras")
    assert not (tmp_path / "onnx.keras").exists()


def test_conversion_is_made_once_per_weights(bundled, bundled_onnx, keras):
    assert onnx_model(bundled).keras_model is bundled_onnx.keras_model
    assert engine_model(bundled_onnx, "onnx") is bundled_onnx
    changed = load_model()
    weights = changed.keras_model.get_weights()
    weights[-1] = weights[-1] + np.float32(0.5)  # the last bias: other probabilities
    changed.keras_model.set_weights(weights)
    converted = onnx_model(changed)
    assert converted.keras_model is not bundled_onnx.keras_model
    image = load_sample("nuclei_crowded")[0][:64, :64]
    np.testing.assert_allclose(predict(image, converted, engine="onnx"),
                               predict(image, changed), atol=MAX_DELTA)


# -- packages ---------------------------------------------------------------------------------
def _without_keras_weights(package: Path, path: Path) -> Path:
    """A copy of ``package`` with neither model.keras nor the keras_v3 entry."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if name == "rdf.yaml":
                rdf = yaml.safe_load(source.read(name))
                del rdf["weights"]["keras_v3"]
                rdf["weights"]["onnx"].pop("parent", None)
                target.writestr(name, yaml.safe_dump(rdf))
            elif name != rdf_keras_source(source):
                target.writestr(name, source.read(name))
    return path


def rdf_keras_source(archive: zipfile.ZipFile) -> str:
    return yaml.safe_load(archive.read("rdf.yaml"))["weights"]["keras_v3"]["source"]


def test_engine_onnx_runs_a_packages_own_onnx_weights(bundled_package, keras_runs,
                                                      monkeypatch):
    """No Keras needed: the package's ONNX weights, not a conversion of its Keras ones."""
    _keras_missing(monkeypatch)
    image = load_sample("nuclei_crowded")[0]
    result = infer(image, bundled_package, probabilities=True, engine="onnx")
    _agree(result, keras_runs["nuclei_crowded"])
    with pytest.raises(ImportError, match="simulated"):  # Keras is really out of reach
        load_model(model_file.BUNDLED_MODEL)


@pytest.mark.parametrize("name", SAMPLES)
def test_fallback_without_keras_gives_the_keras_labels(name, bundled_package, keras_runs,
                                                       monkeypatch):
    _keras_missing(monkeypatch)
    with pytest.warns(UserWarning, match="ONNX weights through onnxruntime"):
        model = load_model(bundled_package)
    assert is_onnx(model)
    _agree(infer(load_sample(name)[0], model, probabilities=True), keras_runs[name])


def test_fallback_in_a_process_without_tensorflow(bundled_package, keras_runs, tmp_path):
    """TensorFlow and Keras unimportable in a fresh interpreter: the package still segments."""
    out = tmp_path / "labels.npy"
    program = (
        "import sys, warnings\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "import numpy as np\n"
        "from napari_unet_weights._sample_data import load_sample\n"
        "from napari_unet_weights.unet.predict import segment\n"
        "warnings.simplefilter('ignore')\n"
        f"labels = segment(load_sample('nuclei_fluorescence')[0], {str(bundled_package)!r})\n"
        f"np.save({str(out)!r}, labels)\n"
        "assert sys.modules['tensorflow'] is None\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(out), keras_runs["nuclei_fluorescence"].labels)


def test_fallback_without_keras_weights_in_the_package(bundled_package, keras_runs,
                                                       tmp_path, bundled):
    package = _without_keras_weights(bundled_package, tmp_path / "onnx_only.zip")
    assert read_metadata(package) == json.loads(json.dumps(bundled.metadata, default=str))
    with pytest.warns(UserWarning, match="no keras_v3 weights"):
        model = load_model(package)
    assert is_onnx(model)
    image = load_sample("nuclei_histology")[0]
    _agree(infer(image, model, probabilities=True), keras_runs["nuclei_histology"])


def test_package_without_any_usable_weights_is_refused(bundled_package, tmp_path):
    package = _without_keras_weights(bundled_package, tmp_path / "none.zip")
    with zipfile.ZipFile(package) as source, \
            zipfile.ZipFile(tmp_path / "empty.zip", "w") as target:
        rdf = yaml.safe_load(source.read("rdf.yaml"))
        rdf["weights"] = {"torchscript": {"source": "model.pt"}}
        target.writestr("rdf.yaml", yaml.safe_dump(rdf))
    with pytest.raises(ValueError, match="lacks keras_v3 or onnx weights"):
        load_model(tmp_path / "empty.zip")


def test_fallback_without_onnxruntime_says_what_to_install(bundled_package, monkeypatch):
    _keras_missing(monkeypatch)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"simulated.*napari-unet-weights\[export\]"):
        load_model(bundled_package)


# -- errors -----------------------------------------------------------------------------------
def test_unknown_engine_is_refused_before_any_work(monkeypatch):
    _keras_missing(monkeypatch)  # not reached: the engine is checked first
    image = np.zeros((32, 32), np.float32)
    for call in (predict, segment, infer):
        with pytest.raises(ValueError, match=r"unknown engine 'tflite'.*'keras', 'onnx'"):
            call(image, engine="tflite")


def test_onnx_engine_on_the_gpu_is_refused_before_any_work(monkeypatch):
    _keras_missing(monkeypatch)  # not reached: checked first
    image = np.zeros((32, 32), np.float32)
    for call in (predict, segment, infer):
        with pytest.raises(ValueError, match=r"engine='onnx' runs on the CPU.*engine='keras'"):
            call(image, engine="onnx", use_gpu=True)


def test_onnx_engine_without_onnxruntime_says_what_to_install(bundled, bundled_package,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    image = np.zeros((32, 32), np.float32)
    for model in (bundled, bundled_package):
        with pytest.raises(ImportError, match=r"pip install \"napari-unet-weights\[export\]\""):
            segment(image, model, engine="onnx")


# -- the command line -------------------------------------------------------------------------
def test_cli_predict_engine_onnx(tmp_path, bundled_package, keras, capsys):
    image = load_sample("nuclei_crowded")[0][:128, :160]
    tifffile.imwrite(tmp_path / "crowded.tif", image)
    written = {}
    for engine, model in (("keras", []), ("onnx", []), ("onnx", ["--model",
                                                                  str(bundled_package)])):
        out = tmp_path / f"{engine}{len(model)}"
        assert main(["predict", str(tmp_path / "crowded.tif"), "-o", str(out),
                     "--engine", engine, *model]) == 0
        written[(engine, len(model))] = tifffile.imread(out / "crowded_labels.tif")
        err = capsys.readouterr().err
        assert ("onnxruntime" in err) == (engine == "onnx")
    for labels in written.values():
        np.testing.assert_array_equal(labels, written[("keras", 0)])


def test_cli_predict_engine_refusals(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(tmp_path / "a.tif"), "-o", str(tmp_path / "o"),
              "--engine", "tflite"])
    assert exit_info.value.code == 2
    assert main(["predict", str(tmp_path / "a.tif"), "-o", str(tmp_path / "a.zarr"),
                 "--engine", "onnx"]) == 2
    assert "--engine onnx is not available for zarr outputs" in capsys.readouterr().err
