"""Background jobs for dock widgets: one at a time, the latest request wins.

A widget asks for work with :meth:`LatestWinsRunner.request`, passing a *prepare*
function. The runner calls it on the GUI thread when no job is running, so that it can
read the current layers and controls and return a :class:`Job`; the job's ``work``
then runs in a napari thread worker and its result comes back on the GUI thread.
Requests made while a job runs collapse into one, prepared when the job ends: the
work always sees the newest state, and two jobs never touch shared objects at once.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import create_worker

__all__ = ["Job", "LatestWinsRunner"]


@dataclass
class Job:
    """One piece of background work and what to do with its outcome.

    Parameters
    ----------
    work : callable
        Called without arguments in a worker thread.
    on_result : callable
        Called on the GUI thread with ``work``'s return value.
    on_error : callable
        Called on the GUI thread with the exception if ``work`` raised.
    """

    work: Callable[[], Any]
    on_result: Callable[[Any], None]
    on_error: Callable[[Exception], None]


def _capture(work: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``work`` and return ``(True, result)`` or ``(False, exception)``."""
    try:
        return True, work()
    except Exception as exc:  # handed to Job.on_error on the GUI thread
        return False, exc


class LatestWinsRunner:
    """Run :class:`Job` objects one at a time in napari thread workers.

    Parameters
    ----------
    on_busy : callable, optional
        Called on the GUI thread with True when a job starts and False when no job
        whose result is awaited remains (after the last job ends, or on cancel). A
        bound method is held weakly, so the runner does not keep its owner alive.
    """

    def __init__(self, on_busy: Callable[[bool], None] | None = None) -> None:
        self._on_busy: Callable[[], Callable[[bool], None] | None] | None = None
        if on_busy is not None:
            self._on_busy = (
                weakref.WeakMethod(on_busy) if inspect.ismethod(on_busy) else lambda: on_busy
            )
        self._pending: Callable[[], Job | None] | None = None
        self._worker = None
        self._discard = False
        self._closed = False

    @property
    def busy(self) -> bool:
        """Whether a worker thread is running (also one whose result will be dropped)."""
        return self._worker is not None

    @property
    def waiting(self) -> bool:
        """Whether a job runs or is queued whose result will be used."""
        return (self.busy and not self._discard) or self._pending is not None

    def request(self, prepare: Callable[[], Job | None]) -> None:
        """Ask for a job; ``prepare`` runs on the GUI thread once no job is running.

        Parameters
        ----------
        prepare : callable
            Returns the :class:`Job` to run, or None if there is nothing to do. Only the
            latest ``prepare`` given while a job runs is called.
        """
        if self._closed:
            return
        self._pending = prepare
        if self._worker is None:
            self._start_pending()

    def cancel(self) -> None:
        """Forget queued requests and drop the running job's result.

        The running thread cannot be interrupted: it finishes in the background and
        later requests wait for it, so shared objects are never used by two jobs.
        """
        self._pending = None
        if self._worker is not None:
            self._discard = True
        self._notify(False)

    def close(self) -> None:
        """Cancel, and ignore all later requests and results (the owner is gone)."""
        self.cancel()
        self._closed = True
        self._on_busy = None

    def _start_pending(self) -> None:
        prepare, self._pending = self._pending, None
        job = prepare() if prepare is not None and not self._closed else None
        if job is None:
            self._notify(False)
            return
        worker = create_worker(_capture, job.work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda outcome: self._deliver(job, outcome))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._discard = False
        self._notify(True)
        worker.start()

    def _deliver(self, job: Job, outcome: tuple[bool, Any]) -> None:
        if self._discard or self._closed:
            return
        ok, value = outcome
        (job.on_result if ok else job.on_error)(value)

    def _on_finished(self) -> None:
        self._worker = None
        self._discard = False
        if self._pending is not None and not self._closed:
            self._start_pending()
        else:
            self._notify(False)

    def _notify(self, busy: bool) -> None:
        callback = self._on_busy() if self._on_busy is not None else None
        if callback is not None:
            callback(busy)
