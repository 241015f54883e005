"""Instance labels segmented block by block, stitched into one labelling (numpy / scipy).

A plane is cut into a grid of blocks (:class:`BlockGrid`); each block is segmented on its
*core* plus a margin of context, so that it also labels the pixels just beyond its faces.
Each block then keeps (:func:`summarize_block`):

- its core's labels, renumbered 1..n (block-local ids; objects seen only in the margin
  are dropped: the block whose core holds them labels them);
- the labels of a thin *strip* around each of its faces (``strip_width`` pixels on each
  side of the face, with the same local ids, zero for objects not in the core).

Two blocks sharing a face label the same strip pixels, each from its own segmentation.
An object cut by the face is in both cores, so both strips hold it: its two labels
overlap on nearly all of their strip pixels. Two distinct objects touching across the
face are each in one core only, so each block's strip holds only its own (the other is
margin-only, hence zero): they do not overlap at all. So :func:`match_strips` pairs the
labels whose overlap on the strip is at least ``min_iou`` (½) of their union there, and
:func:`global_ids` joins the pairs over all faces (connected components of the graph of
pairs, ``scipy.sparse.csgraph``), giving every block-local id a global id: sequential
1..N in the order of the blocks, unique over the whole image (over a stack too).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ...labels.ids import renumber_lookup

__all__ = ["DEFAULT_STRIP", "MIN_IOU", "BlockGrid", "BlockLabels", "global_ids",
           "match_strips", "summarize_block"]

#: Pixels of a strip on each side of a face.
DEFAULT_STRIP = 2
#: Least overlap / union on the strip for two labels to be one object.
MIN_IOU = 0.5

Key = tuple[int, ...]  #: a block: (*leading index, row, column)
Region = tuple[slice, slice]


@dataclass(frozen=True)
class BlockGrid:
    """A grid of blocks over the planes of a (..., H, W) array.

    Attributes
    ----------
    lead : tuple of int
        The leading (stack, time) shape: every plane has the same grid.
    bounds : (tuple of int, tuple of int)
        The block boundaries along H and along W, from 0 to H (W).
    """

    lead: tuple[int, ...]
    bounds: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def regular(cls, shape: tuple[int, ...], block_shape: tuple[int, int]) -> BlockGrid:
        """Blocks of ``block_shape`` from the origin (the last ones may be smaller)."""
        bounds = tuple((*range(0, size, step), size)
                       for size, step in zip(shape[-2:], block_shape))
        return cls(tuple(shape[:-2]), bounds)

    @property
    def plane(self) -> tuple[int, int]:
        """(H, W)."""
        return self.bounds[0][-1], self.bounds[1][-1]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Blocks along (*lead, H, W)."""
        return (*self.lead, len(self.bounds[0]) - 1, len(self.bounds[1]) - 1)

    def __len__(self) -> int:
        return math.prod(self.grid_shape)

    def __iter__(self) -> Iterator[Key]:
        return iter(np.ndindex(*self.grid_shape))

    def core(self, key: Key) -> Region:
        """The block's core: its own pixels, in plane coordinates."""
        (rows, cols), (i, j) = self.bounds, key[-2:]
        return slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1])

    def strips(self, key: Key, width: int) -> Iterator[tuple[tuple, int, Region]]:
        """(face, side, region) for each face the block shares with a neighbour.

        ``face`` = (*lead, axis, i, j) names the face by the block before it (above or
        to the left); ``side`` is 0 for that block, 1 for the one after it; ``region``
        is the strip: ``width`` pixels on each side of the face, along the face.
        """
        core = self.core(key)
        for axis in (0, 1):
            index, last = key[-2 + axis], len(self.bounds[axis]) - 2
            for side, face_block, position in ((0, index, core[axis].stop),
                                               (1, index - 1, core[axis].start)):
                if (side == 0 and index == last) or (side == 1 and index == 0):
                    continue
                band = slice(max(position - width, 0),
                             min(position + width, self.plane[axis]))
                region = (band, core[1]) if axis == 0 else (core[0], band)
                first = list(key[-2:])
                first[axis] = face_block
                yield (*key[:-2], axis, *first), side, region


@dataclass
class BlockLabels:
    """What a block keeps of its segmentation (see the module docstring).

    Attributes
    ----------
    core : numpy.ndarray of uint32
        The core's labels, block-local ids 1..``count``.
    count : int
        Objects in the core.
    strips : dict
        (face, side) → the strip's labels in local ids (0: background or not in the core).
    """

    core: np.ndarray
    count: int
    strips: dict


def _shifted(region: Region, origin: tuple[int, int]) -> Region:
    return tuple(slice(s.start - o, s.stop - o) for s, o in zip(region, origin))


def summarize_block(labels: np.ndarray, origin: tuple[int, int], grid: BlockGrid, key: Key,
                    strip_width: int = DEFAULT_STRIP) -> BlockLabels:
    """The core labels, renumbered, and the face strips of one segmented block.

    Parameters
    ----------
    labels : numpy.ndarray of int
        The instance labels of the block's core and margin, (h, w).
    origin : (int, int)
        Where ``labels[0, 0]`` is in the plane (the margin must cover the strips:
        ``strip_width`` pixels beyond each face).
    grid : BlockGrid
    key : tuple of int
        The block.
    strip_width : int
        Strip pixels on each side of a face.

    Returns
    -------
    BlockLabels
    """
    core = labels[_shifted(grid.core(key), origin)]
    present = np.zeros(int(labels.max(initial=0)) + 1, bool)
    present[core] = True
    lookup = renumber_lookup(present, np.uint32)
    strips = {(face, side): lookup[labels[_shifted(region, origin)]]
              for face, side, region in grid.strips(key, strip_width)}
    return BlockLabels(lookup[core], int(np.count_nonzero(present[1:])), strips)


def match_strips(first: np.ndarray, second: np.ndarray, min_iou: float = MIN_IOU
                 ) -> np.ndarray:
    """The pairs of labels of two labellings of one strip that are the same object.

    Parameters
    ----------
    first, second : numpy.ndarray of int
        The strip's labels by the two blocks (same shape).
    min_iou : float
        Least intersection over union, on the strip, of a pair.

    Returns
    -------
    numpy.ndarray of int64, shape (n, 2)
        (first label, second label) pairs, labels > 0.
    """
    a, b = first.ravel().astype(np.int64), second.ravel().astype(np.int64)
    area_a = np.bincount(a)
    area_b = np.bincount(b)
    both = (a > 0) & (b > 0)
    pairs, overlap = np.unique(np.stack([a[both], b[both]], axis=1), axis=0,
                               return_counts=True)
    if not len(pairs):
        return np.zeros((0, 2), np.int64)
    union = area_a[pairs[:, 0]] + area_b[pairs[:, 1]] - overlap
    return pairs[overlap >= min_iou * union]


def global_ids(grid: BlockGrid, counts: Mapping[Key, int], strips: Mapping[tuple, np.ndarray],
               min_iou: float = MIN_IOU) -> tuple[dict[Key, np.ndarray], int]:
    """Global ids of the block-local ids: objects cut by faces joined, 1..N.

    Parameters
    ----------
    grid : BlockGrid
    counts : mapping
        Block → its number of objects (:attr:`BlockLabels.count`).
    strips : mapping
        (face, side) → strip labels, of all blocks (:attr:`BlockLabels.strips`).
    min_iou : float
        See :func:`match_strips`.

    Returns
    -------
    lookups : dict
        Block → lookup table: ``lookups[key][local_id]`` is the global id (0 for 0).
    n_objects : int
        N.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    offsets, total = {}, 0
    for key in grid:
        offsets[key] = total
        total += int(counts[key])
    edges = [np.zeros((0, 2), np.int64)]
    for (face, side), first in strips.items():
        if side == 0 and (face, 1) in strips:
            before = (*face[:-3], *face[-2:])
            after = list(before)
            after[len(face) - 3 + face[-3]] += 1
            pairs = match_strips(first, strips[face, 1], min_iou)
            edges.append(pairs - 1 + np.array([offsets[before], offsets[tuple(after)]]))
    edges = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                       shape=(total, total))
    n_objects, components = connected_components(graph, directed=False)
    final = np.concatenate([[0], components + 1]).astype(np.uint64)
    lookups = {key: np.concatenate([[0], final[offsets[key] + 1:offsets[key] + counts[key] + 1]])
               for key in grid}
    return lookups, int(n_objects)
