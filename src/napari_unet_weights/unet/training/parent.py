"""Training from a trained model (fine-tuning): which model, what it fixes, the lineage.

``train(..., initial_model=...)`` starts from a parent model's weights. The parent fixes
what its weights were trained for: the classes, the architecture and the input handling
(:data:`INHERITED`); asking for another value of one of them is a :class:`ValueError`
that names it. The new model file records its lineage: the parent, the parent file's
SHA-256 (or, for a model in memory, of its weights), the samples added and the time spent.

numpy and hashlib only; loading a parent file imports TensorFlow (:func:`..model_file.load_model`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..model_file import BUNDLED_MODEL, UNetModel, load_model
from ..preprocess import DEFAULT_NORMALIZATION

__all__ = ["FEW_SAMPLES", "FINE_TUNING_DEFAULTS", "INHERITED", "TUNE_MIN_IMAGES", "Parent",
           "explicit_names", "fine_tuning_config", "lineage", "resolve_parent", "run_config"]

#: The training parameters a parent model fixes (its weights were trained for them).
INHERITED = ("n_classes", "depth", "base_filters", "batch_norm", "dropout", "colour")
#: What fine-tuning changes in :class:`TrainConfig`'s defaults (for the parameters the caller
#: did not set): a third of the learning rate, kept constant (the run usually ends on the
#: time budget, before a planned decay would), short epochs so that the kept epoch is
#: chosen often, and a five-minute fitting budget.
FINE_TUNING_DEFAULTS = {"learning_rate": 3e-4, "lr_schedule": "constant", "epochs": 200,
                        "steps_per_epoch": 20, "val_map_every": 1,
                        "early_stopping_patience": 10, "max_seconds": 300.0}
#: Fine-tuning on at most this many samples validates on the training images (no split).
FEW_SAMPLES = 5
#: Fine-tuning re-tunes the parent's post-processing only on at least this many validation
#: images that are not training images.
TUNE_MIN_IMAGES = 3


@dataclass(frozen=True)
class Parent:
    """The model a run starts from.

    Attributes
    ----------
    model : UNetModel
    source : str
        ``"bundled"``, the file's path, or ``"a model in memory"``.
    sha256 : str
        Of the file, or of the weights for a model in memory.
    """

    model: UNetModel
    source: str
    sha256: str


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_sha256(model: UNetModel) -> str:
    digest = hashlib.sha256()
    for array in model.keras_model.get_weights():
        digest.update(array.tobytes())
    return digest.hexdigest()


def resolve_parent(initial_model: Any) -> Parent | None:
    """The parent of ``initial_model``: None, ``"bundled"``, a ``.keras`` path or a model.

    Raises
    ------
    TypeError
        For any other kind of value.
    FileNotFoundError, ValueError
        A missing or unreadable model file (see :func:`..model_file.load_model`).
    """
    if initial_model is None:
        return None
    if isinstance(initial_model, UNetModel):
        return Parent(initial_model, "a model in memory", _weights_sha256(initial_model))
    if isinstance(initial_model, str) and initial_model == "bundled":
        return Parent(load_model(None), "bundled", _file_sha256(BUNDLED_MODEL))
    if isinstance(initial_model, (str, os.PathLike)):
        path = Path(initial_model)
        return Parent(load_model(path), str(path), _file_sha256(path))
    raise TypeError(
        "initial_model must be None, 'bundled', the path of a .keras model file or a "
        f"UNetModel, got {type(initial_model).__name__}.")


def _check_input(parent: Parent) -> None:
    metadata = parent.model.metadata
    spec = metadata.get("input", {})
    normalization = {**DEFAULT_NORMALIZATION, **metadata.get("normalization", {})}
    if spec.get("mode", "gray") != "gray" or normalization != DEFAULT_NORMALIZATION:
        raise ValueError(
            f"the model {parent.source} takes {spec.get('mode')!r} input normalised with "
            f"{normalization}; training here makes one-channel gray models with "
            f"{DEFAULT_NORMALIZATION}: start from scratch (initial_model=None).")


def explicit_names(config: TrainConfig | None, overrides: dict[str, Any]) -> set[str]:
    """The parameters a caller set: ``overrides``, and a given config's non-defaults."""
    names = set(overrides)
    if config is not None:
        default = TrainConfig()
        names |= {parameter.name for parameter in TrainConfig.fields()
                  if getattr(config, parameter.name) != getattr(default, parameter.name)}
    return names


def run_config(config: TrainConfig | None, overrides: dict[str, Any],
               parent: Parent) -> TrainConfig:
    """The configuration of a run that starts from ``parent``.

    ``config`` (default ``TrainConfig()``) with :data:`FINE_TUNING_DEFAULTS` for what the
    caller did not set (:func:`explicit_names`), then ``overrides``, then the parent's
    :data:`INHERITED` values, checked together (a ``patch_size`` against the parent's
    depth).

    Raises
    ------
    ValueError
        Naming each inherited parameter asked with another value than the parent's, the
        parent's value and what to do; or the parent takes another input than training
        here makes.
    """
    _check_input(parent)
    base = config if config is not None else TrainConfig()
    explicit = explicit_names(config, overrides)
    asked = {**{name: getattr(base, name) for name in INHERITED}, **overrides}
    fixed = TrainConfig.from_metadata(parent.model.metadata)
    conflicts = [name for name in INHERITED
                 if name in explicit and asked[name] != getattr(fixed, name)]
    if conflicts:
        said = ", ".join(f"{name}={asked[name]!r} (the model has {getattr(fixed, name)!r})"
                         for name in conflicts)
        raise ValueError(
            f"fine-tuning {parent.source} keeps what its weights were trained for: {said}. "
            "Leave these out, or start from scratch (initial_model=None).")
    defaults = {name: value for name, value in FINE_TUNING_DEFAULTS.items()
                if name not in explicit}
    return base.replace(**{**defaults, **overrides,
                           **{name: getattr(fixed, name) for name in INHERITED}})


def fine_tuning_config(metadata: dict) -> TrainConfig:
    """What fine-tuning the model of ``metadata`` uses by default.

    :class:`TrainConfig`'s defaults, then :data:`FINE_TUNING_DEFAULTS`, then the model's
    :data:`INHERITED` values (read from its metadata, e.g.
    :func:`..model_file.read_metadata`, without TensorFlow): what a form shows when the
    user picks a model to start from.
    """
    fixed = TrainConfig.from_metadata(metadata)
    return TrainConfig(**FINE_TUNING_DEFAULTS).replace(
        **{name: getattr(fixed, name) for name in INHERITED})


def lineage(parent: Parent, split: dict, seconds: float) -> dict:
    """The ``"lineage"`` entry of the new model's metadata."""
    metadata = parent.model.metadata
    return {
        "parent": parent.source,
        "parent_sha256": parent.sha256,
        "parent_created": metadata.get("created"),
        "parent_lineage": metadata.get("lineage"),
        "added_train": list(split.get("train", [])),
        "added_validation": list(split.get("validation", [])),
        "validated_on": split.get("source"),
        "seconds": round(seconds, 1),
    }
