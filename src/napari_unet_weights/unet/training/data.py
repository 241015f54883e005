"""Training samples: reading and checking (image, labels) pairs, the split, the patches.

Data flow: arrays or folders → :func:`load_samples` (checked :class:`Sample` pairs) →
:func:`datasets` (the training / validation split, recorded) → :func:`prepare_sample`
(normalised image, target classes and loss weights, computed once) →
:class:`PatchSampler` (random patches with augmentation) and :func:`validation_patches`
(a fixed set). Numpy only: the Keras side of the pipeline is in :mod:`.train`.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...weights.exact import validate_labels
from ..config import TrainConfig
from ..preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION, check_training_image, prepare_image
from ..targets import targets
from .augment import Augmentation, context_margin, hed_jitter, resize_image, resize_labels, window

__all__ = [
    "PatchSampler",
    "PreparedSample",
    "Sample",
    "augment_patch",
    "datasets",
    "load_samples",
    "prepare_sample",
    "split_indices",
    "validation_patches",
]

PathLike = str | os.PathLike

#: Validation patches per image (its centre crop and seeded random crops), and at most.
VAL_PATCHES_PER_IMAGE = 4
MAX_VAL_PATCHES = 256


@dataclass
class Sample:
    """One (image, labels) pair: ``name`` is the file stem, or the index in the lists."""

    name: str | int
    image: np.ndarray
    labels: np.ndarray


@dataclass
class PreparedSample:
    """A sample ready for training: the network's input, its target and loss weights."""

    name: str | int
    x: np.ndarray        # (H, W, 1) float32, normalised
    target: np.ndarray   # (H, W) uint8
    weights: np.ndarray  # (H, W) float32
    labels: np.ndarray   # (H, W) instance labels, for the mAP
    image: np.ndarray | None = None  # the image as read (colour ones: for stain jitter)


# -- loading and checking inputs -------------------------------------------------
def _check_pair(sample: Sample) -> Sample:
    image, labels = np.asarray(sample.image), sample.labels
    what = f"sample {sample.name!r}"
    labels = validate_labels(labels, name=f"labels of {what}")
    if labels.ndim != 2:
        raise ValueError(f"labels of {what} must be 2-D (H, W), got shape {labels.shape}.")
    if image.shape[:2] != labels.shape or image.ndim not in (2, 3):
        raise ValueError(
            f"image and labels of {what} differ in shape: image {image.shape}, labels "
            f"{labels.shape} (expected image (H, W) or (H, W, C) with labels (H, W))."
        )
    check_training_image(image, what)
    return Sample(sample.name, image, labels)


def _folder_pairs(images: Path, labels: PathLike | None) -> list[tuple[Path, Path]]:
    from ...io.files import pair_files

    if labels is None:
        image_dir, label_dir = images / "images", images / "labels"
        if not image_dir.is_dir() or not label_dir.is_dir():
            raise ValueError(
                f"{images} must hold an images/ and a labels/ folder (files paired by name), "
                "or pass the labels folder as the second argument."
            )
    else:
        image_dir, label_dir = images, Path(labels)
    return pair_files(image_dir, label_dir)


def _read_folder(images: Path, labels: PathLike | None) -> list[Sample]:
    from ...io.files import file_stem, read_image, read_labels

    if not images.exists():
        raise FileNotFoundError(f"{images}: no such folder.")
    if not images.is_dir():
        raise NotADirectoryError(f"{images} is not a folder.")
    return [
        Sample(file_stem(image_path), read_image(image_path), read_labels(label_path))
        for image_path, label_path in _folder_pairs(images, labels)
    ]


def _from_arrays(images, labels) -> list[Sample]:
    if labels is None:
        raise TypeError("labels are missing: pass a list of label arrays with the images.")
    if isinstance(labels, (str, os.PathLike)) or isinstance(images, np.ndarray):
        raise TypeError(
            "images and labels must both be lists of arrays, or both folders; got "
            f"{type(images).__name__} and {type(labels).__name__}."
        )
    images, labels = list(images), list(labels)
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} label arrays.")
    return [Sample(i, image, label) for i, (image, label) in enumerate(zip(images, labels))]


def load_samples(images, labels=None) -> list[Sample]:
    """Read and check (image, labels) pairs; see :func:`.train.train` for the accepted forms.

    Labels keep their integer dtype (uint32 or int64 ids above 65535 stay as they are).

    Raises
    ------
    FileNotFoundError, NotADirectoryError, OSError
        Missing folders, unreadable files (named).
    TypeError
        Float / boolean labels, wrong argument types.
    ValueError
        Empty folders, unpaired files, mismatched shapes (pair and shapes named).
    """
    if isinstance(images, (str, os.PathLike)):
        samples = _read_folder(Path(images), labels)
    else:
        samples = _from_arrays(images, labels)
    if not samples:
        raise ValueError("no training samples given.")
    return [_check_pair(sample) for sample in samples]


# -- the split --------------------------------------------------------------------
def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and validation indices of ``n`` samples: ``round(n * fraction)`` (at least
    one) held out, chosen with ``seed``; both sorted.

    Raises
    ------
    ValueError
        Fewer than 2 samples, or a fraction that leaves no training sample (the largest
        fraction that works is named).
    """
    if n < 2:
        raise ValueError(f"{n} sample is too few for a validation split: give at least 2 "
                         "samples, pass validation=(images, labels), or validate on the "
                         "training images (validation='training').")
    n_val = max(1, round(n * fraction))
    if n - n_val < 1:
        largest = math.floor((n - 1) / n * 100) / 100
        raise ValueError(
            f"a validation fraction of {fraction} leaves {n - n_val} of {n} samples for "
            f"training; use a fraction of at most {largest}, add samples, or pass "
            "validation=(images, labels)."
        )
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _split_record(train_set: list[Sample], val_set: list[Sample], **extra) -> dict:
    by = "name" if all(isinstance(s.name, str) for s in train_set + val_set) else "index"
    return {"by": by, **extra, "train": [s.name for s in train_set],
            "validation": [s.name for s in val_set]}


def _check_some_object(samples: list[Sample]) -> None:
    """Refuse training samples whose labels are all background: nothing to learn."""
    if not any(np.any(sample.labels) for sample in samples):
        count = (f"the {len(samples)} label images of the training data hold"
                 if len(samples) > 1 else "the label image of the training data holds")
        raise ValueError(f"{count} no object (every pixel is 0): a model would only learn "
                         "background. Paint the objects (ids 1..N) first, or add images "
                         "with objects.")


def _fingerprint(sample: Sample) -> str:
    """What makes two samples the same pixels: shapes, dtypes and a digest of both."""
    digest = hashlib.sha256()
    for array in (sample.image, sample.labels):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _also_training(train_set: list[Sample], val_set: list[Sample]) -> int:
    """How many validation samples are training samples (the same pixels, any name)."""
    trained = {_fingerprint(sample) for sample in train_set}
    return sum(_fingerprint(sample) in trained for sample in val_set)


def _given_validation(samples: list[Sample], validation) -> tuple[list[Sample], dict]:
    """The given validation set and its split record: ``"source": "training"`` when its
    samples are all training samples, else ``"given"`` (with ``"also_training"``, the
    count of those that are, if any)."""
    if isinstance(validation, (str, os.PathLike)):
        val_set = load_samples(validation)
    else:
        val_images, val_labels = validation
        val_set = load_samples(val_images, val_labels)
    shared = _also_training(samples, val_set)
    if shared == len(val_set):
        return val_set, _split_record(samples, val_set, source="training", given=True)
    extra = {"also_training": shared} if shared else {}
    return val_set, _split_record(samples, val_set, source="given", **extra)


def datasets(images, labels, validation, fraction: float, seed: int, *,
             few_validate_on_training: int = 0) -> tuple[list[Sample], list[Sample], dict]:
    """The training and validation samples, and the split's record for the metadata.

    ``validation`` (a folder, or ``(images, labels)``) is the validation set when given:
    all of ``images`` then train (record ``"source": "given"``; ``"training"``, with
    ``"given": True``, when its images are all training images, the same pixels under
    any name: not an independent score; ``"also_training"``: how many are, when only
    some). ``"training"``: all of ``images`` train and validate (record ``"source":
    "training"``), as they do without a ``validation`` when there are at most
    ``few_validate_on_training`` samples. Else ``fraction`` of them are held out with
    ``seed`` (record ``"seed"``, ``"validation_fraction"``).

    Raises ValueError when no training label image holds an object.
    """
    samples = load_samples(images, labels)
    _check_some_object(samples)
    if (isinstance(validation, str) and validation == "training") or (
            validation is None and len(samples) <= few_validate_on_training):
        return samples, samples, _split_record(samples, samples, source="training")
    if validation is not None:
        val_set, record = _given_validation(samples, validation)
        return samples, val_set, record
    train_ids, val_ids = split_indices(len(samples), fraction, seed)
    train_set = [samples[i] for i in train_ids]
    val_set = [samples[i] for i in val_ids]
    record = _split_record(train_set, val_set, seed=seed, validation_fraction=fraction)
    return train_set, val_set, record


# -- targets, patches, augmentation ------------------------------------------------
def input_spec(config: TrainConfig) -> dict:
    """The ``"input"`` entry of the model file: how images become the network input."""
    return {**DEFAULT_INPUT, "colour": config.colour}


def prepare_sample(sample: Sample, config: TrainConfig) -> PreparedSample:
    """Normalise the image (the default input and normalisation of model files) and
    compute the target classes and loss weights of ``config``."""
    x = prepare_image(sample.image, {"input": input_spec(config),
                                     "normalization": DEFAULT_NORMALIZATION},
                      channels=sample.image.ndim == 3)
    target, weights = targets(sample.labels, config.n_classes, config.w0, config.sigma,
                              config.use_weights, config.class_weights)
    return PreparedSample(sample.name, x, target, weights, sample.labels, sample.image)


def _pad_to_size(array: np.ndarray, size: int) -> np.ndarray:
    pads = [(0, max(0, size - n)) for n in array.shape[:2]] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pads, mode="symmetric") if any(p[1] for p in pads) else array


def _crop(sample: PreparedSample, top: int, left: int, size: int):
    box = (slice(top, top + size), slice(left, left + size))
    return sample.x[box], sample.target[box], sample.weights[box]


def _padded(sample: PreparedSample, size: int) -> PreparedSample:
    return PreparedSample(sample.name, _pad_to_size(sample.x, size),
                          _pad_to_size(sample.target, size),
                          _pad_to_size(sample.weights, size), sample.labels, sample.image)


def augment_patch(rng: np.random.Generator, x, y, w):
    """The same random 90° rotation and flips of image ``x``, target ``y`` and weights
    ``w``; then a random gamma, scale and shift of the image's intensities."""
    k = int(rng.integers(4))
    x, y, w = (np.rot90(a, k, axes=(0, 1)) for a in (x, y, w))
    for axis in (0, 1):
        if rng.random() < 0.5:
            x, y, w = (np.flip(a, axis) for a in (x, y, w))
    gamma = math.exp(rng.uniform(-0.3, 0.3))
    x = np.sign(x) * np.abs(x) ** gamma
    x = x * rng.uniform(0.75, 1.33) + rng.uniform(-0.1, 0.1)
    return x, y, w


#: Pixels of a colour image from which its normalisation is estimated under stain jitter.
STAIN_STATISTICS_PIXELS = 65536


@dataclass
class _ColourSource:
    """A colour sample's raw RGB, for stain jitter: a subsample of it (the percentiles
    of the jittered image are estimated there) and its HED ranges."""

    rgb: np.ndarray
    subsample: np.ndarray
    hed_range: np.ndarray
    rule: str


def _colour_source(image: np.ndarray, colour: str) -> _ColourSource | None:
    """The stain-jitter source of a colour image; None for other images."""
    from skimage.color import rgb2hed

    from ..preprocess import is_colour

    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[-1] < 3 or not is_colour(rgb[..., :3]):
        return None
    rgb = rgb[..., :3]
    step = max(1, math.isqrt(rgb.shape[0] * rgb.shape[1] // STAIN_STATISTICS_PIXELS))
    subsample = rgb[::step, ::step]
    low, high = np.percentile(rgb2hed(subsample).reshape(-1, 3), [1, 99], axis=0)
    return _ColourSource(rgb, subsample, high - low, colour)


class PatchSampler:
    """Random patches of the training samples, augmented as ``config`` says.

    Parameters
    ----------
    samples : list of PreparedSample
        The training samples (padded here to the patch size where smaller).
    config : TrainConfig
        ``patch_size``; ``augment`` (flips, 90° rotations, mild intensity changes); the
        ``augment_*`` options (:class:`.augment.Augmentation`); the targets' parameters,
        for zoomed patches, whose targets and weights come from their zoomed labels.
    """

    def __init__(self, samples: list[PreparedSample], config: TrainConfig) -> None:
        self.patch_size = size = config.patch_size
        self.samples = [_padded(s, size) for s in samples]
        self.labels = [_pad_to_size(s.labels, size) for s in samples]
        self.config = config
        self.augmentation = Augmentation.from_config(config)
        self.margin = context_margin(config.w0, config.sigma) if config.use_weights else 2
        self.colour = [_colour_source(s.image, config.colour)
                       if self.augmentation.stain and s.image is not None else None
                       for s in samples]

    def batch(self, rng: np.random.Generator, batch_size: int):
        """``(x, y, w)``: (B, P, P, 1) float32 images, (B, P, P) uint8 targets, float32
        weights; each from a random sample at a random place."""
        size = self.patch_size
        xs = np.empty((batch_size, size, size, 1), np.float32)
        ys = np.empty((batch_size, size, size), np.uint8)
        ws = np.empty((batch_size, size, size), np.float32)
        for b in range(batch_size):
            xs[b], ys[b], ws[b] = self.patch(rng, int(rng.integers(len(self.samples))))
        return xs, ys, ws

    def patch(self, rng: np.random.Generator, index: int):
        """One random patch ``(x, y, w)`` of sample ``index``, augmented."""
        sample, labels, size = self.samples[index], self.labels[index], self.patch_size
        zoom = self.augmentation.draw_scale(rng)
        colour = self.colour[index]
        stain = self.augmentation.draw_stain(rng) if colour is not None else None
        height, width = sample.target.shape
        inner = min(round(size / zoom), height, width) if zoom != 1.0 else size
        top = int(rng.integers(height - inner + 1))
        left = int(rng.integers(width - inner + 1))
        if zoom == 1.0:
            x, y, w = _crop(sample, top, left, size)
            labels = labels[top:top + size, left:left + size]
            if stain is not None:
                x = _stained_input(colour, stain, top, left, size, self._input_metadata())
        else:
            x, y, w, labels = self.zoomed(sample, labels, top, left, zoom,
                                          colour if stain is not None else None, stain)
        x = self.augmentation.apply(rng, x, labels)
        if self.config.augment:
            x, y, w = augment_patch(rng, x, y, w)
        return x, y, w

    def _input_metadata(self) -> dict:
        return {"input": input_spec(self.config), "normalization": DEFAULT_NORMALIZATION}

    def zoomed(self, sample: PreparedSample, labels: np.ndarray, top: int, left: int,
               zoom: float, colour: _ColourSource | None = None, stain=None):
        """The patch whose top-left pixel is at ``(top, left)`` of the sample, zoomed.

        A window of ``patch_size + 2·margin`` pixels at the zoomed scale is cut (mirrored
        beyond the image), the image resized linearly and the labels by nearest neighbour,
        the targets and weights computed on those labels, and the centre kept: the
        weights equal those of the whole zoomed label image
        (:func:`.augment.context_margin`).

        Returns
        -------
        x, target, weights, labels : the patch's arrays at the zoomed scale
        """
        size, margin = self.patch_size, self.margin
        source = max(1, round((size + 2 * margin) / zoom))
        corner = (top - round(margin / zoom), left - round(margin / zoom))
        if colour is not None:
            x = _stained_input(colour, stain, *corner, source, self._input_metadata())
        else:
            x = window(sample.x, *corner, source)
        shape = (size + 2 * margin,) * 2
        zoomed_labels = resize_labels(window(labels, *corner, source), shape)
        x = resize_image(x, shape)
        config = self.config
        target, weights = targets(zoomed_labels, config.n_classes, config.w0, config.sigma,
                                  config.use_weights, config.class_weights)
        centre = (slice(margin, margin + size),) * 2
        return x[centre], target[centre], weights[centre], zoomed_labels[centre]


def _stained_input(colour: _ColourSource, stain, top: int, left: int, size: int,
                   metadata: dict) -> np.ndarray:
    """The network input of a window of a colour image after the HED jitter ``stain``,
    normalised with the percentiles of the whole jittered image (from its subsample)."""
    from ..preprocess import PlaneStatistics, gray_plane, prepare_plane

    scales, shifts = stain
    jittered = hed_jitter(window(colour.rgb, top, left, size), scales, shifts,
                          colour.hed_range)
    reference = gray_plane(hed_jitter(colour.subsample, scales, shifts, colour.hed_range),
                           channels=True, colour=colour.rule)
    percentiles = (*metadata["normalization"]["percentiles"], 50.0)
    statistics = PlaneStatistics(tuple(float(v) for v in np.percentile(reference, percentiles)),
                                 colour=colour.rule)
    return prepare_plane(jittered, metadata, channels=True, statistics=statistics)[0]


def validation_patches(samples: list[PreparedSample], size: int, seed: int):
    """A fixed set of patches: each image's centre crop plus seeded random crops."""
    rng = np.random.default_rng([seed, 1])
    xs, ys, ws = [], [], []
    for sample in (_padded(s, size) for s in samples):
        height, width = sample.target.shape
        corners = [((height - size) // 2, (width - size) // 2)]
        corners += [(int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1)))
                    for _ in range(VAL_PATCHES_PER_IMAGE - 1)]
        for top, left in corners:
            x, y, w = _crop(sample, top, left, size)
            xs.append(x), ys.append(y), ws.append(w)
    keep = np.linspace(0, len(xs) - 1, min(len(xs), MAX_VAL_PATCHES)).round().astype(int)
    return tuple(np.stack([a[i] for i in keep]) for a in (xs, ys, ws))
