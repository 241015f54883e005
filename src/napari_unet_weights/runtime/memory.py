"""The host's free memory, the one policy that turns it into a budget, and regions (no numpy).

Whatever plans its work by memory (the tile size of prediction,
:func:`..unet.tiling.auto_tile_shape`; the blocks of a lazy weight map,
:func:`..weights.lazy.resolve_memory_budget`) measures it with :func:`available_memory`
and sizes its budget with :func:`memory_budget`: **a share of the available memory, at
most a cap, and the cap where the available memory cannot be measured**. Each user
keeps its own share and cap:

==========================================  ==========  ========
user                                        share       cap
==========================================  ==========  ========
prediction's tiles (``auto_tile_shape``)    1/4         2 GiB
lazy weight maps (``memory_budget="auto"``)  1/8         256 MiB
==========================================  ==========  ========
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["AUTO_MEMORY_BUDGET", "AUTO_MEMORY_SHARE", "available_memory", "memory_budget",
           "region_bytes", "region_shape", "regions", "resolve_memory_budget"]

#: ``memory_budget="auto"``: this many bytes, or :data:`AUTO_MEMORY_SHARE` of the
#: available memory if less (:func:`memory_budget`, the policy of every budget).
AUTO_MEMORY_BUDGET = 256 * 2**20
AUTO_MEMORY_SHARE = 1 / 8


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes, or None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int | None:
    """The memory that new allocations can get without swapping, in bytes, or None.

    psutil's ``virtual_memory().available`` if psutil is installed, else MemAvailable of
    ``/proc/meminfo`` (Linux: the same figure), else the free pages of ``os.sysconf``.

    Returns
    -------
    int or None
        None where none of them can be read.
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    available = _meminfo_available()
    if available is not None:
        return available
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def memory_budget(cap: int, share: float, available: int | None = None) -> int:
    """The budget: ``share`` of the available memory, at most ``cap`` (``cap`` if unknown).

    Parameters
    ----------
    cap : int
        The most bytes the budget may be.
    share : float
        Share of the available memory, in (0, 1].
    available : int, optional
        Available memory in bytes; None: :func:`available_memory`.

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> memory_budget(2**30, 0.25, available=2**31), memory_budget(2**30, 0.25, 2**33)
    (536870912, 1073741824)
    """
    available = available_memory() if available is None else available
    return cap if available is None else min(cap, int(available * share))


#: :func:`memory_budget` under a name that :func:`resolve_memory_budget`'s parameter leaves visible.
_policy = memory_budget


def resolve_memory_budget(memory_budget: int | str = "auto") -> int:
    """``memory_budget`` in bytes.

    Parameters
    ----------
    memory_budget : int or str
        Bytes (> 0), a size such as ``"1 GiB"``, or ``"auto"``:
        :data:`AUTO_MEMORY_BUDGET`, or an eighth of the available memory if less.

    Returns
    -------
    int
        The budget in bytes.

    Raises
    ------
    TypeError, ValueError
        For anything else, or a budget that is not positive.
    """
    if isinstance(memory_budget, str) and memory_budget == "auto":
        return _policy(AUTO_MEMORY_BUDGET, AUTO_MEMORY_SHARE)
    if isinstance(memory_budget, str):
        from dask.utils import parse_bytes

        memory_budget = parse_bytes(memory_budget)
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, numbers.Integral):
        raise TypeError(
            f"memory_budget must be a number of bytes, a size such as '1 GiB' or 'auto', "
            f"got {memory_budget!r}."
        )
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be positive, got {memory_budget}.")
    return int(memory_budget)


# -- regions of chunks written one after the other ----------------------------------
def region_bytes(sizes: Sequence[int], numblocks: Sequence[int], chunk_bytes: int) -> int:
    """Memory a region of ``sizes`` chunks holds: its chunks and their neighbours' (halos).

    The input chunks around the region are read whole to cut the overlap from them;
    along an axis of one chunk there are none.
    """
    around = math.prod(s + 2 if n > 1 else s for s, n in zip(sizes, numblocks))
    return (around + math.prod(sizes)) * chunk_bytes


def region_shape(numblocks: Sequence[int], chunk_bytes: int, budget: int) -> tuple[int, ...]:
    """Chunks per axis of the regions that :func:`..io.big.write_zarr_array` writes in turn.

    Parameters
    ----------
    numblocks : sequence of int
        The array's number of chunks per axis.
    chunk_bytes : int
        Bytes of one chunk.
    budget : int
        Bytes a region may hold: its chunks, and as many again for each chunk around
        it (the overlapped input), see ``_region_bytes``.

    Returns
    -------
    tuple of int
        Region sizes in chunks, doubled axis by axis from the last while they fit;
        at least one chunk.
    """
    sizes = [1] * len(numblocks)
    grown = True
    while grown:
        grown = False
        for axis in reversed(range(len(sizes))):
            trial = list(sizes)
            trial[axis] = min(numblocks[axis], 2 * sizes[axis])
            if trial != sizes and region_bytes(trial, numblocks, chunk_bytes) <= budget:
                sizes, grown = trial, True
    return tuple(sizes)


def regions(chunks: Sequence[Sequence[int]], sizes: Sequence[int]):
    """The regions (tuples of slices along chunk borders), ``sizes`` chunks each."""
    edges = [list(itertools.accumulate(c, initial=0)) for c in chunks]
    starts = [range(0, len(c), s) for c, s in zip(chunks, sizes)]
    for index in itertools.product(*(range(len(r)) for r in starts)):
        first = [r[i] for r, i in zip(starts, index)]
        yield tuple(
            slice(e[f], e[min(f + s, len(e) - 1)])
            for e, f, s in zip(edges, first, sizes)
        )
