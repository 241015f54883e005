"""U-Net border weight maps (Ronneberger et al. 2015), exact and local.

w(x) = w_c(x) + w0 · exp(−(d1(x) + d2(x))² / 2σ²)

d1 and d2 are the distances from x to the nearest and second-nearest object.
Only objects within a radius R of x can matter, where R is the distance at which
w0 · exp(−R² / 2σ²) falls below ``tolerance``: if d1 + d2 > R the border term is
below the tolerance anyway. So each object's distance transform is computed only in
its bounding box grown by R, and the two smallest distances are kept per pixel.
The result is within ``tolerance`` of the brute-force value everywhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import product
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from .._checks import check_number, validate_labels
from ..labels.ids import sequential_ids
from .lazy import is_dask_array, lazy_weight_map

if TYPE_CHECKING:
    import dask.array

__all__ = [
    "BORDER_MODES",
    "CLASS_WEIGHT_MODES",
    "WeightMapCache",
    "border_radius",
    "check_class_weights",
    "check_number",
    "class_weight_values",
    "validate_labels",
    "weight_map",
]

Border = Literal["background", "all"]
ClassWeights = str | tuple[float, float]

BORDER_MODES = ("background", "all")
CLASS_WEIGHT_MODES = ("balanced", "inverse", "none")
DEFAULT_TOLERANCE = 1e-4


def _check_parameters(w0, sigma, tolerance=DEFAULT_TOLERANCE) -> tuple[float, float, float]:
    """``(w0, sigma, tolerance)`` as floats: w0 >= 0, sigma > 0, tolerance > 0."""
    return (
        check_number(w0, "w0"),
        check_number(sigma, "sigma", allow_minimum=False),
        check_number(tolerance, "tolerance", allow_minimum=False),
    )


def border_radius(w0: float, sigma: float, tolerance: float = DEFAULT_TOLERANCE) -> float:
    """Distance sum beyond which the border term ``w0·exp(−r²/2σ²)`` is below ``tolerance``.

    Parameters
    ----------
    w0, sigma : float
        Border weight (>= 0) and width (> 0) of the U-Net weight map.
    tolerance : float
        Largest border term that may be dropped (> 0).

    Returns
    -------
    float
        The radius ``R = σ·sqrt(2·ln(w0/tolerance))``, 0 when ``w0 <= tolerance``.

    Raises
    ------
    TypeError, ValueError
        If a parameter is not a finite number in its range.
    """
    w0, sigma, tolerance = _check_parameters(w0, sigma, tolerance)
    if w0 <= tolerance:
        return 0.0
    return sigma * math.sqrt(2.0 * math.log(w0 / tolerance))


def check_class_weights(class_weights) -> str | tuple[float, float]:
    """Return ``class_weights`` as a mode name or a ``(background, foreground)`` float pair.

    Parameters
    ----------
    class_weights : {"balanced", "inverse", "none"} or (float, float)
        A rule name, or two finite numbers >= 0.

    Returns
    -------
    str or tuple of float
        The mode name, or the pair as floats.

    Raises
    ------
    ValueError
        For an unknown name, or a pair that is not two finite numbers >= 0.
    """
    allowed = (
        f"class_weights must be one of {CLASS_WEIGHT_MODES} or a (background, foreground) "
        "pair of finite numbers >= 0"
    )
    if isinstance(class_weights, str):
        if class_weights not in CLASS_WEIGHT_MODES:
            raise ValueError(f"{allowed}, got {class_weights!r}.")
        return class_weights
    try:
        pair = tuple(check_number(value, "class_weights") for value in class_weights)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2:
        raise ValueError(f"{allowed}, got {class_weights!r}.")
    return pair


def class_weight_values(
    n_pixels: int, n_foreground: int, class_weights: ClassWeights = "balanced"
) -> tuple[float, float]:
    """The ``(background, foreground)`` class weights w_c for one image.

    Parameters
    ----------
    n_pixels, n_foreground : int
        Pixel count of the image and of its objects.
    class_weights : {"balanced", "inverse", "none"} or (float, float)
        ``"balanced"``: foreground gets 1 − f and background f, with f the foreground
        fraction (the seed's rule); ``"inverse"``: each class gets
        n_pixels / (2 · n_class); ``"none"``: 1 for both; or an explicit pair of
        finite numbers >= 0. With a single class present (no object, or no
        background) there is nothing to balance: ``"balanced"`` and ``"inverse"``
        give 1 to both, so that such an image still weighs in a loss.

    Returns
    -------
    tuple of float
        ``(background_weight, foreground_weight)``.

    Raises
    ------
    ValueError
        For invalid ``class_weights``, or counts with ``n_foreground`` outside
        ``[0, n_pixels]``.
    """
    class_weights = check_class_weights(class_weights)
    if not 0 <= n_foreground <= n_pixels:
        raise ValueError(
            f"n_foreground must lie in [0, n_pixels = {n_pixels}], got {n_foreground}."
        )
    if not isinstance(class_weights, str):
        return class_weights
    n_background = n_pixels - n_foreground
    if class_weights == "none" or n_foreground == 0 or n_background == 0:
        return 1.0, 1.0
    if class_weights == "balanced":
        fraction = n_foreground / n_pixels
        return fraction, 1.0 - fraction
    return n_pixels / (2.0 * n_background), n_pixels / (2.0 * n_foreground)


def _grow(box: tuple[slice, ...], margins: Sequence[int], shape: Sequence[int]):
    return tuple(
        slice(max(s.start - m, 0), min(s.stop + m, n))
        for s, m, n in zip(box, margins, shape, strict=True)
    )


def _intersect(a: tuple[slice, ...], b: tuple[slice, ...]):
    box = tuple(slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a, b))
    return None if any(s.start >= s.stop for s in box) else box


def _shift(box: tuple[slice, ...], origin: Sequence[int]):
    return tuple(slice(s.start - o, s.stop - o) for s, o in zip(box, origin, strict=True))


#: exp(-87) ≈ 1.6e-38 is the smallest float32 exponential that is not subnormal; the
#: border term there is 1e-33 times below any tolerance that makes sense.
_SMALLEST_NORMAL_EXPONENT = np.float32(-87.0)


def _object_boxes(labels: np.ndarray):
    """Yield ``(id, bounding box)`` for each object, also for huge, sparse ids."""
    if labels.size == 0:
        return
    ids, index = sequential_ids(labels.ravel())
    for position, box in enumerate(ndi.find_objects(index.reshape(labels.shape)), start=1):
        if box is not None:
            yield int(ids[position]), box


def _two_nearest_sum(
    sources: np.ndarray,
    region: tuple[slice, ...],
    margins: Sequence[int],
    spacing: Sequence[float],
    *,
    single_object_rule: bool,
) -> np.ndarray:
    """d1 + d2 on ``region`` of ``sources`` (0 = none), exact where it is within the radius.

    Only objects inside ``region`` grown by ``margins`` are looked at; each object's
    distance transform covers its own bounding box grown by ``margins``. With
    ``single_object_rule`` and a single object in sight, d1 alone is returned (the
    seed's rule for one object).
    """
    context = _grow(region, margins, sources.shape)
    origin = [s.start for s in context]
    local_region = _shift(region, origin)
    context_sources = sources[context]
    region_shape = tuple(s.stop - s.start for s in region)
    d1 = np.full(region_shape, np.inf)
    d2 = np.full(region_shape, np.inf)
    n_seen = 0
    for value, box in _object_boxes(context_sources):
        n_seen += 1
        window = _grow(box, margins, context_sources.shape)
        overlap = _intersect(window, local_region)
        if overlap is None:
            continue
        distances = ndi.distance_transform_edt(context_sources[window] != value, sampling=spacing)
        distances = distances[_shift(overlap, [s.start for s in window])]
        target = _shift(overlap, [s.start for s in local_region])
        nearest, second = d1[target], d2[target]
        np.minimum(second, np.maximum(nearest, distances), out=second)
        np.minimum(nearest, distances, out=nearest)
    if single_object_rule and n_seen == 1:
        return d1
    return d1 + d2


@dataclass
class _Volume:
    """Distances of one independent volume (the whole array, or one plane of it)."""

    index: tuple[int, ...]
    labels: np.ndarray
    sum_sq: np.ndarray  # (d1 + d2)² in float32, inf where the border term is dropped
    areas: dict[int, int]


class WeightMapCache:
    """Distances of one labels array, kept so that new w0 / σ values render fast.

    The expensive part of a weight map, the distances to the two nearest objects,
    does not depend on w0 or σ. This cache computes them once (up to the radius
    that the largest requested w0 / σ need) and keeps ``(d1 + d2)²``; rendering a
    new w0 / σ is then one vectorised pass. :meth:`update` takes edited labels and
    recomputes only the neighbourhood of the pixels that changed.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 = background; ids need not be sequential. The cache keeps
        its own copy: later edits to the caller's array do not reach it until
        :meth:`update` is called.
    border : {"background", "all"}
        ``"background"`` (U-Net paper, Falk et al. 2019): the border term only on
        background pixels, d_i the distance to the nearest pixel of object i, no term
        with fewer than two objects. ``"all"`` (the seed's ``make_weight_map``): the term
        on every pixel, d_i the distance to the inner boundary of object i; with a
        single object the term is ``w0·exp(−d1²/2σ²)``.
    spacing : sequence of float, optional
        Pixel size along each spatial axis (e.g. ``(2.0, 0.5, 0.5)`` for anisotropic
        z-stacks); distances and σ are then in these units.
    spatial_dims : int, optional
        Number of trailing axes that form one image. Leading axes (time, z annotated
        slice by slice, …) are then independent planes, each with its own distances
        and class weights. Default: all axes are spatial.
    tolerance : float
        Largest border-term value that may be dropped (absolute, > 0).

    Notes
    -----
    Labels without any pixel (e.g. a ``(0, 5, 5)`` stack) are accepted: their weight
    map is empty too. Parameters are checked when the cache is made (``border``,
    ``spacing``, ``spatial_dims``, ``tolerance``) and at each :meth:`render`
    (``w0``, ``sigma``, ``class_weights``), see :func:`weight_map`.

    Examples
    --------
    >>> cache = WeightMapCache(labels)                       # doctest: +SKIP
    >>> for sigma in (3, 5, 8):
    ...     weights = cache.render(w0=10, sigma=sigma)       # doctest: +SKIP
    """

    def __init__(
        self,
        labels,
        *,
        border: Border = "background",
        spacing: Sequence[float] | None = None,
        spatial_dims: int | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        labels = validate_labels(labels)
        if border not in BORDER_MODES:
            raise ValueError(f"border must be one of {BORDER_MODES}, got {border!r}.")
        self.border: Border = border
        self.tolerance = check_number(tolerance, "tolerance", allow_minimum=False)
        self.spatial_dims = self._check_spatial_dims(spatial_dims, labels.ndim)
        self.spacing = self._check_spacing(spacing, self.spatial_dims)
        self.shape = labels.shape
        self.dtype = labels.dtype
        self.radius = 0.0
        self._computed = False
        self._class_weight_cache: tuple[object, np.ndarray] | None = None
        self._volumes = [
            self._new_volume(index, labels[index]) for index in self._plane_indices()
        ]

    @staticmethod
    def _check_spatial_dims(spatial_dims: int | None, ndim: int) -> int:
        if spatial_dims is None:
            return ndim
        if isinstance(spatial_dims, bool | np.bool_) or not isinstance(
            spatial_dims, numbers.Integral
        ):
            raise TypeError(
                f"spatial_dims must be a whole number (int) or None, got "
                f"{type(spatial_dims).__name__} {spatial_dims!r}."
            )
        if not 1 <= int(spatial_dims) <= ndim:
            raise ValueError(
                f"spatial_dims must be between 1 and the labels' ndim ({ndim}), "
                f"got {spatial_dims!r}."
            )
        return int(spatial_dims)

    @staticmethod
    def _check_spacing(spacing, spatial_dims: int) -> tuple[float, ...]:
        if spacing is None:
            return (1.0,) * spatial_dims
        allowed = (f"spacing must be {spatial_dims} finite numbers > 0 (one per spatial axis), "
                   f"got {spacing!r}.")
        items = np.atleast_1d(np.asarray(spacing, dtype=object))
        if items.ndim != 1 or len(items) not in (1, spatial_dims):
            raise ValueError(allowed)
        try:
            values = tuple(check_number(s, "spacing", allow_minimum=False) for s in items)
        except (TypeError, ValueError) as error:
            raise type(error)(allowed) from None
        return values * spatial_dims if len(values) == 1 else values

    def _plane_indices(self):
        return product(*(range(n) for n in self.shape[: len(self.shape) - self.spatial_dims]))

    def _new_volume(self, index, labels: np.ndarray) -> _Volume:
        values, counts = np.unique(labels, return_counts=True)
        return _Volume(
            index=tuple(index),
            labels=np.array(labels, copy=True),
            sum_sq=np.full(labels.shape, np.inf, dtype=np.float32),
            areas=dict(zip(values.tolist(), counts.tolist(), strict=True)),
        )

    @property
    def labels(self) -> np.ndarray:
        """A read-only copy of the labels the cache currently describes."""
        out = np.empty(self.shape, dtype=self.dtype)
        for volume in self._volumes:
            out[volume.index] = volume.labels
        out.flags.writeable = False
        return out

    @property
    def n_objects(self) -> int:
        """Number of objects; with ``spatial_dims`` < ndim, summed over the planes."""
        return sum(self._n_objects(volume) for volume in self._volumes)

    @staticmethod
    def _n_objects(volume: _Volume) -> int:
        return sum(1 for value in volume.areas if value != 0)

    # -- distances ---------------------------------------------------------------
    def _margins(self) -> tuple[int, ...]:
        return tuple(max(1, math.ceil(self.radius / s)) for s in self.spacing)

    def _sources(self, labels: np.ndarray) -> np.ndarray:
        if self.border == "all":
            return np.where(find_boundaries(labels, mode="inner"), labels, 0)
        return labels

    def _refresh(self, volume: _Volume, region: tuple[slice, ...]) -> None:
        """Recompute ``(d1 + d2)²`` of ``volume`` inside ``region``."""
        n_objects = self._n_objects(volume)
        if n_objects == 0 or (n_objects == 1 and self.border == "background"):
            volume.sum_sq[region] = np.inf
            return
        margins = self._margins()
        context = _grow(region, [m + 1 for m in margins], volume.labels.shape)
        sources = self._sources(volume.labels[context])
        local = _shift(region, [s.start for s in context])
        distance = _two_nearest_sum(
            sources, local, margins, self.spacing, single_object_rule=n_objects == 1
        )
        distance[distance > self.radius] = np.inf
        if self.border == "background":
            distance[volume.labels[region] != 0] = np.inf
        np.square(distance, out=distance)
        volume.sum_sq[region] = distance

    def _ensure_radius(self, radius: float) -> None:
        if self._computed and radius <= self.radius:
            return
        # Grow with headroom so that a slider dragged upwards does not recompute each step.
        self.radius = max(radius, 1.5 * self.radius) if self._computed else radius
        for volume in self._volumes:
            self._refresh(volume, tuple(slice(0, n) for n in volume.labels.shape))
        self._computed = True

    def covers(self, w0: float, sigma: float) -> bool:
        """Whether :meth:`render` can draw these parameters without new distances."""
        return self._computed and border_radius(w0, sigma, self.tolerance) <= self.radius

    # -- rendering ---------------------------------------------------------------
    def _class_weight_map(self, key: str | tuple[float, float]) -> np.ndarray:
        """w_c per pixel for ``key``, a :func:`check_class_weights` result."""
        if self._class_weight_cache is not None and self._class_weight_cache[0] == key:
            return self._class_weight_cache[1]
        weights = np.empty(self.shape, dtype=np.float32)
        for volume in self._volumes:
            n_background = volume.areas.get(0, 0)
            background, foreground = class_weight_values(
                volume.labels.size, volume.labels.size - n_background, key
            )
            weights[volume.index] = np.where(volume.labels != 0, foreground, background)
        self._class_weight_cache = (key, weights)
        return weights

    def border_term(self, w0: float = 10.0, sigma: float = 5.0) -> np.ndarray:
        """The border term ``w0·exp(−(d1 + d2)²/2σ²)`` alone, as float32."""
        w0, sigma, _ = _check_parameters(w0, sigma, self.tolerance)
        self._ensure_radius(border_radius(w0, sigma, self.tolerance))
        out = np.empty(self.shape, dtype=np.float32)
        for volume in self._volumes:
            plane = out[volume.index]
            np.multiply(volume.sum_sq, np.float32(-0.5 / sigma**2), out=plane)
            # exp() of a float32 below -87.3 is subnormal, and 5-7x slower to compute
            np.maximum(plane, _SMALLEST_NORMAL_EXPONENT, out=plane)
            np.exp(plane, out=plane)
            plane *= np.float32(w0)
        return out

    def render(
        self,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: ClassWeights = "balanced",
    ) -> np.ndarray:
        """The weight map ``w_c + w0·exp(−(d1 + d2)²/2σ²)`` as a new float32 array.

        Parameters
        ----------
        w0 : float
            Weight of the border term (≥ 0).
        sigma : float
            Width of the border term, in pixels (or in ``spacing`` units).
        class_weights : {"balanced", "inverse", "none"} or (float, float)
            See :func:`class_weight_values`.

        Returns
        -------
        numpy.ndarray
            float32 array of the labels' shape (empty for empty labels).

        Raises
        ------
        TypeError, ValueError
            If w0 or σ is not a finite number in its range, or ``class_weights`` is
            not allowed.
        """
        class_weights = check_class_weights(class_weights)
        out = self.border_term(w0, sigma)
        out += self._class_weight_map(class_weights)
        return out

    # -- edits -------------------------------------------------------------------
    def update(self, labels, region: tuple[slice, ...] | None = None) -> tuple[slice, ...] | None:
        """Take edited labels and recompute only around the pixels that changed.

        Parameters
        ----------
        labels : array-like of int
            The full labels array after the edit (same shape as before).
        region : tuple of slice, optional
            Where the edit happened, if known: only this part is compared with the
            previous labels. By default the whole array is compared.

        Returns
        -------
        tuple of slice or None
            The bounding box of the changed pixels, or None if nothing changed.
        """
        labels = validate_labels(labels)
        if labels.shape != self.shape:
            raise ValueError(
                f"update() needs labels of the cached shape {self.shape}, got {labels.shape}; "
                "make a new WeightMapCache for a new image."
            )
        region = _normalise_region(region, self.shape)
        changed_box = None
        for volume in self._volumes:
            box = self._update_volume(volume, labels, region)
            if box is not None:
                full = tuple(slice(i, i + 1) for i in volume.index) + box
                changed_box = full if changed_box is None else _union(changed_box, full)
        if changed_box is not None:
            self._class_weight_cache = None
        return changed_box

    def _update_volume(
        self, volume: _Volume, labels: np.ndarray, region: tuple[slice, ...]
    ) -> tuple[slice, ...] | None:
        lead = len(volume.index)
        if not all(s.start <= i < s.stop for s, i in zip(region[:lead], volume.index)):
            return None
        spatial_region = region[lead:]
        new = np.asarray(labels[volume.index][spatial_region])
        old = volume.labels[spatial_region]
        changed = new != old
        if not changed.any():
            return None
        box = tuple(
            slice(s.start + int(idx.min()), s.start + int(idx.max()) + 1)
            for s, idx in zip(spatial_region, np.nonzero(changed))
        )
        had_single = self._n_objects(volume) == 1
        self._count_change(volume.areas, old[changed], -1)
        self._count_change(volume.areas, new[changed], +1)
        volume.labels[spatial_region] = new
        if not self._computed:
            return box
        n_objects = self._n_objects(volume)
        if self.border == "all" and (had_single or n_objects == 1):
            self._refresh(volume, tuple(slice(0, n) for n in volume.labels.shape))
        else:
            # Inner boundaries move up to one pixel beyond the edit.
            touched = _grow(box, [m + 1 for m in self._margins()], volume.labels.shape)
            self._refresh(volume, touched)
        return box

    @staticmethod
    def _count_change(areas: dict[int, int], values: np.ndarray, sign: int) -> None:
        ids, counts = np.unique(values, return_counts=True)
        for value, count in zip(ids.tolist(), counts.tolist(), strict=True):
            remaining = areas.get(value, 0) + sign * count
            if remaining:
                areas[value] = remaining
            else:
                areas.pop(value, None)


def _normalise_region(region, shape) -> tuple[slice, ...]:
    region = tuple(region or ())
    if len(region) > len(shape):
        raise ValueError(f"region has {len(region)} axes, the labels {len(shape)}.")
    region += (slice(None),) * (len(shape) - len(region))
    return tuple(slice(*s.indices(n)[:2]) for s, n in zip(region, shape, strict=True))


def _union(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def weight_map(
    labels,
    w0: float = 10.0,
    sigma: float = 5.0,
    *,
    border: Border = "background",
    class_weights: ClassWeights = "balanced",
    spacing: Sequence[float] | None = None,
    spatial_dims: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    memory_budget: int | str = "auto",
) -> np.ndarray | dask.array.Array:
    """U-Net loss weight map of instance labels: ``w_c + w0·exp(−(d1 + d2)²/2σ²)``.

    Parameters
    ----------
    labels : array-like of int, or dask.array.Array
        Instance labels, 0 = background; ids need not be sequential; 2-D or n-D. A
        dask array gives a lazy dask array (class counts, if needed, are taken in one
        pass first; see :mod:`napari_unet_weights.weights.lazy`).
    w0 : float
        Weight of the border term.
    sigma : float
        Width of the border term, in pixels (in ``spacing`` units when given).
    border : {"background", "all"}
        ``"background"``: the U-Net paper / Falk et al. 2019 definition, border term
        on background pixels only, d_i = distance to the nearest pixel of object i.
        ``"all"``: the seed blog's ``make_weight_map``, term on every pixel, d_i =
        distance to the inner boundary of object i.
    class_weights : {"balanced", "inverse", "none"} or (float, float)
        How w_c is chosen, see :func:`class_weight_values`.
    spacing : sequence of float, optional
        Pixel size per spatial axis, for anisotropic data.
    spatial_dims : int, optional
        Number of trailing axes forming one image; leading axes are computed plane by
        plane (time series, z-stacks annotated slice by slice). Default: all axes.
    tolerance : float
        Largest border-term value that may be dropped; the result is within this of
        the exact value.
    memory_budget : int or str
        Dask labels only: the peak memory of the blocks mapped at once, in bytes, as
        a size such as ``"1 GiB"``, or ``"auto"``; it sets the working block size.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        float32 weights with the shape of ``labels``; labels with no pixel (a shape
        such as ``(0, 5, 5)``) give an empty map. Dask labels give a lazy dask array
        with their chunks.

    Raises
    ------
    TypeError
        For labels that are not integers, or a parameter of the wrong type (e.g.
        ``w0="10"``, ``spatial_dims=1.5``).
    ValueError
        For negative labels, or a parameter outside its range: w0 >= 0, sigma > 0,
        tolerance > 0 and spacing > 0 (all finite), class weights finite and >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((32, 32), dtype=np.uint16)
    >>> labels[5:15, 5:15] = 1
    >>> labels[5:15, 17:27] = 2
    >>> w = weight_map(labels, w0=10, sigma=5)
    >>> round(float(w[10, 16]), 2)  # the 2-pixel gap between the two squares
    8.55
    """
    _check_parameters(w0, sigma, tolerance)
    class_weights = check_class_weights(class_weights)
    if is_dask_array(labels):
        return _lazy(labels, w0, sigma, border, class_weights, spacing, spatial_dims, tolerance,
                     memory_budget)
    cache = WeightMapCache(
        labels, border=border, spacing=spacing, spatial_dims=spatial_dims, tolerance=tolerance
    )
    return cache.render(w0, sigma, class_weights)


def _lazy(labels, w0, sigma, border, class_weights, spacing, spatial_dims, tolerance, budget):
    """:func:`weight_map` of dask labels: checked here, mapped by lazy_weights with this engine."""
    if border not in BORDER_MODES:
        raise ValueError(f"border must be one of {BORDER_MODES}, got {border!r}.")
    spatial_dims = WeightMapCache._check_spatial_dims(spatial_dims, labels.ndim)
    needs_counts = class_weights in ("balanced", "inverse")
    return lazy_weight_map(
        labels,
        partial(weight_map, w0=w0, sigma=sigma, border=border, spacing=spacing,
                tolerance=tolerance),
        radius=border_radius(w0, sigma, tolerance),
        border=border,
        class_weights=partial(class_weight_values, class_weights=class_weights)
        if needs_counts else class_weight_values(1, 0, class_weights),
        spacing=WeightMapCache._check_spacing(spacing, spatial_dims),
        spatial_dims=spatial_dims,
        memory_budget=budget,
    )
