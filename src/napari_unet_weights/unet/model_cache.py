"""Models loaded once per process: the cache that block-wise prediction's tasks share.

Chunked prediction (:mod:`.big`) runs one task per block, in this process's threads or
in the worker processes of a dask cluster. A task gets a :class:`ModelFile` (the file's
path and modification time: small, picklable, and changed when the file is rewritten),
never the Keras object, and :func:`cached_model` loads the file the first time a
process needs it and keeps it: one load per worker process, not one per block. A file
rewritten since is loaded again (its old model is dropped).

The network of a cached model is called by one thread at a time (:func:`serialized`):
TensorFlow already spreads one call over the cores, and Keras models are not
documented as safe to call from several threads at once.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model_file import BUNDLED_MODEL, UNetModel, load_model

__all__ = ["ModelFile", "cached_model", "load_counts", "resolve_model", "serialized"]

_CACHE: dict[ModelFile, UNetModel] = {}
_CACHE_LOCK = threading.Lock()
#: Model files loaded by :func:`cached_model` in this process (path → loads).
_LOADS: Counter = Counter()


@dataclass(frozen=True)
class ModelFile:
    """A model file as it is now: its absolute path and modification time (ns)."""

    path: str
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike | None) -> ModelFile:
        """The reference of ``path`` (None: the bundled model).

        Raises
        ------
        FileNotFoundError
            If there is no such file.
        """
        resolved = Path(BUNDLED_MODEL if path is None else path).resolve()
        if not resolved.is_file():
            raise FileNotFoundError(f"{resolved}: no such model file.")
        return cls(str(resolved), resolved.stat().st_mtime_ns)


class _Serialized:
    """A Keras model whose calls take a lock (its other attributes are the model's)."""

    def __init__(self, keras_model: Any) -> None:
        self._model, self._lock = keras_model, threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def serialized(unet: UNetModel) -> UNetModel:
    """The same model, its network called by one thread at a time."""
    if isinstance(unet.keras_model, _Serialized):
        return unet
    return UNetModel(_Serialized(unet.keras_model), unet.metadata)


def cached_model(reference: ModelFile) -> UNetModel:
    """The model of ``reference``, loaded by this process once.

    Parameters
    ----------
    reference : ModelFile

    Returns
    -------
    UNetModel
        Its network serialised (:func:`serialized`).

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        See :func:`.model_file.load_model`.
    """
    with _CACHE_LOCK:
        if reference not in _CACHE:
            for stale in [key for key in _CACHE if key.path == reference.path]:
                del _CACHE[stale]
            _CACHE[reference] = serialized(load_model(reference.path))
            _LOADS[reference.path] += 1
        return _CACHE[reference]


def resolve_model(model: UNetModel | ModelFile) -> UNetModel:
    """A model as it is, or a :class:`ModelFile`'s through the cache."""
    return cached_model(model) if isinstance(model, ModelFile) else model


def load_counts() -> dict[str, int]:
    """How many times this process loaded each model file through the cache."""
    return dict(_LOADS)
