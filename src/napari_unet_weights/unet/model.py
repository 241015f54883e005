"""The U-Net (Keras 3, functional) and its weighted loss. Keras is imported lazily.

The per-pixel weights reach the loss through Keras' own mechanism: the data pipeline
yields ``(x, y, sample_weight)`` with ``sample_weight`` of shape (batch, H, W), and
the loss (:func:`weighted_loss`, reduction ``"sum_over_batch_size"``) computes

    E = Σ_x w(x) · (−log p_{l(x)}(x)) / N,    N = batch · H · W,

the seed's weighted cross-entropy normalised by the pixel count, without the seed's
extra model inputs. With w = 1 it is plain cross-entropy, the value of Keras'
``SparseCategoricalCrossentropy``. It is written with ``keras.ops`` alone, so it trains on
every Keras backend: Keras 3.15's own sparse cross-entropy fails in PyTorch's backward
pass (``grad_input must be contiguous``: ``nll_loss2d`` on a channels-moved view).
"""

from __future__ import annotations

from typing import Any

from .device import keras_or_error, tensorflow_or_error

__all__ = ["build_unet", "keras_or_error", "tensorflow_or_error", "weighted_loss"]

#: The package under which the loss is registered for Keras' serialisation.
SERIALIZATION_PACKAGE = "napari_unet_weights"

_loss_class: dict[str, type] = {}


def _conv_block(keras, x, filters: int, batch_norm: bool, name: str):
    layers = keras.layers
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                          kernel_initializer="he_normal", name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def _check_architecture(n_channels: int, n_classes: int, depth: int, base_filters: int,
                        dropout: float) -> None:
    if n_channels < 1:
        raise ValueError(f"n_channels must be >= 1, got {n_channels}.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}.")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    if base_filters < 1:
        raise ValueError(f"base_filters must be >= 1, got {base_filters}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")


def build_unet(
    n_channels: int = 1,
    n_classes: int = 3,
    depth: int = 4,
    base_filters: int = 16,
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> Any:
    """Build a 2-D U-Net: ``depth`` poolings, filters doubling at each level.

    Each level has two 3×3 convolutions (+ batch norm) + ReLU; down by 2×2 max pooling,
    up by 2×2 transposed convolution and concatenation with the skip connection. The
    last layer is a 1×1 convolution to ``n_classes`` logits and a softmax computed in
    float32 (also under a mixed-precision policy).

    Parameters
    ----------
    n_channels : int
        Channels of the input image.
    n_classes : int
        Output classes (softmax over the last axis).
    depth : int
        Number of poolings: input height and width must be multiples of ``2**depth``
        (see :func:`napari_unet_weights.unet.tiling.pad_to_multiple`).
    base_filters : int
        Filters of the first level.
    batch_norm : bool
        Batch normalisation after each convolution.
    dropout : float
        Dropout rate at the bottleneck (0: none).

    Returns
    -------
    keras.Model
        Input (None, None, None, n_channels), output (None, None, None, n_classes).
    """
    _check_architecture(n_channels, n_classes, depth, base_filters, dropout)
    keras = keras_or_error()
    layers = keras.layers
    inputs = keras.Input(shape=(None, None, n_channels), name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = _conv_block(keras, x, base_filters * 2**level, batch_norm, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(keras, x, base_filters * 2**depth, batch_norm, "bottom")
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_upconv")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level], x])
        x = _conv_block(keras, x, filters, batch_norm, f"up{level}")
    logits = layers.Conv2D(n_classes, 1, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="unet")


def _pixel_cross_entropy(keras) -> type:
    """The loss class, defined (and registered with Keras) on first use."""
    if "class" in _loss_class:
        return _loss_class["class"]
    ops = keras.ops

    @keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
    class PixelCrossEntropy(keras.losses.Loss):
        """Per-pixel cross-entropy of class probabilities (last axis) against integer
        labels; ``sample_weight`` (batch, H, W) weighs the pixels."""

        def __init__(self, name: str = "pixel_cross_entropy",
                     reduction: str = "sum_over_batch_size", dtype=None) -> None:
            super().__init__(name=name, reduction=reduction, dtype=dtype)

        def call(self, y_true, y_pred):
            epsilon = keras.config.epsilon()
            probabilities = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            probabilities = ops.clip(probabilities, epsilon, 1.0 - epsilon)
            labels = ops.expand_dims(ops.cast(y_true, "int32"), -1)
            return -ops.log(ops.take_along_axis(probabilities, labels, axis=-1)[..., 0])

    _loss_class["class"] = PixelCrossEntropy
    return PixelCrossEntropy


def weighted_loss():
    """The loss used for training: per-pixel cross-entropy on probabilities.

    Per-pixel weights are passed as ``sample_weight`` of shape (batch, H, W); the
    default reduction divides the weighted sum by batch · H · W. Written with
    ``keras.ops`` (the same value on TensorFlow, PyTorch and JAX) and registered with
    Keras (``napari_unet_weights>PixelCrossEntropy``), so a compiled model saved with it
    loads again; the model files of this package are saved uncompiled anyway.

    Returns
    -------
    keras.losses.Loss
    """
    return _pixel_cross_entropy(keras_or_error())()
