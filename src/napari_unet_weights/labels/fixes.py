"""Fixes for the problems that :func:`.checks.check_labels` finds.

Every fix is a pure function: it returns a :class:`LabelFix` that holds a new array
(the input is never changed) and where it differs from the input, so that an editor can
apply one fix as one undoable edit (``layer.data_setitem(fix.indices, fix.values)`` in
napari). A fix finds its targets afresh in the array it is given (with
:func:`~.checks.check_labels`), so a stale report cannot misplace it.

=================  ===============================================================
problem            fix
=================  ===============================================================
``disconnected``   :func:`split_disconnected`: the largest piece keeps the id, the
                   others get new ids
``small``          :func:`remove_small`: to background, or ``merge=True`` into the
                   neighbour it touches most
``hole``           :func:`fill_holes`: the enclosed background gets the object's id
``touching``       :func:`cut_touching`: a one-pixel gap, the 2-class training
                   target's rule (the smaller id gives up its contact pixels)
``reused``         :func:`relabel` (all ids sequential, unique over the planes), or
                   :func:`fix_problems` on its rows (new ids for the later planes)
=================  ===============================================================

:func:`fix_problems` applies the fixes of some rows of a report (one row, or all rows
of one problem); :func:`fix_labels` fixes everything, as ``napari-unet-weights check
--fix`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from ..unet.targets import separate_touching
from ._runs import hole_mask, pieces, plane_view
from .checks import PROBLEMS, LabelReport, check_labels
from .ids import IdOverflowError, label_dtype, sequential_ids

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IdOverflowError",
    "LabelFix",
    "cut_touching",
    "fill_holes",
    "fix_labels",
    "fix_problems",
    "label_dtype",
    "relabel",
    "remove_small",
    "split_disconnected",
]

#: The order in which :func:`fix_problems` and :func:`fix_labels` apply the fixes: what
#: one fix leaves behind (pieces split off, background freed) is there for the next.
FIX_ORDER = ("disconnected", "small", "hole", "touching", "reused")
#: Rounds of :func:`fix_labels` at most (a cut can split off a piece, and so on).
MAX_ROUNDS = 4


@dataclass(frozen=True, eq=False)
class LabelFix:
    """The result of a fix: the new labels and where they differ from the old.

    Attributes
    ----------
    labels : numpy.ndarray
        The fixed labels, a new array. Its dtype is the input's, wider only if new ids
        did not fit.
    region : tuple of slice or None
        The smallest box that holds every changed pixel; None if nothing changed.
    """

    labels: np.ndarray
    region: tuple[slice, ...] | None
    _before: np.ndarray | None = None

    @classmethod
    def between(cls, old: np.ndarray, new: np.ndarray) -> LabelFix:
        """The fix that turns ``old`` into ``new`` (same shape).

        ``new`` gets the dtype that :func:`label_dtype` chooses from its ids: ``old``'s
        when they fit it (ids widened by one step and relabelled by the next go back).
        """
        if new.dtype != old.dtype:
            new = new.astype(label_dtype(old.dtype, int(new.max(initial=0))), copy=False)
        changed = old != new
        if not changed.any():
            return cls(new, None, None)
        region = tuple(
            slice(int(np.argmax(hit)), len(hit) - int(np.argmax(hit[::-1])))
            for hit in (changed.any(axis=tuple(a for a in range(old.ndim) if a != axis))
                        for axis in range(old.ndim)))
        return cls(new, region, old[region].copy())

    @property
    def changed(self) -> int:
        """How many pixels changed."""
        return 0 if self.region is None else int(np.count_nonzero(
            self._before != self.labels[self.region]))

    @property
    def indices(self) -> tuple[np.ndarray, ...]:
        """Indices of the changed pixels, as ``np.nonzero`` gives them."""
        if self.region is None:
            return tuple(np.zeros(0, dtype=np.intp) for _ in range(self.labels.ndim))
        found = np.nonzero(self._before != self.labels[self.region])
        return tuple(index + s.start for index, s in zip(found, self.region))

    @property
    def values(self) -> np.ndarray:
        """The new values of the changed pixels (``labels[indices]``)."""
        return self.labels[self.indices]

    def __repr__(self) -> str:
        return f"<LabelFix {self.changed} pixels changed in {self.region}>"


# -- the dtype of fixed labels (the rule: :func:`.ids.label_dtype`) ----------
def _with_room(work: np.ndarray, new_ids: int) -> np.ndarray:
    """``work``, in a wider dtype if ``max + new_ids`` does not fit its own."""
    top = int(work.max(initial=0)) + new_ids
    return work.astype(label_dtype(work.dtype, top), copy=False)


# -- helpers -------------------------------------------------------------------


def _where(label=None, plane=None, other=None):
    """The rows of a problems table for ``label`` (either id of a touching pair),
    ``other`` (with ``label``: that pair) and ``plane``; None: any."""
    def select(table: pd.DataFrame) -> list[int]:
        keep = np.ones(len(table), dtype=bool)
        if label is not None:
            keep &= ((table["label"] == label) | (table["other"] == label)).to_numpy()
        if other is not None:
            keep &= ((table["label"] == other) | (table["other"] == other)).to_numpy()
        if plane is not None:
            keep &= np.array([p == tuple(plane) for p in table["plane"]], dtype=bool)
        return [int(i) for i in np.flatnonzero(keep)]
    return select


def _fix(labels: np.ndarray, problem: str, select, *, spatial_dims, min_size: float = 0,
         spacing=None, merge: bool = False) -> np.ndarray:
    """``labels`` with the ``problem`` of the rows that ``select`` picks from a fresh
    check fixed."""
    report = check_labels(labels, checks=(problem,), spatial_dims=spatial_dims,
                          min_size=min_size, spacing=spacing)
    rows = select(report.problems)
    if not rows:
        return labels
    if problem == "small":
        return _remove(labels, report, rows, min_size, merge)
    return _APPLY[problem](labels, report, rows)


def _view(work: np.ndarray, report: LabelReport, row: int) -> np.ndarray:
    return plane_view(work, report.region(row), report.spatial_dims)


def _ids(report: LabelReport, row: int) -> tuple[int, int]:
    table = report.problems
    return int(table["label"].iat[row]), int(table["other"].iat[row])


# -- the fixes ---------------------------------------------------------------------
def _split(old: np.ndarray, report: LabelReport, rows: list[int]) -> np.ndarray:
    found = [(row, *pieces(_view(old, report, row) == _ids(report, row)[0])) for row in rows]
    work = _with_room(old.copy(), sum(int(c.max()) - 1 for _, c, _ in found))
    next_id = int(work.max(initial=0)) + 1
    for row, components, largest in found:
        view = _view(work, report, row)
        for piece in range(1, int(components.max()) + 1):
            if piece != largest:
                view[components == piece] = next_id
                next_id += 1
    return work


def split_disconnected(labels, label: int | None = None, *, plane: Sequence[int] | None = None,
                       spatial_dims: int | None = None) -> LabelFix:
    """Give every piece of a disconnected id but the largest a new id of its own.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.
    label : int, optional
        Only this id (default: every disconnected id).
    plane : sequence of int, optional
        Only this plane of a stack checked plane by plane (default: all planes).
    spatial_dims : int, optional
        As in :func:`~.checks.check_labels`.

    Returns
    -------
    LabelFix
        New ids follow the largest id, in the order of the rows, then of the pieces
        (raster order); of two largest pieces of equal size the first keeps the id.

    Raises
    ------
    IdOverflowError
        When the new ids fit no integer dtype (see :func:`label_dtype`).
    """
    old = np.asarray(labels)
    return LabelFix.between(old, _fix(old, "disconnected", _where(label, plane),
                                      spatial_dims=spatial_dims))


def _merge_target(view: np.ndarray, mask: np.ndarray) -> int:
    """The id that touches ``mask`` with the most pixels (the smallest of equals), or 0."""
    ring = ndi.binary_dilation(mask, np.ones((3,) * mask.ndim, dtype=bool)) & ~mask
    ids = view[ring]
    ids = ids[ids != 0]
    if not ids.size:
        return 0
    values, counts = np.unique(ids, return_counts=True)
    return int(values[np.argmax(counts)])


def _remove(old: np.ndarray, report: LabelReport, rows: list[int], min_size: float,
            merge: bool) -> np.ndarray:
    work = old.copy()
    table = report.problems
    voxel = float(np.prod(report.spacing)) if report.spacing is not None else 1.0
    keys = list(zip(table["plane"], table["label"].astype(int)))
    boxes = {key: report.region(row) for row, key in enumerate(keys)}
    area = {key: int(a) for key, a in zip(keys, table["area"])}
    for row in sorted(rows, key=lambda r: (table["area"].iat[r], r)):
        key = keys[row]
        if area[key] * voxel >= min_size:  # grown by what merged into it
            continue
        view = plane_view(work, boxes[key], report.spatial_dims)
        mask = view == key[1]
        target = _merge_target(view, mask) if merge else 0
        view[mask] = target
        into = (key[0], target)
        if target and into in boxes:
            area[into] += area[key]
            boxes[into] = tuple(slice(min(a.start, b.start), max(a.stop, b.stop))
                                for a, b in zip(boxes[into], boxes[key]))
    return work


def remove_small(labels, min_size: float = 10, label: int | None = None, *,
                 merge: bool = False, plane: Sequence[int] | None = None,
                 spatial_dims: int | None = None,
                 spacing: Sequence[float] | None = None) -> LabelFix:
    """Remove the objects smaller than ``min_size``, or merge them into a neighbour.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.
    min_size : float
        As in :func:`~.checks.check_labels` (pixels, or ``spacing`` units).
    label : int, optional
        Only this id (default: every small object).
    merge : bool
        False: the objects become background. True: each takes the id of the neighbour
        (8-/26-connectivity) that it touches with the most pixels, the smallest such id
        on a tie; an object that touches none becomes background. Objects are taken
        from the smallest up, so a small object merged into another small one travels
        on with it if the two together are still small.
    plane, spatial_dims, spacing
        As in :func:`split_disconnected` and :func:`~.checks.check_labels`.

    Returns
    -------
    LabelFix
    """
    old = np.asarray(labels)
    return LabelFix.between(old, _fix(old, "small", _where(label, plane), min_size=min_size,
                                      spatial_dims=spatial_dims, spacing=spacing,
                                      merge=merge))


def _fill(old: np.ndarray, report: LabelReport, rows: list[int]) -> np.ndarray:
    work = old.copy()
    for row in rows:
        view = _view(work, report, row)
        object_id = _ids(report, row)[0]
        view[hole_mask(view, object_id)] = object_id
    return work


def fill_holes(labels, label: int | None = None, *, plane: Sequence[int] | None = None,
               spatial_dims: int | None = None) -> LabelFix:
    """Give the background enclosed by one object that object's id.

    Parameters
    ----------
    labels, plane, spatial_dims
        As in :func:`split_disconnected`.
    label : int, optional
        Only the holes of this id (default: all holes).

    Returns
    -------
    LabelFix
    """
    old = np.asarray(labels)
    return LabelFix.between(old, _fix(old, "hole", _where(label, plane),
                                      spatial_dims=spatial_dims))


def _cut(old: np.ndarray, report: LabelReport, rows: list[int]) -> np.ndarray:
    cuts = []
    for row in rows:  # all decided on the labels as given, as the training rule is
        view = _view(old, report, row)
        a, b = _ids(report, row)
        pair = np.where((view == a) | (view == b), view, 0)
        cuts.append((row, (pair != 0) & (separate_touching(pair) == 0)))
    work = old.copy()
    for row, cut in cuts:
        _view(work, report, row)[cut] = 0
    return work


def cut_touching(labels, label: int | None = None, other: int | None = None, *,
                 plane: Sequence[int] | None = None,
                 spatial_dims: int | None = None) -> LabelFix:
    """Cut a one-pixel background gap between touching objects.

    The rule of the 2-class training target
    (:func:`~napari_unet_weights.unet.targets.separate_touching`): a pixel becomes
    background when one of its neighbours (8-/26-connectivity, within its plane) has a
    larger id; of two touching objects the smaller id gives up its contact pixels.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.
    label : int, optional
        Only the contacts of this id (default: all).
    other : int, optional
        With ``label``: only the contact between ``label`` and ``other``.
    plane, spatial_dims
        As in :func:`split_disconnected`.

    Returns
    -------
    LabelFix
        Without ``label`` and ``plane``, the labels of the 2-class target exactly.
    """
    old = np.asarray(labels)
    if other is not None and label is None:
        raise ValueError("other needs label: the pair label-other.")
    if label is not None or plane is not None:
        return LabelFix.between(old, _fix(old, "touching", _where(label, plane, other),
                                          spatial_dims=spatial_dims))
    spatial_dims = old.ndim if spatial_dims is None else spatial_dims
    work = old.copy()
    planes = work.reshape((-1, *work.shape[work.ndim - spatial_dims:]))
    for index, image in enumerate(planes):
        planes[index] = separate_touching(image)
    return LabelFix.between(old, work.reshape(old.shape))


def relabel(labels, *, spatial_dims: int | None = None) -> LabelFix:
    """Number the objects 1..N, in the order of their ids (sequential labels).

    With ``spatial_dims`` below ``ndim`` each (plane, id) gets an id of its own, in the
    order of the planes then of the ids: no id is then ``"reused"`` across planes.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.
    spatial_dims : int, optional
        As in :func:`~.checks.check_labels`.

    Returns
    -------
    LabelFix
        The dtype is the input's, wider if N does not fit.
    """
    old = np.asarray(labels)
    spatial_dims = old.ndim if spatial_dims is None else spatial_dims
    values, dense = sequential_ids(old.ravel())
    lead = old.shape[: old.ndim - spatial_dims]
    plane = np.arange(int(np.prod(lead, dtype=np.int64))).repeat(
        int(np.prod(old.shape[old.ndim - spatial_dims:], dtype=np.int64)))
    keys = np.where(dense > 0, plane * len(values) + dense, 0)  # (plane, id) → one key
    return LabelFix.between(old, sequential_ids(keys)[1].reshape(old.shape))


def _new_ids(old: np.ndarray, report: LabelReport, rows: list[int]) -> np.ndarray:
    """A new id for each (plane, id) of the ``"reused"`` rows."""
    work = _with_room(old.copy(), len(rows))
    next_id = int(work.max(initial=0)) + 1
    for row in rows:
        view = _view(work, report, row)
        view[view == _ids(report, row)[0]] = next_id
        next_id += 1
    return work


_APPLY = {"disconnected": _split, "hole": _fill, "touching": _cut, "reused": _new_ids}


# -- several fixes ---------------------------------------------------------------
def _keys(table: pd.DataFrame) -> set[tuple]:
    return {(int(a), int(b), tuple(p)) for a, b, p in
            zip(table["label"], table["other"], table["plane"])}


def fix_problems(labels, rows: pd.DataFrame | pd.Series, *, min_size: float = 10,
                 merge_small: bool = False, spatial_dims: int | None = None,
                 spacing: Sequence[float] | None = None) -> LabelFix:
    """Fix the problems of some rows of a :class:`~.checks.LabelReport`.

    Parameters
    ----------
    labels : array-like of int
        The labels to fix (normally those that were checked; the targets are found
        afresh in them, so rows whose problem is gone change nothing).
    rows : pandas.DataFrame or pandas.Series
        Rows of ``report.problems``: one row (``report.problems.loc[[i]]`` or
        ``.iloc[i]``), all rows of one problem
        (``report.problems.query("problem == 'hole'")``), or any mix, applied in the
        order of :data:`FIX_ORDER`.
    min_size, spatial_dims, spacing
        Those of the check.
    merge_small : bool
        ``"small"`` rows: merge into the neighbour touched most instead of removing.

    Returns
    -------
    LabelFix
        Relative to ``labels``: one edit for all the rows.
    """
    import pandas as pd

    old = np.asarray(labels)
    if isinstance(rows, pd.Series):
        rows = rows.to_frame().T
    unknown = set(rows["problem"].astype(str)) - set(PROBLEMS)
    if unknown:
        raise ValueError(f"unknown problems {sorted(unknown)}; rows must come from "
                         "LabelReport.problems.")
    work = old
    for problem in FIX_ORDER:
        wanted = _keys(rows[rows["problem"].astype(str) == problem])
        if wanted:
            def select(table, wanted=wanted):
                return [i for i, key in enumerate(zip(
                    table["label"].astype(int), table["other"].astype(int),
                    map(tuple, table["plane"]))) if key in wanted]
            work = _fix(work, problem, select, min_size=min_size, spatial_dims=spatial_dims,
                        spacing=spacing, merge=merge_small)
    return LabelFix.between(old, work)


def fix_labels(labels, *, min_size: float = 10, spatial_dims: int | None = None,
               spacing: Sequence[float] | None = None, checks: Iterable[str] | None = None,
               merge_small: bool = False, sequential: bool = False) -> LabelFix:
    """Fix every problem that :func:`~.checks.check_labels` finds.

    In rounds of :data:`FIX_ORDER` (split, remove small, fill holes, cut touching, new
    ids for reused ones), until a check finds none of the ``checks`` or after
    :data:`MAX_ROUNDS` rounds: a cut can split off a small piece, which the next round
    removes.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background.
    min_size, spatial_dims, spacing, checks
        As in :func:`~.checks.check_labels`; only the problems of ``checks`` are
        fixed.
    merge_small : bool
        Merge small objects into the neighbour they touch most instead of removing them.
    sequential : bool
        Finally number the objects 1..N (:func:`relabel`). Where the dtype has no room
        for the new ids of a split (an id at its maximum), the objects are numbered
        1..N first as well.

    Returns
    -------
    LabelFix
        In the input's dtype if the ids fit it (:func:`label_dtype`).

    Raises
    ------
    IdOverflowError
        Without ``sequential``, when new ids do not fit any integer dtype (an id
        2**63 - 1 split in two): renumber the labels first.
    """
    old = np.asarray(labels)
    options = {"min_size": min_size, "spatial_dims": spatial_dims, "spacing": spacing}
    try:
        work = _fix_rounds(old, checks, merge_small, options)
    except IdOverflowError:
        if not sequential:
            raise
        # no room for new ids; they are numbered 1..N in the end anyway
        work = _fix_rounds(relabel(old, spatial_dims=spatial_dims).labels, checks,
                           merge_small, options)
    if sequential:
        work = relabel(work, spatial_dims=spatial_dims).labels
    return LabelFix.between(old, work)


def _fix_rounds(old: np.ndarray, checks, merge_small: bool, options: dict) -> np.ndarray:
    """The rounds of :func:`fix_labels`: the fixed labels."""
    report = check_labels(old, checks=checks, **options)
    work = old
    for _ in range(MAX_ROUNDS):
        if report.clean:
            break
        for problem in FIX_ORDER:
            if not report.summary.get(problem, 0):
                continue
            if problem == "touching":
                work = cut_touching(work, spatial_dims=options["spatial_dims"]).labels
            else:
                work = _fix(work, problem, _where(), merge=merge_small, **options)
        report = check_labels(work, checks=report.checks, **options)
    return work
