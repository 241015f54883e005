"""Image transforms for training augmentation and for the robustness suite (numpy only).

Two users, one set of transforms:

- :class:`~.data.PatchSampler` draws them at random on each training patch
  (:class:`Augmentation` says which, from the :class:`~..config.TrainConfig` options
  ``augment_*``). Patches are already normalised (the model's input: about 0 for the
  background, 1 for the brightest nuclei), so intensity transforms act on that scale.
- ``scripts/robustness.py`` applies them with fixed strengths to raw validation images
  (:func:`object_brightness` and the noise functions take a background level for that).

Scaling keeps the targets exact: :func:`scaled_window` resizes the image *and* the
instance labels of a window that is larger than the patch by the weight map's reach
(:func:`context_margin`), and the targets and weights are then computed on the resized
labels, so that the patch's weight map equals the weight map of the whole resized label
image there (the border term beyond :func:`~...weights.exact.border_radius` is dropped by
:func:`~...weights.exact.weight_map` itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ...weights.exact import border_radius

__all__ = [
    "AUGMENT_PROBABILITY",
    "Augmentation",
    "blur",
    "context_margin",
    "gamma_contrast",
    "gaussian_noise",
    "hed_jitter",
    "object_brightness",
    "poisson_noise",
    "resize_image",
    "resize_labels",
]

#: Chance that each of the optional augmentations is applied to a patch.
AUGMENT_PROBABILITY = 0.5
#: Random ranges of the training augmentations (see :meth:`Augmentation.apply`).
GAMMA_RANGE = (0.5, 2.0)          # log-uniform
CONTRAST_RANGE = (0.6, 1.5)       # multiplies the normalised intensities
OFFSET_RANGE = (-0.1, 0.1)        # added to them
OBJECT_BRIGHTNESS_RANGE = (0.2, 1.0)
BLUR_SIGMA_RANGE = (0.5, 2.0)
GAUSSIAN_SNR_RANGE = (2.0, 20.0)  # log-uniform; noise sd = 1 / SNR on the normalised scale
POISSON_PHOTONS_RANGE = (4.0, 400.0)  # log-uniform; photons at normalised intensity 1
#: HED stain jitter (Tellez et al. 2018): each channel scaled by 1 ± STAIN_SCALE and
#: shifted by ± STAIN_SHIFT of its own 1-99 percentile range.
STAIN_SCALE = 0.1
STAIN_SHIFT = 0.05
#: Sigma of the smoothing of a per-object gain field, in pixels: a nucleus' blurred rim
#: dims with it.
GAIN_SMOOTHING = 1.5


# -- geometry ------------------------------------------------------------------------
def context_margin(w0: float, sigma: float) -> int:
    """Pixels around a patch whose objects can change its targets or weight map.

    The weight map's border term reaches :func:`~...weights.exact.border_radius`; the targets
    (a one-pixel gap or boundary) one pixel more.
    """
    return math.ceil(border_radius(w0, sigma)) + 2


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel when ``n_in`` pixels are resized to ``n_out``:
    the pixel whose centre is nearest (``floor((j + 0.5) · n_in / n_out)``)."""
    return np.minimum((np.arange(n_out) + 0.5) * n_in / n_out, n_in - 1).astype(np.intp)


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Instance labels resized to ``shape`` by nearest neighbour (ids and dtype kept).

    Output pixel ``(i, j)`` takes the input pixel whose centre is nearest to its own
    centre, so that resizing by an integer factor repeats or subsamples pixels exactly.
    """
    rows = _nearest_indices(labels.shape[0], shape[0])
    cols = _nearest_indices(labels.shape[1], shape[1])
    return labels[np.ix_(rows, cols)]


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An image resized to ``shape`` (first two axes): linear, anti-aliased when shrinking.

    Float32 for float or integer input; channels (a third axis) are resized alike.
    """
    from skimage.transform import resize

    shrinking = shape[0] < image.shape[0] or shape[1] < image.shape[1]
    return resize(image.astype(np.float32, copy=False), (*shape, *image.shape[2:]),
                  order=1, mode="reflect", anti_aliasing=shrinking,
                  preserve_range=True).astype(np.float32)


def window(array: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``array[top:top+size, left:left+size]``, mirrored (symmetric) where it is outside."""
    height, width = array.shape[:2]
    pads = [(max(0, -top), max(0, top + size - height)),
            (max(0, -left), max(0, left + size - width))]
    inside = array[max(0, top):min(height, top + size), max(0, left):min(width, left + size)]
    if not any(any(p) for p in pads):
        return inside
    pads += [(0, 0)] * (array.ndim - 2)
    if inside.shape[0] == 0 or inside.shape[1] == 0:  # wholly outside: mirror the array
        return window(np.pad(array, pads, mode="symmetric"), max(0, top), max(0, left), size)
    return np.pad(inside, pads, mode="symmetric")


# -- intensities -----------------------------------------------------------------------
def object_brightness(image: np.ndarray, labels: np.ndarray, gains, background=0.0
                      ) -> np.ndarray:
    """Each object's contrast against the background multiplied by its own gain.

    ``image' = background + (image − background) · g`` where ``g`` is object ``i``'s gain
    ``gains[i]`` on its pixels and 1 on the background, smoothed by
    :data:`GAIN_SMOOTHING` pixels so that a nucleus' rim dims with it.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (H, W, C), float.
    labels : numpy.ndarray of int, (H, W)
        Instance labels; ``gains`` is indexed by id (``gains[0]`` is ignored).
    gains : array-like of float
        One gain per id, at least ``labels.max() + 1`` of them.
    background : float or array-like
        The background level (per channel for a colour image).
    """
    gain = np.asarray(gains, dtype=np.float32)[labels]
    gain[labels == 0] = 1.0
    gain = ndi.gaussian_filter(gain, GAIN_SMOOTHING)
    if image.ndim == 3:
        gain = gain[..., np.newaxis]
    background = np.asarray(background, dtype=np.float32)
    return (background + (image - background) * gain).astype(np.float32)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the first two axes (channels apart), float32."""
    sigmas = (sigma, sigma) + (0,) * (image.ndim - 2)
    return ndi.gaussian_filter(image.astype(np.float32), sigmas, mode="reflect")


def gaussian_noise(rng: np.random.Generator, image: np.ndarray, sd: float) -> np.ndarray:
    """``image`` plus white Gaussian noise of standard deviation ``sd``, float32."""
    return (image + rng.normal(0.0, sd, image.shape)).astype(np.float32)


def poisson_noise(rng: np.random.Generator, image: np.ndarray, photons: float,
                  background: float = 0.0) -> np.ndarray:
    """Shot noise: an intensity of ``background + 1`` is ``photons`` photons on average.

    The result is ``Poisson(max(image − background, 0) · photons) / photons +
    background``: the noise grows with the signal above the background level, as for a
    photon-limited detector behind a dark offset.
    """
    signal = np.clip(image - background, 0.0, None) * photons
    return (rng.poisson(signal) / photons + background).astype(np.float32)


def gamma_contrast(image: np.ndarray, gamma: float, contrast: float = 1.0,
                   offset: float = 0.0) -> np.ndarray:
    """``max(image, 0) ** gamma · contrast + offset`` (on the normalised scale), float32."""
    return (np.clip(image, 0.0, None) ** gamma * contrast + offset).astype(np.float32)


def hed_jitter(rgb: np.ndarray, scales, shifts, hed_range=None) -> np.ndarray:
    """An RGB image with its haematoxylin, eosin and DAB densities jittered.

    The stain densities of :func:`skimage.color.rgb2hed` become ``hed · scales + shifts ·
    hed_range`` (per channel), and the image is composed again with
    :func:`skimage.color.hed2rgb` (Tellez et al. 2018, "H&E stain augmentation").

    Parameters
    ----------
    rgb : numpy.ndarray, (H, W, 3) or more channels (the first three are used)
    scales, shifts : array-like of 3 floats
        Per stain: the factor and the shift (a fraction of ``hed_range``).
    hed_range : array-like of 3 floats, optional
        Each stain's range of densities; default: its 1-99 percentile range in ``rgb``
        (pass the whole image's for a part of it, so that all parts shift alike).

    Returns
    -------
    numpy.ndarray of float32, (H, W, 3), in [0, 1]
        Densities below 0 give white.
    """
    from skimage.color import hed2rgb, rgb2hed

    hed = rgb2hed(np.asarray(rgb)[..., :3])
    if hed_range is None:
        low, high = np.percentile(hed.reshape(-1, 3), [1, 99], axis=0)
        hed_range = high - low
    jittered = hed * np.asarray(scales) + np.asarray(shifts) * np.asarray(hed_range)
    return np.clip(hed2rgb(jittered), 0.0, 1.0).astype(np.float32)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


# -- the training augmentation ---------------------------------------------------------
@dataclass(frozen=True)
class Augmentation:
    """Which random transforms a training patch gets (the ``augment_*`` options).

    Attributes
    ----------
    intensity : bool
        Gamma in :data:`GAMMA_RANGE` (log-uniform), contrast and offset.
    objects : bool
        Each nucleus' brightness × :data:`OBJECT_BRIGHTNESS_RANGE` (dim and bright
        nuclei in one patch).
    noise : bool
        Gaussian (SNR :data:`GAUSSIAN_SNR_RANGE`) or Poisson
        (:data:`POISSON_PHOTONS_RANGE`) noise, one of the two.
    blur : bool
        Gaussian blur, sigma in :data:`BLUR_SIGMA_RANGE`.
    scale : float
        Largest zoom factor: each patch is zoomed by a factor drawn log-uniformly from
        [1/scale, scale] (1: none). Targets and weights are computed on the zoomed labels.
    stain : bool
        HED stain jitter of colour images (:func:`hed_jitter`), before they are made gray.
    """

    intensity: bool = False
    objects: bool = False
    noise: bool = False
    blur: bool = False
    scale: float = 1.0
    stain: bool = False

    @classmethod
    def from_config(cls, config) -> Augmentation:
        """The augmentation a :class:`~..config.TrainConfig` asks for."""
        return cls(intensity=config.augment_intensity, objects=config.augment_objects,
                   noise=config.augment_noise, blur=config.augment_blur,
                   scale=config.augment_scale, stain=config.augment_stain)

    def draw_scale(self, rng: np.random.Generator) -> float:
        """A zoom factor: 1, or (with :data:`AUGMENT_PROBABILITY`) log-uniform in
        [1/scale, scale]."""
        if self.scale <= 1.0 or rng.random() >= AUGMENT_PROBABILITY:
            return 1.0
        return _log_uniform(rng, 1.0 / self.scale, self.scale)

    def draw_stain(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        """HED ``(scales, shifts)`` for :func:`hed_jitter`, or None (no jitter)."""
        if not self.stain or rng.random() >= AUGMENT_PROBABILITY:
            return None
        return (rng.uniform(1 - STAIN_SCALE, 1 + STAIN_SCALE, 3),
                rng.uniform(-STAIN_SHIFT, STAIN_SHIFT, 3))

    def apply(self, rng: np.random.Generator, x: np.ndarray, labels: np.ndarray
              ) -> np.ndarray:
        """The intensity transforms of a normalised patch ``x`` (H, W, 1), each with
        :data:`AUGMENT_PROBABILITY`: object brightness, blur, noise, gamma and contrast
        (in that order: specimen, optics, detector, display)."""

        def chosen(enabled: bool) -> bool:
            return enabled and rng.random() < AUGMENT_PROBABILITY

        if chosen(self.objects):
            gains = rng.uniform(*OBJECT_BRIGHTNESS_RANGE, int(labels.max()) + 1)
            x = object_brightness(x, labels, gains)
        if chosen(self.blur):
            x = blur(x, rng.uniform(*BLUR_SIGMA_RANGE))
        if chosen(self.noise):
            if rng.random() < 0.5:
                x = gaussian_noise(rng, x, 1.0 / _log_uniform(rng, *GAUSSIAN_SNR_RANGE))
            else:
                x = poisson_noise(rng, x, _log_uniform(rng, *POISSON_PHOTONS_RANGE))
        if chosen(self.intensity):
            x = gamma_contrast(x, _log_uniform(rng, *GAMMA_RANGE),
                               rng.uniform(*CONTRAST_RANGE), rng.uniform(*OFFSET_RANGE))
        return x
