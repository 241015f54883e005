"""Check instance labels for the annotation errors that spoil weight maps and training.

:func:`check_labels` finds, in one pass over the pixels (see :mod:`._runs`):

``"disconnected"``
    one id painted in several separate places (8-connectivity in 2-D, 26 in 3-D);
``"small"``
    an object of fewer than ``min_size`` pixels (stray pixels of a new id);
``"hole"``
    background enclosed by one object (4-/6-connected background whose neighbouring
    object pixels all carry that object's id);
``"touching"``
    two objects that share a border with no background between them, diagonal contacts
    included: the pixels that the 2-class training target turns into a gap
    (:func:`~napari_unet_weights.unet.targets.separate_touching`);
``"reused"``
    with ``spatial_dims`` below ``ndim`` (a stack checked plane by plane): an id that
    appears in several planes.

The :class:`LabelReport` lists them as a table and gives the pixels of each row, to show
or to fix (:mod:`.fixes`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from .._checks import check_number, validate_labels
from ._runs import Findings, contact_mask, find_problems, hole_mask, pieces, plane_view

if TYPE_CHECKING:  # pandas is imported when a table is made: the package imports fast
    import pandas as pd

__all__ = ["PROBLEMS", "LabelReport", "check_labels"]

#: The problems that :func:`check_labels` looks for, in the order of its tables.
PROBLEMS = ("disconnected", "small", "hole", "touching", "reused")

#: The columns of :attr:`LabelReport.problems`.
COLUMNS = ("label", "problem", "plane", "other", "area", "bbox", "centroid", "detail")


# -- parameters ----------------------------------------------------------------
def _check_spatial_dims(spatial_dims, ndim: int) -> int:
    if spatial_dims is None:
        return ndim
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, numbers.Integral):
        raise TypeError(f"spatial_dims must be an int or None, got {spatial_dims!r}.")
    if not 1 <= spatial_dims <= ndim:
        raise ValueError(f"spatial_dims must lie between 1 and the labels' ndim ({ndim}), "
                         f"got {spatial_dims}.")
    return int(spatial_dims)


def _check_spacing(spacing, spatial_dims: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    values = (spacing,) if isinstance(spacing, numbers.Real) else tuple(spacing)
    if len(values) not in (1, spatial_dims):
        raise ValueError(f"spacing needs one value per spatial axis ({spatial_dims}), got "
                         f"{len(values)}: {spacing!r}.")
    values = tuple(check_number(v, "spacing", allow_minimum=False) for v in values)
    return values * spatial_dims if len(values) == 1 else values


def _check_checks(checks) -> tuple[str, ...]:
    if checks is None:
        return PROBLEMS
    names = {checks} if isinstance(checks, str) else set(checks)
    unknown = names - set(PROBLEMS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose from {PROBLEMS}.")
    return tuple(name for name in PROBLEMS if name in names)


def _labels_array(labels) -> np.ndarray:
    labels = validate_labels(labels)
    if labels.dtype == np.uint64 and labels.size and labels.max() > np.iinfo(np.int64).max:
        raise ValueError("labels above 2**63 - 1 are not supported; renumber them.")
    return labels


# -- the pixels of one row -------------------------------------------------------
def problem_mask(crop: np.ndarray, problem: str, label: int, other: int = 0) -> np.ndarray:
    """The problem pixels of one report row in ``crop`` (one plane, around the object).

    ``"disconnected"``: the pieces other than the largest; ``"small"`` and ``"reused"``:
    the object; ``"hole"``: the enclosed background; ``"touching"``: the pixels of
    either object next to the other.
    """
    if problem == "disconnected":
        components, largest = pieces(crop == label)
        return (components != 0) & (components != largest)
    if problem == "hole":
        return hole_mask(crop, label)
    if problem == "touching":
        return contact_mask(crop, label, other)
    return crop == label


# -- the report ------------------------------------------------------------------
class LabelReport:
    """What :func:`check_labels` found: one row per (object, problem).

    Rows are numbered 0..n-1 in the order of :attr:`problems`; :meth:`pixels`,
    :meth:`region` and :meth:`mask` give their pixels, read from the report's own copy
    of the labels (later edits of the checked array do not change them).

    Attributes
    ----------
    shape : tuple of int
        The labels' shape.
    spatial_dims : int
        Trailing axes that form one plane; the leading ones index planes.
    spacing : tuple of float or None
        Pixel size per spatial axis; ``min_size`` is in its units when given.
    min_size : float
        Objects below this size are ``"small"``.
    checks : tuple of str
        The problems looked for.
    n_objects : int
        Objects checked: (plane, id) pairs for stacks checked plane by plane.
    """

    def __init__(self, found: Findings, rows: dict[str, np.ndarray], *, min_size: float,
                 spacing: tuple[float, ...] | None, checks: tuple[str, ...]) -> None:
        runs = found.runs
        self.shape, self.spatial_dims = runs.shape, runs.spatial_dims
        self.spacing, self.min_size, self.checks = spacing, min_size, checks
        self.n_objects = len(found.ids)
        self._labels = runs.labels()
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows["code"])

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.summary.items() if n)
        return (f"<LabelReport {self.shape}: {self.n_objects} objects, "
                f"{counts or 'no problems'}>")

    @property
    def clean(self) -> bool:
        """True when no problem was found."""
        return len(self) == 0

    @property
    def summary(self) -> pd.Series:
        """How many rows of each problem checked (0 included), named ``"count"``."""
        import pandas as pd

        counts = np.bincount(self._rows["code"], minlength=len(PROBLEMS))
        return pd.Series({name: int(counts[PROBLEMS.index(name)]) for name in self.checks},
                         name="count", dtype=np.int64)

    def _plane(self, index: int) -> tuple[int, ...]:
        plane_shape = self.shape[: len(self.shape) - self.spatial_dims]
        return tuple(int(i) for i in np.unravel_index(index, plane_shape)) if plane_shape \
            else ()

    @cached_property
    def problems(self) -> pd.DataFrame:
        """The problems, one row per (object, problem), sorted by plane and label.

        Columns: ``label`` (id), ``problem`` (one of :data:`PROBLEMS`), ``plane`` (the
        indices along the leading axes, ``()`` when all axes are spatial), ``other`` (the
        other id of a touching pair, else 0), ``area`` (pixels of ``label`` in its plane),
        ``bbox`` (``(min_0, ..., min_n-1, max_0, ..., max_n-1)``, max exclusive, in the
        labels' coordinates like ``skimage.measure.regionprops``; that of ``label``),
        ``centroid`` (of ``label``, in pixel coordinates) and ``detail`` (in words).
        """
        import pandas as pd

        rows = self._rows
        planes = ([()] * len(self) if len(self.shape) == self.spatial_dims
                  else [self._plane(p) for p in rows["plane"]])
        return pd.DataFrame({
            "label": rows["label"],
            "problem": pd.Categorical.from_codes(rows["code"], categories=PROBLEMS),
            "plane": planes,
            "other": rows["other"],
            "area": rows["area"],
            "bbox": list(map(tuple, rows["bbox"].tolist())),
            "centroid": list(map(tuple, rows["centroid"].tolist())),
            "detail": [self._detail(i) for i in range(len(self))],
        }, columns=list(COLUMNS))

    def _detail(self, row: int) -> str:
        rows = self._rows
        problem, a, b = PROBLEMS[rows["code"][row]], rows["a"][row], rows["b"][row]
        if problem == "disconnected":
            return f"{a} pieces; {b} px outside the largest"
        if problem == "small":
            area = int(rows["area"][row])
            size = "" if self.spacing is None else f", size {area * np.prod(self.spacing):g}"
            return f"{area} px{size} < min_size {self.min_size:g}"
        if problem == "hole":
            return f"{a} hole{'s' if a > 1 else ''}, {b} px"
        if problem == "touching":
            return f"touches {rows['other'][row]}"
        return f"id also in plane {self._plane(a)}"

    def region(self, row: int) -> tuple[slice, ...]:
        """The box that holds the problem pixels of ``row`` (and its object), one pixel
        wider where the image allows, one index wide along the plane axes."""
        box = self._rows["region"][row]
        ndim = len(self.shape)
        return tuple(slice(int(box[i]), int(box[ndim + i])) for i in range(ndim))

    def _crop_mask(self, row: int) -> np.ndarray:
        crop = plane_view(self._labels, self.region(row), self.spatial_dims)
        return problem_mask(crop, PROBLEMS[self._rows["code"][row]],
                            int(self._rows["label"][row]), int(self._rows["other"][row]))

    def pixels(self, row: int) -> tuple[np.ndarray, ...]:
        """Indices of the problem pixels of ``row`` (as ``np.nonzero``), in the labels'
        coordinates: ``labels[report.pixels(i)]``. See :func:`problem_mask`."""
        region = self.region(row)
        found = np.nonzero(self._crop_mask(row))
        plane = tuple(np.full(len(found[0]), s.start) for s in region[:-self.spatial_dims])
        return plane + tuple(c + s.start for c, s in zip(found, region[-self.spatial_dims:]))

    def mask(self, rows: Iterable[int] | None = None) -> np.ndarray:
        """Boolean image of the problem pixels of ``rows`` (default: all rows)."""
        mask = np.zeros(self.shape, dtype=bool)
        for row in range(len(self)) if rows is None else rows:
            view = plane_view(mask, self.region(int(row)), self.spatial_dims)
            view |= self._crop_mask(int(row))
        return mask

    def problem_image(self) -> np.ndarray:
        """uint8 image of the problem pixels, ``1 + PROBLEMS.index(problem)`` (0 elsewhere;
        a pixel of several rows shows the first problem of :data:`PROBLEMS`): for a
        Labels layer of its own."""
        image = np.zeros(self.shape, dtype=np.uint8)
        for row in np.argsort(-self._rows["code"], kind="stable"):
            view = plane_view(image, self.region(int(row)), self.spatial_dims)
            view[self._crop_mask(int(row))] = self._rows["code"][row] + 1
        return image


# -- the check -----------------------------------------------------------------
def _reused(found: Findings) -> tuple[np.ndarray, np.ndarray]:
    """Objects whose id appears in an earlier plane, and that plane."""
    if not found.runs.plane_shape:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((found.plane, found.ids))
    ids = found.ids[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(ids)), 0))
    return order[~first], found.plane[order[group_start[~first]]]


def _problem_rows(found: Findings, checks: tuple[str, ...], size: np.ndarray,
                  min_size: float) -> list[tuple]:
    """Per problem: (code, object, other object or -1, other id, detail a, detail b)."""
    parts = []
    for name in checks:
        code = PROBLEMS.index(name)
        other_object = other = a = b = None
        if name == "disconnected":
            objects = np.flatnonzero(found.pieces > 1)
            a = found.pieces[objects]
            b = found.area[objects] - found.largest_piece[objects]
        elif name == "small":
            objects = np.flatnonzero(size < min_size)
        elif name == "hole":
            objects = np.flatnonzero(found.holes > 0)
            a, b = found.holes[objects], found.hole_pixels[objects]
        elif name == "touching":
            objects, other_object = found.touching.T
            other = found.ids[other_object]
        else:
            objects, a = _reused(found)
        zeros = np.zeros(len(objects), dtype=np.int64)
        parts.append((code, objects, zeros - 1 if other_object is None else other_object,
                      *(zeros if x is None else x for x in (other, a, b))))
    return parts


def _assemble(found: Findings, parts, ndim: int, spatial_dims: int) -> dict[str, np.ndarray]:
    code = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in parts])
    objects = np.concatenate([p[1] for p in parts]).astype(np.int64)
    other_object = np.concatenate([p[2] for p in parts]).astype(np.int64)
    other = np.concatenate([p[3] for p in parts]).astype(np.int64)
    a, b = (np.concatenate([p[i] for p in parts]).astype(np.int64) for i in (4, 5))
    order = np.lexsort((other, code, found.ids[objects], found.plane[objects]))
    code, objects, other_object, other, a, b = (
        x[order] for x in (code, objects, other_object, other, a, b))
    needed = np.unique(np.concatenate([objects, other_object[other_object >= 0]]))
    boxes, centroids = found.boxes(needed)
    box = boxes[np.searchsorted(needed, objects)]
    region = box.copy()
    touching = other_object >= 0
    if touching.any():
        second = boxes[np.searchsorted(needed, other_object[touching])]
        region[touching, :ndim] = np.minimum(region[touching, :ndim], second[:, :ndim])
        region[touching, ndim:] = np.maximum(region[touching, ndim:], second[:, ndim:])
    spatial = slice(ndim - spatial_dims, ndim)
    region[:, spatial] = np.maximum(region[:, spatial] - 1, 0)
    high = slice(2 * ndim - spatial_dims, 2 * ndim)
    region[:, high] = np.minimum(region[:, high] + 1, found.runs.shape[spatial])
    return {"code": code, "label": found.ids[objects], "plane": found.plane[objects],
            "other": other, "area": found.area[objects], "bbox": box,
            "centroid": centroids[np.searchsorted(needed, objects)], "region": region,
            "a": a, "b": b}


def check_labels(
    labels,
    *,
    min_size: float = 10,
    spatial_dims: int | None = None,
    spacing: Sequence[float] | None = None,
    checks: Iterable[str] | str | None = None,
) -> LabelReport:
    """Find the annotation errors in instance labels.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background, any number of dimensions; ids need not be
        sequential.
    min_size : float
        Objects with fewer pixels are ``"small"`` (with ``spacing``: a smaller area or
        volume, pixels × the product of ``spacing``). 0 turns the check off.
    spatial_dims : int, optional
        Number of trailing axes that form one image; the leading axes (time, z annotated
        slice by slice, ...) index planes checked one by one, and an id found in several
        planes is ``"reused"``. Default: all axes are spatial (3-D objects in a stack).
    spacing : sequence of float, optional
        Pixel size along each spatial axis (one value for all); only ``min_size`` uses
        it.
    checks : iterable of str, optional
        The problems to look for, from :data:`PROBLEMS` (default: all). Leaving out
        ``"touching"`` (labels for a 3-class target) or ``"reused"`` (tracked ids in a
        time series) also saves their time.

    Returns
    -------
    LabelReport
        ``.problems`` (a DataFrame, one row per object and problem), ``.summary`` (counts
        per problem), and the pixels of each row.

    Raises
    ------
    TypeError
        For labels that are not integers, or a parameter of the wrong type.
    ValueError
        For negative labels, or a parameter outside its range.

    Notes
    -----
    Cost: one comparison of each pixel with its neighbour along the last axis, then work
    on the runs of equal ids (about one per object row): on the densest DSB 2018 labels
    0.7-2.7 times one ``scipy.ndimage.label`` of the image, under 2 ms for 369 nuclei in
    520 x 696 pixels (``benchmarks/bench_check.py``). Objects are 8-connected in 2-D (26 in
    3-D), the background between them 4- (6-) connected: a diagonal chain of pixels
    closes a hole. Background enclosed around another object is no hole (filling it
    would bury that object).

    Examples
    --------
    >>> labels = np.zeros((6, 9), dtype=np.uint8)
    >>> labels[1:5, 1:5] = 1
    >>> labels[2, 2] = 0                      # a hole in object 1
    >>> labels[1:5, 5:7] = 2                  # object 2 touches object 1
    >>> labels[5, 8] = 3                      # one stray pixel
    >>> report = check_labels(labels, min_size=4)
    >>> report.problems[["label", "problem", "other", "area"]]
       label   problem  other  area
    0      1      hole      0    15
    1      1  touching      2    15
    2      3     small      0     1
    """
    labels = _labels_array(labels)
    spatial_dims = _check_spatial_dims(spatial_dims, labels.ndim)
    spacing = _check_spacing(spacing, spatial_dims)
    min_size = check_number(min_size, "min_size")
    checks = _check_checks(checks)
    found = find_problems(labels, spatial_dims, frozenset(checks))
    voxel = float(np.prod(spacing)) if spacing is not None else 1.0
    parts = _problem_rows(found, checks, found.area * voxel, min_size)
    if not parts:
        parts = [(0, *(np.zeros(0, dtype=np.int64),) * 5)]
    rows = _assemble(found, parts, labels.ndim, spatial_dims)
    return LabelReport(found, rows, min_size=min_size, spacing=spacing, checks=checks)
