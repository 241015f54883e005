"""TensorFlow next to napari: new threads for TensorFlow work, either import order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from napari_unet_weights.unet.device import call_in_new_thread

SCRIPTS = Path(__file__).parent / "scripts"


def _run_script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Run ``tests/scripts/<name>`` in a fresh interpreter; fail if it hangs."""
    try:
        return subprocess.run([sys.executable, str(SCRIPTS / name), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{name} {' '.join(args)} hung for {timeout} s (napari would freeze):\n"
                    f"{error.stdout}")


def test_call_in_new_thread_returns_and_raises():
    caller = threading.get_ident()
    first = call_in_new_thread(threading.get_ident)
    second = call_in_new_thread(threading.get_ident)
    assert caller not in (first, second)
    assert call_in_new_thread(divmod, 7, 2) == (3, 1)
    assert call_in_new_thread(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    with pytest.raises(KeyError, match="missing"):
        call_in_new_thread({}.__getitem__, "missing")


def test_call_in_new_thread_passes_ctrl_c_on():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_in_new_thread(interrupted)


@pytest.mark.gui
@pytest.mark.usefixtures("keras")
def test_segment_and_train_run_again_and_again_in_napari():
    """Segment ×3, Cancel → Run, Train ×2 in a fresh napari: every run finishes.

    With TensorFlow first imported in a napari worker (a Qt pool thread), the second
    run used to hang napari for good (pybind11 kept the pool thread's deleted Python
    thread state); see napari_unet_weights.unet.device.
    """
    done = _run_script("repeated_runs.py", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    segment_lines = [line for line in lines if line.startswith("segment ")]
    assert len(segment_lines) == 3 and all("objects" in line for line in segment_lines)
    assert any(line.startswith("after cancel") and "objects" in line for line in lines)
    train_lines = [line for line in lines if line.startswith("train ")]
    assert [line.split()[:3] for line in train_lines] == [["train", "0", "True"],
                                                          ["train", "1", "True"]]
    assert lines[-1] == "done"


@pytest.mark.gui
@pytest.mark.usefixtures("keras")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Mesa's OpenGL is Linux's")
@pytest.mark.parametrize("order", ["napari-first", "tensorflow-first"])
def test_plain_tensorflow_import_next_to_napari_opengl(order):
    """Another plugin's plain ``import tensorflow`` works in either order (no segfault)."""
    done = _run_script("import_order.py", order, timeout=180)
    assert done.returncode == 0, f"exit status {done.returncode}:\n{done.stderr[-3000:]}"
    assert done.stdout.splitlines()[-1] == "ok"
