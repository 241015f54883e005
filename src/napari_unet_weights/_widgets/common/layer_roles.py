"""Which part a layer plays: the plugin's own outputs, likely ground truth, likely predictions.

The widgets mark the layers they make with a metadata key (one per widget, all listed
here) and keep them out of their input pickers. Where a widget has to guess which of
several Labels layers is the ground truth and which the prediction (Evaluate's empty
pickers, Segment's hand-off to Evaluate), layer names decide first, then the order in
the layer list: annotations are usually loaded first, predictions added on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from napari.layers import Layer

__all__ = [
    "CHECK_LABELS_KEY",
    "EVALUATE_VIEW_KEY",
    "GT_HINTS",
    "OUTPUT_KEYS",
    "PRED_HINTS",
    "SEGMENT_OUTPUT_KEY",
    "TRAIN_PREVIEW_KEY",
    "is_plugin_output",
    "likely_ground_truth",
    "likely_prediction",
    "named_like",
    "same_shape",
]

#: Segment's probability and labels layers: ``{"source": image name, "output": kind}``.
SEGMENT_OUTPUT_KEY = "napari_unet_weights_segment"
#: Evaluate's IoU view layers: ``(role, id of the prediction layer)``.
EVALUATE_VIEW_KEY = "napari_unet_weights_evaluate_view"
#: Train U-Net's weight-map preview layer.
TRAIN_PREVIEW_KEY = "napari_unet_weights_train_preview"
#: Check labels' problem highlight layer: the id of the labels layer it shows.
CHECK_LABELS_KEY = "napari_unet_weights_check_labels"
OUTPUT_KEYS = (SEGMENT_OUTPUT_KEY, EVALUATE_VIEW_KEY, TRAIN_PREVIEW_KEY, CHECK_LABELS_KEY)

#: Parts of layer names (lower case) that suggest annotations.
GT_HINTS = ("gt", "truth", "ground", "annot", "manual", "label", "mask")
#: Parts of layer names (lower case) that suggest a segmentation result.
PRED_HINTS = ("pred", "seg", "result", "output", "unet", "stardist", "cellpose")

L = TypeVar("L", bound="Layer")


def is_plugin_output(layer: Layer) -> bool:
    """Whether ``layer`` was made by one of this plugin's widgets (a result or a view)."""
    return any(key in layer.metadata for key in OUTPUT_KEYS)


def named_like(hints: Sequence[str], layers: Sequence[L]) -> list[L]:
    """The layers whose name contains one of ``hints`` (case-insensitive), in order."""
    return [layer for layer in layers if any(hint in layer.name.lower() for hint in hints)]


def same_shape(layer: Layer, layers: Sequence[L]) -> list[L]:
    """The other layers of ``layers`` whose data have the shape of ``layer``'s."""
    shape = tuple(layer.data.shape)
    return [other for other in layers if other is not layer and tuple(other.data.shape) == shape]


def likely_ground_truth(candidates: Sequence[L]) -> L | None:
    """The lowest candidate named like annotations, else the lowest; None if none."""
    return next(iter(named_like(GT_HINTS, candidates) or candidates), None)


def likely_prediction(candidates: Sequence[L]) -> L | None:
    """The topmost candidate named like a result, else the topmost; None if none."""
    return next(iter((named_like(PRED_HINTS, candidates) or list(candidates))[::-1]), None)
