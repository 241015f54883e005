"""Input checks shared by the public functions: labels arrays and numeric parameters.

Each check returns the value in the form the caller computes with, or raises a
``TypeError`` / ``ValueError`` whose message names the parameter and says what is
allowed.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_number", "validate_labels"]


def validate_labels(labels, *, name: str = "labels") -> np.ndarray:
    """Return ``labels`` as an integer numpy array, or raise a clear error.

    Parameters
    ----------
    labels : array-like
        Instance labels: integers, 0 for background, other values are object ids.
    name : str
        How to call the array in error messages.

    Returns
    -------
    numpy.ndarray
        The same values as an integer array (no copy when possible).

    Raises
    ------
    TypeError
        For boolean or floating-point arrays.
    ValueError
        For negative labels or 0-d input.
    """
    array = np.asarray(labels)
    if array.dtype == bool:
        raise TypeError(
            f"{name} is a boolean mask, not instance labels: give each object its own "
            "integer id, e.g. with skimage.measure.label(mask)."
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integers (0 = background, 1..N = objects), got dtype "
            f"{array.dtype}. If the values are whole numbers, convert them with "
            ".astype(np.int32); if this is an intensity image, pick the labels instead."
        )
    if array.ndim == 0:
        raise ValueError(f"{name} must be an image (at least 1-D), got a scalar.")
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
        raise ValueError(
            f"{name} contains negative values (min {array.min()}): use 0 for background "
            "and positive ids for objects."
        )
    return array


def check_number(value, name: str, *, minimum: float = 0.0, allow_minimum: bool = True) -> float:
    """Return ``value`` as a float if it is a finite real number above ``minimum``.

    Parameters
    ----------
    value : int, float or numpy number
        The value to check; booleans, strings and arrays are refused.
    name : str
        The parameter's name, for the error message.
    minimum : float
        The lower bound.
    allow_minimum : bool
        Whether ``minimum`` itself is allowed (``>=``) or not (``>``).

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (e.g. the string ``"10"`` or ``True``).
    ValueError
        If it is NaN, infinite or below the bound.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number (int or float), got {type(value).__name__} {value!r}."
        )
    number = float(value)
    too_small = number < minimum if allow_minimum else number <= minimum
    if not math.isfinite(number) or too_small:
        bound = ">=" if allow_minimum else ">"
        raise ValueError(f"{name} must be a finite number {bound} {minimum:g}, got {value!r}.")
    return number
