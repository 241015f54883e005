"""Label ids: renumbering them 1..N, and the dtype that holds them (numpy only).

The one home of two rules that every module making or changing labels follows:

- **Renumbering** (:func:`sequential_ids`, :func:`renumber_lookup`): the ids present,
  in increasing order, become 1..N; 0 (background) stays 0. Dense ids go through a
  lookup table indexed by id, sparse ones (far above the number of values) through
  ``np.unique``, so ids as large as the dtype allows cost nothing.
- **The dtype** (:func:`label_dtype`): labels keep their dtype while it holds their
  largest id, else they get the narrowest integer type that holds both (numpy's
  promotion: uint16 → uint32 → uint64). New labels (:func:`new_labels_dtype`: a
  segmentation, a stack of them, a large image's global ids) start from uint16 and keep
  the dtype's largest value free, so that one more id (napari's "new label", max + 1)
  still fits: uint16 up to 65,534 objects, uint32 from 65,535 on, uint64 from 2³² − 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IdOverflowError", "label_dtype", "new_labels_dtype", "renumber_lookup",
           "sequential_ids"]

#: New labels start in this dtype (:func:`new_labels_dtype`).
NEW_LABELS_DTYPE = np.dtype(np.uint16)
#: Ids up to this many times the number of values (plus :data:`DENSE_MARGIN`) are
#: renumbered through a lookup table indexed by id; larger ones through ``np.unique``.
DENSE_FACTOR = 4
DENSE_MARGIN = 65536


class IdOverflowError(ValueError):
    """Labels need ids that their dtype (or any integer dtype) cannot hold."""


def label_dtype(dtype, top: int, *, widen: bool = True) -> np.dtype:
    """The integer dtype of labels whose ids go up to ``top``.

    ``dtype`` itself when it holds ``top``; else, with ``widen``, the narrowest integer
    type that holds both (numpy's promotion: uint8 → uint16, int16 → int32, ...).

    Parameters
    ----------
    dtype : numpy.dtype or type
        The labels' own integer dtype.
    top : int
        The largest id the labels will hold.
    widen : bool
        Whether a wider type may be chosen (False: labels that must keep ``dtype``,
        such as a napari layer's data).

    Returns
    -------
    numpy.dtype

    Raises
    ------
    IdOverflowError
        A ValueError, when ``top`` does not fit (or no integer type holds it: ids
        beyond int64 are never made, the arithmetic stays integer), saying to renumber
        the labels.

    Examples
    --------
    >>> label_dtype(np.uint16, 65535), label_dtype(np.uint16, 65536)
    (dtype('uint16'), dtype('uint32'))
    """
    dtype = np.dtype(dtype)
    if top <= np.iinfo(dtype).max:
        return dtype
    wider = np.promote_types(dtype, np.min_scalar_type(top))
    if widen and np.issubdtype(wider, np.integer):
        return wider
    convert = (" or convert them to a wider type" if np.issubdtype(wider, np.integer)
               else "")
    raise IdOverflowError(
        f"the fix needs ids up to {top}, more than {dtype} holds: renumber the labels "
        f"first (ids 1..N, e.g. skimage.segmentation.relabel_sequential){convert}.")


def new_labels_dtype(n_objects: int) -> np.dtype:
    """The dtype of new labels 1..``n_objects``: uint16, wider while it lacks one spare id.

    :func:`label_dtype` from uint16 for the ids up to ``n_objects + 1``: uint16 up to
    65,534 objects, uint32 from 65,535, uint64 from 2³² − 1.

    Examples
    --------
    >>> new_labels_dtype(65534), new_labels_dtype(65535)
    (dtype('uint16'), dtype('uint32'))
    """
    return label_dtype(NEW_LABELS_DTYPE, int(n_objects) + 1)


def renumber_lookup(present: np.ndarray, dtype=np.intp) -> np.ndarray:
    """The lookup table that numbers the ids where ``present`` is True 1..N, in order.

    Parameters
    ----------
    present : numpy.ndarray of bool, shape (max id + 1,)
        Which ids to keep (``present[0]`` is ignored: background stays 0).
    dtype : numpy.dtype or type
        The table's dtype (the new labels' when the table is applied to labels).

    Returns
    -------
    numpy.ndarray
        ``lookup[id]``: the new id, 0 for background and for the ids not kept.
    """
    lookup = np.zeros(present.size, dtype)
    kept = np.flatnonzero(present)
    kept = kept[kept > 0]
    lookup[kept] = np.arange(1, kept.size + 1, dtype=dtype)
    return lookup


def sequential_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids present (0 first, always) and each value's index into them: the ids 1..N.

    Parameters
    ----------
    values : numpy.ndarray of non-negative int, 1-D
        Label values (0 = background).

    Returns
    -------
    ids : numpy.ndarray
        0, then the other ids present in increasing order, in ``values``' dtype.
    index : numpy.ndarray of intp
        ``ids[index] == values``: 0 for background, the others numbered 1..N.

    Notes
    -----
    Hand-written rather than ``skimage.segmentation.relabel_sequential``: on the object
    pixels of 40 DSB 2018 label images it takes 6.6–8.0 ms against 11.6–14.0 ms (1.75x).
    """
    if values.size == 0:
        return np.zeros(1, values.dtype), np.zeros(0, np.intp)
    top = int(values.max())
    if top <= DENSE_FACTOR * values.size + DENSE_MARGIN:
        present = np.zeros(top + 1, bool)
        present[values] = True
        present[0] = True
        return np.flatnonzero(present).astype(values.dtype), renumber_lookup(present)[values]
    ids, index = np.unique(values, return_inverse=True)
    index = index.ravel()
    if ids[0] != 0:
        ids = np.concatenate([np.zeros(1, ids.dtype), ids])
        index = index + 1
    return ids, index
