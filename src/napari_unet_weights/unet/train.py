"""Train the weighted U-Net on arrays or folders of (image, labels) pairs.

Data flow: samples → per-image percentile normalisation (:func:`..predict.prepare_image`)
→ targets and weight maps computed once per sample (:mod:`.targets`) → random patches
with augmentation (flips, 90° rotations, intensity scale / shift / gamma) yielded as
``(x, y, sample_weight)`` with ``sample_weight`` of shape (batch, H, W) → Adam on the
pixel-weighted cross-entropy (:mod:`.model`). Validation loss on a fixed set of
validation patches; validation mAP of IoU on whole validation images. The best weights
(lowest validation loss) are kept. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..weights import validate_labels
from .model import build_unet, keras_or_error, weighted_loss
from .model_file import FORMAT_VERSION, UNetModel, check_model_path
from .postprocess import DEFAULT_POSTPROCESS, to_instances
from .predict import device_name, predict_prepared
from .preprocess import (
    DEFAULT_INPUT,
    DEFAULT_NORMALIZATION,
    check_training_image,
    prepare_image,
)
from .seeding import python_random_seeded
from .targets import CLASS_NAMES, targets

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainingResult", "load_samples", "train"]

PathLike = str | os.PathLike
Progress = Callable[[dict], None]

HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "val_map")
#: Post-processing grids searched on the validation set after training.
TUNING_GRID = {
    2: {"threshold": (0.3, 0.4, 0.5, 0.6, 0.7), "expand": (0, 1)},
    3: {"threshold": (0.4, 0.5, 0.6), "seed_threshold": (0.5, 0.6, 0.7, 0.8, 0.9)},
}
_VAL_PATCHES_PER_IMAGE = 4
_MAX_VAL_PATCHES = 256


# -- results -------------------------------------------------------------------
@dataclass
class TrainingResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : UNetModel
        The trained model (best validation-loss weights) with its metadata.
    history : pandas.DataFrame
        One row per finished epoch: ``epoch`` (1-based), ``loss``, ``val_loss``,
        ``val_map`` (NaN on epochs without the mAP).
    validation : dict
        ``map`` (DSB score: per-image mAP 0.5:0.95, averaged), ``per_threshold`` (list of
        records), ``per_image``, ``postprocess`` (the tuned parameters), ...
    split : dict
        ``by`` ("name" or "index"), ``train`` and ``validation`` sample names / indices.
    cancelled : bool
        True if ``should_stop()`` ended the training.
    path : pathlib.Path or None
        Where the model was saved (``out``).
    device : str
        ``"GPU: <name>"`` or ``"CPU"``.
    seconds : float
        Wall time of the whole call.
    """

    model: UNetModel
    history: pd.DataFrame = field(repr=False)
    validation: dict = field(repr=False)
    split: dict = field(repr=False)
    cancelled: bool = False
    path: Path | None = None
    device: str = "CPU"
    seconds: float = 0.0


@dataclass
class _Sample:
    name: str | int
    image: np.ndarray
    labels: np.ndarray


@dataclass
class _Prepared:
    name: str | int
    x: np.ndarray        # (H, W, 1) float32, normalised
    target: np.ndarray   # (H, W) uint8
    weights: np.ndarray  # (H, W) float32
    labels: np.ndarray   # (H, W) instance labels, for the mAP


class _Stop(Exception):
    """Raised from a callback to end ``fit`` within the current batch."""


# -- loading and checking inputs -------------------------------------------------
def _check_pair(sample: _Sample) -> _Sample:
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
    return _Sample(sample.name, image, labels)


def _folder_pairs(images: Path, labels: PathLike | None) -> list[tuple[Path, Path]]:
    from ..io import pair_files

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


def _read_folder(images: Path, labels: PathLike | None) -> list[_Sample]:
    from ..io import file_stem, read_image, read_labels

    if not images.exists():
        raise FileNotFoundError(f"{images}: no such folder.")
    if not images.is_dir():
        raise NotADirectoryError(f"{images} is not a folder.")
    return [
        _Sample(file_stem(image_path), read_image(image_path), read_labels(label_path))
        for image_path, label_path in _folder_pairs(images, labels)
    ]


def _from_arrays(images, labels) -> list[_Sample]:
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
    return [_Sample(i, image, label) for i, (image, label) in enumerate(zip(images, labels))]


def load_samples(images, labels=None) -> list[_Sample]:
    """Read and check (image, labels) pairs; see :func:`train` for the accepted forms.

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


def _split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}.")
    if n < 2:
        raise ValueError(f"{n} sample is too few for a validation split: give at least 2 "
                         "samples, or pass validation=(images, labels).")
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


def _split_record(train_set: list[_Sample], val_set: list[_Sample], **extra) -> dict:
    by = "name" if all(isinstance(s.name, str) for s in train_set + val_set) else "index"
    return {"by": by, **extra, "train": [s.name for s in train_set],
            "validation": [s.name for s in val_set]}


def _datasets(images, labels, validation, fraction: float, seed: int):
    samples = load_samples(images, labels)
    if validation is not None:
        if isinstance(validation, (str, os.PathLike)):
            val_set = load_samples(validation)
        else:
            val_images, val_labels = validation
            val_set = load_samples(val_images, val_labels)
        return samples, val_set, _split_record(samples, val_set, source="given")
    train_ids, val_ids = _split(len(samples), fraction, seed)
    train_set = [samples[i] for i in train_ids]
    val_set = [samples[i] for i in val_ids]
    record = _split_record(train_set, val_set, seed=seed, validation_fraction=fraction)
    return train_set, val_set, record


# -- targets, patches, augmentation ------------------------------------------------
def _prepare(sample: _Sample, config: dict) -> _Prepared:
    x = prepare_image(sample.image, {"input": DEFAULT_INPUT,
                                     "normalization": DEFAULT_NORMALIZATION},
                      channels=sample.image.ndim == 3)
    target, weights = targets(sample.labels, config["n_classes"], config["w0"],
                              config["sigma"], config["use_weights"])
    return _Prepared(sample.name, x, target, weights, sample.labels)


def _pad_to_size(array: np.ndarray, size: int) -> np.ndarray:
    pads = [(0, max(0, size - n)) for n in array.shape[:2]] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pads, mode="symmetric") if any(p[1] for p in pads) else array


def _crop(sample: _Prepared, top: int, left: int, size: int):
    box = (slice(top, top + size), slice(left, left + size))
    return sample.x[box], sample.target[box], sample.weights[box]


def _padded(sample: _Prepared, size: int) -> _Prepared:
    return _Prepared(sample.name, _pad_to_size(sample.x, size),
                     _pad_to_size(sample.target, size), _pad_to_size(sample.weights, size),
                     sample.labels)


def _augment(rng: np.random.Generator, x, y, w):
    k = int(rng.integers(4))
    x, y, w = (np.rot90(a, k, axes=(0, 1)) for a in (x, y, w))
    for axis in (0, 1):
        if rng.random() < 0.5:
            x, y, w = (np.flip(a, axis) for a in (x, y, w))
    gamma = math.exp(rng.uniform(-0.3, 0.3))
    x = np.sign(x) * np.abs(x) ** gamma
    x = x * rng.uniform(0.75, 1.33) + rng.uniform(-0.1, 0.1)
    return x, y, w


class _PatchSampler:
    """Random patches of the training samples (padded to the patch size)."""

    def __init__(self, samples: list[_Prepared], patch_size: int, augment: bool) -> None:
        self.samples = [_padded(s, patch_size) for s in samples]
        self.patch_size = patch_size
        self.augment = augment

    def batch(self, rng: np.random.Generator, batch_size: int):
        size = self.patch_size
        xs = np.empty((batch_size, size, size, 1), np.float32)
        ys = np.empty((batch_size, size, size), np.uint8)
        ws = np.empty((batch_size, size, size), np.float32)
        for b in range(batch_size):
            sample = self.samples[int(rng.integers(len(self.samples)))]
            height, width = sample.target.shape
            top = int(rng.integers(height - size + 1))
            left = int(rng.integers(width - size + 1))
            x, y, w = _crop(sample, top, left, size)
            if self.augment:
                x, y, w = _augment(rng, x, y, w)
            xs[b], ys[b], ws[b] = x, y, w
        return xs, ys, ws


def _validation_patches(samples: list[_Prepared], size: int, seed: int):
    """A fixed set of patches: each image's centre crop plus seeded random crops."""
    rng = np.random.default_rng([seed, 1])
    xs, ys, ws = [], [], []
    for sample in (_padded(s, size) for s in samples):
        height, width = sample.target.shape
        corners = [((height - size) // 2, (width - size) // 2)]
        corners += [(int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1)))
                    for _ in range(_VAL_PATCHES_PER_IMAGE - 1)]
        for top, left in corners:
            x, y, w = _crop(sample, top, left, size)
            xs.append(x), ys.append(y), ws.append(w)
    keep = np.linspace(0, len(xs) - 1, min(len(xs), _MAX_VAL_PATCHES)).round().astype(int)
    return tuple(np.stack([a[i] for i in keep]) for a in (xs, ys, ws))


def _patch_dataset(keras, sampler: _PatchSampler, batch_size: int, steps: int, seed: int):
    class PatchDataset(keras.utils.PyDataset):
        """``steps`` batches per epoch; batch ``i`` of epoch ``e`` seeded by (seed, e, i)."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0

        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int):
            rng = np.random.default_rng([seed, self.epoch, index])
            return sampler.batch(rng, batch_size)

        def on_epoch_end(self) -> None:
            self.epoch += 1

    return PatchDataset()


# -- evaluation -------------------------------------------------------------------
def _probabilities(keras_model, samples: list[_Prepared], multiple: int) -> list[np.ndarray]:
    return [predict_prepared(keras_model, s.x, multiple) for s in samples]


def _score(samples: list[_Prepared], probabilities: list[np.ndarray], parameters: dict):
    from ..metrics import evaluate_dataset

    return evaluate_dataset(
        (s.name, s.labels, to_instances(p, **parameters))
        for s, p in zip(samples, probabilities)
    )


def _grid(n_classes: int) -> list[dict]:
    grid = TUNING_GRID[n_classes]
    return [dict(zip(grid, values)) for values in product(*grid.values())]


def _tune(samples, probabilities, n_classes: int) -> tuple[dict, float]:
    best, best_map = dict(DEFAULT_POSTPROCESS), -1.0
    for overrides in _grid(n_classes):
        parameters = {**DEFAULT_POSTPROCESS, **overrides}
        score = _score(samples, probabilities, parameters).map
        if score > best_map + 1e-9:
            best, best_map = parameters, score
    return best, best_map


def _per_threshold_records(result) -> list[dict]:
    per_image = np.array([e.per_threshold["accuracy"].to_numpy() for e in result.images])
    records = result.per_threshold.to_dict("records")
    for i, record in enumerate(records):
        record["map"] = float(per_image[:, i].mean()) if per_image.size else 0.0
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in records]


def _final_validation(keras_model, samples, config: dict, tune: bool) -> dict:
    probabilities = _probabilities(keras_model, samples, 2 ** config["depth"])
    default = _score(samples, probabilities, DEFAULT_POSTPROCESS)
    parameters = dict(DEFAULT_POSTPROCESS)
    if tune:
        parameters, _ = _tune(samples, probabilities, config["n_classes"])
    result = _score(samples, probabilities, parameters)
    return {
        "map": float(result.map),
        "map_default_postprocess": float(default.map),
        "thresholds": list(result.thresholds),
        "per_threshold": _per_threshold_records(result),
        "per_image": [{"image": name, "map": float(score)} for name, score
                      in zip(result.per_image["image"], result.per_image["map"])],
        "n_images": len(samples),
        "postprocess": parameters,
        "postprocess_tuned_on": "validation" if tune else None,
        "definition": "mean over images of the mean over IoU thresholds 0.5:0.95:0.05 of "
                      "TP/(TP+FP+FN) (DSB 2018); per_threshold: map = mean over images, "
                      "counts pooled",
    }


# -- callbacks ------------------------------------------------------------------------
@dataclass
class _RunState:
    epochs: int
    steps: int
    progress: Progress | None
    should_stop: Callable[[], bool] | None
    deadline: float | None
    patience: int
    val_map_every: int
    val_samples: list
    multiple: int
    checkpoint: Callable[[], None] | None = None
    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    best_weights: list | None = None
    cancelled: bool = False
    timed_out: bool = False
    stopped_early: bool = False
    history: list = field(default_factory=list)


def _report(state: _RunState, info: dict) -> None:
    if state.progress is not None:
        state.progress(info)


def _val_map(state: _RunState, keras_model) -> float:
    probabilities = _probabilities(keras_model, state.val_samples, state.multiple)
    return float(_score(state.val_samples, probabilities, DEFAULT_POSTPROCESS).map)


def _monitor(keras, state: _RunState):
    class Monitor(keras.callbacks.Callback):
        """Progress, cancellation, best weights, early stopping, validation mAP."""

        def on_epoch_begin(self, epoch, logs=None):
            state.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            _report(state, {"stage": "batch", "epoch": state.epoch, "epochs": state.epochs,
                            "step": batch + 1, "steps": state.steps,
                            "loss": float(logs.get("loss", math.nan))})
            if state.should_stop is not None and state.should_stop():
                state.cancelled = True
                raise _Stop
            if state.deadline is not None and time.monotonic() > state.deadline:
                state.timed_out = True
                raise _Stop

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            loss = float(logs.get("loss", math.nan))
            val_loss = float(logs.get("val_loss", math.nan))
            if val_loss < state.best_val_loss:
                state.best_val_loss, state.best_epoch = val_loss, epoch + 1
                state.best_weights = self.model.get_weights()
                if state.checkpoint is not None:
                    state.checkpoint()
            val_map = None
            if (epoch + 1) % state.val_map_every == 0:
                val_map = _val_map(state, self.model)
            state.history.append((epoch + 1, loss, val_loss,
                                  math.nan if val_map is None else val_map))
            _report(state, {"stage": "epoch", "epoch": epoch + 1, "epochs": state.epochs,
                            "loss": loss, "val_loss": val_loss, "val_map": val_map})
            if epoch + 1 - state.best_epoch >= state.patience:
                state.stopped_early = True
                self.model.stop_training = True

    return Monitor()


# -- device, model ----------------------------------------------------------------------
def _device() -> tuple[str, bool]:
    """The training device's name, and whether it is a GPU (mixed precision there)."""
    name = device_name()
    return name, name.startswith("GPU")


def _build(keras, config: dict, mixed_precision: bool):
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with python_random_seeded(config["seed"]):
            return build_unet(1, config["n_classes"], config["depth"],
                              config["base_filters"], config["batch_norm"], config["dropout"])
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _export_copy(keras, model, config: dict):
    """An uncompiled float32 copy of ``model`` for saving and prediction.

    Model files are always float32 (CPU-friendly, also after mixed-precision training)
    and hold no optimizer state (a third of the size).
    """
    copy = _build(keras, config, mixed_precision=False)
    copy.set_weights(model.get_weights())
    return copy


def _package_version() -> str:
    from .. import __version__

    return __version__


def _metadata(config: dict, split: dict, validation: dict, training: dict) -> dict:
    keras = keras_or_error()
    n_classes = config["n_classes"]
    return {
        "format": "napari-unet-weights model",
        "format_version": FORMAT_VERSION,
        "n_classes": n_classes,
        "classes": list(CLASS_NAMES[n_classes]),
        "input": dict(DEFAULT_INPUT),
        "normalization": dict(DEFAULT_NORMALIZATION),
        "architecture": {"type": "unet2d", "n_channels": 1, "depth": config["depth"],
                         "base_filters": config["base_filters"],
                         "batch_norm": config["batch_norm"], "dropout": config["dropout"],
                         "multiple": 2 ** config["depth"]},
        "weights": {"w0": config["w0"], "sigma": config["sigma"],
                    "use_weights": config["use_weights"], "border": "background",
                    "class_weights": "balanced", "labels": "separated (1-px gaps)"},
        "loss": "sparse categorical cross-entropy, per-pixel sample_weight, "
                "sum over pixels / (batch*H*W)",
        "postprocess": dict(validation["postprocess"]),
        "training": training,
        "split": split,
        "validation": validation,
        "package_version": _package_version(),
        "keras_version": keras.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _check_config(config: dict) -> None:
    if config["n_classes"] not in CLASS_NAMES:
        raise ValueError(f"n_classes must be 2 or 3, got {config['n_classes']!r}.")
    for key in ("epochs", "steps_per_epoch", "batch_size", "depth", "base_filters",
                "val_map_every", "early_stopping_patience"):
        if int(config[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {config[key]!r}.")
    multiple = 2 ** config["depth"]
    if config["patch_size"] < multiple or config["patch_size"] % multiple:
        raise ValueError(
            f"patch_size must be a multiple of 2**depth = {multiple}, got "
            f"{config['patch_size']}."
        )
    if config["sigma"] <= 0 or config["w0"] < 0 or config["learning_rate"] <= 0:
        raise ValueError("sigma and learning_rate must be > 0 and w0 >= 0.")


# -- the training loop -----------------------------------------------------------------
def _fit(keras, model, config, train_set, val_patches, state: _RunState) -> None:
    sampler = _PatchSampler(train_set, config["patch_size"], config["augment"])
    dataset = _patch_dataset(keras, sampler, config["batch_size"],
                             config["steps_per_epoch"], config["seed"])
    with contextlib.suppress(_Stop):
        # shuffle=False: every batch is already random (seeded by its index), and Keras
        # would shuffle the batch order with Python's global generator.
        model.fit(dataset, epochs=config["epochs"], validation_data=val_patches,
                  validation_batch_size=config["batch_size"], shuffle=False,
                  callbacks=[_monitor(keras, state)], verbose=0)
    if state.best_weights is not None:
        model.set_weights(state.best_weights)


def _history(state: _RunState) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(state.history, columns=list(HISTORY_COLUMNS))


def _checkpointer(keras, model, config, split, path: PathLike | None):
    if path is None:
        return None

    def save() -> None:
        interim = {"postprocess": dict(DEFAULT_POSTPROCESS), "map": None}
        metadata = _metadata(config, split, interim, {**config, "checkpoint": True})
        UNetModel(_export_copy(keras, model, config), metadata).save(path)

    return save


def train(
    images: Sequence[np.ndarray] | PathLike,
    labels: Sequence[np.ndarray] | PathLike | None = None,
    *,
    n_classes: int = 3,
    w0: float = 10.0,
    sigma: float = 5.0,
    use_weights: bool = True,
    epochs: int = 30,
    steps_per_epoch: int = 50,
    batch_size: int = 8,
    patch_size: int = 128,
    validation_fraction: float = 0.15,
    validation: Any = None,
    learning_rate: float = 1e-3,
    depth: int = 4,
    base_filters: int = 16,
    batch_norm: bool = True,
    dropout: float = 0.0,
    augment: bool = True,
    seed: int = 0,
    early_stopping_patience: int = 8,
    val_map_every: int = 1,
    checkpoint: PathLike | None = None,
    out: PathLike | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
    tune_postprocess: bool = True,
) -> TrainingResult:
    """Train a U-Net on instance-labelled images with the pixel-weighted loss.

    Parameters
    ----------
    images : list of array or path
        Images (H, W) or (H, W, C) with 1 to 4 channels (averaged, a fourth one taken
        as alpha and dropped); finite pixels only; or a folder holding ``images/`` and
        ``labels/`` (files paired by name, ``labels`` None); or a folder of images with
        ``labels`` the folder of label files.
    labels : list of array or path, optional
        Instance labels (H, W), integers, 0 = background.
    n_classes : {2, 3}
        2: background / object with 1-px gaps; 3: background / interior / boundary.
    w0, sigma : float
        Weight-map border term (see :func:`napari_unet_weights.weights.weight_map`).
    use_weights : bool
        False: plain cross-entropy (all weights 1).
    epochs, steps_per_epoch, batch_size, patch_size : int
        Training length and patch batches; ``patch_size`` a multiple of ``2**depth``.
    validation_fraction : float
        Share of the samples held out (chosen with ``seed``, recorded in the result).
    validation : path or (images, labels), optional
        An explicit validation set instead of the split.
    learning_rate : float
        Adam's learning rate.
    depth, base_filters, batch_norm, dropout
        Architecture, see :func:`~napari_unet_weights.unet.model.build_unet`.
    augment : bool
        Random flips, 90° rotations and intensity scale / shift / gamma.
    seed : int
        Seeds the split, the patches, the augmentation and the initial weights: the same
        seed on the same device gives the same model. The global generators of Python,
        NumPy and TensorFlow are left as they were.
    early_stopping_patience : int
        Stop after this many epochs without a lower validation loss.
    val_map_every : int
        Compute the validation mAP (whole images) every this many epochs.
    checkpoint : path, optional
        ``.keras`` file rewritten (with metadata) whenever the validation loss improves.
    out : path, optional
        Save the final model there (``.keras``). ``out`` and ``checkpoint`` are checked
        before anything is read or trained; they are written atomically (see
        :meth:`UNetModel.save`).
    progress : callable, optional
        Called on the training thread with a dict: after each batch ``{"stage":
        "batch", "epoch", "epochs", "step", "steps", "loss"}`` and after each epoch
        ``{"stage": "epoch", "epoch", "epochs", "loss", "val_loss", "val_map"}``
        (epochs and steps 1-based; ``loss`` is the running mean of the epoch;
        ``val_map`` is None on epochs without it).
    should_stop : callable, optional
        Polled after every batch; when it returns True training stops at once, the best
        weights so far are kept and ``result.cancelled`` is True (the post-processing
        is then not tuned).
    max_seconds : float, optional
        Time budget of the fitting: stops within a batch once exceeded (not a
        cancellation: the best weights are kept and post-processing is tuned).
    tune_postprocess : bool
        Choose the post-processing thresholds on the validation set after training.

    Returns
    -------
    TrainingResult

    Raises
    ------
    FileNotFoundError, NotADirectoryError, OSError
        Missing folders, unreadable files (named in the message).
    TypeError
        Float or boolean labels.
    ValueError
        Mismatched image / label shapes (pair and shapes named), NaN or infinite pixels
        in an image, empty folders, too few samples for a validation split, bad
        parameters, an ``out`` or ``checkpoint`` that does not end with ``.keras``.
    OSError
        An ``out`` or ``checkpoint`` that cannot be written (checked before training).
    ImportError
        TensorFlow is not installed.
    """
    start = time.monotonic()
    config = {
        "n_classes": n_classes, "w0": float(w0), "sigma": float(sigma),
        "use_weights": bool(use_weights), "epochs": int(epochs),
        "steps_per_epoch": int(steps_per_epoch), "batch_size": int(batch_size),
        "patch_size": int(patch_size), "validation_fraction": float(validation_fraction),
        "learning_rate": float(learning_rate), "depth": int(depth),
        "base_filters": int(base_filters), "batch_norm": bool(batch_norm),
        "dropout": float(dropout), "augment": bool(augment), "seed": int(seed),
        "early_stopping_patience": int(early_stopping_patience),
        "val_map_every": int(val_map_every),
    }
    _check_config(config)
    for path in (checkpoint, out):
        if path is not None:
            check_model_path(path)
    train_samples, val_samples, split = _datasets(images, labels, validation,
                                                  validation_fraction, seed)
    keras = keras_or_error()
    train_set = [_prepare(s, config) for s in train_samples]
    val_set = [_prepare(s, config) for s in val_samples]
    val_patches = _validation_patches(val_set, config["patch_size"], seed)

    device, mixed = _device()
    model = _build(keras, config, mixed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=weighted_loss())
    state = _RunState(
        epochs=config["epochs"], steps=config["steps_per_epoch"], progress=progress,
        should_stop=should_stop,
        deadline=None if max_seconds is None else time.monotonic() + max_seconds,
        patience=config["early_stopping_patience"], val_map_every=config["val_map_every"],
        val_samples=val_set, multiple=2 ** config["depth"],
        checkpoint=_checkpointer(keras, model, config, split, checkpoint),
    )
    _fit(keras, model, config, train_set, val_patches, state)
    model = _export_copy(keras, model, config)

    validation_scores = _final_validation(model, val_set, config,
                                          tune=tune_postprocess and not state.cancelled)
    training = {
        **config, "epochs_run": len(state.history), "best_epoch": state.best_epoch,
        "best_val_loss": None if math.isinf(state.best_val_loss) else state.best_val_loss,
        "cancelled": state.cancelled, "stopped_early": state.stopped_early,
        "time_limit_reached": state.timed_out, "device": device, "mixed_precision": mixed,
        "seconds": round(time.monotonic() - start, 1),
        "n_train": len(train_set), "n_validation": len(val_set),
        "optimizer": "adam",
    }
    unet = UNetModel(model, _metadata(config, split, validation_scores, training))
    path = unet.save(out) if out is not None else None
    return TrainingResult(
        model=unet, history=_history(state), validation=validation_scores, split=split,
        cancelled=state.cancelled, path=path, device=device,
        seconds=time.monotonic() - start,
    )

