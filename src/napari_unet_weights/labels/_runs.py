"""The single pass over the pixels behind :func:`.checks.check_labels`: runs.

A *run* is a maximal stretch of one id along the last axis of one row (a row is every
index of the other axes). One vectorised comparison of each pixel with its right-hand
neighbour finds all runs; everything else works on the runs, about one per object row,
so its cost follows the objects' outlines, not the image size:

- two runs of one id in neighbouring rows (any offset of -1, 0, +1 along the other
  spatial axes) whose columns come within one pixel are connected (8- / 26-connectivity):
  the connected components of that graph are the pieces of each id;
- the same test between runs of *different* ids finds the touching pairs, and two runs
  that follow each other in one row without a gap touch as well;
- the background between runs forms background runs; those of neighbouring rows whose
  columns overlap (4- / 6-connectivity, the complement of the objects') are connected.
  A background component that reaches no image edge is enclosed; it is a hole when all
  the object pixels next to it carry one id.

With ``spatial_dims`` below ``ndim`` the leading axes index *planes* checked one by one:
rows of different planes are never neighbours, and an object is a (plane, id) pair.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .ids import sequential_ids

__all__ = ["Findings", "Runs", "contact_mask", "enclosed_background", "extract_runs",
           "find_problems", "hole_mask", "pieces", "plane_view"]

@dataclass
class Runs:
    """The runs of one labels array, in raster order (row, then column).

    Attributes
    ----------
    padded : numpy.ndarray
        The labels as ``(rows, width + 2)`` with a background column at both ends: the
        private copy that the runs (and later crops) are read from.
    shape : tuple of int
        The labels' shape.
    spatial_dims : int
        Trailing axes that form one plane.
    row, start, stop, ids : numpy.ndarray of int64
        Each run's row (flat index over ``shape[:-1]``), first column, column after its
        last pixel, and id.
    """

    padded: np.ndarray
    shape: tuple[int, ...]
    spatial_dims: int
    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    ids: np.ndarray

    @property
    def width(self) -> int:
        return self.shape[-1]

    @property
    def rows_per_plane(self) -> int:
        return int(np.prod(self.shape[len(self.shape) - self.spatial_dims:-1], dtype=np.int64))

    @property
    def plane_shape(self) -> tuple[int, ...]:
        return self.shape[: len(self.shape) - self.spatial_dims]

    def row_coords(self, rows: np.ndarray) -> list[np.ndarray]:
        """Coordinates of ``rows`` along the spatial axes before the last."""
        grid = self.shape[:-1]
        coords = np.unravel_index(rows, grid) if grid else ()
        return list(coords[len(grid) - (self.spatial_dims - 1):])

    def labels(self) -> np.ndarray:
        """The labels, a view of :attr:`padded` without its two columns."""
        return self.padded[:, 1:-1].reshape(self.shape)


def extract_runs(labels: np.ndarray, spatial_dims: int) -> Runs:
    """Find the runs of ``labels`` (integer array) in one pass over its pixels."""
    shape = labels.shape
    width = shape[-1]
    n_rows = labels.size // width if width else 0
    padded = np.zeros((n_rows, width + 2), dtype=labels.dtype)
    padded[:, 1:-1] = labels.reshape(n_rows, width)
    flat = padded.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1])
    before, after = flat[change], flat[change + 1]
    starts = change[after != 0] + 1
    stops = change[before != 0] + 1
    row = starts // (width + 2)
    offset = row * (width + 2) + 1
    return Runs(padded, shape, spatial_dims, row, starts - offset, stops - offset,
                after[after != 0].astype(np.int64))


# -- crops: one object and its surroundings in one plane -------------------------
def plane_view(labels: np.ndarray, region: tuple[slice, ...], spatial_dims: int) -> np.ndarray:
    """``labels[region]`` without the plane axes (each one index wide): a view."""
    crop = labels[region]
    return crop.reshape(crop.shape[crop.ndim - spatial_dims:])


def _full(ndim: int) -> np.ndarray:
    return np.ones((3,) * ndim, dtype=bool)


def pieces(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Components of ``mask`` (8-/26-connectivity) and the largest one's number."""
    components, count = ndi.label(mask, structure=_full(mask.ndim))
    if count == 0:
        return components, 0
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components, int(np.argmax(sizes))


def enclosed_background(crop: np.ndarray, label: int) -> tuple[np.ndarray, int]:
    """Background of ``crop`` enclosed by ``label`` alone (4-/6-connected components of
    the rest that reach no edge of the crop and hold no other id), and how many pieces."""
    inside = (slice(1, -1),) * crop.ndim
    padded = np.ones(tuple(n + 2 for n in crop.shape), dtype=bool)  # joins all edges
    padded[inside] = crop != label
    rest, count = ndi.label(padded)
    if count < 2:
        return np.zeros(crop.shape, dtype=bool), 0
    outside = np.zeros(count + 1, dtype=bool)
    outside[[0, rest.flat[0], rest.flat[-1]]] = True  # the padding (two ends in 1-D)
    rest = rest[inside]
    outside[rest[(crop != 0) & (crop != label)]] = True
    return ~outside[rest], count + 1 - int(np.count_nonzero(outside))


def hole_mask(crop: np.ndarray, label: int) -> np.ndarray:
    """Background of ``crop`` enclosed by ``label`` alone: see :func:`enclosed_background`."""
    return enclosed_background(crop, label)[0]


def contact_mask(crop: np.ndarray, label: int, other: int) -> np.ndarray:
    """Pixels of ``label`` next to ``other`` and of ``other`` next to ``label``."""
    first, second = crop == label, crop == other
    full = _full(crop.ndim)
    return (first & ndi.binary_dilation(second, full)) | (second & ndi.binary_dilation(first, full))


# -- neighbouring rows ----------------------------------------------------------
def _offsets(runs: Runs, *, full: bool) -> list[tuple[int, ...]]:
    """Offsets along the spatial row axes to the neighbouring rows, one per pair of rows.

    ``full``: every offset in {-1, 0, 1}^k but 0, whose first non-zero entry is positive
    (8- / 26-connectivity); otherwise the unit offsets (4- / 6-connectivity).
    """
    k = runs.spatial_dims - 1
    if full:
        return [o for o in itertools.product((-1, 0, 1), repeat=k)
                if any(o) and next(v for v in o if v) > 0]
    return [tuple(int(i == axis) for i in range(k)) for axis in range(k)]


def _row_step(runs: Runs, offset: tuple[int, ...]) -> int:
    """How far apart two rows are in flat row index for ``offset``."""
    grid = runs.shape[len(runs.shape) - runs.spatial_dims:-1]
    strides = np.cumprod((1, *grid[::-1]))[:-1][::-1]
    return int(np.dot(strides, offset)) if offset else 0


@dataclass
class _Intervals:
    """Sorted, disjoint intervals per row: the targets of a neighbour search."""

    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    width: int
    start_key: np.ndarray = field(init=False)
    stop_key: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        base = self.row * (self.width + 2)
        self.start_key, self.stop_key = base + self.start, base + self.stop


def _pairs(runs: Runs, targets: _Intervals, query: np.ndarray, offset: tuple[int, ...],
           *, strict: bool, q_row, q_start, q_stop) -> tuple[np.ndarray, np.ndarray]:
    """``(q, t)``: query ``q`` (an index into ``q_row``...) and target ``t`` in the row
    ``offset`` before it that overlap: by a column (``strict``) or within one column."""
    rows = q_row[query]
    ok = np.ones(len(query), dtype=bool)
    for coord, shift, size in zip(runs.row_coords(rows), offset,
                                  runs.shape[len(runs.shape) - runs.spatial_dims:-1]):
        ok &= (coord - shift >= 0) & (coord - shift < size)
    query, rows = query[ok], rows[ok]
    base = (rows - _row_step(runs, offset)) * (runs.width + 2)
    side_lo, side_hi = ("right", "left") if strict else ("left", "right")
    lo = np.searchsorted(targets.stop_key, base + q_start[query], side=side_lo)
    hi = np.searchsorted(targets.start_key, base + q_stop[query], side=side_hi)
    counts = np.maximum(hi - lo, 0)
    q = np.repeat(query, counts)
    first = np.repeat(lo - np.cumsum(counts) + counts, counts)
    return q, first + np.arange(len(q))


# -- grouping into objects ------------------------------------------------------
def _group(plane: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The objects, (plane, id) pairs sorted, and each run's object index."""
    if not len(ids):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    values, dense = sequential_ids(ids)  # ids > 0: dense 1..N
    keys, index = sequential_ids(plane * len(values) + dense)  # (plane, id) → 1..M
    keys = keys[1:]
    return keys // len(values), values[keys % len(values)], index - 1


@dataclass
class Findings:
    """What :func:`find_problems` found, per object (a (plane, id) pair, sorted).

    ``pieces``, ``largest_piece``, ``holes``, ``hole_pixels`` are None when their
    check was not asked for; ``touching`` holds (object, object) rows, the first of
    smaller id (both of one plane).
    """

    runs: Runs
    plane: np.ndarray
    ids: np.ndarray
    area: np.ndarray
    run_object: np.ndarray
    pieces: np.ndarray | None = None
    largest_piece: np.ndarray | None = None
    holes: np.ndarray | None = None
    hole_pixels: np.ndarray | None = None
    touching: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    def boxes(self, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounding boxes ``(n, 2 * ndim)`` (min..., max + 1...) and centroids ``(n, ndim)``
        of ``objects``, in the labels' coordinates."""
        runs, ndim = self.runs, len(self.runs.shape)
        slot = np.full(len(self.ids), -1)
        slot[objects] = np.arange(len(objects))
        chosen = slot[self.run_object]
        keep = chosen >= 0
        chosen, rows = chosen[keep], runs.row[keep]
        start, stop = runs.start[keep], runs.stop[keep]
        length = (stop - start).astype(np.float64)
        coords = list(np.unravel_index(rows, runs.shape[:-1])) if ndim > 1 else []
        low = np.full((len(objects), ndim), np.iinfo(np.int64).max)
        high = np.full((len(objects), ndim), -1)
        sums = np.zeros((len(objects), ndim))
        for axis, coord in enumerate(coords):
            np.minimum.at(low[:, axis], chosen, coord)
            np.maximum.at(high[:, axis], chosen, coord + 1)
            np.add.at(sums[:, axis], chosen, coord * length)
        np.minimum.at(low[:, -1], chosen, start)
        np.maximum.at(high[:, -1], chosen, stop)
        np.add.at(sums[:, -1], chosen, (start + stop - 1) * length / 2)
        centroid = sums / np.maximum(self.area[objects], 1)[:, None]
        return np.concatenate([low, high], axis=1), centroid


def _object_edges(runs: Runs, targets: _Intervals) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of runs that touch: one row apart within one column, or end to end in a row."""
    n = len(runs.ids)
    every = np.arange(n)
    firsts, seconds = [], []
    for offset in _offsets(runs, full=True):
        q, t = _pairs(runs, targets, every, offset, strict=False, q_row=runs.row,
                      q_start=runs.start, q_stop=runs.stop)
        firsts.append(t)
        seconds.append(q)
    following = np.flatnonzero((runs.row[1:] == runs.row[:-1])
                               & (runs.stop[:-1] == runs.start[1:]))
    firsts.append(following)
    seconds.append(following + 1)
    return np.concatenate(firsts), np.concatenate(seconds)


def _background(runs: Runs) -> tuple[_Intervals, np.ndarray, np.ndarray]:
    """The background runs sorted, whether each reaches an edge, and for the gaps between
    two object runs of one row the index of the run on their left (else -1)."""
    width, n_rows = runs.width, runs.padded.shape[0]
    same_row = runs.row[1:] == runs.row[:-1]
    gap = same_row & (runs.stop[:-1] < runs.start[1:])
    first = np.ones(len(runs.row), dtype=bool)
    first[1:] = ~same_row
    last = np.ones(len(runs.row), dtype=bool)
    last[:-1] = ~same_row
    left = first & (runs.start > 0)
    right = last & (runs.stop < width)
    has_runs = np.zeros(n_rows, dtype=bool)
    has_runs[runs.row] = True
    empty = np.flatnonzero(~has_runs)
    inner = np.flatnonzero(gap)
    row = np.concatenate([runs.row[inner], runs.row[left], runs.row[right], empty])
    start = np.concatenate([runs.stop[inner], np.zeros(left.sum(), np.int64),
                            runs.stop[right], np.zeros(len(empty), np.int64)])
    stop = np.concatenate([runs.start[inner + 1], runs.start[left],
                           np.full(right.sum(), width), np.full(len(empty), width)])
    left_run = np.concatenate([inner, np.full(len(row) - len(inner), -1)])
    order = np.argsort(row * (width + 2) + start, kind="stable")
    row, start, stop, left_run = row[order], start[order], stop[order], left_run[order]
    edge = left_run < 0
    for coord, size in zip(runs.row_coords(row),
                           runs.shape[len(runs.shape) - runs.spatial_dims:-1]):
        edge |= (coord == 0) | (coord == size - 1)
    return _Intervals(row, start, stop, width), edge, left_run


def _components(n_nodes: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The connected component of each node of the graph with edges ``first-second``."""
    indptr = np.zeros(n_nodes + 1, dtype=np.int32)
    np.cumsum(np.bincount(first, minlength=n_nodes), out=indptr[1:])
    neighbours = second[np.argsort(first)].astype(np.int32)
    graph = csr_matrix((np.ones(len(first)), neighbours, indptr), shape=(n_nodes, n_nodes))
    return connected_components(graph, directed=False)[1]


def _face_pairs(runs: Runs, targets: _Intervals, background: _Intervals,
                query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(q, t)``: background runs ``q`` and ``targets`` ``t`` one row away along one
    axis, either way, that share a column (4- / 6-connectivity)."""
    firsts, seconds = [], []
    for offset in _offsets(runs, full=False):
        for sign in (1, -1):
            q, t = _pairs(runs, targets, query, tuple(sign * v for v in offset), strict=True,
                          q_row=background.row, q_start=background.start,
                          q_stop=background.stop)
            firsts.append(q)
            seconds.append(t)
    if not firsts:  # 1-D: no neighbouring rows
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _holes(runs: Runs, objects: _Intervals, found: Findings) -> None:
    """Fill ``found.holes`` / ``hole_pixels``: enclosed background next to one id only."""
    background, edge, left_run = _background(runs)
    n = len(background.row)
    inner = np.flatnonzero(~edge)
    q, t = _face_pairs(runs, background, background, inner)
    outside = np.flatnonzero(edge)  # joined to node n: everything outside
    component = _components(n + 1, np.concatenate([outside, q]),
                            np.concatenate([np.full(len(outside), n), t]))
    enclosed = np.flatnonzero(component[:n] != component[n])
    found.holes = np.zeros(len(found.ids), dtype=np.int64)
    found.hole_pixels = np.zeros(len(found.ids), dtype=np.int64)
    if not len(enclosed):
        return
    # The ids next to each enclosed background run: left and right in its row, and the
    # object runs that overlap it in the neighbouring rows (4- / 6-connectivity).
    q, t = _face_pairs(runs, objects, background, enclosed)
    owner = component[np.concatenate([enclosed, enclosed, q])]
    neighbour = found.run_object[np.concatenate([left_run[enclosed], left_run[enclosed] + 1,
                                                 t])]
    size = component.max() + 1
    low = np.full(size, np.iinfo(np.int64).max)
    high = np.full(size, -1)
    np.minimum.at(low, owner, neighbour)
    np.maximum.at(high, owner, neighbour)
    pixels = np.bincount(component[enclosed],
                         weights=background.stop[enclosed] - background.start[enclosed],
                         minlength=size).astype(np.int64)
    hole = np.flatnonzero((low == high) & (high >= 0))
    np.add.at(found.holes, low[hole], 1)
    np.add.at(found.hole_pixels, low[hole], pixels[hole])


def _holes_2d(found: Findings, same_first: np.ndarray) -> None:
    """Fill ``found.holes`` / ``hole_pixels`` in 2-D planes, from the Euler numbers.

    In 2-D (8-connected objects, 4-connected background) an object's Euler number is its
    runs less its pairs of touching runs, and pieces - Euler number = holes, those that
    hold other objects included. Only objects with such holes are cropped and searched
    for enclosed background (:func:`hole_mask`).
    """
    n = len(found.ids)
    euler = (np.bincount(found.run_object, minlength=n)
             - np.bincount(found.run_object[same_first], minlength=n))
    found.holes = np.zeros(n, dtype=np.int64)
    found.hole_pixels = np.zeros(n, dtype=np.int64)
    candidates = np.flatnonzero(found.pieces - euler > 0)
    if not len(candidates):
        return
    runs = found.runs
    for index in candidates:  # the object's rows, in one plane: its box from its runs
        mine = np.flatnonzero(found.run_object == index)
        rows = slice(runs.row[mine[0]], runs.row[mine[-1]] + 1)
        crop = runs.padded[rows, 1 + runs.start[mine].min():1 + runs.stop[mine].max()]
        enclosed, found.holes[index] = enclosed_background(crop, found.ids[index])
        found.hole_pixels[index] = int(np.count_nonzero(enclosed))


def find_problems(labels: np.ndarray, spatial_dims: int, checks: frozenset[str]) -> Findings:
    """Runs, objects and, for the ``checks`` asked, pieces, holes and touching pairs."""
    runs = extract_runs(labels, spatial_dims)
    plane = runs.row // max(runs.rows_per_plane, 1)
    plane_of, ids, run_object = _group(plane, runs.ids)
    area = np.bincount(run_object, weights=runs.stop - runs.start,
                       minlength=len(ids)).astype(np.int64)
    found = Findings(runs, plane_of, ids, area, run_object)
    objects = _Intervals(runs.row, runs.start, runs.stop, runs.width)
    euler = spatial_dims == 2 and "hole" in checks
    if checks & {"disconnected", "touching"} or euler:
        first, second = _object_edges(runs, objects)
        same = run_object[first] == run_object[second]
        if "disconnected" in checks or euler:
            _count_pieces(found, first[same], second[same])
        if "touching" in checks:
            a, b = run_object[first[~same]], run_object[second[~same]]
            pairs = np.unique(np.minimum(a, b) * len(ids) + np.maximum(a, b))
            found.touching = np.stack([pairs // len(ids), pairs % len(ids)], axis=1)
        if euler:
            _holes_2d(found, first[same])
    if "hole" in checks and not euler:
        _holes(runs, objects, found)
    return found


def _count_pieces(found: Findings, first: np.ndarray, second: np.ndarray) -> None:
    n = len(found.run_object)
    component = _components(n, first, second)
    owner = np.full(component.max(initial=-1) + 1, -1)
    owner[component] = found.run_object
    found.pieces = np.bincount(owner, minlength=len(found.ids))
    runs = found.runs
    piece_area = np.bincount(component, weights=runs.stop - runs.start,
                             minlength=len(owner)).astype(np.int64)
    found.largest_piece = np.zeros(len(found.ids), dtype=np.int64)
    np.maximum.at(found.largest_piece, owner, piece_area)
