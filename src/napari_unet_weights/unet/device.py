"""Loading Keras on its backend, TensorFlow safely, and where the network runs.

**The backend** (TensorFlow, PyTorch or JAX) is chosen in :mod:`.backend`;
:func:`keras_or_error` imports it, then Keras. TensorFlow is imported only when it is the
backend, and only then with the precautions below (PyTorch and JAX are imported on a
thread of their own too, which costs nothing).

**Why TensorFlow is imported on a thread of its own.** TensorFlow's Python bindings are
built with pybind11. The first pybind11 module of a kind to load creates pybind11's
shared "internals" and caches the *importing thread's* Python thread state in a
thread-local slot (``internals.tstate``). pybind11's ``gil_scoped_acquire`` reads that
slot first. napari's background workers run on Qt's thread pool, and PyQt gives a pool
thread a new Python thread state for every job and deletes it when the job ends: had
TensorFlow been imported in a pool job, the next job on the same OS thread (Qt keeps an
idle thread for 30 s) finds the *deleted* state in the slot, and the first
``gil_scoped_acquire`` (e.g. in the destructor of an ``error_already_set`` raised on
TensorFlow's eager fast path) waits for a GIL that its own thread holds: napari hangs
at 0 % CPU. So :func:`tensorflow_or_error` imports TensorFlow on a short-lived thread
of its own, whose slot dies with it, and the widgets run each TensorFlow job on a new
thread (:func:`call_in_new_thread`), which also protects them from another plugin having
imported TensorFlow in a pool job first.

**Why with ``RTLD_DEEPBIND``.** napari's OpenGL canvas may load Mesa (llvmpipe,
radeonsi), which brings the system's libLLVM into the process's global symbols.
TensorFlow's libraries carry their own LLVM; loaded after Mesa with the default flags,
their calls into LLVM bind to the system's copy, and the first MLIR pass (TensorFlow's
graph optimiser, run by every ``tf.data`` pipeline, i.e. by training) crashes in
``llvm::raw_ostream``. ``RTLD_DEEPBIND`` makes TensorFlow's libraries prefer their own
symbols. Measured under Xvfb + Mesa with napari 0.9 (viewer shown, image drawn, then a
convolution and a two-step training): TensorFlow 2.19 runs in both orders when loaded
this way, and a plain ``import tensorflow`` (another plugin's) works before napari, or
after it for prediction only; 2.20 and 2.21 also crash when napari draws after them,
whatever the flags (tensorflow/tensorflow#124205), hence the 2.19 pin.

**Where the network runs**, per backend: :func:`gpu_names` (CUDA GPUs on all three, Apple
silicon's MPS on PyTorch), :func:`gpu_available`, :func:`device_name` (the label the
widgets and the CLI show, with the backend) and :func:`device_scope` (what ``use_gpu`` of
prediction means: None the backend's choice, False the CPU, True the GPU or a ValueError
that says :data:`NO_GPU`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .backend import BackendFixedError, install_hint, restart_hint, use_backend

__all__ = [
    "INSTALL_HINT",
    "NO_GPU",
    "call_in_new_thread",
    "device_name",
    "device_scope",
    "gpu_available",
    "gpu_names",
    "keras_or_error",
    "mixed_precision_available",
    "tensorflow_or_error",
]

INSTALL_HINT = install_hint("tensorflow")
#: What the widgets and errors say when the backend sees no GPU.
NO_GPU = "no GPU seen by the Keras backend"
#: What the GPU of PyTorch on Apple silicon is called here.
MPS_NAME = "Apple GPU (MPS)"

Result = TypeVar("Result")

_import_lock = threading.Lock()


def call_in_new_thread(function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """Call ``function(*args, **kwargs)`` on a new Python thread and wait for it.

    The new thread has one Python thread state for its whole life, which pybind11-based
    libraries such as TensorFlow rely on (see the module docstring); the calling thread
    (e.g. a napari worker) only waits.

    Parameters
    ----------
    function : callable
        The work.
    *args, **kwargs
        Its arguments.

    Returns
    -------
    object
        What ``function`` returned.

    Raises
    ------
    BaseException
        Whatever ``function`` raised, re-raised on the calling thread.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # re-raised on the calling thread below
            outcome["error"] = error

    thread = threading.Thread(target=target, name="napari-unet-weights-tensorflow",
                              daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _import_tensorflow() -> None:
    """Import TensorFlow with its libraries bound to their own symbols (Linux)."""
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    flags = sys.getdlopenflags() if hasattr(sys, "getdlopenflags") else None
    if deepbind and flags is not None:
        sys.setdlopenflags(flags | deepbind)
    try:
        import tensorflow  # noqa: F401
    finally:
        if flags is not None:
            sys.setdlopenflags(flags)


def tensorflow_or_error():
    """Import and return ``tensorflow``, or raise a clear ImportError.

    The first import runs on a thread of its own and with ``RTLD_DEEPBIND`` (see the
    module docstring), so this is safe to call from any thread, napari's workers
    included, before or after napari's window exists.

    Returns
    -------
    module
        The ``tensorflow`` module.

    Raises
    ------
    ImportError
        If TensorFlow is not installed; the message says how to install it.
    """
    with _import_lock:
        if sys.modules.get("tensorflow") is None:
            try:
                call_in_new_thread(_import_tensorflow)
            except ImportError as error:
                raise ImportError(
                    f"the U-Net needs TensorFlow and Keras 3, which are not installed: "
                    f"{INSTALL_HINT} ({error})"
                ) from error
    import tensorflow

    return tensorflow


def _import_on_own_thread(module: str) -> None:
    """Import ``module`` (PyTorch, JAX: no TensorFlow precautions) on a thread of its own."""
    with _import_lock:
        if sys.modules.get(module) is None:
            import importlib

            call_in_new_thread(importlib.import_module, module)


def keras_or_error(backend: str | None = None):
    """Import and return ``keras`` on its backend, or raise a clear error.

    Parameters
    ----------
    backend : str, optional
        ``"tensorflow"``, ``"torch"`` or ``"jax"``; None: the one Keras already runs, else
        ``KERAS_BACKEND``, else TensorFlow if installed, else the first installed (see
        :mod:`.backend`). TensorFlow is imported only when it is the backend.

    Returns
    -------
    module
        The ``keras`` module.

    Raises
    ------
    ImportError
        If the backend or Keras is not installed; the message gives the pip command.
    ValueError
        An unknown backend name.
    BackendFixedError
        Keras already runs another backend in this process.
    """
    name = use_backend(backend)
    if name == "tensorflow":
        tensorflow_or_error()  # with the TensorFlow-only precautions (module docstring)
    try:
        if name != "tensorflow":
            _import_on_own_thread(name)
        import keras
    except ImportError as error:
        raise ImportError(f"the U-Net's {name} backend could not be imported: "
                          f"{install_hint(name)} ({error})") from error
    if keras.config.backend() != name:  # KERAS_BACKEND changed after Keras read it
        raise BackendFixedError(restart_hint(name))
    return keras


# -- where the network runs, per backend -----------------------------------------------------
def _tensorflow_gpus() -> list[str]:
    tf = tensorflow_or_error()
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            name = tf.config.experimental.get_device_details(gpu).get("device_name", "")
        except (RuntimeError, ValueError):
            name = ""
        names.append(name or gpu.name)
    return names


def _torch_gpus() -> list[str]:
    import torch

    if os.environ.get("KERAS_TORCH_DEVICE", "").lower().startswith("cpu"):
        return []  # Keras was told to keep PyTorch on the CPU
    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    return [MPS_NAME] if mps is not None and mps.is_available() else []


def _jax_gpus() -> list[str]:
    import jax

    try:
        return [str(device.device_kind) for device in jax.devices("gpu")]
    except RuntimeError:  # "Unknown backend gpu": no GPU (or JAX_PLATFORMS=cpu)
        return []


_GPU_LISTS = {"tensorflow": _tensorflow_gpus, "torch": _torch_gpus, "jax": _jax_gpus}


def gpu_names() -> list[str]:
    """The names of the GPUs that the Keras backend sees (imports Keras and the backend).

    CUDA GPUs on all three backends, Apple silicon's GPU (MPS) on PyTorch.

    Returns
    -------
    list of str
    """
    return _GPU_LISTS[keras_or_error().config.backend()]()


def gpu_available() -> bool:
    """Whether the Keras backend sees a GPU (imports Keras and the backend).

    Returns
    -------
    bool
    """
    return bool(gpu_names())


def _gpus(use_gpu: bool | None) -> list[str]:
    """The GPUs that ``use_gpu`` may run on; ValueError for True without one."""
    if use_gpu is False:
        return []
    gpus = gpu_names()
    if use_gpu and not gpus:
        raise ValueError(f"use_gpu=True, but there is {NO_GPU}; pass use_gpu=None "
                         "(the GPU when there is one) or False (the CPU).")
    return gpus


def device_name(use_gpu: bool | None = None) -> str:
    """The device that the network runs on, and the backend: e.g.
    ``"GPU: NVIDIA H100 (torch)"`` or ``"CPU (tensorflow)"``.

    Parameters
    ----------
    use_gpu : bool, optional
        As in :func:`device_scope`.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For ``use_gpu=True`` when the backend sees no GPU (the message says :data:`NO_GPU`).
    """
    gpus = _gpus(use_gpu)
    backend = keras_or_error().config.backend()
    return f"GPU: {gpus[0]} ({backend})" if gpus else f"CPU ({backend})"


def mixed_precision_available(name: str) -> bool:
    """Whether training on the device ``name`` (from :func:`device_name`) uses mixed
    precision (``mixed_float16``): on CUDA GPUs; not on the CPU, nor on Apple's MPS, where
    float16 training is not dependable."""
    return name.startswith("GPU") and MPS_NAME not in name


def device_scope(use_gpu: bool | None):
    """The context in which to run the network.

    Parameters
    ----------
    use_gpu : bool, optional
        None: the backend's choice (the first GPU if it sees one; nothing is imported
        here); False: the CPU; True: the first GPU.

    Returns
    -------
    context manager
        TensorFlow: ``tf.device``; PyTorch, JAX: ``keras.device``. On PyTorch the weights
        stay where the model was loaded: a model loaded on the GPU runs there.

    Raises
    ------
    ValueError
        For ``use_gpu=True`` when the backend sees no GPU (the message says :data:`NO_GPU`).
    """
    if use_gpu is None:
        return contextlib.nullcontext()
    gpus = _gpus(use_gpu)
    keras = keras_or_error()
    backend = keras.config.backend()
    if backend == "tensorflow":
        return tensorflow_or_error().device("/GPU:0" if gpus else "/CPU:0")
    if not gpus:
        return keras.device("cpu:0")
    return keras.device("mps" if gpus[0] == MPS_NAME else "gpu:0")
