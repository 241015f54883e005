"""From an image plane to the network's input: channels, missing pixels, normalisation.

numpy only (no TensorFlow); used by prediction and training alike.

- **Channel axis.** A model is 2-D: an array is (..., H, W) planes, or (..., H, W, C)
  planes with C channels last. :func:`guess_channels` decides when the caller does not
  say: the last axis holds channels when it has 1 to :data:`MAX_CHANNELS` entries and
  the two axes before it both have more than :data:`MAX_CHANNELS` (an image plane
  narrower than 5 pixels is not a plausible image). So (H, W, 1), (H, W, 2), (H, W, 3)
  and (H, W, 4) are one plane with channels, and a (Z, H, W) stack is read as a stack
  whatever Z is. Only a stack of planes at most 4 pixels wide is misread; pass
  ``channels=False`` (``rgb=False`` in :func:`.predict.predict`) for it.
- **Missing pixels.** NaN and ±inf pixels are missing data: the normalisation
  percentiles are taken over the finite pixels only, and the missing pixels are set to
  :data:`MISSING_INPUT_LEVEL` (0, the dark background of the normalised input) so that
  they do not spread into their neighbours' predictions. Prediction then sets their
  probabilities to background (no object is made of missing data) and warns with a
  :class:`MissingDataWarning`.
- **Normalisation.** Percentiles of the whole plane mapped to 0 and 1 (not clipped);
  "gray" input mode: channels averaged first (an alpha channel dropped) and bright
  backgrounds inverted; "channels" mode: each channel on its own. A part of a plane
  (a block of a chunked prediction, :mod:`.chunked.big`) is prepared with the statistics of its
  whole plane, given as :class:`PlaneStatistics` (:func:`prepare_plane`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COLOUR_RULES",
    "DEFAULT_INPUT",
    "DEFAULT_NORMALIZATION",
    "INPUT_MODES",
    "MAX_CHANNELS",
    "MISSING_INPUT_LEVEL",
    "MissingDataWarning",
    "PlaneStatistics",
    "check_numeric",
    "check_training_image",
    "count_missing",
    "gray_plane",
    "guess_channels",
    "is_colour",
    "missing_data_message",
    "prepare_image",
    "prepare_plane",
    "to_gray",
]

#: How images are turned into the network input (recorded in model files).
#: ``mode`` "gray": colour channels averaged; "channels": ``n_channels`` channels, each
#: normalised on its own.
DEFAULT_INPUT = {"mode": "gray", "n_channels": 1, "invert_bright_background": True,
                 "colour": "mean"}
#: How "gray" mode turns a colour image into one channel (``DEFAULT_INPUT["colour"]``).
COLOUR_RULES = ("mean", "hematoxylin")
#: Per-image percentile normalisation (recorded in model files).
DEFAULT_NORMALIZATION = {"percentiles": [1.0, 99.8]}
#: The input modes a model file may record.
INPUT_MODES = ("gray", "channels")
#: Most entries of a last axis that :func:`guess_channels` reads as channels.
MAX_CHANNELS = 4
#: The normalised input value given to missing (NaN / infinite) pixels.
MISSING_INPUT_LEVEL = 0.0


class MissingDataWarning(UserWarning):
    """Some pixels of an image are NaN or infinite and were treated as missing data."""


@dataclass(frozen=True)
class PlaneStatistics:
    """The normalisation statistics of a whole plane, to prepare any part of it alike.

    Attributes
    ----------
    values : tuple of float
        "gray" input mode: the (low, high, median) percentiles of the plane's gray
        values; "channels" mode: (low, high) of each channel in turn.
    colour : {"mean", "hematoxylin"}
        How the plane becomes gray, decided on the whole plane (haematoxylin only for a
        colour plane, see :func:`to_gray`), so that every part of it uses the same rule.
    """

    values: tuple[float, ...]
    colour: str = "mean"


def missing_data_message(n_missing: int, n_pixels: int, where: str = "the image") -> str:
    """The text of a :class:`MissingDataWarning`.

    Parameters
    ----------
    n_missing, n_pixels : int
        Missing pixels and all pixels.
    where : str
        What holds them (e.g. "the image", "2 of 5 planes").

    Returns
    -------
    str
    """
    return (f"{n_missing} of {n_pixels} pixels of {where} are NaN or infinite: they were "
            "treated as missing data (left out of the normalisation, predicted as "
            "background, so that no object is made of them).")


def check_numeric(dtype: np.dtype) -> None:
    """Raise a TypeError unless ``dtype`` holds numbers (booleans do not count)."""
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
        raise TypeError(f"image must hold numbers, got dtype {dtype}.")


def guess_channels(shape: tuple[int, ...]) -> bool:
    """Whether the last axis of an array of this shape holds channels (see the module).

    Parameters
    ----------
    shape : tuple of int

    Returns
    -------
    bool
        True when the array has 3 or more axes, the last one has 1 to
        :data:`MAX_CHANNELS` entries and the two before it more than
        :data:`MAX_CHANNELS` each.
    """
    return (len(shape) >= 3 and 1 <= shape[-1] <= MAX_CHANNELS
            and min(shape[-3:-1]) > MAX_CHANNELS)


def check_training_image(image: np.ndarray, what: str) -> None:
    """Check a training image: numbers, (H, W) or (H, W, C ≤ 4), no missing pixels.

    Training refuses NaN / infinite pixels instead of guessing what they hide: the user
    fills them or crops them out with the labels (prediction treats them as missing).

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (H, W, C).
    what : str
        How the messages name the image's sample.

    Raises
    ------
    TypeError
        If it does not hold numbers.
    ValueError
        For more than :data:`MAX_CHANNELS` channels, or NaN / infinite pixels (counted).
    """
    if image.ndim == 3 and not 1 <= image.shape[-1] <= MAX_CHANNELS:
        raise ValueError(f"image of {what} has {image.shape[-1]} channels (shape "
                         f"{image.shape}); expected 1 to {MAX_CHANNELS}, channels last.")
    try:
        to_gray(image[:1, :1], channels=image.ndim == 3)
    except (TypeError, ValueError) as error:
        raise type(error)(f"image of {what}: {error}") from error
    if np.issubdtype(image.dtype, np.inexact):
        n_missing = int(np.count_nonzero(~np.isfinite(image)))
        if n_missing:
            raise ValueError(
                f"image of {what} has {n_missing} NaN or infinite values: training needs "
                "finite pixels (fill them, or crop them out with the labels).")


def to_gray(image, *, channels: bool | None = None, colour: str = "mean") -> np.ndarray:
    """One float32 channel from a 2-D grayscale or colour / multichannel image.

    Colour channels are averaged (``colour="mean"``), or, with ``colour="hematoxylin"``,
    an RGB image whose channels differ gives its haematoxylin optical density
    (``skimage.color.rgb2hed``: nuclei bright on a dark background, like fluorescence); a
    grayscale image stored as RGB (equal channels) is averaged either way. A fourth
    channel of an (H, W, 4) image is alpha and dropped.

    Parameters
    ----------
    image : array-like
        (H, W), or (H, W, C) with channels last.
    channels : bool, optional
        True: the last axis of a 3-D array holds channels, any number of them. None:
        :func:`guess_channels` decides. False: only (H, W) is accepted.
    colour : {"mean", "hematoxylin"}
        How a colour image becomes one channel.

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)
        A new array (NaN / infinite pixels stay so).

    Raises
    ------
    TypeError
        If the image does not hold numbers.
    ValueError
        For other shapes, or an unknown ``colour``.
    """
    if colour not in COLOUR_RULES:
        raise ValueError(f"colour must be one of {COLOUR_RULES}, got {colour!r}.")
    array = np.asarray(image)
    check_numeric(array.dtype)
    if array.ndim == 2:
        return array.astype(np.float32)
    multichannel = guess_channels(array.shape) if channels is None else channels
    if array.ndim == 3 and multichannel and array.shape[-1] > 0:
        colours = array[..., :3] if array.shape[-1] == 4 else array
        if colour == "hematoxylin" and is_colour(colours):
            return _hematoxylin(colours)
        return np.mean(colours, axis=-1, dtype=np.float32)
    raise ValueError(
        f"expected a 2-D image: (H, W) grayscale or (H, W, C) with 1 to {MAX_CHANNELS} "
        f"channels, got shape {array.shape}."
    )


def is_colour(rgb: np.ndarray) -> bool:
    """Whether three channels hold a colour (stained) image.

    Not colour: a grayscale image stored as RGB (equal channels), and a one-channel
    image stored as an RGB composite, such as DAPI in the blue channel with red and green
    empty (at most one channel varies). Both are read as grayscale.
    """
    if rgb.shape[-1] != 3:
        return False
    if not (np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2])):
        return False
    flat = rgb.reshape(-1, 3)
    varying = np.any(flat != flat[:1], axis=0) if flat.size else np.zeros(3, bool)
    return int(np.count_nonzero(varying)) >= 2


def _hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """The haematoxylin channel of colour deconvolution (Ruifrok & Johnston), float32."""
    from skimage.color import rgb2hed

    if not np.issubdtype(rgb.dtype, np.integer):
        rgb = np.clip(rgb, 0, None)  # negative light has no optical density
    return rgb2hed(rgb)[..., 0].astype(np.float32)


def gray_plane(image, *, channels: bool, colour: str) -> np.ndarray:
    """One float32 channel by a rule decided beforehand (no test of the colours).

    Parameters
    ----------
    image : array-like
        (H, W), or (H, W, C) with ``channels``.
    channels : bool
        Whether the last axis holds channels.
    colour : {"mean", "hematoxylin"}
        "mean" as :func:`to_gray`; "hematoxylin": the haematoxylin optical density of
        the first three channels, whether they differ in this part of the plane or not
        (:attr:`PlaneStatistics.colour`, decided on the whole plane).

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)
    """
    if colour == "hematoxylin":
        return _hematoxylin(np.asarray(image)[..., :3])
    return to_gray(image, channels=channels, colour="mean")


def _missing(plane: np.ndarray) -> np.ndarray | None:
    """The mask of NaN / infinite pixels of a float32 plane, or None when there are none.

    A float64 sum is finite exactly when every pixel is (float32 values cannot overflow
    it), and needs no plane-sized mask: the mask is made only for planes with holes.
    """
    if math.isfinite(plane.sum(dtype=np.float64)):
        return None
    return ~np.isfinite(plane)


def count_missing(image, channels: bool | None = None) -> int:
    """How many pixels of ``image`` are missing data (NaN or infinite in any channel).

    The count :func:`~.predict.predict` warns about, for callers that cannot catch its
    warning (a worker thread). One pass over the image when nothing is missing.

    Parameters
    ----------
    image : array-like
        Any image, stack or time series.
    channels : bool, optional
        Whether the last axis holds channels; None: :func:`guess_channels`.

    Returns
    -------
    int
    """
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.inexact) or _missing(array) is None:
        return 0
    bad = ~np.isfinite(array)
    if guess_channels(array.shape) if channels is None else channels:
        bad = bad.any(axis=-1)
    return int(np.count_nonzero(bad))


def _finite_percentiles(work: np.ndarray, percentiles: tuple[float, ...]
                        ) -> tuple[np.ndarray | None, np.ndarray]:
    """The NaN / infinite pixels of ``work`` and the percentiles of the others.

    The one percentile computation of the package (the gray and the per-channel inputs
    use it). ``work`` is a throwaway float32 array: it is reordered in place (no copy
    when no pixel is missing), so that a plane being normalised never coexists with a
    second plane-sized copy.

    Returns
    -------
    missing : numpy.ndarray of bool, or None
        None when every pixel is finite.
    statistics : numpy.ndarray
        One value per percentile (zeros when every pixel is missing: any scale will do).
    """
    missing = _missing(work)
    values = work.reshape(-1) if missing is None else work[~missing]
    if values.size == 0:
        return missing, np.zeros(len(percentiles))
    return missing, np.percentile(values, percentiles, overwrite_input=True)


def _scale_in_place(x: np.ndarray, low: float, high: float) -> float:
    """``(x − low) / (high − low)`` in place (a scale of 1 when ``high <= low``)."""
    scale = high - low if high > low else 1.0
    x -= np.float32(low)
    x /= np.float32(scale)
    return scale


def _specs(metadata: dict | None) -> tuple[dict, dict]:
    metadata = metadata or {}
    return ({**DEFAULT_INPUT, **metadata.get("input", {})},
            {**DEFAULT_NORMALIZATION, **metadata.get("normalization", {})})


def _normalized_gray(image, percentiles, invert: bool, channels: bool | None,
                     colour: str = "mean", given: PlaneStatistics | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Gray plane normalised with the plane's own percentiles: (H, W, 1) float32.

    The percentiles reorder their input. The cheap channel mean is computed twice so that
    two plane-sized copies never coexist; the haematoxylin channel (a colour
    deconvolution, whose own temporaries are several planes) is computed once and copied.
    ``given``: the whole plane's statistics instead of this array's own.
    """
    statistics = (*percentiles, 50.0)
    if given is not None:
        x = gray_plane(image, channels=bool(channels), colour=given.colour)
        missing, (low, high, median) = _missing(x), given.values
    elif colour == "hematoxylin":
        x = to_gray(image, channels=channels, colour=colour)
        missing, (low, high, median) = _finite_percentiles(x.copy(), statistics)
    else:
        missing, (low, high, median) = _finite_percentiles(
            to_gray(image, channels=channels, colour=colour), statistics)
        x = to_gray(image, channels=channels, colour=colour)  # again: the first was reordered
    scale = _scale_in_place(x, low, high)
    if invert and (median - low) / scale > 0.5:
        np.subtract(np.float32(1.0), x, out=x)
    if missing is not None:
        x[missing] = MISSING_INPUT_LEVEL
    return x[..., np.newaxis], missing


def _normalized_channels(image, percentiles, n_channels: int,
                         given: PlaneStatistics | None = None
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Each channel normalised with its own percentiles: (H, W, n_channels) float32.

    ``given``: the whole plane's statistics (low, high per channel) instead of its own.
    """
    array = np.asarray(image)
    check_numeric(array.dtype)
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or array.shape[-1] != n_channels:
        raise ValueError(
            f"the model takes {n_channels} channel(s) per pixel, got an image plane of shape "
            f"{np.shape(image)}; pass (H, W, {n_channels}) planes with rgb=True."
        )
    x = array.astype(np.float32)
    missing_any = np.zeros(array.shape[:2], bool)
    for c in range(n_channels):
        if given is None:
            missing, (low, high) = _finite_percentiles(x[..., c].copy(), percentiles)
        else:
            missing, (low, high) = _missing(x[..., c]), given.values[2 * c:2 * c + 2]
        _scale_in_place(x[..., c], low, high)
        if missing is not None:
            missing_any |= missing
    if not missing_any.any():
        return x, None
    x[missing_any] = MISSING_INPUT_LEVEL
    return x, missing_any


def prepare_plane(image, metadata: dict | None = None, *, channels: bool | None = None,
                  statistics: PlaneStatistics | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`prepare_image` and the mask of its missing pixels, without a warning.

    ``statistics``: normalise with these (a whole plane's, of which ``image`` is a part:
    :mod:`.chunked.lazy_stats`) instead of the image's own; None: the image's own.

    Returns
    -------
    x : numpy.ndarray of float32, shape (H, W, n_channels)
        See :func:`prepare_image`.
    missing : numpy.ndarray of bool, shape (H, W), or None
        The pixels that were NaN or infinite (in any channel); None when there are none.
    """
    input_spec, normalization = _specs(metadata)
    percentiles = tuple(normalization["percentiles"])
    if input_spec["mode"] == "gray":
        return _normalized_gray(image, percentiles, bool(input_spec.get(
            "invert_bright_background")), channels, input_spec.get("colour", "mean"),
            statistics)
    if input_spec["mode"] == "channels":
        return _normalized_channels(image, percentiles, int(input_spec["n_channels"]),
                                    statistics)
    raise ValueError(
        f"unsupported input mode {input_spec['mode']!r}; expected 'gray' or 'channels'.")


def prepare_image(image, metadata: dict | None = None, *, channels: bool | None = None
                  ) -> np.ndarray:
    """The network input for one 2-D plane: channels, normalisation, float32.

    Parameters
    ----------
    image : array-like
        (H, W) or (H, W, C) (channels last).
    metadata : dict, optional
        A model's metadata; its ``"input"`` and ``"normalization"`` entries are used
        (defaults: :data:`DEFAULT_INPUT`, :data:`DEFAULT_NORMALIZATION`).
    channels : bool, optional
        Whether the last axis of a 3-D ``image`` holds channels (see :func:`to_gray`);
        None: :func:`guess_channels` decides.

    Returns
    -------
    numpy.ndarray of float32, shape (H, W, n_channels)
        Input mode "gray" (one channel): colour channels averaged, the plane's
        percentiles mapped to 0 and 1, and inverted (``1 − x``) when the background is
        bright (median > 0.5) and the model asks for it, so that brightfield / H&E nuclei
        look like fluorescence. Mode "channels": each channel normalised on its own.
        NaN / infinite pixels are left out of the percentiles and set to
        :data:`MISSING_INPUT_LEVEL`, with a :class:`MissingDataWarning`.

    Raises
    ------
    ValueError
        For an unknown input mode or an image of the wrong shape / channel count.
    TypeError
        If the image does not hold numbers.
    """
    x, missing = prepare_plane(image, metadata, channels=channels)
    if missing is not None:
        warnings.warn(missing_data_message(int(missing.sum()), missing.size),
                      MissingDataWarning, stacklevel=2)
    return x
