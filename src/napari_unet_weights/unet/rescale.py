"""Prediction at the model's nucleus size: planes resized on the fly, outputs resized back.

:func:`.predict.predict` / :func:`.predict.segment` with a ``diameter`` come here
(:func:`run_sized`) with a prepared-run factory from :mod:`.inference`:

- a number: the model's scale is ``factor = model diameter / diameter``
  (:func:`.diameter.fixed_sizing`); each plane is read, resized (:class:`ResizedPlanes`,
  one plane at a time: the tiles, the batches, cancel and the missing pixels are the
  prediction's own), predicted and post-processed at that scale, and its labels
  (nearest neighbour) and probabilities (linear) are resized back to exactly the
  plane's shape as soon as it is done (:func:`gather`);
- ``"auto"``: a first pass at the model's scale, the median diameter of what it found
  (:func:`.diameter.object_diameter`), then :func:`.diameter.auto_sizing` decides: the
  first pass is kept (nothing found, or within 10 % of the model's diameter), else a
  second pass at the estimate. Progress runs over both passes (the first is half).

No TensorFlow here: the runs come from :mod:`.inference`, which this module never imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..runtime.progress import Progress
from .device import device_scope
from .diameter import (
    AUTO,
    Sizing,
    auto_sizing,
    check_diameter,
    fixed_sizing,
    model_diameter,
    object_diameter,
    resize_plane,
    resized_shape,
    restore_labels,
    restore_probabilities,
)
from .postprocess import _LabelStack, to_instances
from .preprocess import count_missing

__all__ = ["ResizedPlanes", "gather", "run_sized"]

#: ``prepare(image, progress) -> run``: a prepared run of :mod:`.inference` on ``image``.
Prepare = Callable[[Any, Progress | None], Any]


class ResizedPlanes:
    """An image's planes at another scale, resized when read (never all at once).

    Array-like for prediction: ``shape``, ``dtype`` (float32) and ``[index]`` of the
    leading (stack, time) axes, which returns that plane resized
    (:func:`.diameter.resize_plane`). ``n_missing`` counts the missing pixels of the
    planes read, at the image's own scale.

    Parameters
    ----------
    image : array-like
        (..., H, W) or, with ``rgb``, (..., H, W, C).
    lead : tuple of int
        The leading axes' lengths.
    shape : (int, int)
        The planes' new (height, width).
    rgb : bool
        Whether the last axis holds channels (kept as it is).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, image, lead: tuple[int, ...], shape: tuple[int, int], rgb: bool):
        self.image, self.plane_shape, self.rgb = image, tuple(shape), rgb
        channels = (int(image.shape[-1]),) if rgb else ()
        self.shape = (*lead, *self.plane_shape, *channels)
        self.n_missing = 0

    def __getitem__(self, index: tuple) -> np.ndarray:
        plane = np.asarray(self.image[index])
        self.n_missing += count_missing(plane, self.rgb)
        return resize_plane(plane, self.plane_shape)


def gather(image, run, use_gpu: bool | None, *, parameters: dict | None = None,
           probabilities: bool = False, restore: tuple[int, int] | None = None
           ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Run a prepared run, gathering each plane's labels and / or probabilities.

    Parameters
    ----------
    image : array-like
        What the run reads (an image, or :class:`ResizedPlanes`).
    run : inference._Run
        The prepared run (its layout is ``image``'s).
    use_gpu : bool, optional
        See :func:`.predict.predict`.
    parameters : dict, optional
        Post-processing parameters: each plane's labels, post-processed at the run's
        scale as soon as its tiles are done (ids unique over the stack).
    probabilities : bool
        Keep the probabilities (float32, (..., H, W, K)).
    restore : (int, int), optional
        The original plane shape, to which each plane's outputs are resized back.

    Returns
    -------
    (probabilities or None, labels or None)
    """
    layout, classes = run.layout, run.unet.n_classes
    plane = layout.plane if restore is None else tuple(restore)
    labels = _LabelStack((*layout.lead, *plane)) if parameters is not None else None
    kept = np.zeros((*layout.lead, *plane, classes), np.float32) if probabilities else None
    planes: dict[tuple, np.ndarray] = {}

    def sink(index: tuple) -> np.ndarray:
        if index not in planes:
            planes[index] = np.zeros((*layout.plane, classes), np.float32)
        return planes[index]

    def finish(index: tuple) -> None:
        done = planes.pop(index)
        if labels is not None:
            found = to_instances(done, n_classes=classes, **parameters)
            labels.add(index, found if restore is None else restore_labels(found, plane))
        if kept is not None:
            kept[index] = done if restore is None else restore_probabilities(done, plane)

    with device_scope(use_gpu):
        run.run(image, sink, finish)
    return kept, None if labels is None else labels.array


class _TwoPasses:
    """``"auto"``'s progress: the first pass is the first half, the second the rest."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.first_total = progress, 1

    def first(self, done: int, total: int) -> None:
        self.first_total = max(int(total), 1)
        self.progress(done, 2 * self.first_total)

    def second(self, done: int, total: int) -> None:
        share = round(done * self.first_total / max(int(total), 1))
        self.progress(self.first_total + share, 2 * self.first_total)

    def skip(self) -> None:
        self.progress(2 * self.first_total, 2 * self.first_total)


def run_sized(image, layout, metadata: dict, diameter, prepare: Prepare, *,
              use_gpu: bool | None, parameters: dict | None, labels: bool,
              probabilities: bool, progress: Progress | None = None
              ) -> tuple[np.ndarray | None, np.ndarray | None, Sizing, Any, int]:
    """Predict at the scale where the image's nuclei have the model's diameter.

    Parameters
    ----------
    image : array-like
        The image (numpy or read a plane at a time).
    layout : inference._Layout
        Its layout (leading axes, plane, channels).
    metadata : dict
        The model's metadata (its ``object_diameter``).
    diameter : float, "auto" or None
        See :func:`.predict.segment` (None: the image as it is).
    prepare : callable
        ``prepare(image, progress)``: a prepared run on an image (or
        :class:`ResizedPlanes`) of the same layout but for its plane shape.
    use_gpu : bool, optional
    parameters : dict, optional
        The checked post-processing parameters (needed for labels and for ``"auto"``).
    labels, probabilities : bool
        Which outputs to return.
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    (probabilities or None, labels or None, Sizing, the last run, int)
        The outputs at the image's shape; the run, whose missing pixels the caller warns
        about; the image's missing pixels (at its own scale).

    Raises
    ------
    ValueError
        A model that does not record its diameter, a diameter out of range (both before
        the network runs).
    """
    diameter = check_diameter(diameter)
    if diameter == AUTO:
        model = model_diameter(metadata)
        passes = _TwoPasses(progress) if progress is not None else None
        run = prepare(image, passes.first if passes else None)
        first_probabilities, first_labels = gather(image, run, use_gpu, parameters=parameters,
                                                   probabilities=probabilities)
        sizing = auto_sizing(model, object_diameter(first_labels))
        if not sizing.resized:
            if passes is not None:
                passes.skip()
            return (first_probabilities, first_labels if labels else None, sizing, run,
                    run.n_missing)
        progress = passes.second if passes else None
    elif diameter is None:  # as trained: one pass, the image as it is
        sizing = Sizing(None)
    else:
        sizing = fixed_sizing(metadata, diameter)
    restore = None
    if sizing.resized:
        image = ResizedPlanes(image, layout.lead, resized_shape(layout.plane, sizing.factor),
                              layout.rgb)
        restore = layout.plane
    run = prepare(image, progress)
    kept, found = gather(image, run, use_gpu, parameters=parameters if labels else None,
                         probabilities=probabilities, restore=restore)
    n_missing = image.n_missing if isinstance(image, ResizedPlanes) else run.n_missing
    return kept, found, sizing, run, n_missing
