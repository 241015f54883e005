"""Which Keras 3 backend runs the U-Net: TensorFlow, PyTorch or JAX; fixed per process.

The model, its loss and training are plain ``keras`` / ``keras.ops``, so one ``.keras``
file runs on any of the three. Keras reads its backend once, when ``keras`` is first
imported (``KERAS_BACKEND``), and keeps it for the life of the process. So:

- :func:`use_backend` is called before Keras is imported (by :func:`.device.keras_or_error`,
  the CLI's ``--backend``, the widgets' *Backend* setting): it checks that the asked
  backend is installed and sets ``KERAS_BACKEND``;
- once Keras runs, asking for another backend raises :class:`BackendFixedError`, whose
  message says to start again with ``KERAS_BACKEND=<name>``;
- without a request, the backend is ``KERAS_BACKEND`` if set, else TensorFlow if installed
  (the project's reference stack), else the first installed of PyTorch and JAX.

Nothing here imports a backend: whether one is installed is read from the import system.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = [
    "BACKENDS",
    "BackendFixedError",
    "current_backend",
    "default_backend",
    "install_hint",
    "installed_backends",
    "keras_started",
    "restart_hint",
    "use_backend",
]

#: The Keras backends the U-Net runs on, in the order of preference of the default.
BACKENDS = ("tensorflow", "torch", "jax")

#: The package extra that installs each backend (with Keras).
EXTRAS = {"tensorflow": "unet", "torch": "torch", "jax": "jax"}

#: What users call them (for messages).
TITLES = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}


class BackendFixedError(ValueError):
    """Keras already runs another backend in this process (it cannot change)."""


def install_hint(backend: str) -> str:
    """The pip command that installs ``backend`` with Keras for this package."""
    return f'pip install "napari-unet-weights[{EXTRAS[backend]}]"'


def _check_name(backend: str) -> str:
    name = backend.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    return name


def _installed(backend: str) -> bool:
    """Whether ``backend`` (and Keras) can be imported; imports neither."""
    try:
        return all(importlib.util.find_spec(module) is not None
                   for module in (backend, "keras"))
    except (ImportError, ValueError):  # a blocked or broken module
        return False


def installed_backends() -> list[str]:
    """The backends of :data:`BACKENDS` that are installed (with Keras), in that order."""
    return [name for name in BACKENDS if _installed(name)]


def keras_started() -> str | None:
    """The backend Keras runs in this process, or None if Keras is not imported yet."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return str(keras.config.backend())
    except AttributeError:  # keras half-imported (an import in progress on another thread)
        return None


def default_backend() -> str:
    """The backend used when none is asked for: ``KERAS_BACKEND``, else TensorFlow when
    installed, else the first installed backend, else TensorFlow (whose absence the
    loader then reports with the install command)."""
    environment = os.environ.get("KERAS_BACKEND", "").strip().lower()
    if environment:
        return environment
    installed = installed_backends()
    return installed[0] if installed else BACKENDS[0]


def current_backend() -> str:
    """The backend of this process: the one Keras runs, else the one it will start with."""
    return keras_started() or default_backend()


def restart_hint(backend: str) -> str:
    """How to get ``backend`` when Keras already runs another one in this process."""
    return (f"Keras already runs on {keras_started()} in this process and cannot change "
            f"its backend: restart napari (or Python) with KERAS_BACKEND={backend}, e.g. "
            f"'KERAS_BACKEND={backend} napari'.")


def use_backend(backend: str | None = None) -> str:
    """Choose the Keras backend of this process (before Keras is imported) and return it.

    Parameters
    ----------
    backend : str, optional
        ``"tensorflow"``, ``"torch"`` or ``"jax"``; None: the one Keras already runs, else
        :func:`default_backend`.

    Returns
    -------
    str
        The backend; ``KERAS_BACKEND`` is set to it if Keras is not imported yet.

    Raises
    ------
    ValueError
        An unknown backend name (also one in ``KERAS_BACKEND``).
    ImportError
        The backend (or Keras) is not installed; the message gives the pip command.
    BackendFixedError
        Keras already runs another backend in this process.
    """
    started = keras_started()
    name = _check_name(backend if backend is not None else started or default_backend())
    if started is not None:
        if started != name:
            raise BackendFixedError(restart_hint(name))
        return name
    if not _installed(name):
        raise ImportError(f"the U-Net's {TITLES[name]} backend is not installed (it needs "
                          f"{TITLES[name]} and Keras 3): {install_hint(name)}")
    os.environ["KERAS_BACKEND"] = name
    return name
