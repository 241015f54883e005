"""The host's free memory and the one policy that turns it into a budget (no numpy).

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

import os
from pathlib import Path

__all__ = ["available_memory", "memory_budget"]


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
