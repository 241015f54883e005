"""Bootstrap intervals of a mean over images (percentile bootstrap, fixed seed).

One resampling rule for every interval of the model QA: ``n_boot`` resamples of the
values (with replacement, each as many as the values), drawn at once with
``numpy.random.default_rng(seed).integers(0, n, size=(n_boot, n))``; the interval is
the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the resampled means
(numpy's default, linear interpolation). The same seed gives the same interval, and
paired differences (model B − model A per image) are resampled the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_N_BOOT", "DEFAULT_SEED", "Interval", "bootstrap_mean"]

#: Resamples per interval.
DEFAULT_N_BOOT = 2000
#: The seed of every interval unless another is given.
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap interval.

    Attributes
    ----------
    mean : float
        The mean of the values (NaN without values).
    low, high : float
        The interval's bounds (NaN without values; equal to the mean for one value).
    level : float
        The interval's coverage (0.95: a 95 % interval).
    n : int
        Number of values.
    """

    mean: float
    low: float
    high: float
    level: float
    n: int


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, n_boot: int = DEFAULT_N_BOOT,
                   seed: int = DEFAULT_SEED, level: float = 0.95) -> Interval:
    """The mean of ``values`` with a percentile-bootstrap interval.

    Parameters
    ----------
    values : sequence of float
        One value per image (NaN values are left out).
    n_boot : int
        Number of resamples (at least 1).
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    Interval

    Raises
    ------
    ValueError
        For ``n_boot < 1`` or ``level`` outside (0, 1).
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    n = int(array.size)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level, 0)
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, n, size=(int(n_boot), n))].mean(axis=1)
    low, high = np.percentile(means, (100 * (1 - level) / 2, 100 * (1 + level) / 2))
    return Interval(float(array.mean()), float(low), float(high), level, n)
