"""Nucleus size, the public side: estimate an image's nucleus diameter; segment at a
diameter and say which one was used.

:func:`.predict.predict` and :func:`.predict.segment` take ``diameter`` themselves;
this module adds what the widget and the command line need on top of them:

- :func:`estimate_diameter`: the median diameter (pixels) of the nuclei the model finds
  in an image as it is (one pass);
- :func:`segment_at_diameter`: :func:`.predict.segment` with a ``diameter`` that also
  returns the probabilities (at the image's shape) and the :class:`.diameter.Sizing`
  (the diameter used, the factor, ``"auto"``'s estimate), for one run of the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..runtime.progress import Progress, ShouldStop
from .diameter import Sizing, check_diameter, object_diameter
from .model_file import UNetModel
from .predict import infer, segment

__all__ = ["SizedSegmentation", "estimate_diameter", "segment_at_diameter"]


def estimate_diameter(image, model: UNetModel | str | os.PathLike | None = None, *,
                      rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
                      overlap: int | None = None, batch_size: int = 4,
                      progress: Progress | None = None, should_stop: ShouldStop | None = None,
                      use_gpu: bool | None = None, tta: bool = False,
                      **postprocess) -> float:
    """The median diameter of the nuclei a model finds in an image as it is, in pixels.

    :func:`.predict.segment` at the image's own scale (``diameter=None``), then
    :func:`.diameter.object_diameter` of the labels (over all planes of a stack). The
    first pass of ``diameter="auto"``; pass the result as ``diameter`` to segment at it.

    Parameters
    ----------
    image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop, use_gpu, tta
        As in :func:`.predict.predict` (in-memory images only: numpy or a plane at a
        time).
    **postprocess
        Overrides of the model's post-processing parameters, as in
        :func:`.predict.segment`.

    Returns
    -------
    float
        NaN when the model finds no object. The estimate is only as good as the model's
        segmentation at this scale: far from the model's diameter (below half or above
        twice it, say) it is biased towards it, and worth refining by segmenting at it
        and measuring again.

    Raises
    ------
    PredictionCancelled, ValueError, TypeError, FileNotFoundError, ImportError
        As in :func:`.predict.segment`.
    """
    labels = segment(image, model, rgb=rgb, tile_shape=tile_shape, overlap=overlap,
                     batch_size=batch_size, progress=progress, should_stop=should_stop,
                     use_gpu=use_gpu, tta=tta, **postprocess)
    return object_diameter(labels)


@dataclass(frozen=True)
class SizedSegmentation:
    """The outputs of :func:`segment_at_diameter`.

    Attributes
    ----------
    labels : numpy.ndarray
        Instance labels (..., H, W), as :func:`.predict.segment` returns them.
    probabilities : numpy.ndarray or None
        Class probabilities (..., H, W, K) at the image's shape, when asked for.
    sizing : Sizing
        The diameter asked for, estimated and used, and the resize factor
        (``sizing.describe()``: one line saying so).
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    sizing: Sizing


def segment_at_diameter(image, model: UNetModel | str | os.PathLike | None = None, *,
                        diameter: float | str | None, probabilities: bool = False,
                        rgb: bool | None = None,
                        tile_shape: int | tuple[int, int] | None = None,
                        overlap: int | None = None, batch_size: int = 4,
                        progress: Progress | None = None,
                        should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
                        tta: bool = False, **postprocess) -> SizedSegmentation:
    """:func:`.predict.segment` with a ``diameter``, saying which diameter was used.

    Parameters
    ----------
    image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop, use_gpu, tta
        As in :func:`.predict.segment` (in-memory images only).
    diameter : float, "auto" or None
        As in :func:`.predict.segment`. None: as trained (the model file need not record
        a diameter).
    probabilities : bool
        Also return the class probabilities, resized back to the image's shape (from
        the same run: the labels are post-processed at the model's scale, not from
        these).
    **postprocess
        Overrides of the model's post-processing parameters (in the model's pixels).

    Returns
    -------
    SizedSegmentation

    Raises
    ------
    PredictionCancelled, ValueError, TypeError, FileNotFoundError, ImportError
        As in :func:`.predict.segment`.

    Warns
    -----
    MissingDataWarning
        As in :func:`.predict.predict`.
    """
    diameter = check_diameter(diameter)
    result = infer(image, model, probabilities=probabilities, rgb=rgb, tile_shape=tile_shape,
                   overlap=overlap, batch_size=batch_size, progress=progress,
                   should_stop=should_stop, use_gpu=use_gpu, tta=tta, diameter=diameter,
                   **postprocess)
    return SizedSegmentation(result.labels, result.probabilities,
                             result.sizing or Sizing(None))  # None: as trained
