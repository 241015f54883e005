"""Loading TensorFlow safely, and running TensorFlow work off napari's thread pool.

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

**Where the network runs.** :func:`gpu_available`, :func:`device_name` (the label the
widgets and the CLI show) and :func:`device_scope` (what ``use_gpu`` of prediction means:
None TensorFlow's choice, False the CPU, True the GPU or a ValueError that says
:data:`NO_GPU`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "INSTALL_HINT",
    "NO_GPU",
    "call_in_new_thread",
    "device_name",
    "device_scope",
    "gpu_available",
    "keras_or_error",
    "tensorflow_or_error",
]

INSTALL_HINT = 'pip install "napari-unet-weights[unet]"'
#: What the widgets and errors say when TensorFlow sees no GPU.
NO_GPU = "no GPU seen by TensorFlow"

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


def keras_or_error():
    """Import and return ``keras`` (TensorFlow backend), or raise a clear ImportError.

    Returns
    -------
    module
        The ``keras`` module.

    Raises
    ------
    ImportError
        If TensorFlow or Keras is not installed; the message says how to install it.
    """
    tensorflow_or_error()
    try:
        import keras
    except ImportError as error:
        raise ImportError(
            f"the U-Net needs TensorFlow and Keras 3, which are not installed: {INSTALL_HINT}"
            f" ({error})"
        ) from error
    return keras


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU (imports TensorFlow).

    Returns
    -------
    bool
    """
    return bool(tensorflow_or_error().config.list_physical_devices("GPU"))


def _gpus(use_gpu: bool | None) -> list:
    """The GPUs that ``use_gpu`` may run on; ValueError for True without one."""
    if use_gpu is False:
        return []
    gpus = tensorflow_or_error().config.list_physical_devices("GPU")
    if use_gpu and not gpus:
        raise ValueError(f"use_gpu=True, but there is {NO_GPU}; pass use_gpu=None "
                         "(the GPU when there is one) or False (the CPU).")
    return gpus


def device_name(use_gpu: bool | None = None) -> str:
    """The device that prediction runs the network on: ``"GPU: <name>"`` or ``"CPU"``.

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
        For ``use_gpu=True`` when TensorFlow sees no GPU (the message says :data:`NO_GPU`).
    """
    gpus = _gpus(use_gpu)
    if not gpus:
        return "CPU"
    try:
        name = tensorflow_or_error().config.experimental.get_device_details(gpus[0]).get(
            "device_name", "")
    except (RuntimeError, ValueError):
        name = ""
    return f"GPU: {name or gpus[0].name}"


def device_scope(use_gpu: bool | None):
    """The context in which to run the network.

    Parameters
    ----------
    use_gpu : bool, optional
        None: TensorFlow's choice (the first GPU if it sees one; TensorFlow is not
        imported here); False: the CPU; True: the first GPU.

    Returns
    -------
    context manager

    Raises
    ------
    ValueError
        For ``use_gpu=True`` when TensorFlow sees no GPU (the message says :data:`NO_GPU`).
    """
    if use_gpu is None:
        return contextlib.nullcontext()
    gpus = _gpus(use_gpu)
    return tensorflow_or_error().device("/GPU:0" if gpus else "/CPU:0")
