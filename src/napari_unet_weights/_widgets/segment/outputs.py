"""The Segment widget's output layers: writing them, finding them, handing them off.

:class:`SegmentOutputs` is the part of :class:`~.widget.SegmentWidget` that deals with
the layers a run leaves: ``"<image> probability"`` and ``"<image> labels"``, marked in
their metadata; a re-run replaces their data and keeps their names (whatever the user
renamed them to). A new output layer whose name another layer holds (the user's ground
truth, or the corrected labels that "Use this model" keeps) gets napari's numbering:
``"<image> labels [1]"``. For a large image the labels layer reads the run's zarr store
lazily (:mod:`.big`). The hand-offs dock the Weight map and Evaluate widgets on
the predicted labels, and "Add to training set" copies the image and its corrected
labels into the Train U-Net widget's training set (:mod:`..common.snapshots`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels

from napari_unet_weights._widgets.common.base import update_layer
from napari_unet_weights._widgets.common.handoff import dock_plugin_widget
from napari_unet_weights._widgets.common.layer_roles import (
    SEGMENT_OUTPUT_KEY,
    is_plugin_output,
    likely_ground_truth,
    same_shape,
)
from napari_unet_weights._widgets.common.lazy_layers import layer_data
from napari_unet_weights._widgets.common.snapshots import take_snapshot
from napari_unet_weights._widgets.common.train_data import BadInput
from napari_unet_weights._widgets.segment.big import STORE_KEY

if TYPE_CHECKING:
    from napari.layers import Layer

__all__ = ["LABELS_SUFFIX", "PROBABILITY_SUFFIX", "SegmentOutputs"]

PROBABILITY_SUFFIX = " probability"
LABELS_SUFFIX = " labels"


class SegmentOutputs:
    """The output layers and hand-offs of :class:`~.widget.SegmentWidget` (a mixin).

    It uses the widget's ``viewer``, ``image_layer``, ``region_combo``, ``_outputs``
    (image id → (image, probability layer, labels layer)), ``probability_layer``,
    ``labels_layer``, ``_add_output``, ``_report`` and ``_set_status``.
    """

    # -- output layers ---------------------------------------------------------------------
    def _show(self, image: Image, outcome: Any) -> None:
        """Write the outcome into the image's output layers (added if missing).

        A chunked run (``outcome.store`` set) has no probabilities: its labels layer reads
        the store's levels lazily, and the probability layer of an earlier run is kept.
        """
        _, probability, labels = self._outputs.get(id(image), (image, None, None))
        probability = self._find_output(image, "probability", probability)
        labels = self._find_output(image, "labels", labels)
        if outcome.store is None:
            probability = self._write_probability(image, probability, outcome.probability)
            labels = self._write_labels(image, labels, outcome.labels)
        else:
            data, multiscale = layer_data(outcome.labels)
            labels = self._write_labels(image, labels, data, multiscale, outcome.store)
        self._outputs[id(image)] = (image, probability, labels)
        self.probability_layer, self.labels_layer = probability, labels

    def _find_output(self, image: Image, kind: str, tracked: Layer | None) -> Layer | None:
        """The existing output layer of ``image`` (tracked, or marked in its metadata)."""
        if tracked is not None and tracked in self.viewer.layers:
            return tracked
        mark = {"source": image.name, "output": kind}
        return next((layer for layer in self.viewer.layers
                     if layer.metadata.get(SEGMENT_OUTPUT_KEY) == mark), None)

    def _write_probability(self, image: Image, layer: Image | None, data: np.ndarray) -> Image:
        if layer is not None:
            update_layer(layer, image, data=data)
            return layer
        return self._add_output(
            self.viewer.add_image, data, image, active=None,
            name=f"{image.name}{PROBABILITY_SUFFIX}",
            colormap="inferno", blending="additive", contrast_limits=(0.0, 1.0), opacity=0.6,
            metadata={SEGMENT_OUTPUT_KEY: {"source": image.name, "output": "probability"}},
        )

    def _write_labels(self, image: Image, layer: Labels | None, data: Any,
                      multiscale: bool = False, store: Path | None = None) -> Labels:
        """Labels into ``layer``, or a new layer (also when it must change to or from
        multiscale, which napari cannot change in a layer, under the same name); ``store``:
        the zarr it reads."""
        name = f"{image.name}{LABELS_SUFFIX}" if layer is None else layer.name
        if layer is not None and layer.multiscale != multiscale:
            self.viewer.layers.remove(layer)
            layer = None
        metadata = {} if layer is None else dict(layer.metadata)
        metadata[SEGMENT_OUTPUT_KEY] = {"source": image.name, "output": "labels"}
        metadata.pop(STORE_KEY, None)
        if store is not None:
            metadata[STORE_KEY] = str(store.resolve())
        if layer is not None:
            update_layer(layer, image, data=data, metadata=metadata)
            return layer
        return self._add_output(self.viewer.add_labels, data, image, active=None, name=name,
                                metadata=metadata, multiscale=multiscale)

    # -- hand-offs --------------------------------------------------------------------------
    def send_to_weight_map(self) -> Any:
        """Dock (or raise) the "Weight map" widget showing the predicted labels.

        Returns
        -------
        WeightMapWidget or None
            The widget, or None if there is no prediction yet.
        """
        from napari_unet_weights._widgets.weight_map.widget import WeightMapWidget

        widget, labels = self._hand_off(WeightMapWidget)
        if widget is not None:
            widget.layer_combo.value = labels
        return widget

    def send_to_evaluate(self) -> Any:
        """Dock (or raise) the "Evaluate" widget: the predicted labels against ground truth.

        The ground truth is another Labels layer of the same shape (one whose name
        suggests annotations first), or none.

        Returns
        -------
        EvaluateWidget or None
            The widget, or None if there is no prediction yet.
        """
        from napari_unet_weights._widgets.evaluate.widget import EvaluateWidget

        widget, labels = self._hand_off(EvaluateWidget)
        if widget is not None:
            widget.set_layers(self.ground_truth_for(labels), labels)
        return widget

    def ground_truth_for(self, labels: Labels) -> Labels | None:
        """A Labels layer to score ``labels`` against: same shape, not a plugin output.

        Parameters
        ----------
        labels : napari.layers.Labels
            The predicted labels.

        Returns
        -------
        napari.layers.Labels or None
        """
        layers = [layer for layer in self.viewer.layers
                  if isinstance(layer, Labels) and not is_plugin_output(layer)]
        return likely_ground_truth(same_shape(labels, layers))

    def labels_of(self, image: Image) -> Labels | None:
        """The predicted (maybe corrected) Labels layer of ``image``, if still in the viewer."""
        tracked = self._outputs.get(id(image), (None, None, None))[2]
        return self._find_output(image, "labels", tracked)

    def release_labels(self, image: Image) -> Labels | None:
        """Stop treating the labels of ``image`` as output: the next run adds new ones, so
        a re-run never overwrites corrections (the layer keeps its data and name)."""
        labels = self.labels_of(image)
        if labels is not None:
            labels.metadata = {key: value for key, value in labels.metadata.items()
                               if key != SEGMENT_OUTPUT_KEY}
            self._outputs.pop(id(image), None)
        return labels

    def add_to_training_set(self, region: str | None = None) -> Any:
        """Copy the image and its corrected labels into the Train U-Net widget's training set.

        Parameters
        ----------
        region : str, optional
            One of :data:`~..common.snapshots.REGIONS` (default: the one picked): the whole
            image, the part the canvas shows, or a rectangle drawn in a Shapes layer.

        Returns
        -------
        TrainWidget or None
            The Train U-Net widget (docked and raised), or None if nothing was added (a
            notification says why).
        """
        image = self.image_layer
        labels = self.labels_of(image) if image is not None else None
        if labels is None:
            self._report("Segment the image first, then correct its labels.")
            return None
        try:
            snapshot = take_snapshot(self.viewer, image, labels,
                                     region or self.region_combo.currentText())
            train = dock_plugin_widget(self.viewer, "Train U-Net")
            train.add_snapshot(snapshot)
        except BadInput as error:
            self._report(str(error))
            return None
        self._set_status(f"Added '{snapshot.name}' to the training set.")
        return train

    def _hand_off(self, widget_class: type) -> tuple[Any, Labels | None]:
        """The plugin's ``widget_class`` docked and raised, and the labels to hand it.

        ``(None, None)`` (and a notification) if there is no prediction to hand off.
        """
        labels = self.labels_layer
        if labels is None or labels not in self.viewer.layers:
            self._report("Run the segmentation first.")
            return None, None
        return dock_plugin_widget(self.viewer, widget_class.TITLE, widget_class), labels

