"""Tests of the ``weights`` and ``demo`` subcommands of napari-unet-weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_unet_weights.weights as weights_module
from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.cli import main
from napari_unet_weights.weights import weight_map

WIDGET_FILE = Path(weights_module.__file__).with_name("_widgets") / "weight_map.py"


@pytest.fixture
def label_files(tmp_path) -> dict[str, np.ndarray]:
    """Two good label files (TIFF and NPY) and one corrupt TIFF in ``tmp_path / "in"``."""
    folder = tmp_path / "in"
    folder.mkdir()
    crowded = load_sample("nuclei_crowded")[1][:96, :128]
    discs = load_sample("touching_discs")[1]
    tifffile.imwrite(folder / "crowded.tif", crowded)
    np.save(folder / "discs.npy", discs)
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    return {"crowded": crowded, "discs": discs}


def _read_output(folder: Path, stem: str) -> np.ndarray:
    result = tifffile.imread(folder / f"{stem}_weights.tif")
    assert result.dtype == np.float32
    return result


# -- weights -----------------------------------------------------------------
def test_weights_batch_skips_corrupt_file(tmp_path, label_files, capsys):
    out = tmp_path / "out" / "nested"
    status = main(["weights", str(tmp_path / "in"), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == ["crowded_weights.tif", "discs_weights.tif"]
    for stem, labels in label_files.items():
        np.testing.assert_allclose(_read_output(out, stem), weight_map(labels), atol=1e-5)
    assert "skipped" in err
    assert "broken.tif" in err
    assert "Traceback" not in err
    assert "[3/3]" in err
    assert "crowded_weights.tif (" in err


def test_weights_all_ok_exit_zero_and_progress(tmp_path, label_files, capsys):
    files = [str(tmp_path / "in" / "crowded.tif"), str(tmp_path / "in" / "discs.npy")]
    assert main(["weights", *files, "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "[1/2]" in err and "[2/2]" in err and "→" in err
    assert "skipped" not in err


def test_weights_options_change_the_result(tmp_path, label_files):
    out = tmp_path / "out"
    options = ["--w0", "3", "--sigma", "2.5", "--border", "all", "--class-weights", "1,4"]
    main(["weights", str(tmp_path / "in" / "discs.npy"), "-o", str(out), *options])
    expected = weight_map(label_files["discs"], 3, 2.5, border="all", class_weights=(1.0, 4.0))
    np.testing.assert_allclose(_read_output(out, "discs"), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], {"w0": 10.0, "sigma": 5.0, "border": "background", "class_weights": "balanced",
              "spatial_dims": None}),
        (["--w0", "0", "--sigma", "1e1", "--border", "all", "--class-weights", "none"],
         {"w0": 0.0, "sigma": 10.0, "border": "all", "class_weights": "none"}),
        (["--class-weights", "inverse", "--per-plane"],
         {"class_weights": "inverse", "spatial_dims": 2}),
        (["--class-weights", " 0.5, 2 "], {"class_weights": (0.5, 2.0)}),
    ],
)
def test_weights_options_map_to_weight_map_arguments(tmp_path, monkeypatch, options, expected):
    calls = []

    def spy(labels, w0=10.0, sigma=5.0, **kwargs):
        calls.append({"w0": w0, "sigma": sigma, **kwargs})
        return np.zeros(labels.shape, np.float32)

    monkeypatch.setattr(weights_module, "weight_map", spy)
    np.save(tmp_path / "stack.npy", np.ones((2, 8, 8), dtype=np.uint8))
    assert main(["weights", str(tmp_path / "stack.npy"), "-o", str(tmp_path), *options]) == 0
    assert len(calls) == 1
    for key, value in expected.items():
        assert calls[0][key] == value, key


@pytest.mark.parametrize(
    "options",
    [["--sigma", "0"], ["--w0", "-1"], ["--w0", "nan"], ["--class-weights", "heavy"],
     ["--class-weights", "1,2,3"], ["--border", "inner"]],
)
def test_weights_bad_options_are_usage_errors(tmp_path, label_files, options, capsys):
    with pytest.raises(SystemExit) as info:
        main(["weights", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *options])
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_weights_no_inputs_is_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["weights", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert "no label images found" in capsys.readouterr().err
    assert main(["weights", str(tmp_path / "ghost.tif"), "-o", str(tmp_path / "out")]) == 2
    assert "ghost.tif" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_weights_output_name_clash_is_usage_error(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "x.npy", np.ones((4, 4), np.uint8))
    args = ["weights", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")]
    assert main(args) == 2
    assert "same output file" in capsys.readouterr().err


def test_weights_command_does_not_import_napari(tmp_path, label_files):
    code = (
        "import sys; from napari_unet_weights.cli import main; "
        f"status = main(['weights', {str(tmp_path / 'in' / 'discs.npy')!r}, '-o', "
        f"{str(tmp_path / 'o')!r}]); "
        "assert status == 0, status; assert 'napari' not in sys.modules; "
        "assert 'qtpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


# -- demo --------------------------------------------------------------------
@pytest.fixture
def no_display(monkeypatch, tmp_path):
    """No display variables, Linux, and a PATH without Xvfb; returns the PATH folder."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


@pytest.mark.parametrize("screenshot", [False, True])
def test_demo_without_display_exits_2(no_display, tmp_path, capsys, screenshot):
    args = ["demo", "--screenshot", str(tmp_path / "s.png")] if screenshot else ["demo"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "no display" in err and "xvfb-run -a" in err
    assert "\n" not in err
    assert not (tmp_path / "s.png").exists()


def test_demo_interactive_never_starts_xvfb(no_display, capsys):
    fake = no_display / "Xvfb"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    assert main(["demo"]) == 2
    assert "no display" in capsys.readouterr().err


def _run_cli(args: list[str], env: dict[str, str], timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "napari_unet_weights.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def _assert_png(path: Path) -> None:
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import imageio.v3 as iio

    image = iio.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 5  # not a blank window


needs_display = pytest.mark.skipif(
    not os.environ.get("DISPLAY"), reason="needs a display (pytest-xvfb or a desktop)"
)
needs_widget = pytest.mark.skipif(
    not WIDGET_FILE.exists(), reason="the Weight map widget is not written yet"
)

FAKE_WIDGET_SCRIPT = """
import sys, types
import napari_unet_weights.cli as cli
from napari_unet_weights.cli import main
from napari_unet_weights.weights import weight_map

def WeightMapWidget(viewer):
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QLabel
    labels = next(layer for layer in viewer.layers if layer._type_string == "labels")
    QTimer.singleShot(200, lambda: viewer.add_image(weight_map(labels.data), name="weights"))
    return QLabel("stand-in widget")

module = types.ModuleType("napari_unet_weights._widgets.weight_map")
module.WeightMapWidget = WeightMapWidget
sys.modules[module.__name__] = module
cli._bundled_model_available = lambda: False  # the demo without a model: weight map only
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.gui
@needs_display
def test_demo_screenshot_waits_for_weight_layer_stand_in_widget(tmp_path):
    """The screenshot logic, with a stand-in widget that adds its layer after 0.2 s."""
    png = tmp_path / "shots" / "demo.png"
    result = subprocess.run(
        [sys.executable, "-c", FAKE_WIDGET_SCRIPT, "demo", "--sample", "touching_discs",
         "--screenshot", str(png), "--timeout", "60"],
        env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    _assert_png(png)


@pytest.mark.gui
@needs_display
@needs_widget
def test_demo_screenshot(tmp_path):
    png = tmp_path / "demo.png"
    result = _run_cli(["demo", "--screenshot", str(png), "--timeout", "120"], os.environ.copy())
    assert result.returncode == 0, result.stderr
    _assert_png(png)


@pytest.mark.gui
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")
def test_demo_screenshot_starts_its_own_xvfb(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    png = tmp_path / "demo.png"
    result = _run_cli(["demo", "--sample", "nuclei_fluorescence", "--screenshot", str(png),
                       "--timeout", "120"], env)
    # Without the widget the screenshot is still saved, and the exit status says it failed.
    assert result.returncode == (0 if WIDGET_FILE.exists() else 1), result.stderr
    _assert_png(png)


STAND_IN_MODEL_SCRIPT = """
import sys
from pathlib import Path
import napari_unet_weights._widgets.segment as segment
import napari_unet_weights.unet.model_file as model_file
from napari_unet_weights.cli import main

model_file.BUNDLED_MODEL = segment.BUNDLED_MODEL = Path(sys.argv[1])
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.gui
@needs_display
@needs_widget
def test_demo_screenshot_whole_loop_with_a_stand_in_model(tmp_path, keras):
    """Segment → Weight map and Evaluate of the prediction, with a tiny untrained model."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
    from napari_unet_weights.unet.predict import DEFAULT_INPUT, DEFAULT_NORMALIZATION

    metadata = {"format_version": 1, "n_classes": 3, "input": DEFAULT_INPUT,
                "normalization": DEFAULT_NORMALIZATION,
                "architecture": {"depth": 2, "multiple": 4},
                "postprocess": {**DEFAULT_POSTPROCESS, "seed_threshold": 0.3}}
    keras.utils.set_random_seed(0)
    model = UNetModel(build_unet(depth=2, base_filters=4), metadata).save(tmp_path / "m.keras")
    png = tmp_path / "demo.png"
    result = subprocess.run(
        [sys.executable, "-c", STAND_IN_MODEL_SCRIPT, str(model), "demo", "--screenshot",
         str(png), "--timeout", "120"],
        env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "mAP against the ground truth" in result.stderr
    _assert_png(png)
