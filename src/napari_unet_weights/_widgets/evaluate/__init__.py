"""The evaluate widget (:mod:`.widget`) and its helpers."""

from .widget import EvaluateWidget

__all__ = ["EvaluateWidget"]
