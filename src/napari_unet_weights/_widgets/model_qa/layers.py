"""The layers the Model QA widget opens: one image, its ground truth, each model's prediction.

:class:`QALayers` shows an :class:`~napari_unet_weights.qa.ImageArrays` in the viewer as
new layers marked with :data:`MODEL_QA_KEY` (their role) and reuses them for the next
image: the widget's own layers get the new data, and a layer that cannot hold it (an RGB
image after a grayscale one) is replaced. The user's layers are never touched; a layer
of the widget's that the user removed is made again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels

from napari_unet_weights._widgets.common.base import keep_active_layer

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

    from napari_unet_weights.qa import ImageArrays

__all__ = ["MODEL_QA_KEY", "QALayers"]

#: The Model QA widget's layers: ``{MODEL_QA_KEY: role}`` (``"image"``, ``"truth"``,
#: ``"prediction:<model>"``).
MODEL_QA_KEY = "napari_unet_weights_model_qa"
TRUTH = "truth"
IMAGE = "image"
PREDICTION = "prediction:"


def _is_rgb(image: Any) -> bool:
    return getattr(image, "ndim", 0) == 3 and image.shape[-1] in (3, 4)


class QALayers:
    """The widget's layers in ``viewer``: made once, then given each new image's data.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.

    Attributes
    ----------
    shown : str or None
        The name of the image the layers show.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.shown: str | None = None
        self._layers: dict[str, Layer] = {}

    def layer(self, role: str) -> Layer | None:
        """The widget's layer of ``role`` if it is still in the viewer."""
        layer = self._layers.get(role)
        return layer if layer is not None and layer in self.viewer.layers else None

    @property
    def image(self) -> Image | None:
        """The image layer."""
        return self.layer(IMAGE)

    @property
    def truth(self) -> Labels | None:
        """The ground-truth layer."""
        return self.layer(TRUTH)

    def prediction(self, model: str) -> Labels | None:
        """The prediction layer of ``model``."""
        return self.layer(PREDICTION + model)

    def show(self, arrays: ImageArrays) -> None:
        """Show ``arrays``: the image, its ground truth and each prediction.

        Predictions of models not in ``arrays`` (an earlier run's) are removed.
        """
        name = arrays.name
        with keep_active_layer(self.viewer, self.viewer.layers.selection.active):
            self._upsert(IMAGE, arrays.image, f"{name} · image")
            self._upsert(TRUTH, arrays.truth, f"{name} · ground truth")
            for model, labels in arrays.predictions.items():
                self._upsert(PREDICTION + model, labels, f"{name} · {model}")
        wanted = {PREDICTION + model for model in arrays.predictions}
        for role in [r for r in self._layers if r.startswith(PREDICTION) and r not in wanted]:
            layer = self._layers.pop(role)
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        if self.shown != name:
            self.viewer.reset_view()
        self.shown = name

    def _upsert(self, role: str, data: Any, name: str) -> None:
        if role != IMAGE and isinstance(data, np.ndarray):
            data = data.copy()  # painting on the layer must not change the scored labels
        layer = self.layer(role)
        if layer is not None and role == IMAGE and (_is_rgb(data) != layer.rgb
                                                    or np.ndim(data) != layer.data.ndim):
            position = self.viewer.layers.index(layer)  # the new one takes its place
            self.viewer.layers.remove(layer)
            self._layers[role] = self._add(role, data, name)
            self.viewer.layers.move(len(self.viewer.layers) - 1, position)
            return
        if layer is None:
            self._layers[role] = self._add(role, data, name)
            return
        layer.data = data
        layer.name = name
        if role == IMAGE:
            layer.reset_contrast_limits()

    def _add(self, role: str, data: Any, name: str) -> Layer:
        metadata = {MODEL_QA_KEY: role}
        if role == IMAGE:
            return self.viewer.add_image(data, name=name, rgb=_is_rgb(data), metadata=metadata)
        layer = self.viewer.add_labels(data, name=name, metadata=metadata)
        if role == TRUTH:
            layer.opacity = 0.4
        else:
            layer.contour = 1
        layer.editable = False
        return layer
