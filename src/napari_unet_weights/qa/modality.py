"""The imaging modality of an image by the recorded rule of the DSB 2018 split.

The one home of the rule that ``scripts/dsb2018_split.json`` records (``"modality_rule"``)
and that ``scripts/dsb2018_split.py`` applied to every DSB 2018 image: ``"he"`` (H&E
histology) when the colour channels differ anywhere; otherwise ``"brightfield"`` when the
background is bright (the median above the middle of the 1st-99.8th percentile range),
else ``"fluorescence"``. Images that are neither 2-D nor RGB(A) are ``"other"``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODALITIES", "modality"]

#: The modalities of the rule, in the order the summaries list them.
MODALITIES = ("fluorescence", "brightfield", "he")
#: Lazy (dask / zarr) images: the rule reads at most about this many pixels (a strided view).
_MAX_PIXELS_READ = 4096 * 4096


def _small_view(image):
    """``image`` as numpy; a lazy one through a strided view of at most ~16 MP per plane."""
    if isinstance(image, np.ndarray):
        return image
    height, width = image.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(height * width / _MAX_PIXELS_READ))))
    return np.asarray(image[::step, ::step])


def modality(image) -> str:
    """``"he"``, ``"brightfield"``, ``"fluorescence"`` (or ``"other"``) by the recorded rule.

    Parameters
    ----------
    image : array-like
        (H, W) grayscale or (H, W, 3 | 4) RGB(A). Lazy arrays (dask, zarr) are judged on a
        strided view of at most about 16 million pixels.

    Returns
    -------
    str
        ``"he"`` when the first three channels differ somewhere; else ``"brightfield"``
        when ``(median - p1) / (p99.8 - p1) > 0.5`` (a bright background), else
        ``"fluorescence"``; ``"other"`` for any other shape (stacks, 2-channel images).
    """
    shape = tuple(np.shape(image))
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in (3, 4)):
        return "other"
    image = _small_view(image)
    if image.ndim == 3:
        rgb = image[..., :3]
        if np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]):
            return "he"
        image = rgb[..., 0]
    if not np.issubdtype(image.dtype, np.integer):  # integers: the same figures, no copy
        image = image.astype(np.float64)
    low, high, median = np.percentile(image, (1.0, 99.8, 50.0))
    bright = high > low and (median - low) / (high - low) > 0.5
    return "brightfield" if bright else "fluorescence"
