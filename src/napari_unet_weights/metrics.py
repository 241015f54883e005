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

from .weights import validate_labels

if TYPE_CHECKING:  # pandas and scipy.optimize are imported when needed: fast package import
    import pandas as pd

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DatasetEvaluation",
    "Evaluation",
    "evaluate",
    "evaluate_dataset",
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
        table = pd.concat(frames, ignore_index=True)
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
    text = os.fspath(path)
    is_folder = text.endswith(("/", os.sep)) or Path(text).is_dir()
    if is_folder:
        folder = Path(text)
        folder.mkdir(parents=True, exist_ok=True)
        targets = {name: folder / f"{name}.csv" for name in tables}
    else:
        prefix = Path(text)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        targets = {name: prefix.with_name(f"{prefix.name}_{name}.csv") for name in tables}
    for name, table in tables.items():
        table.to_csv(targets[name], index=False)
    return list(targets.values())


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


# -- contingency table ---------------------------------------------------------
def _relabel(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids present (0 first, always) and each pixel's index into them."""
    if flat.size == 0:
        return np.zeros(1, flat.dtype), np.zeros(0, np.intp)
    max_id = int(flat.max())
    if max_id <= 4 * flat.size + 1024:
        present = np.zeros(max_id + 1, bool)
        present[flat] = True
        present[0] = True
        ids = np.flatnonzero(present)
        lookup = np.zeros(max_id + 1, np.intp)
        lookup[ids] = np.arange(ids.size)
        return ids.astype(flat.dtype), lookup[flat]
    ids, inverse = np.unique(flat, return_inverse=True)
    if ids[0] != 0:
        ids = np.concatenate([np.zeros(1, ids.dtype), ids])
        inverse = inverse + 1
    return ids, inverse.ravel()


@dataclass
class _Table:
    """Contingency table of one image pair, in relabelled indices (0 = background).

    Only pixels where either image has an object are counted, so the background
    entries (index 0) of the areas and coordinate sums mean nothing.
    """

    shape: tuple[int, ...]
    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    gt_centroid: np.ndarray  # (n_gt, ndim)
    pred_centroid: np.ndarray
    rows: np.ndarray  # object pairs: gt index >= 1
    cols: np.ndarray  # object pairs: pred index >= 1
    inter: np.ndarray
    union: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        return self.inter / self.union


def _pair_counts(keys: np.ndarray, n_keys: int, coordinates: tuple[np.ndarray, ...]):
    """Distinct keys, their pixel counts and coordinate sums (one column per axis)."""
    if n_keys <= 2 * keys.size + (1 << 20):
        counts = np.bincount(keys, minlength=n_keys)
        pair_keys = np.flatnonzero(counts)
        sums = [np.bincount(keys, weights=c, minlength=n_keys)[pair_keys] for c in coordinates]
        return pair_keys, counts[pair_keys], sums
    pair_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = [np.bincount(inverse, weights=c, minlength=pair_keys.size) for c in coordinates]
    return pair_keys, counts, sums


def _per_object_sums(index: np.ndarray, counts: np.ndarray, sums: list, n: int):
    area = np.bincount(index, weights=counts, minlength=n).astype(np.int64)
    centroid = np.zeros((n, len(sums)))
    with np.errstate(invalid="ignore", divide="ignore"):
        for axis, values in enumerate(sums):
            centroid[:, axis] = np.bincount(index, weights=values, minlength=n) / area
    return area, centroid


def _contingency(gt: np.ndarray, pred: np.ndarray) -> _Table:
    gt_flat, pred_flat = gt.ravel(), pred.ravel()
    pixels = np.flatnonzero((gt_flat != 0) | (pred_flat != 0))
    coordinates = np.unravel_index(pixels, gt.shape)
    gt_ids, gt_index = _relabel(gt_flat[pixels])
    pred_ids, pred_index = _relabel(pred_flat[pixels])
    n_gt, n_pred = gt_ids.size, pred_ids.size
    keys = gt_index.astype(np.int64) * n_pred + pred_index
    pair_keys, pair_counts, pair_sums = _pair_counts(keys, n_gt * n_pred, coordinates)
    rows, cols = np.divmod(pair_keys, n_pred)
    pair_counts = pair_counts.astype(np.int64)
    gt_area, gt_centroid = _per_object_sums(rows, pair_counts, pair_sums, n_gt)
    pred_area, pred_centroid = _per_object_sums(cols, pair_counts, pair_sums, n_pred)
    objects = (rows > 0) & (cols > 0)
    rows, cols, inter = rows[objects], cols[objects], pair_counts[objects]
    union = gt_area[rows] + pred_area[cols] - inter
    return _Table(gt.shape, gt_ids, pred_ids, gt_area, pred_area, gt_centroid, pred_centroid,
                  rows, cols, inter, union)


# -- matching ----------------------------------------------------------------
def _candidates(table: _Table, threshold: float, strict: bool) -> np.ndarray:
    """Indices of the object pairs whose IoU passes ``threshold``, compared exactly."""
    fraction = _as_fraction(threshold)
    left = table.inter * fraction.denominator
    right = table.union * fraction.numerator
    passed = left > right if strict else left >= right
    return np.flatnonzero(passed)


def _match(table: _Table, threshold: float, strict: bool) -> np.ndarray:
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


def _match_components(table: _Table, pairs: np.ndarray) -> np.ndarray:
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


def _statuses(table: _Table, matches: _Matches) -> tuple[np.ndarray, np.ndarray]:
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


def _per_object(table: _Table, matches: _Matches, iou: np.ndarray):
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
        "label": np.concatenate([table.gt_ids[g], table.pred_ids[p]]).astype(np.int64),
        "area": np.concatenate([table.gt_area[g], table.pred_area[p]]),
    }
    for axis in range(len(table.shape)):
        columns[f"centroid-{axis}"] = np.concatenate(
            [table.gt_centroid[g, axis], table.pred_centroid[p, axis]])
    columns.update({
        "best_pred": np.concatenate([table.pred_ids[best_pred[g]].astype(np.int64), zeros_p]),
        "best_gt": np.concatenate([zeros_g, table.gt_ids[best_gt[p]].astype(np.int64)]),
        "best_iou": np.concatenate([best_pred_iou[g], best_gt_iou[p]]),
        "matched_pred": np.concatenate(
            [table.pred_ids[matches.gt_partner[g]].astype(np.int64), zeros_p]),
        "matched_iou": np.concatenate([matches.gt_iou[g], np.zeros(p.size)]),
        "max_tp_threshold": np.concatenate(
            [matches.gt_max_threshold[g], matches.pred_max_threshold[p]]),
        "status": np.concatenate([gt_status[g], np.full(p.size, "false positive", object)]),
    })
    per_object = pd.DataFrame(columns)

    q = np.arange(1, n_pred)
    matched = matches.pred_partner[q] > 0
    pred_features = pd.DataFrame({
        "index": table.pred_ids[q].astype(np.int64),
        "iou": np.where(matched, matches.pred_iou[q], best_gt_iou[q]),
        "matched_gt": table.gt_ids[matches.pred_partner[q]].astype(np.int64),
        "status": pred_status[q],
    })
    return per_object, pred_features


def _match_thresholds(table: _Table, thresholds: tuple[float, ...], strict: bool):
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
    table = _contingency(gt, pred)
    iou = table.iou
    rows, matches = _match_thresholds(table, thresholds, strict)
    per_threshold = pd.DataFrame(rows, columns=list(PER_THRESHOLD_COLUMNS))
    per_object, pred_features = _per_object(table, matches, iou)

    overlaps = pd.DataFrame({
        "gt": table.gt_ids[table.rows].astype(np.int64),
        "pred": table.pred_ids[table.cols].astype(np.int64),
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
