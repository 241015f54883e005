"""Where dask computations run: threads, a local cluster of processes, or an existing cluster.

The lazy, chunked paths of the package (segmentation of dask / zarr images in
:mod:`..unet.chunked.big`, chunked weight maps) build dask graphs; an :class:`Engine` runs them.

- **Threads** (default, ``Engine()``): dask's threaded scheduler on a pool of this
  process's threads made for each computation (and shut down after it: new Python
  threads for every job, which TensorFlow's bindings want, see :mod:`..unet.device`).
- **Worker processes** (``Engine(workers=N)``): a ``distributed.LocalCluster`` of ``N``
  worker processes with ``threads_per_worker`` threads each (1 by default: the network
  of each process already uses all the cores TensorFlow gives it), closed with the
  engine.
- **An existing cluster** (``Engine(scheduler="tcp://host:8786")``, or a
  ``distributed.Client``): e.g. a dask-jobqueue cluster on SLURM; the engine only
  connects (and disconnects); it never closes a cluster it did not start.

The functions that take ``workers`` / ``scheduler`` (e.g. ``segment``) also take an
engine as ``scheduler``, to share one cluster between calls (the widgets, the CLI's
progress bar): ``with Engine(workers=4, progress_bar=True) as engine:
segment(image, out="labels.zarr", scheduler=engine)``.

Each :meth:`Engine.compute` reports progress as ``progress(done, total)`` in units of
the results of the collections (the chunks of an array, one per ``dask.delayed``), and
polls ``should_stop()`` while it waits: threads stop between tasks (tasks already running
finish first); on a cluster the futures are cancelled. Either way
:class:`ComputationCancelled` (:class:`..progress.Cancelled`) is raised.
``progress_bar=True`` also shows dask's progress bar on the terminal (the CLI).

Nothing here imports Qt, napari or TensorFlow; ``distributed`` is imported only for
``workers`` / ``scheduler``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .progress import ComputationCancelled, Progress, ShouldStop

__all__ = ["ComputationCancelled", "Engine", "engine_for", "output_keys"]

#: Seconds between two polls of ``should_stop`` (and progress updates) on a cluster.
POLL_INTERVAL = 0.1


def output_keys(*collections: Any) -> set:
    """The keys of the results of dask collections (what progress counts).

    Parameters
    ----------
    *collections
        dask arrays, delayed objects, lists of them, ...

    Returns
    -------
    set
    """
    keys: set = set()
    stack = [collection.__dask_keys__() for collection in _flatten(collections)]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            keys.add(item)
    return keys


def _flatten(collections: Sequence[Any]) -> list:
    """Collections, with lists and tuples of them unpacked (as ``dask.compute`` takes)."""
    flat: list = []
    for item in collections:
        if isinstance(item, (list, tuple)):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def _counting_callback(keys: set, progress: Progress | None, should_stop: ShouldStop | None,
                       cancelled: type[Exception]):
    """A dask callback of the local scheduler: progress over ``keys``, cancel between tasks."""
    from dask.callbacks import Callback

    state = {"done": 0}

    def check() -> None:
        if should_stop is not None and should_stop():
            raise cancelled(f"computation cancelled after {state['done']} of {len(keys)} "
                            "results.")

    def pretask(key, dask, scheduler_state) -> None:
        check()

    def posttask(key, result, dask, scheduler_state, worker_id) -> None:
        if key in keys:
            state["done"] += 1
            if progress is not None:
                progress(state["done"], len(keys))

    return Callback(pretask=pretask, posttask=posttask)


def _unflatten(structure: Sequence[Any], results) -> tuple:
    """``results`` (an iterator over the flattened collections) in ``structure``'s shape."""
    return tuple(list(_unflatten(item, results)) if isinstance(item, (list, tuple))
                 else next(results) for item in structure)


class Engine:
    """Runs dask computations on threads, on a local cluster, or on an existing cluster.

    Parameters
    ----------
    workers : int, optional
        Start a ``distributed.LocalCluster`` of this many worker processes (closed by
        :meth:`close`). None: no cluster (threads, or ``scheduler``).
    scheduler : str or distributed.Client, optional
        The address of a running dask scheduler (``"tcp://host:8786"``), or a client
        connected to one. Not together with ``workers``.
    threads_per_worker : int
        Threads of each local worker process.
    threads : int, optional
        Threads of the threaded scheduler; None: dask's default (the number of cores).
    progress : callable, optional
        ``progress(done, total)`` as results finish (default of :meth:`compute`).
    should_stop : callable, optional
        Polled while computing (default of :meth:`compute`).
    progress_bar : bool
        Show dask's text progress bar on the terminal (the CLI).

    Examples
    --------
    >>> with Engine(workers=2) as engine:  # doctest: +SKIP
    ...     (total,) = engine.compute(array.sum())
    """

    def __init__(self, workers: int | None = None, scheduler: Any = None, *,
                 threads_per_worker: int = 1, threads: int | None = None,
                 progress: Progress | None = None, should_stop: ShouldStop | None = None,
                 progress_bar: bool = False) -> None:
        if workers is not None and scheduler is not None:
            raise ValueError("pass workers (a local cluster) or scheduler (an existing "
                             "cluster), not both.")
        if workers is not None and (int(workers) != workers or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}.")
        self.progress, self.should_stop = progress, should_stop
        self.progress_bar, self.threads = bool(progress_bar), threads
        self.cluster: Any = None
        self.client: Any = None
        self._own_client = False
        if workers is not None:
            self._start_cluster(int(workers), int(threads_per_worker))
        elif scheduler is not None:
            self._connect(scheduler)

    def _start_cluster(self, workers: int, threads_per_worker: int) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                                    processes=True, dashboard_address=None)
        self.client, self._own_client = Client(self.cluster, set_as_default=False), True

    def _connect(self, scheduler: Any) -> None:
        from distributed import Client

        if isinstance(scheduler, Client):
            self.client = scheduler
        else:
            self.client, self._own_client = Client(str(scheduler), set_as_default=False), True

    @property
    def distributed(self) -> bool:
        """Whether computations run on a cluster (else on this process's threads)."""
        return self.client is not None

    def __repr__(self) -> str:
        if self.cluster is not None:
            return f"Engine(workers={len(self.cluster.workers)})"
        if self.client is not None:
            return f"Engine(scheduler={self.client.scheduler.address!r})"
        return "Engine(threads)"

    def close(self) -> None:
        """Disconnect, and close the local cluster if this engine started one."""
        if self._own_client and self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def compute(self, *collections: Any, progress: Progress | None = None,
                should_stop: ShouldStop | None = None,
                cancelled: type[Exception] = ComputationCancelled) -> tuple:
        """Compute dask collections, as ``dask.compute`` does, with progress and cancel.

        Parameters
        ----------
        *collections
            dask arrays, delayed objects, or lists / tuples of them.
        progress, should_stop : callable, optional
            As in :class:`Engine` (these override the engine's own).
        cancelled : type of Exception
            What to raise when ``should_stop()`` returns True (default
            :class:`..progress.Cancelled`, whatever its name).

        Returns
        -------
        tuple
            One result per collection (lists for lists), as ``dask.compute``.

        Raises
        ------
        Exception
            ``cancelled`` when stopped; otherwise whatever a task raised.
        """
        progress = self.progress if progress is None else progress
        should_stop = self.should_stop if should_stop is None else should_stop
        if self.distributed:
            return self._compute_distributed(collections, progress, should_stop, cancelled)
        return self._compute_threads(collections, progress, should_stop, cancelled)

    def _compute_threads(self, collections, progress, should_stop, cancelled) -> tuple:
        import dask

        # Optimised first, so that the keys counted are those of the graph that runs.
        collections = dask.optimize(*collections)
        callbacks = [_counting_callback(output_keys(*collections), progress, should_stop,
                                        cancelled)]
        if self.progress_bar:
            from dask.diagnostics import ProgressBar

            callbacks.append(ProgressBar())
        pool = ThreadPoolExecutor(self.threads or os.cpu_count() or 1,
                                  thread_name_prefix="napari-unet-weights-dask")
        try:  # callbacks of this computation only (not global: others may run meanwhile)
            return dask.compute(*collections, scheduler="threads", pool=pool,
                                optimize_graph=False,
                                callbacks=[callback._callback for callback in callbacks])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # running tasks end first

    def _compute_distributed(self, collections, progress, should_stop, cancelled) -> tuple:
        from distributed import futures_of

        flat = _flatten(collections)
        persisted = self.client.persist(flat)
        futures = futures_of(persisted)
        try:
            if self.progress_bar and should_stop is None:
                from distributed import progress as progress_bar

                progress_bar(futures, multi=False, scheduler=self.client.scheduler.address)
            self._wait(futures, progress, should_stop, cancelled)
            results = iter(self.client.compute(persisted, sync=True))
        except BaseException:
            self.client.cancel(futures)
            raise
        return _unflatten(collections, results)

    def _wait(self, futures: list, progress, should_stop, cancelled) -> None:
        """Wait for ``futures``, reporting progress and polling ``should_stop``."""
        total, reported = len(futures), -1
        while True:
            done = sum(future.done() for future in futures)
            if progress is not None and done != reported:
                progress(done, total)
                reported = done
            failed = next((f for f in futures if f.status == "error"), None)
            if failed is not None:
                failed.result()  # raises the task's error
            if done == total:
                return
            if should_stop is not None and should_stop():
                raise cancelled(f"computation cancelled after {done} of {total} results.")
            time.sleep(POLL_INTERVAL)


def engine_for(workers: int | None = None, scheduler: Any = None, engine: Engine | None = None,
               **options: Any) -> tuple[Engine, bool]:
    """The engine to use, and whether the caller must close it.

    Parameters
    ----------
    workers : int, optional
        As in :class:`Engine`.
    scheduler : str, distributed.Client or Engine, optional
        As in :class:`Engine`, or an engine to reuse (as ``engine``).
    engine : Engine, optional
        An engine to reuse, not closed here (``workers`` must then be None).
    **options
        Other :class:`Engine` arguments, for a new one.

    Returns
    -------
    (Engine, bool)
    """
    if isinstance(scheduler, Engine):
        engine, scheduler = scheduler, None
    if engine is not None:
        if workers is not None or scheduler is not None:
            raise ValueError("pass an engine, or workers / scheduler, not both.")
        return engine, False
    return Engine(workers, scheduler, **options), True
