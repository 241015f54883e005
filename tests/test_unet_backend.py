"""The Keras backend (TensorFlow, PyTorch, JAX): choice, messages, and the same answer on all.

Keras fixes its backend per process: this test process runs TensorFlow (the ``keras``
fixture); PyTorch and JAX run in fresh interpreters with TensorFlow blocked
(``tests/scripts/backend_run.py``), as on a machine without it. Under ``CI=true`` all
three must be installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unet_weights.unet import backend as backend_module
from napari_unet_weights.unet.backend import (
    BACKENDS,
    BackendFixedError,
    default_backend,
    installed_backends,
    use_backend,
)
from reference import require_dsb_folder

SCRIPT = Path(__file__).parent / "scripts" / "backend_run.py"
SPLIT = Path(__file__).resolve().parents[1] / "scripts" / "dsb2018_split.json"
OTHERS = ("torch", "jax")
#: Validation images of the DSB split for the agreement (small ones: a few seconds; the
#: 20-image figure: scripts/backend_agreement.py).
N_IMAGES = 3


def _script_module():
    spec = importlib.util.spec_from_file_location("backend_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require(backend: str) -> None:
    """Skip without ``backend``, except under ``CI=true``, where it fails."""
    if backend not in installed_backends():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the {backend} backend: "
                        f"{backend_module.install_hint(backend)}")
        pytest.skip(f"{backend} is not installed")


@pytest.fixture
def no_keras_yet(monkeypatch):
    """As in a process where Keras is not imported yet; ``KERAS_BACKEND`` restored after."""
    monkeypatch.setattr(backend_module, "keras_started", lambda: None)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)


# -- choosing -------------------------------------------------------------------------------
def test_the_default_is_keras_backend_else_tensorflow_else_the_first_installed(
        no_keras_yet, monkeypatch):
    _require("torch")
    _require("jax")
    assert installed_backends() == list(BACKENDS)
    assert default_backend() == "tensorflow"
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as on a machine without it
    assert installed_backends() == ["torch", "jax"]
    assert default_backend() == "torch"
    monkeypatch.setitem(sys.modules, "torch", None)
    assert default_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "JAX")
    assert default_backend() == "jax"


def test_use_backend_sets_keras_backend_before_keras_starts(no_keras_yet):
    _require("jax")
    assert use_backend("jax") == "jax"
    assert os.environ["KERAS_BACKEND"] == "jax"
    assert use_backend(" TensorFlow ") == "tensorflow"
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


@pytest.mark.parametrize(("backend", "extra"), [("torch", "torch"), ("jax", "jax"),
                                                ("tensorflow", "unet")])
def test_a_missing_backend_says_which_pip_command_installs_it(no_keras_yet, monkeypatch,
                                                               backend, extra):
    monkeypatch.setitem(sys.modules, backend, None)
    with pytest.raises(ImportError, match=re.escape(f'pip install "napari-unet-weights[{extra}]"')):
        use_backend(backend)
    assert "KERAS_BACKEND" not in os.environ


def test_an_unknown_backend_lists_the_choices(no_keras_yet, monkeypatch):
    with pytest.raises(ValueError, match="choose one of tensorflow, torch, jax"):
        use_backend("numpy")
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    with pytest.raises(ValueError, match="'mxnet'"):
        use_backend()


def test_another_backend_once_keras_runs_says_restart(keras):
    from napari_unet_weights.unet.device import keras_or_error

    assert use_backend() == use_backend("tensorflow") == "tensorflow"
    for other in OTHERS:
        with pytest.raises(BackendFixedError, match=f"KERAS_BACKEND={other} napari"):
            use_backend(other)
        with pytest.raises(BackendFixedError, match="already runs on tensorflow"):
            keras_or_error(other)


def test_the_cli_refuses_another_backend_in_a_running_process(keras, tmp_path, capsys):
    """``--backend`` in a Python session already running TensorFlow: a usage error."""
    import tifffile

    from napari_unet_weights.cli import main

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    assert main(["predict", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"),
                 "--backend", "torch"]) == 2
    assert "KERAS_BACKEND=torch" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "a.tif"), "--backend", "numpy"])


def test_the_cli_runs_on_the_backend_asked_and_says_so_first(tmp_path):
    """``predict --backend torch`` where TensorFlow is missing: the first line names the
    device and the backend; the labels are written."""
    import tifffile

    _require("torch")
    tifffile.imwrite(tmp_path / "a.tif", (np.random.default_rng(0).random((48, 48)) * 255
                                          ).astype(np.uint8))
    program = ("import sys; sys.modules['tensorflow'] = None\n"
               "from napari_unet_weights.cli import main\n"
               f"sys.exit(main(['predict', {str(tmp_path / 'a.tif')!r}, '-o', "
               f"{str(tmp_path / 'out')!r}, '--backend', 'torch']))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"; device (CPU|GPU: .+) \(torch\)$", done.stderr.splitlines()[0])
    assert len(list((tmp_path / "out").glob("*.tif"))) == 1


# -- the widgets' setting ---------------------------------------------------------------------
def test_the_widgets_say_to_restart_napari_for_another_backend(keras, make_napari_viewer,
                                                               notifications):
    from napari_unet_weights._widgets.segment.widget import SegmentWidget
    from napari_unet_weights._widgets.train.widget import TrainWidget

    _require("torch")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.float32), name="cells")
    segment, train = SegmentWidget(viewer), TrainWidget(viewer)
    for widget in (segment, train):
        choice = widget.backend_choice
        names = [choice.itemData(i) for i in range(choice.count())]
        assert names == installed_backends() and choice.value == "tensorflow"
        choice.value = "torch"
        assert "restart napari" in notifications["warning"][-1]
        assert "KERAS_BACKEND=torch" in notifications["warning"][-1]
    segment.run()
    train.start()
    assert len(notifications["error"]) == 2
    assert all("KERAS_BACKEND=torch" in message for message in notifications["error"])
    assert not segment.running and not train.running


def test_a_backend_chosen_before_keras_starts_shows_in_every_widget(make_napari_viewer,
                                                                    monkeypatch):
    from napari_unet_weights._widgets.common import backend_choice
    from napari_unet_weights._widgets.segment.widget import SegmentWidget
    from napari_unet_weights._widgets.train.widget import TrainWidget

    _require("torch")
    monkeypatch.setattr(backend_choice, "keras_started", lambda: None)
    viewer = make_napari_viewer()
    segment, train = SegmentWidget(viewer), TrainWidget(viewer)
    train.backend_choice.value = "torch"
    assert segment.backend_choice.value == "torch"
    segment.backend_choice.value = "tensorflow"
    assert train.backend_choice.value == "tensorflow"


# -- the same model, the same answer ------------------------------------------------------
def _validation_images() -> list[Path]:
    """The first validation images of 256 × 256 pixels (one shape: JAX compiles once)."""
    import tifffile

    folder = require_dsb_folder("images")
    paths = [folder / f"{name}.tif" for name in json.loads(SPLIT.read_text())["validation"]]
    return [path for path in paths
            if tifffile.TiffFile(path).pages[0].shape[:2] == (256, 256)][:N_IMAGES]


def _start(backend: str, out: Path, images: list[Path], loads: list[Path]) -> subprocess.Popen:
    """``backend_run.py`` for ``backend`` in a fresh interpreter, which loads ``loads`` once
    told (a line on its stdin: :func:`_finish`); its stderr in ``OUT/<backend>.err``."""
    with open(out / f"{backend}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, str(SCRIPT), backend, str(out), "--images", *map(str, images),
             "--train", str(out / "train.npz"), "--loss", str(out / "loss.npz"),
             "--load", *map(str, loads), "--load-when-told"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, text=True)


def _finish(process: subprocess.Popen, backend: str, out: Path) -> dict:
    """Tell ``process`` that its files are written, wait for it; its record."""
    try:
        process.communicate("\n", timeout=300)
    finally:
        process.kill()  # a no-op once it has ended
    assert process.returncode == 0, (out / f"{backend}.err").read_text()[-3000:]
    return json.loads((out / f"{backend}.json").read_text())


@pytest.fixture(scope="module")
def runs(keras, tmp_path_factory):
    """Each backend's record (loss, predictions, a tiny training, the files it loaded).

    TensorFlow runs here; PyTorch and JAX in fresh interpreters with TensorFlow blocked,
    side by side with it (JAX compiles for most of its run). Each loads the files trained
    before it (told when they are written: TensorFlow's, then PyTorch's); TensorFlow,
    last, those of the other two.
    """
    for backend in OTHERS:
        _require(backend)
    out = tmp_path_factory.mktemp("backends")
    images = _validation_images()
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(0.01, 1.0, (2, 8, 8, 3)).astype(np.float32)
    probabilities /= probabilities.sum(-1, keepdims=True)
    np.savez(out / "loss.npz", probabilities=probabilities, target=rng.integers(0, 3, (2, 8, 8)),
             weights=rng.uniform(0.5, 10.0, (2, 8, 8)).astype(np.float32))
    from test_unet_train import synthetic

    train_images, train_labels = synthetic(n=4)
    np.savez(out / "train.npz", images=np.array(train_images, np.float32),
             labels=np.array(train_labels))
    order = ["tensorflow", *OTHERS]
    processes = {backend: _start(backend, out, images,
                                 [out / f"{name}.keras" for name in order[:i + 1]])
                 for i, backend in enumerate(order) if backend in OTHERS}
    try:
        script = _script_module()
        records = {"tensorflow": script.run("tensorflow", out, images, out / "train.npz",
                                            out / "loss.npz", [out / "tensorflow.keras"])}
        for backend in OTHERS:  # in order: each loads the files of those before it
            records[backend] = _finish(processes.pop(backend), backend, out)
    finally:
        for process in processes.values():
            process.kill()
    records["tensorflow"]["loads"].update({
        f"{name}.keras": script.ramp_output(out / f"{name}.keras") for name in OTHERS})
    return out, records


def test_torch_and_jax_run_without_tensorflow(runs):
    _, records = runs
    for backend, record in records.items():
        assert record["backend"] == backend
        assert re.fullmatch(rf"(CPU|GPU: .+) \({backend}\)", record["device"])
        assert record["tensorflow_imported"] == (backend == "tensorflow")


def test_the_weighted_loss_is_the_same_number_on_every_backend(runs):
    out, records = runs
    example = np.load(out / "loss.npz")
    p, target, weights = example["probabilities"], example["target"], example["weights"]
    picked = np.take_along_axis(p, target[..., None], -1)[..., 0].astype(np.float64)
    reference = float((weights * -np.log(picked)).sum() / target.size)
    for record in records.values():
        assert record["loss"] == pytest.approx(reference, rel=1e-5)


def test_the_bundled_model_gives_the_same_answer_on_every_backend(runs):
    """Probabilities within 1e-4 and the same nuclei (mAP ≥ 0.999) as on TensorFlow."""
    from napari_unet_weights import evaluate

    out, _ = runs
    reference = np.load(out / "tensorflow_predictions.npz")
    for backend in OTHERS:
        other = np.load(out / f"{backend}_predictions.npz")
        for index in range(N_IMAGES):
            difference = np.abs(other[f"p{index}"] - reference[f"p{index}"]).max()
            assert difference < 1e-4, (backend, index, difference)
            assert evaluate(reference[f"l{index}"], other[f"l{index}"]).map >= 0.999


def test_a_model_trained_on_one_backend_loads_on_the_others(runs):
    """Each backend trains and saves a .keras file; the others load it and predict the
    same as the backend that trained it (each file is loaded on every backend but JAX's,
    which PyTorch, run before JAX, does not load)."""
    _, records = runs
    loaders: dict[str, dict[str, float]] = {}
    for loader, record in records.items():
        for name, value in record["loads"].items():
            loaders.setdefault(name.removesuffix(".keras"), {})[loader] = value
    assert {name: sorted(found) for name, found in loaders.items()} == {
        "tensorflow": sorted(BACKENDS), "torch": sorted(BACKENDS),
        "jax": ["jax", "tensorflow"]}
    for name, found in loaders.items():
        for loader, value in found.items():
            assert value == pytest.approx(found[name], rel=1e-5), (name, loader, found)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_a_model_compiled_with_the_loss_saves_and_loads_with_it(keras, tmp_path):
    """The loss is registered with Keras: a compiled model file loads with it (ours are
    saved uncompiled, and load without it, as the bundled model does)."""
    from napari_unet_weights.unet.model import build_unet, weighted_loss

    model = build_unet(1, 3, depth=1, base_filters=2)
    model.compile(loss=weighted_loss())
    model.save(tmp_path / "compiled.keras")
    loaded = keras.saving.load_model(tmp_path / "compiled.keras")
    assert type(loaded.loss).__name__ == "PixelCrossEntropy"
    assert keras.saving.get_registered_name(type(loaded.loss)) == (
        "napari_unet_weights>PixelCrossEntropy")
