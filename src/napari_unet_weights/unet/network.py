"""The network call of inference: one compiled predict step, the same on every Keras backend.

:func:`predictor` turns a U-Net into a function from a float32 (N, H, W, C) numpy batch
to its float32 (N, H, W, K) numpy probabilities. For a Keras model it runs an
*inference copy* of the network:

- **batch normalisation folded** into the convolution before it
  (:func:`fold_batch_norm`): ``w' = w · γ/√(σ² + ε)``, ``b' = (b − μ) · γ/√(σ² + ε) + β``,
  computed in float64; the same function to float32 rounding (≈ 10⁻⁷ in the
  probabilities), one pass over the activations less per convolution;
- **compiled**: :meth:`keras.Model.predict_on_batch`, a ``tf.function`` on TensorFlow
  (no XLA: slower on CPU), ``jax.jit`` on JAX (traced once per batch shape), under
  ``torch.no_grad`` on PyTorch; numpy out, whatever the backend or device. Graph
  execution also frees each activation when it is used up: about 6 float32 per pixel and
  first-level filter on TensorFlow, against 30 for an eager ``model(x)``
  (:data:`.tiling.ACTIVATIONS_PER_FILTER`).

The copy is made once per model (kept while the model lives) and refreshed when the
model's weights change (a fingerprint of them is checked when :func:`predictor` is
called, e.g. once per prediction; training's validation predicts with the model being
trained). The model itself and its file are never changed. Anything else that is
callable like a Keras model (``net(batch, training=False)``) is called as it is.

On the first prediction of a new tile shape the step is traced (TensorFlow: about a
second; JAX compiles every new shape).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["flops_per_pixel", "fold_batch_norm", "predictor", "to_numpy", "weights_fingerprint"]

#: ``predict_on_batch``'s compilation per backend: TensorFlow's XLA is slower on CPU
#: (0.55× measured) and torch.compile costs ~50 s per shape; JAX's jit is its fast path.
_JIT_COMPILE = {"tensorflow": False, "torch": False, "jax": True}

_LOCK = threading.Lock()


def to_numpy(output: Any) -> np.ndarray:
    """A network output (numpy, or a tensor of the Keras backend) as float32 numpy."""
    if not isinstance(output, np.ndarray) and "keras" in sys.modules:
        output = sys.modules["keras"].ops.convert_to_numpy(output)
    return np.asarray(output, dtype=np.float32)


def _is_keras_model(net: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(net, keras.Model)


def weights_fingerprint(keras_model: Any) -> str:
    """A digest of all the model's weights (trainable or not), to see that they changed."""
    digest = hashlib.blake2b(digest_size=16)
    for weights in keras_model.get_weights():
        digest.update(np.ascontiguousarray(weights).view(np.uint8))
    return digest.hexdigest()


def flops_per_pixel(keras_model: Any, side: int = 256) -> float:
    """The floating-point operations of the model's convolutions per input pixel.

    Counted from the layers on a ``side``² input (a multiple of the model's ``2**depth``):
    a ``Conv2D`` does 2·k²·C_in·C_out (/ groups) per output pixel, a ``Conv2DTranspose``
    2·k²·C_in·C_out per *input* pixel (each input pixel meets each tap once: with stride
    2 and a 2×2 kernel, 2·C_in·C_out per output pixel), a ``Dense`` 2·C_in·C_out per
    position; normalisation, activations, pooling and concatenation are not counted
    (a few per cent). 10⁶ × this = FLOP per megapixel.

    Parameters
    ----------
    keras_model : keras.Model
        A functional model with a (None, None, C) input.
    side : int

    Returns
    -------
    float
    """
    keras = sys.modules["keras"]
    channels = keras_model.input_shape[-1]
    fixed = keras.models.clone_model(keras_model,
                                     input_tensors=keras.Input((side, side, channels)))
    total = 0.0
    for layer in fixed.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Conv2DTranspose", "Dense"):
            continue
        c_in, c_out = layer.input.shape[-1], layer.output.shape[-1]
        taps = math.prod(getattr(layer, "kernel_size", (1,))) * c_in * c_out
        taps /= getattr(layer, "groups", 1) or 1
        where = layer.input if kind == "Conv2DTranspose" else layer.output
        total += 2 * taps * math.prod(where.shape[1:-1])
    return total / side**2


# -- folding --------------------------------------------------------------------------------
def _foldable_pairs(keras_model: Any) -> dict[str, str]:
    """Conv2D layer name → the name of the BatchNormalization that alone reads it."""
    pairs = {}
    for layer in keras_model.layers:
        if type(layer).__name__ != "BatchNormalization" or len(layer._inbound_nodes) != 1:
            continue
        parents = layer._inbound_nodes[0].parent_nodes
        conv = parents[0].operation if len(parents) == 1 else None
        if (type(conv).__name__ == "Conv2D" and len(conv._inbound_nodes) == 1
                and len(conv._outbound_nodes) == 1 and conv.data_format == "channels_last"
                and conv.groups == 1 and conv.get_config()["activation"] == "linear"
                and layer.axis in (-1, 3)):
            pairs[conv.name] = layer.name
    return pairs


def _folded_weights(conv: Any, norm: Any) -> list[np.ndarray]:
    """The kernel and bias of ``conv`` followed by ``norm`` (inference mode), float32."""
    def value(variable) -> np.ndarray:
        return to_numpy(variable).astype(np.float64)

    scale = value(norm.moving_variance) + norm.epsilon
    scale = (value(norm.gamma) if norm.scale else 1.0) / np.sqrt(scale)
    shift = value(norm.beta) if norm.center else 0.0
    bias = value(conv.bias) if conv.use_bias else 0.0
    kernel = value(conv.kernel) * scale
    return [kernel.astype(np.float32),
            ((bias - value(norm.moving_mean)) * scale + shift).astype(np.float32)]


def _pass_through(keras):
    class PassThrough(keras.layers.Layer):
        """Where a folded batch normalisation was: its input as it is."""

        def call(self, inputs, training=None, mask=None):
            return inputs

    return PassThrough


def _set_folded_weights(keras_model: Any, folded: Any, pairs: dict[str, str]) -> None:
    norms = set(pairs.values())
    for layer in keras_model.layers:
        if layer.name in pairs:
            norm = keras_model.get_layer(pairs[layer.name])
            folded.get_layer(layer.name).set_weights(_folded_weights(layer, norm))
        elif layer.name not in norms and layer.weights:
            folded.get_layer(layer.name).set_weights(layer.get_weights())


def _pairs(keras_model: Any) -> dict[str, str]:
    """:func:`_foldable_pairs`, or none for a model that is not a functional graph."""
    try:
        return _foldable_pairs(keras_model)
    except (AttributeError, IndexError, TypeError):
        return {}


def _folded_copy(keras_model: Any, pairs: dict[str, str]) -> Any:
    keras = sys.modules["keras"]
    norms = set(pairs.values())
    through = _pass_through(keras)

    def clone(layer):
        if layer.name in norms:
            return through(name=layer.name)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return type(layer).from_config(config)

    folded = keras.models.clone_model(keras_model, clone_function=clone)
    _set_folded_weights(keras_model, folded, pairs)
    return folded


def fold_batch_norm(keras_model: Any) -> Any:
    """A copy of a functional Keras model with batch normalisation folded into the
    convolutions before it (inference only), or the model itself if nothing folds.

    A ``BatchNormalization`` folds when its only input is a ``Conv2D`` (channels last, no
    groups, linear activation) that nothing else reads; the convolution gets a bias and
    the normalisation becomes a pass-through. Same outputs to float32 rounding.

    Parameters
    ----------
    keras_model : keras.Model

    Returns
    -------
    keras.Model
    """
    pairs = _pairs(keras_model)
    return _folded_copy(keras_model, pairs) if pairs else keras_model


# -- the compiled step ----------------------------------------------------------------------
@dataclass
class _Copy:
    """The inference copy of a model and the fingerprint of the weights it holds."""

    model: Any
    fingerprint: str
    pairs: dict[str, str]  #: the folded (convolution, normalisation) names


_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _device_key() -> str:
    """Where new variables go now (torch places them at creation; others: one key)."""
    keras = sys.modules["keras"]
    if keras.backend.backend() != "torch":
        return ""
    try:
        from keras.src.backend.torch.core import get_device
    except ImportError:  # a Keras that moved it: one copy, wherever it was made
        return "torch"
    return str(get_device())


@contextlib.contextmanager
def _global_generators_kept():
    """Python's global random generator as it was, whatever runs inside.

    Cloning a model initialises new layers, which draws seeds from Python's ``random``
    (Keras' seed generators without a seed): a prediction must not move the user's draws.
    """
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def _new_copy(keras_model: Any, pairs: dict[str, str]) -> Any:
    """The folded copy, or a plain one (nothing folds), compiled as :data:`_JIT_COMPILE`."""
    with _global_generators_kept():
        return _compiled_copy(keras_model, pairs)


def _compiled_copy(keras_model: Any, pairs: dict[str, str]) -> Any:
    keras = sys.modules["keras"]
    if pairs:
        copy = _folded_copy(keras_model, pairs)
    else:
        copy = keras.models.clone_model(keras_model)
        copy.set_weights(keras_model.get_weights())
    copy.jit_compile = _JIT_COMPILE.get(keras.backend.backend(), False)
    return copy


def _inference_copy(keras_model: Any) -> Any:
    """The folded, compiled copy of ``keras_model``, made or refreshed as needed."""
    fingerprint = weights_fingerprint(keras_model)
    key = _device_key()
    with _LOCK:
        copies = _COPIES.setdefault(keras_model, {})
        copy = copies.get(key)
        if copy is None:
            pairs = _pairs(keras_model)
            copy = copies[key] = _Copy(_new_copy(keras_model, pairs), fingerprint, pairs)
        elif copy.fingerprint != fingerprint:
            if copy.pairs:
                _set_folded_weights(keras_model, copy.model, copy.pairs)
            else:
                copy.model.set_weights(keras_model.get_weights())
            copy.fingerprint = fingerprint
    return copy.model


def _unwrap(net: Any) -> tuple[Any, Any]:
    """(network, lock) of a network that serialises its calls, else (net, None)."""
    locked = getattr(type(net), "locked_network", None)
    return net.locked_network if locked is not None else (net, None)


def predictor(net: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The function that runs a network on a batch, for the weights it has now.

    Parameters
    ----------
    net : keras.Model or callable
        The U-Net (also one serialised by :func:`.model_cache.serialized`: its lock is
        held during each call), or anything called as ``net(batch, training=False)``.

    Returns
    -------
    callable
        ``(N, H, W, C) float32 numpy → (N, H, W, K) float32 numpy``.
    """
    model, lock = _unwrap(net)
    if not _is_keras_model(model):
        def call(batch: np.ndarray) -> np.ndarray:
            return to_numpy(net(batch, training=False))
        return call
    copy = _inference_copy(model)

    def step(batch: np.ndarray) -> np.ndarray:
        if lock is None:
            return to_numpy(copy.predict_on_batch(batch))
        with lock:
            return to_numpy(copy.predict_on_batch(batch))
    return step
