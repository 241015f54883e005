"""Snapshots of (image, corrected labels) for the training set: the whole image, the view, a box.

After a segmentation the user corrects the predicted Labels layer with napari's paint,
fill and erase tools, then adds it to the training set: :func:`take_snapshot` copies the
image and the labels, whole or cropped to a :data:`REGIONS` box, the part of the image
the canvas shows (:func:`view_box`) or a rectangle drawn in a Shapes layer
(:func:`rectangle_box`). The copies do not change when the layers are edited later. Each
problem (labels of another shape, an empty crop, no object) raises
:class:`~.train_data.BadInput` with a message for the user.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Labels, Shapes

from napari_unet_weights._widgets.common.train_data import BadInput, spatial_shape

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Layer

__all__ = ["REGIONS", "ROLES", "Snapshot", "check_side", "crop_box", "rectangle_box",
           "take_snapshot", "view_box"]

#: What "Add to training set" copies: the whole image, the part shown, a drawn rectangle.
REGIONS = ("whole image", "current view", "rectangle")
#: What a snapshot is used for in training.
ROLES = ("train", "validation")

Box = tuple[slice, slice]


@dataclass(eq=False)
class Snapshot:
    """One (image, labels) pair of the training set: copies, never views of a layer.

    Attributes
    ----------
    name : str
        E.g. ``"blobs [120:376, 40:296]"`` (the image's name, and the crop's rows and columns).
    image : numpy.ndarray
        (H, W) or (H, W, C).
    labels : numpy.ndarray
        (H, W) instance labels.
    source : napari.layers.Image or None
        The image layer it was taken from (to segment again with the new model).
    role : str
        ``"train"`` or ``"validation"``.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    source: Layer | None = None
    role: str = "train"

    @property
    def shape(self) -> tuple[int, int]:
        """Its size in pixels, (rows, columns)."""
        return tuple(int(n) for n in self.labels.shape[:2])


# -- boxes in an image's pixels -----------------------------------------------------------------
def _pixel_box(image: Image, world_corners: Sequence[Sequence[float]]) -> Box:
    """The image's pixels inside the bounding box of points given in world coordinates.

    A corner at data coordinate ``c`` is the edge between pixels ``round(c) - 1`` and
    ``round(c)``; the box is clipped to the image (and may be empty).
    """
    data = np.array([image.world_to_data(point)[-2:] for point in world_corners])
    low, high = data.min(axis=0), data.max(axis=0)
    shape = spatial_shape(image)[-2:]
    edges = [(min(max(math.floor(lo + 0.5), 0), n), min(max(math.floor(hi + 0.5), 0), n))
             for lo, hi, n in zip(low, high, shape)]
    return tuple(slice(start, max(start, stop)) for start, stop in edges)


def view_box(viewer: napari.viewer.Viewer, image: Image) -> Box:
    """The pixels of ``image`` the canvas shows (at the camera's centre and zoom)."""
    center = np.asarray(viewer.scene.camera.center[-2:], dtype=float)
    half = np.asarray(viewer.canvas.size, dtype=float) / (2.0 * viewer.scene.camera.zoom)
    return _pixel_box(image, _world_points(viewer, [center - half, center + half,
                                                    center + half * [1, -1],
                                                    center + half * [-1, 1]]))


def _world_points(viewer: napari.viewer.Viewer, corners) -> list[list[float]]:
    """Full world points at the viewer's current position with the displayed axes set."""
    points = []
    for corner in corners:
        point = list(viewer.dims.point)
        for axis, value in zip(viewer.dims.displayed[-2:], corner):
            point[axis] = float(value)
        points.append(point)
    return points


def _chosen_rectangle(shapes: Shapes) -> int | None:
    """The index of the selected rectangle of ``shapes`` (the last one), else the last one."""
    rectangles = [i for i, kind in enumerate(shapes.shape_type) if kind == "rectangle"]
    selected = [i for i in rectangles if i in shapes.selected_data]
    return (selected or rectangles or [None])[-1]


def rectangle_box(viewer: napari.viewer.Viewer, image: Image) -> Box:
    """The pixels of ``image`` inside a rectangle drawn in a Shapes layer.

    The rectangle is the selected one (else the last one drawn) of the active Shapes
    layer, else of the top-most Shapes layer that has a rectangle.

    Raises
    ------
    BadInput
        If no Shapes layer holds a rectangle.
    """
    active = viewer.layers.selection.active
    candidates = [active] if isinstance(active, Shapes) else []
    candidates += [layer for layer in reversed(viewer.layers) if isinstance(layer, Shapes)]
    for shapes in candidates:
        index = _chosen_rectangle(shapes)
        if index is not None:
            vertices = np.asarray(shapes.data[index])
            return _pixel_box(image, [shapes.data_to_world(vertex) for vertex in vertices])
    raise BadInput("Draw a rectangle in a Shapes layer first (layer list → new shapes "
                   "layer, then the rectangle tool), or add the whole image or the view.")


def crop_box(viewer: napari.viewer.Viewer, image: Image, region: str) -> Box:
    """The rows and columns of ``image`` that ``region`` (one of :data:`REGIONS`) covers."""
    if region == REGIONS[0]:
        return tuple(slice(0, n) for n in spatial_shape(image)[-2:])
    if region == REGIONS[1]:
        return view_box(viewer, image)
    if region == REGIONS[2]:
        return rectangle_box(viewer, image)
    raise ValueError(f"region must be one of {REGIONS}, got {region!r}")


# -- snapshots -----------------------------------------------------------------------------------
def _check_layers(image: Image, labels: Layer) -> None:
    if not isinstance(labels, Labels):
        raise BadInput(f"'{labels.name}' is not a Labels layer.")
    if getattr(image, "multiscale", False) or len(spatial_shape(image)) != 2:
        raise BadInput(f"'{image.name}' is not a 2D image: the training set takes 2D images.")
    if spatial_shape(labels) != spatial_shape(image):
        raise BadInput(f"Labels '{labels.name}' have shape {spatial_shape(labels)} but image "
                       f"'{image.name}' has shape {spatial_shape(image)}.")


def _box_name(image: Image, box: Box) -> str:
    if all(s.start == 0 and s.stop == n for s, n in zip(box, spatial_shape(image))):
        return image.name
    rows, columns = box
    return f"{image.name} [{rows.start}:{rows.stop}, {columns.start}:{columns.stop}]"


def take_snapshot(viewer: napari.viewer.Viewer, image: Image, labels: Labels,
                  region: str = REGIONS[0]) -> Snapshot:
    """Copies of ``image`` and ``labels`` in ``region``, checked, for the training set.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (its camera for the view, its Shapes layers for a rectangle).
    image : napari.layers.Image
        A 2D image (grayscale or RGB).
    labels : napari.layers.Labels
        Its (corrected) instance labels, of the image's shape.
    region : str
        One of :data:`REGIONS`.

    Raises
    ------
    BadInput
        Labels of another shape, a crop outside the image, or no object in the crop.
    """
    _check_layers(image, labels)
    box = crop_box(viewer, image, region)
    if any(s.stop <= s.start for s in box):
        raise BadInput(f"The {region} is outside '{image.name}': nothing to add.")
    crop_labels = _crop(labels, box)
    if not crop_labels.any():
        raise BadInput(f"The {region} of '{labels.name}' has no object: paint the objects "
                       "(or pick a region with some) before adding it.")
    return Snapshot(_box_name(image, box), _crop(image, box), crop_labels, image)


def _crop(layer: Layer, box: Box) -> np.ndarray:
    """A copy of the layer's pixels in ``box`` (its full-resolution level if multiscale)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return np.array(data[box])


def check_side(snapshot: Snapshot, depth: int) -> None:
    """Raise :class:`BadInput` if ``snapshot`` is smaller than ``2**depth`` on a side.

    A U-Net of depth ``depth`` halves its input ``depth`` times: a smaller crop has
    too little to learn from.
    """
    multiple = 2**depth
    if min(snapshot.shape) < multiple:
        raise BadInput(
            f"'{snapshot.name}' is {snapshot.shape[0]} × {snapshot.shape[1]} pixels: a training "
            f"crop needs at least {multiple} × {multiple} (2**depth, depth {depth}). Draw a "
            "larger rectangle or zoom out.")
