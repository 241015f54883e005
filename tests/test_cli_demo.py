"""Tests of the ``demo`` subcommand of napari-unet-weights (napari_unet_weights.cli.demo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from napari_unet_weights.cli import main


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

FAKE_WIDGET_SCRIPT = """
import sys, types
import napari_unet_weights.cli.demo as cli
from napari_unet_weights.cli import main
from napari_unet_weights.weights.exact import weight_map

def WeightMapWidget(viewer):
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QLabel
    labels = next(layer for layer in viewer.layers if layer._type_string == "labels")
    QTimer.singleShot(200, lambda: viewer.add_image(weight_map(labels.data), name="weights"))
    return QLabel("stand-in widget")

module = types.ModuleType("napari_unet_weights._widgets.weight_map.widget")
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
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")
def test_demo_screenshot_starts_its_own_xvfb(tmp_path, keras):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    png = tmp_path / "demo.png"
    result = _run_cli(["demo", "--sample", "nuclei_fluorescence", "--screenshot", str(png),
                       "--timeout", "120"], env)
    assert result.returncode == 0, result.stderr
    _assert_png(png)
    # the whole loop ran: the bundled model segmented it and Evaluate scored it as the
    # bundled model scores this sample from Python
    from napari_unet_weights import evaluate, segment
    from napari_unet_weights._sample_data import load_sample

    image, truth = load_sample("nuclei_fluorescence")
    expected = evaluate(truth, segment(image)).map
    assert f"mAP against the ground truth {expected:.3f}" in result.stderr


STAND_IN_MODEL_SCRIPT = """
import sys
from pathlib import Path
import napari_unet_weights._widgets.segment.widget as segment
import napari_unet_weights.unet.model_file as model_file
from napari_unet_weights.cli import main

model_file.BUNDLED_MODEL = segment.BUNDLED_MODEL = Path(sys.argv[1])
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.gui
@needs_display
def test_demo_screenshot_whole_loop_with_a_stand_in_model(tmp_path, keras):
    """Segment → Weight map and Evaluate of the prediction, with a tiny untrained model."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
    from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION

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
