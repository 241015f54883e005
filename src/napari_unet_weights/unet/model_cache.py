"""Models loaded once per process: the cache that block-wise prediction's tasks share.

The one model cache of the package, with one key: :class:`ModelFile`, a file's absolute
path, modification time (ns) and size. It is small, picklable, and changes when the
file is rewritten, so a rewritten file is loaded again (its old model is dropped); the
model object itself is never a key. Its users:

- chunked prediction (:mod:`.chunked.big`) runs one task per block, in this process's threads
  or in the worker processes of a dask cluster; a task gets a :class:`ModelFile`, never
  the Keras object, and :func:`cached_model` loads the file the first time a process
  needs it and keeps it: one load per worker process, not one per block;
- the Segment widget loads its picked file with :func:`load_cached`: a second run of
  the same file, unchanged, does not load it again.

At most :data:`MAX_MODELS` models are kept (the least recently used is dropped).

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

__all__ = ["MAX_MODELS", "ModelFile", "cached_model", "is_cached", "load_cached", "load_counts",
           "resolve_model", "serialized"]

#: Models kept at most (the least recently used is dropped first).
MAX_MODELS = 4
_CACHE: dict[ModelFile, UNetModel] = {}
_CACHE_LOCK = threading.Lock()
#: Model files loaded by :func:`cached_model` in this process (path → loads).
_LOADS: Counter = Counter()


@dataclass(frozen=True)
class ModelFile:
    """A model file as it is now: its absolute path, modification time (ns) and size.

    The cache's key: equal references name the same file with the same contents (as far
    as its time stamp and size tell).
    """

    path: str
    mtime_ns: int
    size: int

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
        stat = resolved.stat()
        return cls(str(resolved), stat.st_mtime_ns, stat.st_size)


class _Serialized:
    """A Keras model whose calls take a lock (its other attributes are the model's)."""

    def __init__(self, keras_model: Any) -> None:
        self._model, self._lock = keras_model, threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._model(*args, **kwargs)

    @property
    def locked_network(self) -> tuple[Any, threading.Lock]:
        """The model and the lock its callers hold (:func:`.network.predictor`)."""
        return self._model, self._lock

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
        if reference in _CACHE:
            _CACHE[reference] = _CACHE.pop(reference)  # the most recently used: last
            return _CACHE[reference]
        for stale in [key for key in _CACHE if key.path == reference.path]:
            del _CACHE[stale]
        model = serialized(load_model(reference.path))
        _LOADS[reference.path] += 1
        _CACHE[reference] = model
        while len(_CACHE) > MAX_MODELS:
            del _CACHE[next(iter(_CACHE))]
        return model


def load_cached(path: str | os.PathLike | None) -> UNetModel:
    """The model of the file ``path`` as it is now (None: the bundled model), through the
    cache: :func:`cached_model` of :meth:`ModelFile.of`.

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        See :func:`.model_file.load_model`.
    """
    return cached_model(ModelFile.of(path))


def is_cached(reference: ModelFile) -> bool:
    """Whether :func:`cached_model` holds ``reference``'s model (it would not load it)."""
    with _CACHE_LOCK:
        return reference in _CACHE


def resolve_model(model: UNetModel | ModelFile) -> UNetModel:
    """A model as it is, or a :class:`ModelFile`'s through the cache."""
    return cached_model(model) if isinstance(model, ModelFile) else model


def load_counts() -> dict[str, int]:
    """How many times this process loaded each model file through the cache."""
    return dict(_LOADS)
