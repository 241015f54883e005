"""Bringing an object into view: set the sliders to its plane, centre the camera, zoom in.

The Evaluate widget (a clicked object) and the Check labels widget (a clicked problem)
show what a table row is about the same way, with :func:`focus_on`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = ["focus_on"]

#: The smallest field of view, in data pixels of the shown axes.
MIN_FIELD_PIXELS = 16


def focus_on(
    viewer: napari.viewer.Viewer, layer: Layer, center: Sequence[float], field: float
) -> None:
    """Centre the camera on ``center`` (data coordinates of ``layer``) and zoom to ``field``.

    Axes that are not displayed are moved to ``center`` (the plane of a stack); the
    displayed ones are centred on it.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.
    layer : napari.layers.Layer
        The layer whose data coordinates ``center`` is in.
    center : sequence of float
        The point to look at, one value per layer axis.
    field : float
        How much to show across the canvas's shorter side, in data pixels (at least
        :data:`MIN_FIELD_PIXELS`).
    """
    world = np.asarray(layer.data_to_world(list(center)), dtype=float)
    dims = viewer.dims
    offset = dims.ndim - layer.ndim  # layer axes are the last viewer axes
    displayed = list(dims.displayed)
    for axis in range(layer.ndim):
        if axis + offset not in displayed:
            dims.set_point(axis + offset, world[axis])
    current = list(viewer.scene.camera.center)[-len(displayed):]
    viewer.scene.camera.center = tuple(
        world[axis - offset] if axis >= offset else current[i]
        for i, axis in enumerate(displayed)
    )
    scales = np.abs(np.asarray(layer.scale, dtype=float))
    shown_scales = [scales[axis - offset] for axis in displayed if axis >= offset] or [1.0]
    world_field = max(field * max(shown_scales), MIN_FIELD_PIXELS * min(shown_scales))
    viewer.scene.camera.zoom = 0.95 * float(min(viewer.canvas.size)) / world_field
