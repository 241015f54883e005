"""The segment widget (:mod:`.widget`) and its helpers."""

from .widget import SegmentWidget

__all__ = ["SegmentWidget"]
