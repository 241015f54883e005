"""Whole-image prediction with a U-Net model file (TensorFlow imported lazily).

``prepare_image`` turns any 2-D image into the model's input the way the model file
says (channel handling, percentile normalisation, float32); ``predict`` pads it to a
multiple of ``2**depth``, runs the network once on the whole image and crops back.

Seam for later work: :func:`predict_prepared` is the one place that runs the network.
Tiling of large images, n-D stacks and the choice of device go there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .model_file import UNetModel

__all__ = [
    "DEFAULT_INPUT",
    "DEFAULT_NORMALIZATION",
    "normalize_percentiles",
    "pad_to_multiple",
    "predict",
    "predict_prepared",
    "prepare_image",
    "to_gray",
]

#: How images are turned into the single input channel (recorded in model files).
DEFAULT_INPUT = {"mode": "gray", "n_channels": 1, "invert_bright_background": True}
#: Per-image percentile normalisation (recorded in model files).
DEFAULT_NORMALIZATION = {"percentiles": [1.0, 99.8]}


def to_gray(image) -> np.ndarray:
    """One channel from a 2-D grayscale or (H, W, 1|3|4) colour image.

    Colour channels are averaged (an alpha channel is dropped).

    Parameters
    ----------
    image : array-like
        (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)

    Raises
    ------
    ValueError
        For other shapes (only 2-D images for now).
    """
    array = np.asarray(image)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.number)):
        raise TypeError(f"image must hold numbers, got dtype {array.dtype}.")
    if array.ndim == 2:
        return array.astype(np.float32)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        channels = array[..., :3] if array.shape[-1] == 4 else array
        return channels.astype(np.float32).mean(axis=-1)
    raise ValueError(
        "expected a 2-D image: (H, W) grayscale or (H, W, 3|4) colour, got shape "
        f"{array.shape}."
    )


def normalize_percentiles(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """``(image − p_low) / (p_high − p_low)`` in float32 (not clipped).

    Parameters
    ----------
    image : numpy.ndarray
        Any image.
    low, high : float
        Percentiles mapped to 0 and 1.

    Returns
    -------
    numpy.ndarray of float32
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(image, [low, high])
    scale = hi - lo if hi > lo else 1.0
    return ((image - lo) / scale).astype(np.float32)


def prepare_image(image, metadata: dict | None = None) -> np.ndarray:
    """The network input for ``image``: one channel, normalised, float32.

    Parameters
    ----------
    image : array-like
        (H, W) or (H, W, 1|3|4).
    metadata : dict, optional
        A model's metadata; its ``"input"`` and ``"normalization"`` entries are used
        (defaults: :data:`DEFAULT_INPUT`, :data:`DEFAULT_NORMALIZATION`).

    Returns
    -------
    numpy.ndarray of float32, shape (H, W, 1)
        Colour channels averaged, percentiles mapped to 0 and 1, and inverted
        (``1 − x``) when the background is bright (median > 0.5) and the model asks
        for it, so that brightfield / H&E nuclei look like fluorescence.
    """
    metadata = metadata or {}
    input_spec = {**DEFAULT_INPUT, **metadata.get("input", {})}
    normalization = {**DEFAULT_NORMALIZATION, **metadata.get("normalization", {})}
    if input_spec["mode"] != "gray":
        raise ValueError(f"unsupported input mode {input_spec['mode']!r}; expected 'gray'.")
    low, high = normalization["percentiles"]
    x = normalize_percentiles(to_gray(image), low, high)
    if input_spec.get("invert_bright_background") and float(np.median(x)) > 0.5:
        x = (1.0 - x).astype(np.float32)
    return x[..., np.newaxis]


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Pad the first two axes up to a multiple of ``multiple`` (mirroring the edges).

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (H, W, C).
    multiple : int
        E.g. ``2**depth`` of a U-Net.

    Returns
    -------
    padded : numpy.ndarray
        (H', W', ...) with H', W' multiples of ``multiple``.
    crop : tuple of slice
        ``padded[crop]`` (or ``output[crop]`` of the same height and width) gives back
        the original extent.
    """
    image = np.asarray(image)
    pads, crop = [], []
    for size in image.shape[:2]:
        total = -size % multiple
        before = total // 2
        pads.append((before, total - before))
        crop.append(slice(before, before + size))
    pads += [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pads, mode="symmetric") if any(p != (0, 0) for p in pads) else image
    return padded, tuple(crop)


def _multiple(metadata: dict) -> int:
    architecture = metadata.get("architecture", {})
    return int(architecture.get("multiple", 2 ** int(architecture.get("depth", 4))))


def predict_prepared(keras_model: Any, x: np.ndarray, multiple: int) -> np.ndarray:
    """Run the network on one prepared (H, W, C) image; return (H, W, K) float32.

    The image is padded to ``multiple`` and the output cropped back. The model is
    called on a tensor (no ``Model.predict``: no progress bar, no retracing per size).
    """
    padded, crop = pad_to_multiple(x, multiple)
    output = keras_model(padded[np.newaxis], training=False)
    probabilities = np.asarray(output, dtype=np.float32)[0]
    return np.ascontiguousarray(probabilities[crop])


def _resolve_model(model) -> UNetModel:
    from .model_file import UNetModel, load_model

    if model is None or not isinstance(model, UNetModel):
        return load_model(model)
    return model


def predict(image, model: UNetModel | str | None = None, *, batch_size: int = 1) -> np.ndarray:
    """Class probabilities of a 2-D image.

    Parameters
    ----------
    image : array-like
        (H, W) grayscale or (H, W, 3|4) colour, any numeric dtype.
    model : UNetModel, str or path, optional
        A loaded model, a ``.keras`` model file, or None for the bundled nuclei model.
    batch_size : int
        Images per network call (reserved for tiled prediction; one image now).

    Returns
    -------
    numpy.ndarray of float32, shape (H, W, n_classes)
        Softmax probabilities (they sum to 1 over the last axis).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    unet = _resolve_model(model)
    x = prepare_image(image, unet.metadata)
    return predict_prepared(unet.keras_model, x, _multiple(unet.metadata))
