"""The Evaluate widget's "IoU view": predictions coloured by IoU, unmatched objects marked.

Both functions read the labels that were evaluated and their
:class:`~napari_unet_weights.metrics.matching.Evaluation`; ids of any integer dtype (up to
2**64 - 1) are matched exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from napari.utils.colormaps import DirectLabelColormap

from napari_unet_weights.metrics.matching import Evaluation

__all__ = ["FALSE_POSITIVE_COLOR", "MISS_COLOR", "error_labels", "iou_image"]

MISS_COLOR = "#ff3b3b"
FALSE_POSITIVE_COLOR = "#ffa21a"


def _write_by_label(out: np.ndarray, labels: np.ndarray, ids, values: np.ndarray) -> None:
    """Where a pixel of ``labels`` holds one of ``ids`` (ids of ``labels``), write its value."""
    if len(ids) == 0:
        return
    ids = np.asarray(ids).astype(labels.dtype)  # taken from ``labels``: they fit
    order = np.argsort(ids)
    ids, values = ids[order], values[order]
    flat = labels.ravel()
    position = np.searchsorted(ids, flat).clip(max=ids.size - 1)
    hit = ids[position] == flat
    out.ravel()[hit] = values[position[hit]]


def _error_ids(missed: np.ndarray, spurious: np.ndarray, gt_max: int):
    """Ids of the misses and false positives in the errors layer, as int64.

    Misses keep their ground-truth id and false positives get their id plus
    ``gt_max``; where that does not fit in int64, both are numbered 1, 2, …
    """
    largest = gt_max + (int(spurious.max()) if spurious.size else 0)
    if largest <= np.iinfo(np.int64).max:
        return missed.astype(np.int64), spurious.astype(np.int64) + gt_max
    numbered = np.arange(1, missed.size + spurious.size + 1)
    return numbered[: missed.size], numbered[missed.size :]


def iou_image(pred: np.ndarray, pred_features: pd.DataFrame) -> np.ndarray:
    """Float image: each predicted object's pixels hold its IoU, background NaN.

    Parameters
    ----------
    pred : numpy.ndarray
        The predicted labels that were evaluated.
    pred_features : pandas.DataFrame
        :attr:`Evaluation.pred_features` (columns ``index`` and ``iou``).

    Returns
    -------
    numpy.ndarray of float32
        Same shape as ``pred``; NaN (drawn transparent by napari) off objects.
    """
    out = np.full(pred.shape, np.nan, dtype=np.float32)
    _write_by_label(out, pred, pred_features["index"], pred_features["iou"].to_numpy(np.float32))
    return out


def error_labels(
    gt: np.ndarray, pred: np.ndarray, evaluation: Evaluation
) -> tuple[np.ndarray, DirectLabelColormap]:
    """Labels of the unmatched objects and a colormap: misses red, false positives orange.

    Unmatched ground-truth objects keep their id; unmatched predictions get their id
    plus the largest ground-truth id, and are drawn only where no miss is. Where such
    ids would not fit in int64 (ids near 2**64), both are numbered 1, 2, … instead.

    Parameters
    ----------
    gt, pred : numpy.ndarray
        The labels that were evaluated.
    evaluation : Evaluation
        Their evaluation.

    Returns
    -------
    labels : numpy.ndarray of int64
        0 where nothing is wrong.
    colormap : napari.utils.colormaps.DirectLabelColormap
        Colours of those ids.
    """
    objects = evaluation.per_object
    missed = objects.loc[(objects["kind"] == "gt") & (objects["matched_pred"] == 0), "label"]
    features = evaluation.pred_features
    spurious = features.loc[features["matched_gt"] == 0, "index"]
    missed_ids, spurious_ids = missed.to_numpy(), spurious.to_numpy()
    missed_out, spurious_out = _error_ids(missed_ids, spurious_ids, int(gt.max()) if gt.size else 0)
    out = np.zeros(gt.shape, dtype=np.int64)
    _write_by_label(out, pred, spurious_ids, spurious_out)
    _write_by_label(out, gt, missed_ids, missed_out)  # misses drawn over false positives
    colors: dict[int | None, str] = {None: "transparent"}
    colors.update(dict.fromkeys(spurious_out.tolist(), FALSE_POSITIVE_COLOR))
    colors.update(dict.fromkeys(missed_out.tolist(), MISS_COLOR))
    return out, DirectLabelColormap(color_dict=colors)
