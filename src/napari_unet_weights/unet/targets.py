"""Training targets and per-pixel loss weights from instance labels (numpy only).

Two target types:

- **2 classes** (background 0 / object 1), as in the seed blog and Falk et al. 2019:
  touching objects are separated by a background gap of one pixel, so that the network
  must learn the separation and the weight map has background pixels to weight there.
- **3 classes** (background 0 / interior 1 / boundary 2): the inner boundary of each
  object (``find_boundaries(mode="inner")``) is a class of its own, so touching objects
  are separated by their boundary class.

The weights are :func:`napari_unet_weights.weights.exact.weight_map` (U-Net paper definition,
``border="background"``, balanced class weights) of the *separated* labels for both
target types: the border term then sits on the gap pixels between touching objects (and
on the background between close ones). For the 3-class target the gap pixels are
boundary pixels of the object that gave them up, so the weight map emphasises exactly the
pixels that separate objects, and the two target types are weighted by the same map (a
fair ablation).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from ..weights.exact import validate_labels, weight_map

__all__ = [
    "CLASS_NAMES",
    "separate_touching",
    "targets",
    "three_class_target",
    "training_weights",
    "two_class_target",
]

#: Class names by number of classes, in channel order.
CLASS_NAMES = {
    2: ("background", "object"),
    3: ("background", "interior", "boundary"),
}


def _check_n_classes(n_classes: int) -> int:
    if n_classes not in CLASS_NAMES:
        raise ValueError(f"n_classes must be 2 or 3, got {n_classes!r}.")
    return int(n_classes)


def separate_touching(labels) -> np.ndarray:
    """Cut a one-pixel background gap between touching objects.

    A pixel of object ``a`` becomes background when one of its neighbours in the full
    (8- in 2-D, 26- in 3-D) neighbourhood belongs to an object ``b > a``: of two touching
    objects the one with the **smaller id gives up its contact pixels**, the larger keeps
    its shape. The result is deterministic, the gap is exactly one pixel wide, and no two
    different objects remain neighbours, even diagonally.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.

    Returns
    -------
    numpy.ndarray
        A copy of ``labels`` with the contact pixels set to 0.
    """
    labels = validate_labels(labels)
    largest_neighbour = ndi.maximum_filter(labels, size=3, mode="constant", cval=0)
    separated = labels.copy()
    separated[(labels > 0) & (largest_neighbour > labels)] = 0
    return separated


def two_class_target(labels) -> tuple[np.ndarray, np.ndarray]:
    """Background 0 / object 1 target with touching objects separated by a 1-px gap.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background; touching objects are separated here.

    Returns
    -------
    target : numpy.ndarray of uint8
        1 where ``separated_labels > 0``, else 0.
    separated_labels : numpy.ndarray
        The labels after :func:`separate_touching` (the smaller id of two touching
        objects gives up its contact pixels).

    Examples
    --------
    >>> labels = np.zeros((3, 6), dtype=np.uint8)
    >>> labels[:, :3], labels[:, 3:] = 1, 2
    >>> two_class_target(labels)[0]
    array([[1, 1, 0, 1, 1, 1],
           [1, 1, 0, 1, 1, 1],
           [1, 1, 0, 1, 1, 1]], dtype=uint8)
    """
    separated = separate_touching(labels)
    return (separated > 0).astype(np.uint8), separated


def three_class_target(labels) -> np.ndarray:
    """Background 0 / interior 1 / boundary 2 target.

    The boundary is each object's inner boundary (``find_boundaries(mode="inner")``):
    its pixels that touch background or another object, so touching objects are
    separated by two boundary pixels (one of each).

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background. Touching objects need no gap: each keeps all its
        pixels, and its boundary class separates it from the other.

    Returns
    -------
    numpy.ndarray of uint8
        The class of each pixel.
    """
    labels = validate_labels(labels)
    target = (labels > 0).astype(np.uint8)
    target[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return target


def training_weights(labels, n_classes: int = 3, w0: float = 10.0, sigma: float = 5.0,
                     use_weights: bool = True, class_weights: str = "balanced") -> np.ndarray:
    """Per-pixel loss weights for one training sample.

    Parameters
    ----------
    labels : array-like of int
        Instance labels (not separated), 0 = background.
    n_classes : {2, 3}
        The target type (see the module docstring; both use the same weights).
    w0, sigma : float
        Border term of :func:`~napari_unet_weights.weights.exact.weight_map`.
    use_weights : bool
        False gives all ones: plain (unweighted) cross-entropy.
    class_weights : {"balanced", "none"}
        The class term w_c (see :func:`~napari_unet_weights.weights.exact.weight_map`).

    Returns
    -------
    numpy.ndarray of float32
        The weights, with the shape of ``labels``.
    """
    _check_n_classes(n_classes)
    labels = validate_labels(labels)
    if not use_weights:
        return np.ones(labels.shape, dtype=np.float32)
    return weight_map(separate_touching(labels), w0, sigma,
                      class_weights=class_weights).astype(np.float32, copy=False)


def targets(labels, n_classes: int = 3, w0: float = 10.0, sigma: float = 5.0,
            use_weights: bool = True, class_weights: str = "balanced"
            ) -> tuple[np.ndarray, np.ndarray]:
    """The target classes and loss weights of one sample, as used in training.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.
    n_classes : {2, 3}
        2: :func:`two_class_target`, 3: :func:`three_class_target`.
    w0, sigma, use_weights, class_weights
        See :func:`training_weights`.

    Returns
    -------
    target : numpy.ndarray of uint8
    weights : numpy.ndarray of float32
    """
    n_classes = _check_n_classes(n_classes)
    target = two_class_target(labels)[0] if n_classes == 2 else three_class_target(labels)
    return target, training_weights(labels, n_classes, w0, sigma, use_weights, class_weights)
