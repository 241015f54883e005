"""ONNX weights run by onnxruntime: the network call of the ``engine="onnx"`` runtime.

:class:`OnnxNetwork` wraps an onnxruntime ``InferenceSession`` (CPU, one intra-op thread
per core this process may use) so that it is called like a Keras model,
``net(batch, training=False)`` → float32 numpy: :func:`.network.predictor` runs it as it
is, and everything around the network call (normalisation, tiles, blending, TTA,
post-processing, progress, cancel) stays the one code path of :mod:`.inference`.
A :class:`.model_file.UNetModel` whose ``keras_model`` is an :class:`OnnxNetwork` is an
"ONNX model": what :func:`.model_file.load_model` gives for an exported package whose
Keras weights cannot load (Keras / TensorFlow missing), and what ``engine="onnx"`` runs.

:func:`to_onnx` converts a Keras U-Net (Keras' own ``export(format="onnx")``: tf2onnx on
TensorFlow) and stores this plugin's metadata in the ONNX file's ``metadata_props``, so
that an ONNX file (that of an exported package too) describes itself like our ``.keras``
files. onnxruntime and onnx are imported when used (the ``[export]`` extra).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["INSTALL_HINT", "METADATA_KEY", "OnnxNetwork", "embedded_metadata", "is_onnx",
           "onnxruntime_or_error", "to_onnx"]

#: How to get onnxruntime (and onnx, tf2onnx): the extra that export needs too.
INSTALL_HINT = 'pip install "napari-unet-weights[export]"'
#: The ``metadata_props`` key of our metadata in an ONNX file (the .keras entry's name).
METADATA_KEY = "napari_unet_weights.json"


def onnxruntime_or_error():
    """The ``onnxruntime`` module, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"the ONNX engine needs onnxruntime: {INSTALL_HINT}") from error
    return onnxruntime


def _threads() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


class _Shape:
    """A tensor's shape as Keras gives it (None for a free axis), for check_model."""

    def __init__(self, dims) -> None:
        self.shape = tuple(d if isinstance(d, int) and d > 0 else None for d in dims)


class OnnxNetwork:
    """An ONNX network run by onnxruntime on the CPU, called like a Keras model.

    Parameters
    ----------
    data : bytes
        The ONNX model (one float32 (N, H, W, C) input, one (N, H, W, K) output).

    Attributes
    ----------
    inputs, outputs : list
        One entry each, with the ``shape`` of the tensor (None where free), as a Keras
        functional model has them (:func:`.model_file.check_model` reads them).
    threads : int
        onnxruntime's intra-op threads: the cores this process may use.
    """

    def __init__(self, data: bytes) -> None:
        ort = onnxruntime_or_error()
        options = ort.SessionOptions()
        self.threads = options.intra_op_num_threads = _threads()
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.inputs = [_Shape(t.shape) for t in self.session.get_inputs()]
        self.outputs = [_Shape(t.shape) for t in self.session.get_outputs()]
        self._input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()  # one call at a time: each spreads over all cores

    def __repr__(self) -> str:
        return f"OnnxNetwork(threads={self.threads})"

    def __call__(self, batch: Any, training: bool = False) -> np.ndarray:
        """The network's output on a float32 (N, H, W, C) batch (``training`` ignored)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            return self.session.run(None, {self._input: batch})[0]


def is_onnx(unet: Any) -> bool:
    """Whether a :class:`.model_file.UNetModel` runs ONNX weights (an :class:`OnnxNetwork`,
    also one serialised by :func:`.model_cache.serialized`)."""
    network = getattr(unet, "keras_model", None)
    if hasattr(type(network), "locked_network"):
        network = network.locked_network[0]
    return isinstance(network, OnnxNetwork)


def to_onnx(keras_model: Any, metadata: dict | None = None,
            path: str | os.PathLike | None = None) -> bytes:
    """The ONNX conversion of a Keras U-Net, with ``metadata`` in its ``metadata_props``.

    Keras' ``export(format="onnx")`` (tf2onnx on TensorFlow); the model is called once on
    a small batch first (Keras exports only a model that was called). No network access.

    Parameters
    ----------
    keras_model : keras.Model
        Input (None, None, None, C).
    metadata : dict, optional
        This plugin's metadata, stored as JSON under :data:`METADATA_KEY`.
    path : str or path, optional
        Also write the ONNX file there.

    Returns
    -------
    bytes
        The ONNX model.
    """
    side = int((metadata or {}).get("architecture", {}).get("multiple", 256))
    keras_model(np.zeros((1, side, side, keras_model.input_shape[-1]), np.float32))
    try:
        import onnx
        with tempfile.TemporaryDirectory() as folder:
            exported = Path(folder) / "model.onnx"
            keras_model.export(str(exported), format="onnx", verbose=False)  # tf2onnx on TF
            proto = onnx.load(str(exported))
    except ImportError as error:
        raise ImportError(f"converting to ONNX needs {error.name or 'onnx and tf2onnx'}: "
                          f"{INSTALL_HINT}") from error
    if metadata is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata, default=str)
    data = proto.SerializeToString()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def embedded_metadata(data: bytes) -> dict | None:
    """The metadata :func:`to_onnx` stored in an ONNX model, or None."""
    import onnx
    proto = onnx.load_model_from_string(data)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    return None
