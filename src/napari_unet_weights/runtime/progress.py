"""Progress, stop and cancel: the types every long computation of the package shares.

One home for the callbacks that the core, the command line and the widgets hand to long
computations, and for the exception they raise when told to stop. No Qt, no TensorFlow,
no dask: anything may import it.

- :data:`Progress`: ``progress(done, total)``, after each step (tiles, blocks, chunks,
  regions); ``total`` may change between the phases of one computation.
- :data:`PhaseProgress`: ``progress(done, total, phase)``, a :data:`Progress` that also
  names the phase (the Segment widget's large images: blocks, counting, the pyramid).
- :data:`TrainProgress`: ``progress(logs)``, training's report after each epoch (a dict
  of the epoch's numbers).
- :data:`ShouldStop`: ``should_stop()``, polled between steps; True asks to stop.
- :class:`Cancelled`: what a computation raises when ``should_stop()`` returned True
  (nothing is returned, nothing half-written is left). :class:`ComputationCancelled`
  (the :class:`.engine.Engine`'s name) and :class:`PredictionCancelled` (the
  prediction's, re-exported by the package) are this same class under the names they
  have always had: ``except Cancelled``, ``except ComputationCancelled`` and
  ``except PredictionCancelled`` each catch every cancel.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "Cancelled",
    "ComputationCancelled",
    "PhaseProgress",
    "PredictionCancelled",
    "Progress",
    "ShouldStop",
    "TrainProgress",
    "check_stop",
]

#: ``progress(done, total)`` after each step.
Progress = Callable[[int, int], None]
#: ``progress(done, total, phase)``: a :data:`Progress` that names its phase.
PhaseProgress = Callable[[int, int, str], None]
#: ``progress(logs)``: training's numbers after each epoch.
TrainProgress = Callable[[dict], None]
#: ``should_stop()``: True once the user asked to stop.
ShouldStop = Callable[[], bool]


class Cancelled(Exception):
    """``should_stop()`` returned True: the computation stopped, nothing was returned."""


#: The :class:`.engine.Engine`'s name for :class:`Cancelled` (the same class).
ComputationCancelled = Cancelled
#: Prediction's name for :class:`Cancelled` (the same class; public API).
PredictionCancelled = Cancelled


def check_stop(should_stop: ShouldStop | None, message: str) -> None:
    """Raise :class:`Cancelled` with ``message`` if ``should_stop()`` returns True.

    Parameters
    ----------
    should_stop : callable or None
        None never stops.
    message : str
        Says how far the computation got.

    Raises
    ------
    Cancelled
    """
    if should_stop is not None and should_stop():
        raise Cancelled(message)
