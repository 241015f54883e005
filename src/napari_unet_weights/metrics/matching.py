"""Instance segmentation scores: matching of label images by IoU, the DSB 2018 mAP.

One pass over the pixels gives the contingency table of (ground truth, prediction)
label pairs; every score comes from that table, never from one mask per object.
At a threshold ``t`` the true positives are the largest one-to-one matching of
pairs with ``IoU >= t`` (``IoU > t`` with ``strict=True``), as in
``stardist.matching.matching``: for ``t >= 0.5`` such pairs are (almost always)
unique, below 0.5 a maximum matching is found with
:func:`scipy.optimize.linear_sum_assignment`, ties broken by the larger IoU sum.
``FP = n_pred - TP`` and ``FN = n_true - TP``; the image score is the mean over the
thresholds of ``TP / (TP + FP + FN)`` (Data Science Bowl 2018; the seed's
``evaluate_image``).

IoU and threshold are compared exactly: with ``IoU = inter / union`` in integers and
the threshold as a fraction ``num / den``, ``IoU >= t`` is ``inter·den >= num·union``.
So an IoU of exactly 0.7 counts at the threshold 0.7. A threshold is read as the
simplest fraction within 1e-6 of the float given, so ``0.7000000000000002`` (from
``np.arange(0.5, 1, 0.05)``) means 7/10 and ``2 / 3`` means two thirds.

Conventions (those of ``stardist.matching``):

- Only overlapping pairs can match: at ``t = 0`` (non-strict) any overlap is enough
  (stardist would also pair objects that do not touch).
- Precision, recall, accuracy and F1 are 0 where TP is 0, also when both images are
  empty: an empty prediction of an empty image scores 0.
- ``mean_matched_score`` = sum of matched IoUs / TP, ``mean_true_score`` = sum of
  matched IoUs / n_true, ``panoptic_quality`` = sum of matched IoUs /
  (TP + FP/2 + FN/2), each 0 where its denominator is 0.

Object status, decided at the reference threshold (the lowest one given, 0.5 by
default); "covers more than half" means that more than half of the pixels of the
object lie inside the other:

- ``"matched"``: the ground-truth object is a true positive.
- ``"merged"``: not matched, and some prediction covers more than half of it *and*
  more than half of at least one other ground-truth object.
- ``"split"``: not matched, not merged, and two or more predictions each lie more than
  half inside it, together covering more than half of it.
- ``"missed"``: any other unmatched ground-truth object.
- Predictions: ``"matched"``, ``"merge"`` (covers more than half of two or more
  ground-truth objects), ``"split"`` (one of the fragments of a split object) or
  ``"false positive"``. All unmatched predictions are false positives in the scores.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._checks import validate_labels
from ._contingency import Table, contingency

if TYPE_CHECKING:  # pandas and scipy.optimize are imported when needed: fast package import
    import pandas as pd

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ID_COLUMNS",
    "DatasetEvaluation",
    "Evaluation",
    "evaluate",
    "evaluate_dataset",
    "id_column",
]

#: The DSB 2018 thresholds 0.5, 0.55, ..., 0.95 as exact decimals.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(
    float(t) for t in np.round(np.arange(10) * 0.05 + 0.5, 2)
)

PER_THRESHOLD_COLUMNS = (
    "threshold", "tp", "fp", "fn", "precision", "recall", "accuracy", "f1",
    "mean_matched_score", "mean_true_score", "panoptic_quality",
)
_MAX_DENOMINATOR = 10**6
_INT64_MAX = np.iinfo(np.int64).max
#: Columns of the tables that hold label ids (int64, or uint64 for ids >= 2**63).
ID_COLUMNS = ("label", "best_pred", "best_gt", "matched_pred", "matched_gt", "index", "gt", "pred")


def id_column(*parts: np.ndarray) -> np.ndarray:
    """Label ids (never negative), concatenated without loss.

    int64 as long as every id fits, uint64 when one is 2**63 or more, so that
    ids near the top of ``uint64`` are never wrapped to negative numbers.

    Parameters
    ----------
    *parts : numpy.ndarray
        1-D arrays of ids, of any integer dtypes.

    Returns
    -------
    numpy.ndarray
        One int64 or uint64 array.
    """
    huge = any(p.dtype == np.uint64 and p.size and p.max() > _INT64_MAX for p in parts)
    dtype = np.uint64 if huge else np.int64
    return np.concatenate([p.astype(dtype, copy=False) for p in parts])


def _concat_tables(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pandas.concat`` of per-image tables, id columns kept exact (uint64 if any is)."""
    import pandas as pd

    unsigned = {c for f in frames for c in ID_COLUMNS if c in f and f[c].dtype == np.uint64}
    frames = [f.astype({c: np.uint64 for c in unsigned if c in f}) for f in frames]
    return pd.concat(frames, ignore_index=True)


# -- tables ------------------------------------------------------------------
@dataclass
class Evaluation:
    """Scores of one predicted label image against its ground truth.

    Attributes
    ----------
    map : float
        Mean over the thresholds of ``TP / (TP + FP + FN)`` (the DSB 2018 image score).
    thresholds : tuple of float
        The IoU thresholds, in the order given.
    strict : bool
        Whether a match needed ``IoU > t`` (True) or ``IoU >= t`` (False).
    reference_threshold : float
        The threshold at which ``matched_pred``, ``matched_gt`` and the status are
        decided: the lowest threshold.
    n_true, n_pred : int
        Number of ground-truth and predicted objects.
    per_threshold : pandas.DataFrame
        One row per threshold: ``threshold, tp, fp, fn, precision, recall, accuracy,
        f1, mean_matched_score, mean_true_score, panoptic_quality``.
    per_object : pandas.DataFrame
        One row per ground-truth object (``kind="gt"``) then one per prediction not
        matched at the reference threshold (``kind="pred"``). Columns ``kind, label,
        area, centroid-0 .. centroid-{ndim-1}, best_pred, best_gt, best_iou,
        matched_pred, matched_iou, max_tp_threshold, status``. ``best_pred`` is set on
        gt rows, ``best_gt`` on pred rows (0 elsewhere and where nothing overlaps);
        ``max_tp_threshold`` is the highest threshold at which the object is a true
        positive (NaN if never).
    pred_features : pandas.DataFrame
        One row per predicted object, for ``napari.layers.Labels.features``: ``index``
        (the prediction id), ``iou`` (with its matched object, else its best IoU),
        ``matched_gt`` (0 if none), ``status``.
    overlaps : pandas.DataFrame
        One row per overlapping (gt, pred) pair of objects: ``gt, pred,
        intersection, union, iou``.

    Label ids in every table (``label``, ``index``, ``best_*``, ``matched_*``, ``gt``,
    ``pred``) are int64, or uint64 where an id is 2**63 or more: always exact.
    """

    map: float
    thresholds: tuple[float, ...]
    strict: bool
    reference_threshold: float
    n_true: int
    n_pred: int
    per_threshold: pd.DataFrame = field(repr=False)
    per_object: pd.DataFrame = field(repr=False)
    pred_features: pd.DataFrame = field(repr=False)
    overlaps: pd.DataFrame = field(repr=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that :meth:`to_csv` writes, by file name stem."""
        return {"per_threshold": self.per_threshold, "per_object": self.per_object}

    def to_csv(self, path: str | os.PathLike) -> list[Path]:
        """Write ``per_threshold`` and ``per_object`` as CSV files.

        Parameters
        ----------
        path : str or path-like
            A folder (an existing directory, or a path ending with a separator), which
            gets ``per_threshold.csv`` and ``per_object.csv``; otherwise a prefix:
            ``run1`` gives ``run1_per_threshold.csv`` and ``run1_per_object.csv``.

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        return _write_tables(self.tables(), path)


@dataclass
class DatasetEvaluation:
    """Scores of a set of (ground truth, prediction) image pairs.

    Attributes
    ----------
    map : float
        The DSB 2018 score: the mean over images of each image's mAP.
    thresholds : tuple of float
        The IoU thresholds.
    strict : bool
        Whether a match needed ``IoU > t``.
    per_image : pandas.DataFrame
        One row per image: ``image, n_true, n_pred, map`` (``image`` is the given
        name, or the position in the input).
    per_threshold : pandas.DataFrame
        Counts pooled over all images (TP, FP, FN summed, scores from the sums, as
        ``stardist.matching.matching_dataset(by_image=False)``), same columns as
        :attr:`Evaluation.per_threshold`.
    images : list of Evaluation
        The evaluation of each image, in input order.
    """

    map: float
    thresholds: tuple[float, ...]
    strict: bool
    per_image: pd.DataFrame = field(repr=False)
    per_threshold: pd.DataFrame = field(repr=False)
    images: list[Evaluation] = field(repr=False)

    @property
    def per_object(self) -> pd.DataFrame:
        """All images' ``per_object`` tables, with an ``image`` column in front."""
        import pandas as pd

        frames = [
            evaluation.per_object.assign(image=name)
            for name, evaluation in zip(self.per_image["image"], self.images, strict=True)
        ]
        if not frames:
            return pd.DataFrame(columns=["image"])
        table = _concat_tables(frames)
        return table[["image", *(c for c in table.columns if c != "image")]]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that :meth:`to_csv` writes, by file name stem."""
        return {
            "per_image": self.per_image,
            "per_threshold": self.per_threshold,
            "per_object": self.per_object,
        }

    def to_csv(self, path: str | os.PathLike) -> list[Path]:
        """Write ``per_image``, ``per_threshold`` (pooled) and ``per_object`` as CSV.

        Parameters
        ----------
        path : str or path-like
            A folder (existing, or ending with a separator) or a file name prefix, as
            in :meth:`Evaluation.to_csv`.

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        return _write_tables(self.tables(), path)


def _write_tables(tables: dict[str, pd.DataFrame], path: str | os.PathLike) -> list[Path]:
    from ..io.files import write_csv_tables  # io reads files with imageio: loaded only here

    return write_csv_tables(tables, path)


# -- input checks ------------------------------------------------------------
def _check_pair(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    gt = validate_labels(gt, name="ground truth")
    pred = validate_labels(pred, name="prediction")
    if gt.shape != pred.shape:
        raise ValueError(
            f"ground truth and prediction must have the same shape, got {gt.shape} "
            f"(ground truth) and {pred.shape} (prediction)."
        )
    return gt, pred


def _check_thresholds(thresholds) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"thresholds must be a number or a 1-D sequence, got {thresholds!r}.")
    if not np.all((values >= 0) & (values <= 1)):
        raise ValueError(f"IoU thresholds must lie in [0, 1], got {values.tolist()}.")
    return tuple(float(t) for t in values)


@lru_cache(maxsize=256)
def _as_fraction(threshold: float) -> Fraction:
    """The simplest fraction within 1e-6 of ``threshold`` (0.55 -> 11/20)."""
    return Fraction(threshold).limit_denominator(_MAX_DENOMINATOR)


# -- matching ----------------------------------------------------------------
def _candidates(table: Table, threshold: float, strict: bool) -> np.ndarray:
    """Indices of the object pairs whose IoU passes ``threshold``, compared exactly."""
    fraction = _as_fraction(threshold)
    left = table.inter * fraction.denominator
    right = table.union * fraction.numerator
    passed = left > right if strict else left >= right
    return np.flatnonzero(passed)


def _match(table: Table, threshold: float, strict: bool) -> np.ndarray:
    """Indices of the matched object pairs: a maximum one-to-one matching of candidates.

    Among matchings of the largest size, the one with the largest IoU sum is taken
    (the tie-break of ``stardist.matching``). Pairs whose gt and pred occur in no
    other candidate are matched directly; the rest are solved per connected component.
    """
    candidates = _candidates(table, threshold, strict)
    rows, cols = table.rows[candidates], table.cols[candidates]
    row_degree = np.bincount(rows, minlength=table.gt_ids.size)
    col_degree = np.bincount(cols, minlength=table.pred_ids.size)
    shared = (row_degree[rows] > 1) | (col_degree[cols] > 1)
    if not shared.any():
        return candidates
    matched = [candidates[~shared]]
    matched.append(_match_components(table, candidates[shared]))
    return np.sort(np.concatenate(matched))


def _match_components(table: Table, pairs: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = table.rows[pairs], table.cols[pairs]
    n_gt = table.gt_ids.size
    n_nodes = n_gt + table.pred_ids.size
    graph = coo_matrix((np.ones(pairs.size), (rows, cols + n_gt)), shape=(n_nodes, n_nodes))
    _, component = connected_components(graph, directed=False)
    edge_component = component[rows]
    iou = table.iou[pairs]
    chosen = []
    for label in np.unique(edge_component):
        members = np.flatnonzero(edge_component == label)
        gt_nodes, r = np.unique(rows[members], return_inverse=True)
        pred_nodes, c = np.unique(cols[members], return_inverse=True)
        size = min(gt_nodes.size, pred_nodes.size)
        weight = np.zeros((gt_nodes.size, pred_nodes.size))
        weight[r, c] = 1.0 + iou[members] / (2.0 * size)
        edge = np.full(weight.shape, -1, np.intp)
        edge[r, c] = members
        picked = edge[linear_sum_assignment(weight, maximize=True)]
        chosen.append(pairs[picked[picked >= 0]])
    return np.concatenate(chosen)


def _scores(tp: int, n_true: int, n_pred: int, sum_iou: float) -> dict[str, float]:
    """stardist.matching's scores from the counts (0 where TP or a denominator is 0)."""
    fp, fn = n_pred - tp, n_true - tp
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp else 0.0,
        "recall": tp / (tp + fn) if tp else 0.0,
        "accuracy": tp / (tp + fp + fn) if tp else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "mean_matched_score": sum_iou / tp if tp else 0.0,
        "mean_true_score": sum_iou / n_true if n_true else 0.0,
        "panoptic_quality": sum_iou / (tp + fp / 2 + fn / 2) if tp + fp + fn else 0.0,
    }


# -- per-object tables ---------------------------------------------------------
def _best(owner: np.ndarray, other: np.ndarray, iou: np.ndarray, n: int):
    """Per owner index: the partner with the highest IoU (ties: the smaller index)."""
    best_partner = np.zeros(n, np.intp)
    best_iou = np.zeros(n)
    order = np.lexsort((other, -iou, owner))
    first = np.ones(order.size, bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    picked = order[first]
    best_partner[owner[picked]] = other[picked]
    best_iou[owner[picked]] = iou[picked]
    return best_partner, best_iou


@dataclass
class _Matches:
    """Matching results needed by the per-object tables."""

    gt_partner: np.ndarray  # matched pred index at the reference threshold, 0 if none
    pred_partner: np.ndarray
    gt_iou: np.ndarray
    pred_iou: np.ndarray
    gt_max_threshold: np.ndarray
    pred_max_threshold: np.ndarray


def _statuses(table: Table, matches: _Matches) -> tuple[np.ndarray, np.ndarray]:
    """Status of each gt and each pred object (index 0, background, included)."""
    n_gt, n_pred = table.gt_ids.size, table.pred_ids.size
    rows, cols, inter = table.rows, table.cols, table.inter
    # a pred covers more than half of a gt / lies more than half inside a gt
    covers = 2 * inter > table.gt_area[rows]
    inside = 2 * inter > table.pred_area[cols]
    n_covered = np.bincount(cols[covers], minlength=n_pred)
    merging_pred = n_covered >= 2
    merged_gt = np.zeros(n_gt, bool)
    merged_gt[rows[covers & merging_pred[cols]]] = True
    n_fragments = np.bincount(rows[inside], minlength=n_gt)
    fragment_cover = np.bincount(rows[inside], weights=inter[inside], minlength=n_gt)
    split_gt = (n_fragments >= 2) & (2 * fragment_cover > table.gt_area)

    gt_status = np.full(n_gt, "missed", dtype=object)
    gt_status[split_gt] = "split"
    gt_status[merged_gt] = "merged"
    gt_status[matches.gt_partner > 0] = "matched"

    pred_status = np.full(n_pred, "false positive", dtype=object)
    fragments = inside & (gt_status[rows] == "split")
    pred_status[cols[fragments]] = "split"
    pred_status[merging_pred] = "merge"
    pred_status[matches.pred_partner > 0] = "matched"
    return gt_status, pred_status


def _per_object(table: Table, matches: _Matches, iou: np.ndarray):
    """The ``per_object`` and ``pred_features`` tables."""
    import pandas as pd

    n_gt, n_pred = table.gt_ids.size, table.pred_ids.size
    best_pred, best_pred_iou = _best(table.rows, table.cols, iou, n_gt)
    best_gt, best_gt_iou = _best(table.cols, table.rows, iou, n_pred)
    gt_status, pred_status = _statuses(table, matches)

    g = np.arange(1, n_gt)
    p = np.flatnonzero(matches.pred_partner == 0)[1:]  # index 0, background, comes first
    zeros_g, zeros_p = np.zeros(g.size, np.int64), np.zeros(p.size, np.int64)
    columns = {
        "kind": np.array(["gt"] * g.size + ["pred"] * p.size, dtype=object),
        "label": id_column(table.gt_ids[g], table.pred_ids[p]),
        "area": np.concatenate([table.gt_area[g], table.pred_area[p]]),
    }
    for axis in range(len(table.shape)):
        columns[f"centroid-{axis}"] = np.concatenate(
            [table.gt_centroid[g, axis], table.pred_centroid[p, axis]])
    columns.update({
        "best_pred": id_column(table.pred_ids[best_pred[g]], zeros_p),
        "best_gt": id_column(zeros_g, table.gt_ids[best_gt[p]]),
        "best_iou": np.concatenate([best_pred_iou[g], best_gt_iou[p]]),
        "matched_pred": id_column(table.pred_ids[matches.gt_partner[g]], zeros_p),
        "matched_iou": np.concatenate([matches.gt_iou[g], np.zeros(p.size)]),
        "max_tp_threshold": np.concatenate(
            [matches.gt_max_threshold[g], matches.pred_max_threshold[p]]),
        "status": np.concatenate([gt_status[g], np.full(p.size, "false positive", object)]),
    })
    per_object = pd.DataFrame(columns)

    q = np.arange(1, n_pred)
    matched = matches.pred_partner[q] > 0
    pred_features = pd.DataFrame({
        "index": id_column(table.pred_ids[q]),
        "iou": np.where(matched, matches.pred_iou[q], best_gt_iou[q]),
        "matched_gt": id_column(table.gt_ids[matches.pred_partner[q]]),
        "status": pred_status[q],
    })
    return per_object, pred_features


def _match_thresholds(table: Table, thresholds: tuple[float, ...], strict: bool):
    """Per-threshold score rows, and the matches at the reference (lowest) threshold."""
    n_gt, n_pred = table.gt_ids.size, table.pred_ids.size
    iou = table.iou
    matches = _Matches(
        gt_partner=np.zeros(n_gt, np.intp), pred_partner=np.zeros(n_pred, np.intp),
        gt_iou=np.zeros(n_gt), pred_iou=np.zeros(n_pred),
        gt_max_threshold=np.full(n_gt, np.nan), pred_max_threshold=np.full(n_pred, np.nan),
    )
    rows = []
    reference = None
    for threshold in thresholds:
        pairs = _match(table, threshold, strict)
        rows.append({"threshold": threshold,
                     **_scores(pairs.size, n_gt - 1, n_pred - 1, float(iou[pairs].sum()))})
        for best, index in ((matches.gt_max_threshold, table.rows[pairs]),
                            (matches.pred_max_threshold, table.cols[pairs])):
            best[index] = np.fmax(best[index], threshold)
        if threshold == min(thresholds) and reference is None:
            reference = pairs
    matched_rows, matched_cols = table.rows[reference], table.cols[reference]
    matches.gt_partner[matched_rows] = matched_cols
    matches.pred_partner[matched_cols] = matched_rows
    matches.gt_iou[matched_rows] = iou[reference]
    matches.pred_iou[matched_cols] = iou[reference]
    return rows, matches


# -- public API ----------------------------------------------------------------
def evaluate(
    gt,
    pred,
    thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    strict: bool = False,
) -> Evaluation:
    """Score a predicted label image against the ground truth (mAP of IoU).

    Parameters
    ----------
    gt, pred : array-like of int
        Instance labels of the same shape (any number of dimensions); 0 is background,
        ids need not be sequential and may be as large as the dtype allows.
    thresholds : float or sequence of float
        IoU thresholds in [0, 1]; default 0.5, 0.55, ..., 0.95 (DSB 2018). Each is read
        as the simplest fraction within 1e-6 of it, and compared exactly.
    strict : bool
        Match pairs with ``IoU > t`` (the seed's and Kaggle's text) instead of
        ``IoU >= t`` (stardist, the default). The two differ only where an IoU equals
        a threshold exactly.

    Returns
    -------
    Evaluation
        ``.map``, ``.per_threshold``, ``.per_object``, ``.pred_features``, ...

    Raises
    ------
    TypeError
        For boolean or floating-point labels.
    ValueError
        For negative labels, different shapes or thresholds outside [0, 1].

    Examples
    --------
    >>> gt = np.zeros((8, 8), int); gt[1:5, 1:5] = 1
    >>> pred = np.zeros((8, 8), int); pred[1:5, 1:4] = 7
    >>> evaluate(gt, pred).map  # IoU 0.75: a TP at 0.5 ... 0.75
    0.6
    """
    import pandas as pd

    gt, pred = _check_pair(gt, pred)
    thresholds = _check_thresholds(thresholds)
    table = contingency(gt, pred)
    iou = table.iou
    rows, matches = _match_thresholds(table, thresholds, strict)
    per_threshold = pd.DataFrame(rows, columns=list(PER_THRESHOLD_COLUMNS))
    per_object, pred_features = _per_object(table, matches, iou)

    overlaps = pd.DataFrame({
        "gt": id_column(table.gt_ids[table.rows]),
        "pred": id_column(table.pred_ids[table.cols]),
        "intersection": table.inter,
        "union": table.union,
        "iou": iou,
    })
    return Evaluation(
        map=float(per_threshold["accuracy"].mean()),
        thresholds=thresholds,
        strict=strict,
        reference_threshold=min(thresholds),
        n_true=table.gt_ids.size - 1,
        n_pred=table.pred_ids.size - 1,
        per_threshold=per_threshold,
        per_object=per_object,
        pred_features=pred_features,
        overlaps=overlaps,
    )


def _unpack(item, position: int):
    if len(item) == 3:
        return item
    if len(item) == 2:
        return (position, *item)
    raise ValueError(
        "each pair must be (ground_truth, prediction) or (name, ground_truth, prediction), "
        f"got an item of length {len(item)} at position {position}."
    )


def _pooled(evaluations: list[Evaluation], thresholds: tuple[float, ...]) -> pd.DataFrame:
    import pandas as pd

    n_true = sum(e.n_true for e in evaluations)
    n_pred = sum(e.n_pred for e in evaluations)
    rows = []
    for i, threshold in enumerate(thresholds):
        tp = sum(int(e.per_threshold["tp"].iat[i]) for e in evaluations)
        sum_iou = sum(float(e.per_threshold["mean_matched_score"].iat[i])
                      * int(e.per_threshold["tp"].iat[i]) for e in evaluations)
        rows.append({"threshold": threshold, **_scores(tp, n_true, n_pred, sum_iou)})
    return pd.DataFrame(rows, columns=list(PER_THRESHOLD_COLUMNS))


def evaluate_dataset(
    pairs: Iterable,
    thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    strict: bool = False,
) -> DatasetEvaluation:
    """Score a set of image pairs: per image, and the DSB 2018 dataset score.

    Parameters
    ----------
    pairs : iterable
        Items ``(gt, pred)`` or ``(name, gt, pred)`` of label arrays; it is read once,
        so a generator that loads files lazily works.
    thresholds : float or sequence of float
        IoU thresholds in [0, 1]; default 0.5, 0.55, ..., 0.95.
    strict : bool
        Match pairs with ``IoU > t`` instead of ``IoU >= t``.

    Returns
    -------
    DatasetEvaluation
        ``.map`` is the mean over images of the image mAPs (the DSB 2018 score);
        ``.per_threshold`` holds counts pooled over the images.
    """
    import pandas as pd

    thresholds = _check_thresholds(thresholds)
    names, evaluations = [], []
    for position, item in enumerate(pairs):
        name, gt, pred = _unpack(item, position)
        try:
            evaluations.append(evaluate(gt, pred, thresholds, strict=strict))
        except (TypeError, ValueError) as error:
            raise type(error)(f"image {name!r}: {error}") from error
        names.append(name)
    per_image = pd.DataFrame({
        "image": names,
        "n_true": [e.n_true for e in evaluations],
        "n_pred": [e.n_pred for e in evaluations],
        "map": [e.map for e in evaluations],
    })
    return DatasetEvaluation(
        map=float(per_image["map"].mean()) if evaluations else 0.0,
        thresholds=thresholds,
        strict=strict,
        per_image=per_image,
        per_threshold=_pooled(evaluations, thresholds),
        images=evaluations,
    )
