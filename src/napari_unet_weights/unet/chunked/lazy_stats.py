"""The normalisation statistics of every plane of a lazy (dask) image, from histograms.

Prediction normalises each plane by its own percentiles (:mod:`..preprocess`); a plane cut
into blocks must be normalised by the percentiles of the *whole* plane, which this
module computes without holding a plane in memory: two passes over the image's chunks,
each reduced by dask (a tree of sums, so memory stays bounded by a few chunks).

1. Per plane: the smallest and largest finite gray value (per channel in "channels"
   input mode), the count of missing (NaN / infinite) pixels and, for models that turn
   colour into haematoxylin, whether the plane's colour channels differ anywhere (the
   rule :func:`..preprocess.to_gray` applies to a whole plane).
2. Per plane: a histogram of the values between those bounds, from which the
   percentiles are read with numpy's default ("linear") interpolation between order
   statistics.

**Exact for integer images**: the gray value of an integer pixel is the sum of its
colour channels (an integer) divided by their number, so the histogram of the sums with
one bin per integer gives the exact order statistics, as long as the sums span at most
:data:`MAX_BINS` values (8- and 16-bit images, colour or not, do). **Approximate for
floating-point images** (and the haematoxylin channel, and wider integer ranges): the
range is cut into at most :data:`FLOAT_BINS` equal bins, and the pixels of a bin are taken
as spread evenly over it: each percentile is within one bin width, (max − min) /
:data:`FLOAT_BINS`, of numpy's — far below what changes the network's output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..preprocess import PlaneStatistics, _specs, gray_plane, is_colour

__all__ = ["FLOAT_BINS", "MAX_BINS", "ImageStatistics", "plane_statistics",
           "statistics_from_histogram"]

#: Most histogram bins (one per integer value) for an exact integer histogram.
MAX_BINS = 2**18
#: Bins of the approximate histogram of floating-point values.
FLOAT_BINS = 2**16
#: Histogram entries kept over all planes (the bins are fewer for long stacks).
MAX_ENTRIES = 2**25


@dataclass(frozen=True)
class ImageStatistics:
    """The statistics of every plane of an image.

    Attributes
    ----------
    planes : dict
        Leading index (``()`` for a 2-D image) → :class:`..preprocess.PlaneStatistics`.
    n_missing : int
        NaN / infinite pixels of the whole image.
    exact : bool
        Whether the percentiles are exact (integer histogram) or approximate.
    """

    planes: dict
    n_missing: int
    exact: bool


@dataclass(frozen=True)
class _Values:
    """How a block's pixels become the values whose percentiles normalise it."""

    mode: str  #: "gray" or "channels"
    channels: bool  #: the last axis of the image holds channels
    integer: bool  #: gray values as integer channel sums (exact histogram)
    hematoxylin: bool  #: the model turns colour planes into haematoxylin

    def divisor(self, n_channels: int, colour: str = "mean") -> float:
        """How many channels a gray value sums (1 unless integer channel sums)."""
        if colour != "mean" or not (self.integer and self.mode == "gray" and self.channels):
            return 1.0
        return float(3 if n_channels == 4 else n_channels)

    def of(self, block: np.ndarray, colour: str = "mean") -> np.ndarray:
        """(h, w, S) values of an (h, w[, C]) block: float64, NaN where missing."""
        if self.mode == "channels":
            values = block if block.ndim == 3 else block[..., np.newaxis]
            return values.astype(np.float64)
        if colour == "mean" and self.integer:
            colours = block[..., :3] if self.channels and block.shape[-1] == 4 else block
            summed = colours.sum(axis=-1, dtype=np.int64) if self.channels else colours
            return summed.astype(np.float64)[..., np.newaxis]
        gray = gray_plane(block, channels=self.channels, colour=colour)
        return gray.astype(np.float64)[..., np.newaxis]


def _bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(values)
    low = np.where(finite, values, np.inf).min(axis=(0, 1))
    high = np.where(finite, values, -np.inf).max(axis=(0, 1))
    return low, high


def _first_pass_block(block: np.ndarray, spec: _Values, lead: int, n_stats: int) -> np.ndarray:
    """Features of one chunk: [mins (S), maxs (S), missing, colour, hed min, hed max]."""
    plane = block.reshape(block.shape[lead:])
    values = spec.of(plane)
    low, high = _bounds(values)
    missing = np.count_nonzero(~np.isfinite(values).all(axis=-1))
    colour, hed = 0.0, (np.inf, -np.inf)
    if spec.hematoxylin and spec.channels and is_colour(plane[..., :3]):
        colour = 1.0
        hed_low, hed_high = _bounds(spec.of(plane, "hematoxylin"))
        hed = (hed_low[0], hed_high[0])
    features = np.concatenate([low, high, [missing, colour], hed])
    return features.reshape((1,) * (block.ndim - (1 if spec.channels else 0)) + (-1,))


def _histogram_block(block: np.ndarray, spec: _Values, lead: int, lows: np.ndarray,
                     widths: np.ndarray, rules: np.ndarray, n_bins: int,
                     block_info=None) -> np.ndarray:
    """Histograms (S, n_bins) of one chunk's values between the plane's bounds."""
    index = tuple(start for start, _ in block_info[0]["array-location"][:lead])
    plane = block.reshape(block.shape[lead:])
    values = spec.of(plane, "hematoxylin" if rules[index] else "mean")
    counts = np.zeros((values.shape[-1], n_bins), np.int64)
    for s in range(values.shape[-1]):
        column = values[..., s].ravel()
        column = column[np.isfinite(column)]
        bins = np.floor((column - lows[index][s]) / widths[index][s])
        counts[s] = np.bincount(np.clip(bins, 0, n_bins - 1).astype(np.int64),
                                minlength=n_bins)
    return counts.reshape((1,) * (block.ndim - (1 if spec.channels else 0)) + counts.shape)


def _rank_value(cumulative: np.ndarray, rank: float, low: float, width: float,
                exact: bool) -> float:
    """The value of the order statistic ``rank`` (0-based) of a histogram."""
    b = int(np.searchsorted(cumulative, rank, side="right"))
    if exact:
        return low + b * width
    before = cumulative[b - 1] if b else 0
    inside = (rank - before + 0.5) / (cumulative[b] - before)
    return low + (b + inside) * width


def statistics_from_histogram(counts: np.ndarray, low: float, width: float,
                              percentiles: tuple[float, ...], exact: bool) -> list[float]:
    """Percentiles (numpy's "linear" method) of the values a histogram counts.

    Parameters
    ----------
    counts : numpy.ndarray
        Pixels per bin; bin ``b`` holds the values in ``[low + b·width, low + (b+1)·width)``.
    low, width : float
        The bins.
    percentiles : tuple of float
        In [0, 100].
    exact : bool
        Every value of bin ``b`` is ``low + b·width`` (an integer histogram): exact;
        else the values of a bin are taken as spread evenly over it.

    Returns
    -------
    list of float
        Zeros when the histogram is empty (every pixel missing).
    """
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1]) if cumulative.size else 0
    if n == 0:
        return [0.0] * len(percentiles)
    result = []
    for q in percentiles:
        position = q / 100.0 * (n - 1)
        rank = math.floor(position)
        value = _rank_value(cumulative, rank, low, width, exact)
        if position > rank:
            following = _rank_value(cumulative, rank + 1, low, width, exact)
            value += (position - rank) * (following - value)
        result.append(value)
    return result


def _spec(image, metadata: dict, channels: bool) -> tuple[_Values, tuple[float, ...]]:
    input_spec, normalization = _specs(metadata)
    mode = input_spec["mode"]
    integer = bool(np.issubdtype(np.dtype(image.dtype), np.integer))
    hematoxylin = mode == "gray" and input_spec.get("colour", "mean") == "hematoxylin"
    percentiles = tuple(float(q) for q in normalization["percentiles"])
    return (_Values(mode, channels, integer, hematoxylin),
            (*percentiles, 50.0) if mode == "gray" else percentiles)


def _per_chunk(image, function, n_features: tuple[int, ...], n_lead: int, channels: bool,
               dtype, **kwargs):
    """``function`` of every chunk as a dask array (lead..., nH, nW, *n_features)."""
    chunks = (*image.chunks[:n_lead], (1,) * image.numblocks[n_lead],
              (1,) * image.numblocks[n_lead + 1], *((n,) for n in n_features))
    drop = [image.ndim - 1] if channels else []
    n_kept = image.ndim - len(drop)
    new = list(range(n_kept, n_kept + len(n_features)))
    return image.map_blocks(function, dtype=dtype, chunks=chunks, drop_axis=drop,
                            new_axis=new, meta=np.array((), dtype), **kwargs)


def _first_pass(image, spec: _Values, lead: int, n_stats: int, compute):
    features = _per_chunk(image, _first_pass_block, (2 * n_stats + 4,), lead, spec.channels,
                          np.float64, spec=spec, lead=lead, n_stats=n_stats)
    spatial = (lead, lead + 1)
    low = features[..., [*range(n_stats), 2 * n_stats + 2]].min(axis=spatial)
    high = features[..., [*range(n_stats, 2 * n_stats), 2 * n_stats + 3]].max(
        axis=spatial)
    missing = features[..., 2 * n_stats].sum(axis=spatial)
    colour = features[..., 2 * n_stats + 1].max(axis=spatial)
    return compute(low, high, missing, colour)


def _bins(low: np.ndarray, high: np.ndarray, integer: bool, n_planes: int, n_stats: int
          ) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Bin starts and widths per plane and statistic, the number of bins, exactness."""
    cap = max(256, MAX_ENTRIES // (n_planes * n_stats))
    finite = np.isfinite(low) & np.isfinite(high)
    low, high = np.where(finite, low, 0.0), np.where(finite, high, 0.0)
    span = high - low
    if integer and float(span.max(initial=0)) + 1 <= min(MAX_BINS, cap):
        return low, np.ones_like(low), int(span.max(initial=0)) + 1, True
    n_bins = min(FLOAT_BINS, cap)
    return low, np.where(span > 0, span / n_bins, 1.0), n_bins, False


def plane_statistics(image, metadata: dict, *, channels: bool,
                     compute: Callable[..., tuple]) -> ImageStatistics:
    """The normalisation statistics of every plane of a dask image.

    Parameters
    ----------
    image : dask.array.Array
        (..., H, W) or (..., H, W, C) with ``channels``; chunked by one plane along the
        leading axes and not along the channels.
    metadata : dict
        The model's metadata (its ``input`` and ``normalization`` entries).
    channels : bool
        Whether the last axis holds channels.
    compute : callable
        Computes dask collections and returns their results (``dask.compute``, or
        :meth:`...runtime.engine.Engine.compute` with progress and cancel).

    Returns
    -------
    ImageStatistics
    """
    spec, percentiles = _spec(image, metadata, channels)
    lead = image.ndim - (3 if channels else 2)
    n_stats = int(image.shape[-1]) if spec.mode == "channels" else 1
    low, high, missing, colour = _first_pass(image, spec, lead, n_stats, compute)
    rules = colour > 0
    low_used = np.where(rules[..., np.newaxis], low[..., -1:], low[..., :n_stats])
    high_used = np.where(rules[..., np.newaxis], high[..., -1:], high[..., :n_stats])
    n_planes = math.prod(image.shape[:lead])
    lows, widths, n_bins, exact = _bins(low_used, high_used, spec.integer and not rules.any(),
                                        n_planes, n_stats)
    counts = _per_chunk(image, _histogram_block, (n_stats, n_bins), lead, spec.channels,
                        np.int64, spec=spec, lead=lead, lows=lows, widths=widths, rules=rules,
                        n_bins=n_bins).sum(axis=(lead, lead + 1))
    (counts,) = compute(counts)
    planes = {}
    for index in np.ndindex(*image.shape[:lead]):
        colour = "hematoxylin" if rules[index] else "mean"
        divisor = spec.divisor(int(image.shape[-1]), colour)
        values = []
        for s in range(n_stats):
            found = statistics_from_histogram(counts[index][s], lows[index][s],
                                              widths[index][s], percentiles, exact)
            values.extend(float(v) / divisor for v in found)
        planes[index] = PlaneStatistics(tuple(values), colour)
    return ImageStatistics(planes, int(missing.sum()), exact)
