"""Nucleus size: the median object diameter, the resize factor, resizing planes (numpy only).

Like cellpose's ``diameter``: a model file records the median diameter of the nuclei of
its training labels (``metadata["object_diameter"]``, written by :func:`.training.train.train`);
given the diameter of an image's nuclei, the image is resized by

    factor = model diameter / image diameter

so that its nuclei have the size the network learnt, segmented there (post-processing
included: ``min_size`` and ``expand`` are in the model's pixels) and the labels are
resized back to the image's exact shape (:mod:`.rescale` runs it).

- :func:`object_diameter`: the median over the objects of the equivalent diameter
  ``2·sqrt(area/π)`` (the diameter of a disc of the same area, cellpose's definition).
- :func:`model_diameter`: what a model file records; :func:`diameter_record`: the record.
- :func:`check_diameter`, :func:`scale_factor`: the ``diameter`` argument and its limits
  (factors from :data:`MIN_FACTOR` to :data:`MAX_FACTOR`).
- :func:`resized_shape`, :func:`resize_plane`, :func:`restore_labels`,
  :func:`restore_probabilities`: one plane at another scale and back (images linear and
  anti-aliased when shrinking, labels nearest neighbour, probabilities linear), always to
  exactly the original shape.
- :class:`Sizing`: what a run did (the diameter asked for, estimated, used; the factor).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_number, validate_labels
from .training.augment import resize_image, resize_labels

__all__ = [
    "AUTO",
    "AUTO_TOLERANCE",
    "MAX_FACTOR",
    "MIN_FACTOR",
    "NO_DIAMETER",
    "Sizing",
    "auto_sizing",
    "check_diameter",
    "diameter_record",
    "equivalent_diameters",
    "fixed_sizing",
    "model_diameter",
    "object_diameter",
    "resize_plane",
    "resized_shape",
    "restore_labels",
    "restore_probabilities",
    "scale_factor",
]

#: The ``diameter`` that asks for an estimate from a first pass at the model's scale.
AUTO = "auto"
#: The resize factors allowed (model diameter / image diameter): beyond them the network
#: sees nuclei of a few pixels, or images 100× larger than given.
MIN_FACTOR, MAX_FACTOR = 0.1, 10.0
#: ``diameter="auto"`` resizes only when the estimate differs from the model's diameter
#: by more than this share (either way: a ratio above 1.1 or below 1 / 1.1).
AUTO_TOLERANCE = 0.1
#: Said when a model file does not record the size of its nuclei.
NO_DIAMETER = (
    "does not record the size of the nuclei it was trained on (metadata "
    "'object_diameter', written by training since this option exists): use "
    "diameter=None (the image as it is), or record the size of its training labels: "
    "record_metadata(model_file, object_diameter=diameter_record(training_labels)) "
    "(napari_unet_weights.unet.model_file and .diameter; scripts/record_diameter.py in "
    "the source tree)"
)


# -- measuring ------------------------------------------------------------------------
def equivalent_diameters(labels) -> np.ndarray:
    """The equivalent diameter ``2·sqrt(area/π)`` of every object, in pixels.

    Parameters
    ----------
    labels : array-like of int
        (H, W) instance labels (0 = background), or a stack (..., H, W): the areas are
        counted plane by plane, so an id found in several planes is one object per plane.

    Returns
    -------
    numpy.ndarray of float64
        One diameter per (plane, id), in no particular order; empty without objects.

    Raises
    ------
    TypeError, ValueError
        For labels that are not integer instance labels of at least 2 dimensions.
    """
    array = validate_labels(labels)
    if array.ndim < 2:
        raise ValueError(f"labels must be (H, W) or (..., H, W), got shape {array.shape}.")
    if array.size == 0:
        return np.zeros(0)
    planes = array.reshape(-1, *array.shape[-2:])
    areas = []
    for plane in planes:
        flat = plane.ravel()
        top = int(flat.max()) if flat.size else 0
        if top <= flat.size:  # dense ids: one bincount
            counts = np.bincount(flat, minlength=top + 1)[1:]
            areas.append(counts[counts > 0])
        else:  # a few large ids: np.unique, not a huge bincount
            ids, counts = np.unique(flat, return_counts=True)
            areas.append(counts[ids > 0])
    area = np.concatenate(areas) if areas else np.zeros(0)
    return 2.0 * np.sqrt(area.astype(np.float64) / math.pi)


def object_diameter(labels) -> float:
    """The median equivalent diameter of the objects of instance labels, in pixels.

    The equivalent diameter of an object of ``area`` pixels is ``2·sqrt(area/π)``, the
    diameter of a disc of that area (cellpose's definition of a cell's diameter).

    Parameters
    ----------
    labels : array-like of int
        (H, W) instance labels (0 = background), or a stack (..., H, W) (objects per
        plane, see :func:`equivalent_diameters`).

    Returns
    -------
    float
        The median over the objects; NaN when there are none.

    Raises
    ------
    TypeError, ValueError
        For labels that are not integer instance labels of at least 2 dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((20, 20), np.uint8)
    >>> labels[2:12, 2:12] = 1  # 100 pixels: a disc of that area is 11.28 px across
    >>> round(object_diameter(labels), 2)
    11.28
    """
    diameters = equivalent_diameters(labels)
    return float(np.median(diameters)) if diameters.size else math.nan


def diameter_record(labels: Iterable, of: str = "training labels") -> dict:
    """The ``object_diameter`` entry of a model file's metadata, measured on ``labels``.

    Parameters
    ----------
    labels : iterable of array-like
        Instance label images (each (H, W)); the median is over all their objects.
    of : str
        What they are, recorded with the figure.

    Returns
    -------
    dict
        ``{"median": float or None, "n_objects": int, "of": of, "definition": ...}``;
        ``median`` is None when there is no object.
    """
    diameters = [equivalent_diameters(item) for item in labels]
    pooled = np.concatenate(diameters) if diameters else np.zeros(0)
    return {
        "median": round(float(np.median(pooled)), 3) if pooled.size else None,
        "n_objects": int(pooled.size),
        "of": of,
        "definition": "median over the objects of 2*sqrt(area/pi), pixels",
    }


def model_diameter(metadata: Mapping[str, Any], what: str = "the model") -> float:
    """The median nucleus diameter a model file records (pixels).

    Parameters
    ----------
    metadata : mapping
        The model's metadata (:func:`.model_file.read_metadata`).
    what : str
        How to call the model in the error message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the metadata has no usable ``object_diameter`` record (older model files):
        the message says so and what to do (:data:`NO_DIAMETER`).
    """
    record = metadata.get("object_diameter")
    median = record.get("median") if isinstance(record, Mapping) else None
    if (isinstance(median, bool) or not isinstance(median, numbers.Real)
            or not math.isfinite(median) or median <= 0):
        raise ValueError(f"{what} {NO_DIAMETER}.")
    return float(median)


# -- the diameter argument ------------------------------------------------------------
def check_diameter(diameter: Any) -> float | str | None:
    """The ``diameter`` argument of prediction, checked: None, ``"auto"`` or a number > 0.

    Raises
    ------
    TypeError
        For other types (a numeric string too: pass the number).
    ValueError
        For a number that is not finite and > 0, or a string other than ``"auto"``.
    """
    if diameter is None:
        return None
    if isinstance(diameter, str):
        if diameter.strip().lower() == AUTO:
            return AUTO
        raise ValueError(f"diameter must be a number of pixels > 0, 'auto' or None, got "
                         f"{diameter!r}.")
    return check_number(diameter, "diameter", minimum=0.0, allow_minimum=False)


def allowed_range(model: float) -> str:
    """The diameters a model of median diameter ``model`` accepts, in words."""
    return (f"{model / MAX_FACTOR:.3g} to {model / MIN_FACTOR:.3g} px (resize factors "
            f"{MIN_FACTOR:g} to {MAX_FACTOR:g} for the model's {model:.3g} px)")


def scale_factor(model: float, diameter: float) -> float:
    """The resize factor ``model / diameter`` that gives an image's nuclei the model's size.

    Parameters
    ----------
    model : float
        The model's median nucleus diameter (pixels, > 0).
    diameter : float
        The image's (pixels, > 0).

    Returns
    -------
    float
        Below 1: the image is shrunk (its nuclei are larger than the model's).

    Raises
    ------
    ValueError
        If a diameter is not > 0, or the factor is outside [:data:`MIN_FACTOR`,
        :data:`MAX_FACTOR`] (the message gives the diameters allowed).
    """
    model = check_number(model, "the model's diameter", minimum=0.0, allow_minimum=False)
    diameter = check_number(diameter, "diameter", minimum=0.0, allow_minimum=False)
    factor = model / diameter
    if not MIN_FACTOR <= factor <= MAX_FACTOR:
        raise ValueError(f"diameter {diameter:g} px is out of range: use "
                         f"{allowed_range(model)}.")
    return factor


# -- what a run did -------------------------------------------------------------------
@dataclass(frozen=True)
class Sizing:
    """The nucleus size of one prediction.

    Attributes
    ----------
    requested : float, "auto" or None
        The ``diameter`` argument.
    model_diameter : float or None
        The model's recorded median diameter (None when ``requested`` is None).
    diameter : float or None
        The diameter the image's nuclei were taken to have (pixels); None: the image was
        not resized (as trained, or auto kept the first pass).
    factor : float
        The resize factor applied (1.0: none).
    estimate : float or None
        ``"auto"``: the median diameter found by the first pass (NaN: nothing found).
    clipped : bool
        ``"auto"``: the estimate was beyond the allowed factors, which were used instead.
    """

    requested: float | str | None
    model_diameter: float | None = None
    diameter: float | None = None
    factor: float = 1.0
    estimate: float | None = None
    clipped: bool = False

    @property
    def resized(self) -> bool:
        """Whether the image was resized."""
        return self.factor != 1.0

    def describe(self) -> str:
        """One line for a status bar or a log: what diameter was used, and why."""
        if self.requested is None:
            return "diameter: as trained (not resized)"
        model = f"the model's {self.model_diameter:.1f} px"
        if self.requested == AUTO:
            if self.estimate is None or math.isnan(self.estimate):
                return "diameter auto: no nuclei found at the model's scale; not resized"
            if not self.resized:
                return (f"diameter auto: {self.estimate:.1f} px, within "
                        f"{AUTO_TOLERANCE:.0%} of {model}; not resized")
            limit = " (the factor's limit)" if self.clipped else ""
            return (f"diameter auto: {self.estimate:.1f} px; resized ×{self.factor:.3g}"
                    f"{limit} to {model}")
        if not self.resized:
            return f"diameter {self.diameter:g} px: {model}; not resized"
        return f"diameter {self.diameter:g} px: resized ×{self.factor:.3g} to {model}"


def fixed_sizing(metadata: Mapping[str, Any], diameter: float) -> Sizing:
    """The :class:`Sizing` of a given diameter (checked against the model's range)."""
    model = model_diameter(metadata)
    return Sizing(diameter, model, diameter, scale_factor(model, diameter))


def auto_sizing(model: float, estimate: float) -> Sizing:
    """The :class:`Sizing` of ``diameter="auto"`` once the first pass found ``estimate``.

    Not resized when nothing was found (NaN) or the estimate is within
    :data:`AUTO_TOLERANCE` of ``model``; otherwise resized by ``model / estimate``, held
    to [:data:`MIN_FACTOR`, :data:`MAX_FACTOR`].
    """
    if math.isnan(estimate) or max(estimate / model, model / estimate) <= 1 + AUTO_TOLERANCE:
        return Sizing(AUTO, model, None, 1.0, estimate)
    factor = min(max(model / estimate, MIN_FACTOR), MAX_FACTOR)
    clipped = factor != model / estimate
    return Sizing(AUTO, model, model / factor, factor, estimate, clipped)


# -- one plane at another scale and back ------------------------------------------------
def resized_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """``shape`` × ``factor``, rounded, at least 1 pixel per side."""
    return tuple(max(1, round(n * factor)) for n in shape)  # type: ignore[return-value]


def resize_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An image plane (H, W) or (H, W, C) resized to ``shape``, float32.

    Linear, anti-aliased when shrinking (:func:`.training.augment.resize_image`); channels alike.
    Integer planes are scaled to their dtype's range first (``uint8`` 255 → 1.0, as
    scikit-image reads them) so that the colour rules of :mod:`.preprocess` see the
    same image. NaN / infinite pixels (missing data) stay missing where the nearest
    original pixel was, without spreading into their neighbours.
    """
    array = np.asarray(plane)
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array)
    if not bad.any():
        return resize_image(array, shape)
    filled = np.where(bad, np.float32(np.median(array[~bad])) if (~bad).any() else 0, array)
    resized = resize_image(filled.astype(np.float32), shape)
    resized[resize_labels(bad, shape)] = np.nan
    return resized


def restore_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Labels of a resized plane back to ``shape`` (nearest neighbour), ids renumbered 1..N.

    An object smaller than a pixel of the original scale can vanish; the others keep
    their order.
    """
    restored = resize_labels(labels, shape)
    present = np.zeros(int(labels.max()) + 1 if labels.size else 1, bool)
    present[restored.ravel()] = True
    present[0] = False
    if present.sum() == present.size - 1:
        return restored
    lookup = np.zeros(present.size, labels.dtype)
    lookup[present] = np.arange(1, int(present.sum()) + 1, dtype=labels.dtype)
    return lookup[restored]


def restore_probabilities(probabilities: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Class probabilities (h, w, K) of a resized plane back to ``shape``: linear (anti-
    aliased when shrinking), float32; they still sum to 1 over K."""
    return resize_image(probabilities, shape)
