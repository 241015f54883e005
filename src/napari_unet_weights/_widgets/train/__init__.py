"""The train widget (:mod:`.widget`) and its helpers."""

from .widget import TrainWidget

__all__ = ["TrainWidget"]
