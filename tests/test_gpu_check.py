"""scripts/gpu_check.py on the CPU (``--device cpu``), as on a GPU machine without TensorFlow:
one JSON with the agreement, the throughput, the training speed and the device."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
TINY = ["--sizes", "64", "--repeats", "1", "--crop", "64", "--train-steps", "2",
        "--train-patch", "32", "--train-depth", "2", "--train-filters", "4"]


def backend() -> str:
    """A backend other than TensorFlow where one is installed (the GPU machines' case)."""
    for name in ("torch", "jax"):
        if importlib.util.find_spec(name) is not None:
            return name
    return "tensorflow"


def run_check(tmp_path: Path, *args: str) -> dict:
    """The script in a fresh interpreter; TensorFlow made unimportable unless it is the
    backend (a package named ``tensorflow`` that raises ImportError comes first on the
    path, for the script's CPU child process too)."""
    env = {**os.environ}
    env.pop("KERAS_BACKEND", None)
    if backend() != "tensorflow":
        blocked = tmp_path / "blocked" / "tensorflow"
        blocked.mkdir(parents=True)
        (blocked / "__init__.py").write_text('raise ImportError("no TensorFlow here")\n')
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocked.parent),
                                                          env.get("PYTHONPATH")]))
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--backend", backend(), "--out",
                           str(out), *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_the_check_on_the_cpu(tmp_path):
    report = run_check(tmp_path, "--device", "cpu", *TINY)
    assert report["device"]["backend"] == backend() and report["device"]["gpu"] is False
    assert report["model"]["loaded_by"] == "load_model"  # the package's loader, no TensorFlow
    agreement = report["agreement"]
    assert len(agreement["images"]) == 4 and agreement["max_abs_dp"] == 0.0  # CPU vs CPU
    assert agreement["min_labels_map"] == 1.0 and all(agreement["labels_identical"])
    for path in ("whole 64", "default 64"):
        measured = report["throughput"][path]
        assert measured["mp_per_s"] > 0 and measured["tile_shape"] == [64, 64]
    training = report["training"]
    assert "error" not in training and training["steps"] == 4 and training["steps_per_s"] > 0
    assert training["peak_memory_gb"] is None  # no GPU memory on the CPU


def test_asking_for_a_gpu_that_is_not_there_says_so(tmp_path):
    report = run_check(tmp_path, "--device", "gpu", "--parts", "throughput", *TINY)
    if report["device"]["gpu"]:
        pytest.skip("this machine has a GPU")  # never under CI: its machines have none
    assert report["error"] == "no GPU seen by the backend" and "throughput" not in report
