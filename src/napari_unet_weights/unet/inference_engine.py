"""Which runtime runs the network: ``engine="keras"`` (default) or ``engine="onnx"``.

Not to be confused with :class:`..runtime.engine.Engine` (``scheduler=``), the dask
cluster that chunked prediction's blocks run on: ``engine`` here picks the *inference
runtime* of the network call alone. Everything around that call (normalisation, the
tile plan, blending, TTA, post-processing, progress, cancel, stacks) is the same code
(:mod:`.inference`); :func:`engine_model` only swaps the network of the
:class:`.model_file.UNetModel` it runs.

- ``"keras"``: the Keras network (:func:`.network.predictor`: batch normalisation
  folded, compiled), or, for a model loaded on its ONNX weights because Keras could not
  load (:func:`.model_file.load_model` of a package), those ONNX weights.
- ``"onnx"``: ONNX weights run by onnxruntime on the CPU (:class:`.onnx_runtime.OnnxNetwork`):
  a package's own ONNX weights (.zip / rdf.yaml path), or the ONNX conversion of a Keras
  model (a ``.keras`` file, the bundled model, a :class:`UNetModel`), made once per
  process and set of weights (:data:`MAX_CONVERSIONS` kept, keyed by the weights'
  fingerprint: a model trained further is converted again). Nothing is downloaded.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

from .model_cache import ModelFile
from .model_file import UNetModel, as_model
from .network import weights_fingerprint
from .onnx_runtime import OnnxNetwork, is_onnx, onnxruntime_or_error, to_onnx
from .package_file import is_package, onnx_metadata, onnx_network

__all__ = ["ENGINES", "MAX_CONVERSIONS", "check_engine", "engine_model", "onnx_model"]

#: The inference runtimes ``engine=`` names.
ENGINES = ("keras", "onnx")
#: ONNX networks kept per process (converted Keras weights and packages' ONNX weights).
MAX_CONVERSIONS = 4
_NETWORKS: OrderedDict[Any, Any] = OrderedDict()  # OnnxNetwork, or a package's UNetModel
_LOCK = threading.Lock()


def check_engine(engine: Any, use_gpu: bool | None = None) -> str:
    """``engine`` if it is one of :data:`ENGINES` and runs where ``use_gpu`` asks, else a
    ValueError that says what to change (the ONNX engine runs on the CPU only)."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose one of "
                         f"{', '.join(repr(e) for e in ENGINES)} (the inference runtime; "
                         "a dask cluster is scheduler=).")
    if engine == "onnx" and use_gpu:
        raise ValueError("engine='onnx' runs on the CPU (onnxruntime's CPU build): for the "
                         "GPU use engine='keras', or leave use_gpu unset.")
    return engine


def _kept(key: Any, make) -> Any:
    """What is cached under ``key`` (a network or a package's model), made by ``make()``
    the first time."""
    with _LOCK:
        if key in _NETWORKS:
            _NETWORKS.move_to_end(key)
            return _NETWORKS[key]
        network = _NETWORKS[key] = make()
        while len(_NETWORKS) > MAX_CONVERSIONS:
            _NETWORKS.popitem(last=False)
        return network


def onnx_model(unet: UNetModel) -> UNetModel:
    """The same model on ONNX weights: itself if it runs them already, else the ONNX
    conversion of its Keras network (:func:`.onnx_runtime.to_onnx`; once per weights).

    Raises
    ------
    ImportError
        Without onnxruntime (or onnx / tf2onnx, which convert).
    TypeError
        If its network is neither a Keras model nor ONNX weights.
    """
    if is_onnx(unet):
        return unet
    onnxruntime_or_error()
    # a cached model's network is serialised (:func:`.model_cache.serialized`)
    network, _ = getattr(unet.keras_model, "locked_network", (unet.keras_model, None))
    if not hasattr(network, "get_weights") or not hasattr(network, "export"):
        raise TypeError(f"engine='onnx' converts Keras models; got {type(network).__name__}.")
    key = ("keras", weights_fingerprint(network))
    converted = _kept(key, lambda: OnnxNetwork(to_onnx(network, unet.metadata)))
    return UNetModel(converted, unet.metadata)


def _package_model(path: str | os.PathLike) -> UNetModel:
    """A package's own ONNX weights with its metadata (read and checked once per file
    version)."""
    return _kept(("package", ModelFile.of(path)),
                 lambda: UNetModel(onnx_network(path), onnx_metadata(path)))


def engine_model(model: UNetModel | str | os.PathLike | None, engine: str) -> UNetModel:
    """The model that ``engine`` runs (see the module's text).

    Parameters
    ----------
    model : UNetModel, str, path or None
        As in :func:`.predict.predict` (None: the bundled model).
    engine : {"keras", "onnx"}

    Returns
    -------
    UNetModel

    Raises
    ------
    ValueError
        For an unknown engine; otherwise as :func:`.model_file.load_model`.
    ImportError
        ``"onnx"`` without onnxruntime (the message says ``pip install
        "napari-unet-weights[export]"``); as :func:`.model_file.load_model`.
    """
    if check_engine(engine) == "onnx" and not isinstance(model, UNetModel) \
            and model is not None and is_package(model):
        onnxruntime_or_error()
        return _package_model(model)
    unet = as_model(model)
    return onnx_model(unet) if engine == "onnx" else unet
