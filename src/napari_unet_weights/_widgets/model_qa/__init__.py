"""The model QA widget (:mod:`.widget`) and its helpers."""

from .widget import ModelQAWidget

__all__ = ["ModelQAWidget"]
