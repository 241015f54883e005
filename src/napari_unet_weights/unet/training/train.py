"""Train the weighted U-Net on arrays or folders of (image, labels) pairs.

Data flow: samples (:mod:`.data`: read, checked, split) → per-image percentile
normalisation, targets and weight maps computed once per sample → random patches with
augmentation yielded as ``(x, y, sample_weight)`` with ``sample_weight`` of shape
(batch, H, W) → Adam on the pixel-weighted cross-entropy (:mod:`..model`). Validation
loss on a fixed set of validation patches; validation mAP of IoU on whole validation
images. The best weights (lowest validation loss, or highest validation mAP with
``select_by="val_map"``) are kept. The parameters are a
:class:`~..config.TrainConfig`. Keras (and its backend) is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import inspect
import math
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...runtime.progress import Cancelled, ShouldStop, TrainProgress
from ..config import TrainConfig, TrainConfigError
from ..device import device_name, mixed_precision_available
from ..diameter import diameter_record
from ..model import build_unet, keras_or_error, weighted_loss
from ..model_file import FORMAT_VERSION, UNetModel, check_model_path
from ..postprocess import DEFAULT_POSTPROCESS
from ..preprocess import DEFAULT_NORMALIZATION
from ..targets import CLASS_NAMES
from .budget import MONOTONIC, Clock, TimeBudget
from .data import (
    PatchSampler,
    datasets,
    input_spec,
    load_samples,
    prepare_sample,
    validation_patches,
)
from .parent import (
    FEW_SAMPLES,
    lineage,
    resolve_parent,
    run_config,
)
from .run_dir import data_record, open_run
from .seeding import python_random_seeded
from .tuning import (
    final_validation,
    predict_samples,
    score_samples,
    tuning_candidates,
)
from .tuning import tuning as tuning_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainConfig", "TrainConfigError", "TrainingResult", "load_samples", "train"]

PathLike = str | os.PathLike
Progress = TrainProgress

HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "val_map")
#: The package's distribution name, whose version model files record.
DISTRIBUTION = "napari-unet-weights"


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
    stopped_early : bool
        True if early stopping ended it (``early_stopping_patience`` epochs without a
        lower validation loss).
    time_limit_reached : bool
        True if ``max_seconds`` ended it.
    path : pathlib.Path or None
        Where the model was saved (``out``).
    device : str
        ``"GPU: <name> (<backend>)"`` or ``"CPU (<backend>)"``.
    seconds : float
        Time of the whole call (on ``train``'s ``clock``).
    config : TrainConfig
        The parameters of the run.
    """

    model: UNetModel
    history: pd.DataFrame = field(repr=False)
    validation: dict = field(repr=False)
    split: dict = field(repr=False)
    cancelled: bool = False
    path: Path | None = None
    device: str = "CPU"
    seconds: float = 0.0
    stopped_early: bool = False
    time_limit_reached: bool = False
    config: TrainConfig = field(default_factory=TrainConfig)


class _Stop(Cancelled):
    """Raised from a callback to end ``fit`` within the current batch (``should_stop``
    returned True, or the time budget is spent); caught by :func:`_fit`, it never leaves
    :func:`train`, which returns the model so far. A :class:`~...runtime.progress.Cancelled`: the
    package's one stop hierarchy."""


# -- the Keras side of the data pipeline --------------------------------------------
def _patch_dataset(keras, sampler: PatchSampler, batch_size: int, steps: int, seed: int,
                   first_epoch: int = 0):
    class PatchDataset(keras.utils.PyDataset):
        """``steps`` batches per epoch; batch ``i`` of epoch ``e`` seeded by (seed, e, i)
        (``e`` counted from 0, from ``first_epoch`` when a run resumes)."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = first_epoch

        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int):
            rng = np.random.default_rng([seed, self.epoch, index])
            return sampler.batch(rng, batch_size)

        def on_epoch_end(self) -> None:
            self.epoch += 1

    return PatchDataset()


# -- callbacks ------------------------------------------------------------------------
@dataclass
class _RunState:
    """One call's fitting: what it reports to, its time budget, and what it has found.

    :class:`.run_dir.Run` reads and restores the figures (``history``, the ``best_*``,
    ``stopped_early``, ``first_epoch``) and reads ``epochs``, ``cancelled``,
    ``timed_out`` and ``progress``.
    """

    config: TrainConfig
    budget: TimeBudget
    val_samples: list
    progress: Progress | None = None
    should_stop: ShouldStop | None = None
    checkpoint: Callable[[], None] | None = None
    postprocess: dict = field(default_factory=lambda: dict(DEFAULT_POSTPROCESS))
    run: Any = None  # the run folder's checkpoints (.run_dir.Run)
    epoch: int = 0
    best_val_loss: float = math.inf
    best_val_map: float = -math.inf
    best_epoch: int = 0
    best_weights: list | None = None
    cancelled: bool = False
    timed_out: bool = False
    stopped_early: bool = False
    history: list = field(default_factory=list)
    first_epoch: int = 0  # epochs done before this call (a resumed run)

    @property
    def epochs(self) -> int:
        return self.config.epochs


def _report(state: _RunState, info: dict) -> None:
    if state.progress is not None:
        state.progress(info)


def _val_map(state: _RunState, keras_model) -> float:
    """The validation mAP; its prediction and scoring times are kept in the budget."""
    budget = state.budget
    start = budget.clock()
    probabilities = predict_samples(keras_model, state.val_samples, state.config.multiple)
    predicted = budget.clock()
    score = float(score_samples(state.val_samples, probabilities, state.postprocess).map)
    budget.predict_seconds, budget.score_seconds = predicted - start, budget.clock() - predicted
    return score


def _improved(state: _RunState, val_loss: float, val_map: float | None) -> bool:
    """Record the epoch's validation figures; True when the selected one is the best yet."""
    loss_better = val_loss < state.best_val_loss
    map_better = val_map is not None and val_map > state.best_val_map
    if loss_better:
        state.best_val_loss = val_loss
    if map_better:
        state.best_val_map = val_map
    return map_better if state.config.select_by == "val_map" else loss_better


def _monitor(keras, state: _RunState):
    class Monitor(keras.callbacks.Callback):
        """Progress, cancellation, best weights, early stopping, validation mAP."""

        def on_epoch_begin(self, epoch, logs=None):
            state.epoch = epoch + 1

        def on_train_batch_begin(self, batch, logs=None):
            state.budget.batch_begins()

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            _report(state, {"stage": "batch", "epoch": state.epoch, "epochs": state.epochs,
                            "step": batch + 1, "steps": state.config.steps_per_epoch,
                            "loss": float(logs.get("loss", math.nan))})
            if state.should_stop is not None and state.should_stop():
                state.cancelled = True
                raise _Stop
            if state.budget.batch_ends():
                state.timed_out = True
                raise _Stop

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            loss = float(logs.get("loss", math.nan))
            val_loss = float(logs.get("val_loss", math.nan))
            val_map = None
            if (epoch + 1) % state.config.val_map_every == 0:
                val_map = _val_map(state, self.model)
            if _improved(state, val_loss, val_map):
                state.best_epoch = epoch + 1
                state.best_weights = self.model.get_weights()
                if state.checkpoint is not None:
                    state.checkpoint()
            state.history.append((epoch + 1, loss, val_loss,
                                  math.nan if val_map is None else val_map))
            _report(state, {"stage": "epoch", "epoch": epoch + 1, "epochs": state.epochs,
                            "loss": loss, "val_loss": val_loss, "val_map": val_map})
            if epoch + 1 - state.best_epoch >= state.config.early_stopping_patience:
                state.stopped_early = True
                self.model.stop_training = True
            if state.run is not None:
                state.run.epoch_end(self.model, state)
            state.budget.epoch_ends()

    return Monitor()


# -- device, model ----------------------------------------------------------------------
def _device() -> tuple[str, bool]:
    """The training device's name (with the backend), and whether to train in mixed
    precision there (a CUDA GPU, whatever the backend: :func:`.mixed_precision_available`).

    The one place that decides on mixed precision; the tests replace it to take the
    mixed-precision path (and its float32 export) on a CPU.
    """
    name = device_name()
    return name, mixed_precision_available(name)


def _build(keras, config: TrainConfig, mixed_precision: bool):
    """The U-Net of ``config``, seeded; under ``mixed_float16`` if ``mixed_precision``
    (the global Keras policy is restored afterwards)."""
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with python_random_seeded(config.seed):
            return build_unet(1, config.n_classes, config.depth, config.base_filters,
                              config.batch_norm, config.dropout)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _export_copy(keras, model, config: TrainConfig):
    """An uncompiled float32 copy of ``model`` for saving and prediction.

    Model files are always float32 (CPU-friendly, also after mixed-precision training)
    and hold no optimizer state (a third of the size).
    """
    copy = _build(keras, config, mixed_precision=False)
    copy.set_weights(model.get_weights())
    return copy


def _package_version() -> str:
    """This package's installed version (read without importing the package root)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


def _metadata(config: TrainConfig, split: dict, validation: dict, training: dict) -> dict:
    keras = keras_or_error()
    return {
        "format": "napari-unet-weights model",
        "format_version": FORMAT_VERSION,
        "n_classes": config.n_classes,
        "classes": list(CLASS_NAMES[config.n_classes]),
        "input": input_spec(config),
        "normalization": dict(DEFAULT_NORMALIZATION),
        "architecture": {"type": "unet2d", "n_channels": 1, "depth": config.depth,
                         "base_filters": config.base_filters,
                         "batch_norm": config.batch_norm, "dropout": config.dropout,
                         "multiple": config.multiple},
        "weights": {"w0": config.w0, "sigma": config.sigma,
                    "use_weights": config.use_weights, "border": "background",
                    "class_weights": config.class_weights,
                    "labels": "separated (1-px gaps)"},
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


def _learning_rate(keras, config: TrainConfig):
    """Adam's learning rate: the number, or a cosine decay to 0 over the planned steps."""
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * config.steps_per_epoch)
    return config.learning_rate


# -- the training loop -----------------------------------------------------------------
def _fit(keras, model, config: TrainConfig, train_set, val_patches, state: _RunState) -> None:
    sampler = PatchSampler(train_set, config)
    dataset = _patch_dataset(keras, sampler, config.batch_size, config.steps_per_epoch,
                             config.seed, state.first_epoch)
    state.budget.fitting_begins()
    try:
        if state.first_epoch >= config.epochs or state.stopped_early:
            pass  # a finished run, resumed: only its final model is made again
        elif state.budget.out_of_time():  # the budget is spent before the first step
            state.timed_out = True
        else:
            with contextlib.suppress(_Stop):
                # shuffle=False: every batch is already random (seeded by its index), and
                # Keras would shuffle the batch order with Python's global generator.
                model.fit(dataset, epochs=config.epochs, initial_epoch=state.first_epoch,
                          validation_data=val_patches,
                          validation_batch_size=config.batch_size, shuffle=False,
                          callbacks=[_monitor(keras, state)], verbose=0)
    finally:  # whatever ended the fitting (Ctrl-C too): the run's checkpoint
        if state.run is not None:
            state.run.end(model, state)
    if state.best_weights is not None:
        model.set_weights(state.best_weights)


def _compiled(keras, config: TrainConfig, mixed_precision: bool, parent,
              budget: TimeBudget):
    """The network, from the parent's weights if any, compiled with Adam and the weighted
    loss; its build time kept in ``budget``."""
    built = budget.clock()
    model = _build(keras, config, mixed_precision)
    budget.build_seconds = budget.clock() - built
    if parent is not None:
        model.set_weights(parent.model.keras_model.get_weights())
    model.compile(optimizer=keras.optimizers.Adam(_learning_rate(keras, config)),
                  loss=weighted_loss())
    # Built here rather than inside the first traced step: that step traces faster (~0.7 s).
    model.optimizer.build(model.trainable_variables)
    return model


def _history(state: _RunState) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(state.history, columns=list(HISTORY_COLUMNS))


def _checkpointer(keras, model, config: TrainConfig, split, path: PathLike | None):
    if path is None:
        return None

    def save() -> None:
        interim = {"postprocess": dict(DEFAULT_POSTPROCESS), "map": None}
        training = {**config.to_metadata(), "checkpoint": True}
        metadata = _metadata(config, split, interim, training)
        UNetModel(_export_copy(keras, model, config), metadata).save(path)

    return save


def _resolve_config(config: TrainConfig | None, overrides: dict[str, Any],
                    parent) -> TrainConfig:
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (or None), got {type(config).__name__}:"
                        " build one with TrainConfig(**values).")
    TrainConfig.check_names(overrides, "train()")
    if parent is not None:
        return run_config(config, overrides, parent)
    config = config if config is not None else TrainConfig()
    return config.replace(**overrides) if overrides else config


def train(
    images: Sequence[np.ndarray] | PathLike,
    labels: Sequence[np.ndarray] | PathLike | None = None,
    config: TrainConfig | None = None,
    *,
    validation: Any = None,
    checkpoint: PathLike | None = None,
    out: PathLike | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial_model: Any = None,
    finish_within: float | None = None,
    run_dir: PathLike | None = None,
    checkpoint_minutes: float = 5.0,
    clock: Clock = MONOTONIC,
    **overrides: Any,
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
    config : TrainConfig, optional
        The training parameters (default: ``TrainConfig()``).
    **overrides
        Any :class:`~..config.TrainConfig` field, replacing the one of ``config``:
        ``train(images, labels, n_classes=2, epochs=5)``. With their defaults:

        <TrainConfig fields>

    validation : path, (images, labels) or "training", optional
        An explicit validation set instead of the split (all of ``images`` train), or
        ``"training"``: validate on the training images themselves (for 1 to 5 images,
        where a split is impossible; the post-processing is then not tuned).
        ``result.validation["on"]`` says which it was.
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
    initial_model : None, "bundled", path or UNetModel
        Start from this model's weights (fine-tuning) instead of random ones. Its classes,
        architecture and input handling (:data:`.parent.INHERITED`) are kept; asking for
        another value of one of them is a ``ValueError``. The parameters not given get
        :data:`.parent.FINE_TUNING_DEFAULTS` (learning rate 3e-4, constant; a five-minute
        fitting budget). With at most :data:`.parent.FEW_SAMPLES` samples and no
        ``validation``, the training images are validated on. The parent's
        post-processing is kept unless at least :data:`.parent.TUNE_MIN_IMAGES` separate
        validation images tune it; the parent's weights are kept if no epoch beats
        them on the validation mAP (``select_by="val_map"``). The new model's metadata
        records the ``"lineage"``: the parent, its SHA-256, the samples added, the time
        spent.
    finish_within : float, optional
        A hard time budget in seconds for the whole call (reading, fitting, the final
        validation, saving): fitting stops early enough to leave the time the final
        validation took when last measured, and the post-processing is not tuned if that
        would not fit. ``max_seconds`` limits the fitting alone.
    run_dir : path, optional
        A folder that holds the whole state of the run (:mod:`.run_dir`): the model and
        its optimizer, the history, the best weights, the seconds spent. When it already
        holds a run, training resumes it where its last checkpoint left it, with the same
        batches, learning rate and early-stopping count as if it had never stopped: the
        same arguments are needed (other data, starting model or parameters are a
        ``ValueError`` naming what differs, except the time budgets ``max_seconds`` and
        ``finish_within``, which are per call). A run that had finished (all epochs, or
        stopped early) only makes its final model again (validation, tuning, saving).
        The model file records the seconds and steps over all calls and ``"resumed"``,
        how many calls resumed the run.
    checkpoint_minutes : float, optional
        With ``run_dir``: write a checkpoint at the end of an epoch once this many minutes
        passed since the last one (0: every epoch); one is always written when fitting
        ends (finished, early stopping, time budget, ``should_stop``, an error or Ctrl-C)
        and holds the end of the last finished epoch.
    clock : callable, optional
        The clock every time of the call is read from (seconds; ``time.monotonic`` by
        default): ``max_seconds``, ``finish_within``, ``checkpoint_minutes`` and the
        seconds recorded. For tests that advance a fake clock (:mod:`.budget`).

    Returns
    -------
    TrainingResult

    Raises
    ------
    TrainConfigError
        A parameter of the wrong type or out of range (a ``ValueError``; each bad one
        named with what it allows).
    TypeError
        An override that is not a training parameter (the valid ones listed); float or
        boolean labels.
    FileNotFoundError, NotADirectoryError, OSError
        Missing folders, unreadable files (named in the message).
    ValueError
        Mismatched image / label shapes (pair and shapes named), NaN or infinite pixels
        in an image, empty folders, too few samples for a validation split, an ``out``
        or ``checkpoint`` that does not end with ``.keras``; a ``run_dir`` whose run
        differs (data, parameters, starting model) or whose state is damaged.
    OSError
        An ``out`` or ``checkpoint`` that cannot be written (checked before training);
        a ``run_dir`` another process is training in.
    ImportError
        The Keras backend (TensorFlow by default) is not installed.
    """
    budget = TimeBudget.starting_now(clock, finish_within)
    for path in (checkpoint, out):
        if path is not None:
            check_model_path(path)
    run = (None if run_dir is None
           else open_run(run_dir, checkpoint_minutes, budget.started, clock=clock))
    parent = resolve_parent(initial_model)
    config = _resolve_config(config, overrides, parent)
    if run is not None:
        run.check_config(config)
    train_samples, val_samples, split = datasets(
        images, labels, validation, config.validation_fraction, config.seed,
        few_validate_on_training=FEW_SAMPLES if parent is not None else 0)
    keras = keras_or_error()
    device, mixed = _device()
    if run is not None:
        run.begin(config, data_record(train_samples, val_samples, split), parent, mixed,
                  _package_version())
    train_set = [prepare_sample(s, config) for s in train_samples]
    val_set = [prepare_sample(s, config) for s in val_samples]
    val_patches = validation_patches(val_set, config.patch_size, config.seed)
    tuning = tuning_of(config, parent, split, len(val_set))

    model = _compiled(keras, config, mixed, parent, budget)
    budget.limit_fitting(config.max_seconds)
    budget.final_scorings = 2 + (tuning_candidates(config.n_classes) if tuning.tune else 0)
    state = _RunState(config, budget, val_set, progress=progress, should_stop=should_stop,
                      checkpoint=_checkpointer(keras, model, config, split, checkpoint),
                      postprocess=dict(tuning.base), run=run)
    resumed = run is not None and run.restore(model, state)
    parent_val_map = _start_from(state, model, parent is not None and not resumed)
    if run is not None:
        parent_val_map = run.parent_val_map(parent_val_map)
    _fit(keras, model, config, train_set, val_patches, state)
    steps = int(model.optimizer.iterations)
    model = _export_copy(keras, model, config)
    if state.cancelled or not budget.final_validation_fits():
        tuning = dataclasses.replace(tuning, tune=False)
    validation_scores = final_validation(model, val_set, config, tuning, split)
    training = {
        **config.to_metadata(), "epochs_run": len(state.history),
        "best_epoch": state.best_epoch,
        "best_val_loss": None if math.isinf(state.best_val_loss) else state.best_val_loss,
        "best_val_map": None if math.isinf(state.best_val_map) else state.best_val_map,
        "cancelled": state.cancelled, "stopped_early": state.stopped_early,
        "time_limit_reached": state.timed_out, "device": device, "mixed_precision": mixed,
        "seconds": round(budget.elapsed() if run is None else run.seconds(), 1),
        "steps": steps, "resumed": 0 if run is None else len(run.state["parts"]) - 1,
        "n_train": len(train_set), "n_validation": len(val_set),
        "optimizer": "adam", "finish_within": finish_within,
    }
    metadata = _metadata(config, split, validation_scores, training)
    # the nuclei's size the model learnt, for predict / segment(diameter=...)
    metadata["object_diameter"] = diameter_record(s.labels for s in train_samples)
    if parent is not None:
        seconds = budget.elapsed() if run is None else run.seconds()
        metadata["lineage"] = {**lineage(parent, split, seconds),
                               "parent_val_map": parent_val_map}
    unet = UNetModel(model, metadata)
    path = unet.save(out) if out is not None else None
    if run is not None:
        run.saved(path, validation_scores)
    return TrainingResult(
        model=unet, history=_history(state), validation=validation_scores, split=split,
        cancelled=state.cancelled, path=path, device=device,
        seconds=budget.elapsed(), stopped_early=state.stopped_early,
        time_limit_reached=state.timed_out, config=config,
    )


def _start_from(state: _RunState, model, fine_tuning: bool) -> float | None:
    """Score the starting weights when it matters; the parent's validation mAP, if scored.

    A parent's weights are the best so far when the epoch is kept by validation mAP (a
    run that does not beat them returns them); a time budget needs the validation's
    duration before the first epoch ends.
    """
    if not fine_tuning and state.budget.end_by is None:
        return None
    score = _val_map(state, model)
    if fine_tuning and state.config.select_by == "val_map":
        state.best_val_map, state.best_weights = score, model.get_weights()
    return score if fine_tuning else None


def _parameters_doc(indent: str = " " * 8) -> str:
    """The TrainConfig fields as a list for ``train``'s docstring (written in one place)."""
    items = [
        textwrap.fill(f"- ``{p.name}={p.default!r}``: {p.help}.", width=88,
                      initial_indent=indent, subsequent_indent=indent + "  ")
        for p in TrainConfig.fields()
    ]
    return "\n".join(items).lstrip()


def _signature_with_parameters(function: Callable) -> inspect.Signature:
    """``function``'s signature with the TrainConfig fields as keyword-only parameters
    in place of ``**overrides`` (for ``help()``, editors and forms)."""
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    first_keyword = next(i for i, p in enumerate(kept) if p.kind is p.KEYWORD_ONLY)
    fields = [
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default,
                          annotation=p.kind.__name__ + (" | None" if p.optional else ""))
        for p in TrainConfig.fields()
    ]
    return signature.replace(parameters=kept[:first_keyword] + fields + kept[first_keyword:])


train.__signature__ = _signature_with_parameters(train)
if train.__doc__:  # None under python -OO
    train.__doc__ = train.__doc__.replace("<TrainConfig fields>", _parameters_doc())
