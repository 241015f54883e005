"""The mAP of IoU: matching objects, per-image and dataset scores (:mod:`.matching`), on the
contingency table of two labelings (:mod:`._contingency`).
"""

from .._moved import forward
from . import matching
from .matching import *  # noqa: F403

__all__ = list(dict.fromkeys([*matching.__all__]))
__getattr__ = forward(matching)  # the other names of the module it was
