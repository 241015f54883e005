"""TensorFlow next to napari (new threads for TensorFlow work, either import order), and
where the network runs on TensorFlow (the other backends: test_unet_backend.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_unet_weights.unet.device import (
    NO_GPU,
    call_in_new_thread,
    device_name,
    gpu_available,
    tensorflow_or_error,
)

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


@pytest.mark.slow
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


# -- where the network runs -------------------------------------------------------------
class FakeGPU:
    """What ``tf.config.list_physical_devices("GPU")`` lists."""

    name = "/physical_device:GPU:0"
    device_type = "GPU"


@pytest.fixture
def gpus(keras, monkeypatch):
    """``gpus(listed, details)``: make TensorFlow list ``listed`` GPUs with these details."""
    tf = tensorflow_or_error()

    def set_gpus(listed: list, details=None) -> None:
        real = tf.config.list_physical_devices
        monkeypatch.setattr(tf.config, "list_physical_devices",
                            lambda kind=None: list(listed) if kind == "GPU" else real(kind))

        def get_details(device):
            if details is None:
                raise ValueError("no details")
            return details

        monkeypatch.setattr(tf.config.experimental, "get_device_details", get_details)

    return set_gpus


def test_device_label(gpus):
    from napari_unet_weights.unet.device import mixed_precision_available

    assert device_name(use_gpu=False) == "CPU (tensorflow)"
    assert not mixed_precision_available(device_name(use_gpu=False))  # float32 on the CPU
    gpus([FakeGPU()], {"device_name": "NVIDIA H200"})
    assert (device_name(), device_name(True), device_name(False)) == (
        "GPU: NVIDIA H200 (tensorflow)", "GPU: NVIDIA H200 (tensorflow)", "CPU (tensorflow)")
    assert mixed_precision_available(device_name())
    assert gpu_available()
    gpus([FakeGPU()])  # details unknown: the device's own name
    assert device_name() == "GPU: /physical_device:GPU:0 (tensorflow)"
    gpus([])
    assert (device_name(), device_name(False), gpu_available()) == (
        "CPU (tensorflow)", "CPU (tensorflow)", False)
    with pytest.raises(ValueError, match=f"use_gpu=True, but there is {NO_GPU}"):
        device_name(True)


class DeviceSpy:
    """A stand-in network: records the device scope it is called in, predicts background."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def __call__(self, batch, training: bool = False) -> np.ndarray:
        from tensorflow.python.eager import context

        self.scopes.append(context.context().device_name)
        return np.eye(2, dtype=np.float32)[np.zeros(batch.shape[:3], int)]


def tiny_metadata() -> dict:
    return {"format_version": 1, "n_classes": 2, "input": {"mode": "gray"},
            "normalization": {"percentiles": [1, 99.8]}, "architecture": {"depth": 1},
            "postprocess": {}}


@pytest.mark.parametrize(("use_gpu", "scope"), [(False, "/device:CPU:0"), (None, ""),
                                                (True, "/device:GPU:0")])
def test_use_gpu_chooses_where_the_network_runs(gpus, use_gpu, scope):
    """False: the CPU; None: no scope (TensorFlow's choice); True: the GPU (one is listed)."""
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.predict import predict, segment

    gpus([FakeGPU()], {"device_name": "NVIDIA H200"})
    spy = DeviceSpy()
    unet = UNetModel(spy, tiny_metadata())
    predict(np.zeros((16, 16)), unet, use_gpu=use_gpu)
    segment(np.zeros((16, 16)), unet, use_gpu=use_gpu)
    assert len(spy.scopes) == 2 and all(name.endswith(scope) for name in spy.scopes)
    assert all(name == "" for name in spy.scopes) == (use_gpu is None)


def test_use_gpu_true_without_a_gpu_fails_before_the_network_runs(gpus):
    """A clear error that says what the Segment widget says of a missing GPU."""
    from napari_unet_weights._widgets.segment.widget import NO_GPU_TIP
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.predict import predict, segment

    spy = DeviceSpy()
    unet = UNetModel(spy, tiny_metadata())
    gpus([])
    calls = []
    for run in (predict, segment):
        with pytest.raises(ValueError, match=f"use_gpu=True, but there is {NO_GPU}") as error:
            run(np.zeros((16, 16)), unet, use_gpu=True, progress=lambda *done: calls.append(done))
        assert NO_GPU_TIP in str(error.value)
    assert calls == [] and spy.scopes == []


# -- GPUs seen by the other backends (their detection, with the backend's calls faked) --------
@pytest.fixture
def as_backend(keras, monkeypatch):
    """``as_backend(name)``: this (TensorFlow) process reports ``name`` as Keras' backend,
    for the device functions; the backend's module is imported (skips without it, except
    under ``CI=true``)."""

    def pretend(name: str):
        try:
            module = __import__(name)
        except ImportError as error:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs {name}: {error}")
            pytest.skip(str(error))
        monkeypatch.setattr(keras.config, "backend", lambda: name)
        return module

    return pretend


def test_torch_sees_cuda_and_apple_mps(as_backend, monkeypatch):
    from napari_unet_weights.unet.device import mixed_precision_available

    torch = as_backend("torch")
    monkeypatch.delenv("KERAS_TORCH_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA H100 80GB HBM3")
    assert (device_name(), device_name(False)) == ("GPU: NVIDIA H100 80GB HBM3 (torch)",
                                                   "CPU (torch)")
    assert mixed_precision_available(device_name())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device_name(True) == "GPU: Apple GPU (MPS) (torch)" and gpu_available()
    assert not mixed_precision_available(device_name())  # float16 training: CUDA only
    monkeypatch.setenv("KERAS_TORCH_DEVICE", "cpu")  # Keras told to keep torch on the CPU
    assert device_name() == "CPU (torch)" and not gpu_available()
    with pytest.raises(ValueError, match=f"use_gpu=True, but there is {NO_GPU}"):
        device_name(True)


def test_jax_sees_cuda(as_backend, monkeypatch):
    from types import SimpleNamespace

    jax = as_backend("jax")

    def devices(kind=None):
        if kind == "gpu":
            return [SimpleNamespace(device_kind="NVIDIA H200")]
        raise AssertionError(kind)

    monkeypatch.setattr(jax, "devices", devices)
    assert (device_name(), device_name(False)) == ("GPU: NVIDIA H200 (jax)", "CPU (jax)")

    def no_gpu(kind=None):
        raise RuntimeError("Unknown backend: 'gpu' requested")

    monkeypatch.setattr(jax, "devices", no_gpu)
    assert device_name() == "CPU (jax)" and not gpu_available()
