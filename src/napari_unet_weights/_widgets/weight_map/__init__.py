"""The weight_map widget (:mod:`.widget`) and its helpers."""

from .widget import WeightMapWidget

__all__ = ["WeightMapWidget"]
