"""The check_labels widget (:mod:`.widget`) and its helpers."""

from .widget import CheckLabelsWidget

__all__ = ["CheckLabelsWidget"]
