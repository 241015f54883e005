"""Seeded model building that leaves the caller's random generators as they were.

Keras gives an initializer or a dropout layer without an explicit seed one drawn from
Python's global :mod:`random` when the layer is made. :func:`python_random_seeded` seeds
that generator just while a model is built and restores the caller's state afterwards,
so that the initial weights depend on the seed only, and neither Python's, NumPy's nor
TensorFlow's global generators are changed for the user's session. Everything else in
training draws from local generators (``np.random.default_rng``) or Keras' own seeded
ones.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

__all__ = ["python_random_seeded"]


@contextlib.contextmanager
def python_random_seeded(seed: int) -> Iterator[None]:
    """Python's global :mod:`random` seeded with ``seed`` inside the block, restored after.

    Parameters
    ----------
    seed : int

    Yields
    ------
    None
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)
