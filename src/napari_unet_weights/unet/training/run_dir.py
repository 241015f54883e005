"""A training run's folder: its whole state on disk, so that a run stops and goes on later.

``train(..., run_dir=DIR)`` keeps in ``DIR``:

``run.json``
    What the run is, written when it starts: the :class:`~..config.TrainConfig`, the data
    (name, image shape and SHA-256 of the pixels of each training and validation sample),
    the starting model (its SHA-256), mixed precision or not, the package version.
``state.json``
    Where it is, rewritten at each checkpoint: epochs done, the optimizer step, the
    history rows, the best epoch and its validation figures, the seconds spent over all
    calls, one entry per call (``parts``: when it started, the epochs it ran, what ended
    it), the wall-clock time, size and duration of each checkpoint, the array files that
    go with it (``files``), whether the run is finished, and the model saved at the end.
``last-EEEEEE-*.npz``
    Every variable of the network (batch-norm statistics and dropout's random state
    included) and of the optimizer (Adam's moments and its iteration count, which drives
    the cosine learning rate) at the end of epoch ``EEEEEE``.
``best-EEEEEE-*.npz``
    The weights kept so far (those of epoch ``EEEEEE``).

Every file is written under a temporary name, flushed to the disk (``fsync``) and renamed
when complete; ``state.json`` is written after the arrays it names, and the files it no
longer names are deleted only then: a process killed at any moment leaves the previous
checkpoint whole. Leftovers of a killed write (temporary ``.partial`` files, arrays no
state names) are removed when the run is opened again. A run that saved no epoch yet
starts again when called with other parameters or data (a first call that failed at once).

A checkpoint is written at the end of an epoch once ``checkpoint_minutes`` have passed
since the last one, and always when the call ends: then it holds the end of the last
finished epoch (a partly run epoch is run again on resuming, from its first batch, with
the same batches). ``run.lock`` keeps a second process out of the folder while one trains
there. numpy and json only: the Keras objects are used through their methods.

The arrays are ``.npz`` files of this module's own rather than Keras files: they are
written from a copy kept in memory (the end of the last epoch, when a call stops within
the next one) and hold every variable, checked by name and shape when read back.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...io.files import atomic_output
from ..config import TrainConfig
from .budget import MONOTONIC, Clock

__all__ = ["PER_CALL", "RUN_FORMAT", "Run", "config_differences", "data_record",
           "interrupt_on_sigterm", "open_run", "read_run", "recorded_config", "release"]

PathLike = str | os.PathLike
#: ``run.json``'s format name and version.
RUN_FORMAT = "napari-unet-weights run"
RUN_FORMAT_VERSION = 1
#: Training parameters that each call sets for itself (a time budget), not the run.
PER_CALL = ("max_seconds",)
#: Names listed at most in a message about samples that differ.
SHOWN_NAMES = 5


# -- small helpers ---------------------------------------------------------------
def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _finite(value: float | None) -> float | None:
    """JSON's number for ``value``: None for NaN, infinities and None."""
    return None if value is None or not math.isfinite(value) else float(value)


def _synced(stream) -> None:
    """Flush ``stream`` to the disk (a checkpoint outlives a machine that goes down)."""
    stream.flush()
    os.fsync(stream.fileno())


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the system allows it)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _write_json(path: Path, content: dict) -> None:
    text = json.dumps(content, indent=1, allow_nan=False) + "\n"
    with atomic_output(path) as partial, open(partial, "w") as stream:
        stream.write(text)
        _synced(stream)
    _sync_folder(path.parent)


def _read_json(path: Path, what: str) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} cannot be read ({error}): the {what} of the run is "
                         "damaged; start the run again in a new folder.") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a {what} of napari-unet-weights.")
    return content


def _write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> int:
    """Write ``arrays`` as an uncompressed .npz (atomically); its size in bytes."""
    with atomic_output(path) as partial, open(partial, "wb") as stream:
        np.savez(stream, **arrays)
        _synced(stream)
    return path.stat().st_size


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except Exception as error:  # OSError, zipfile.BadZipFile, ValueError, zlib.error ...
        raise ValueError(f"the checkpoint {path} cannot be read ({error}); start the run "
                         "again in a new folder.") from None


# -- what the run is: config, data, starting model -------------------------------------
def _digest(sample) -> str:
    """The SHA-256 of a sample's pixels (image and labels, their shapes and dtypes)."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(sample.image), np.ascontiguousarray(sample.labels)):
        digest.update(f"{array.shape}{array.dtype.str}".encode() + array.tobytes())
    return digest.hexdigest()


def data_record(train_samples: Sequence, val_samples: Sequence, split: dict) -> dict:
    """The data of a run as ``run.json`` records it: per sample, its name, image shape
    and the SHA-256 of its pixels.

    Names, not paths: a run reads its data from wherever it is now (the training script
    links it into new temporary folders on each call).
    """
    return {"source": split.get("source", "split"),
            **{what: [[s.name, list(np.shape(s.image)), _digest(s)] for s in samples]
               for what, samples in (("train", train_samples), ("validation", val_samples))}}


def _names(names: list, quote: bool = True) -> str:
    shown = ", ".join(repr(name) if quote else str(name) for name in names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _set_differences(what: str, then: list, now: list) -> list[str]:
    before = {name: (tuple(shape), *digest) for name, shape, *digest in then}
    after = {name: (tuple(shape), *digest) for name, shape, *digest in now}
    problems = []
    missing = [name for name in before if name not in after]
    new = [name for name in after if name not in before]
    if missing:
        problems.append(f"{len(missing)} {what} sample{'s' if len(missing) > 1 else ''} of "
                        f"the run missing now ({_names(missing)})")
    if new:
        problems.append(f"{len(new)} new {what} sample{'s' if len(new) > 1 else ''} "
                        f"({_names(new)})")
    shared = [name for name in before if name in after]
    reshaped = [name for name in shared if before[name][0] != after[name][0]]
    if reshaped:
        problems.append(f"{what} images of another shape: " + _names(
            [f"{name!r} {list(before[name][0])} then, {list(after[name][0])} now"
             for name in reshaped], quote=False))
    changed = [name for name in shared
               if name not in reshaped and before[name][1:] != after[name][1:]]
    if changed:
        problems.append(f"other pixels in {len(changed)} {what} sample"
                        f"{'s' if len(changed) > 1 else ''} ({_names(changed)})")
    if not problems and [n for n, *_ in then] != [n for n, *_ in now]:
        problems.append(f"the {what} samples in another order")
    return problems


def data_differences(then: dict, now: dict) -> list[str]:
    """How the data of ``now`` differs from the run's (``run.json``'s ``"data"``)."""
    problems = []
    if then.get("source") != now.get("source"):
        problems.append(f"validation on {then.get('source')!r} then, {now.get('source')!r} now")
    for what in ("train", "validation"):
        problems += _set_differences("training" if what == "train" else "validation",
                                     then.get(what, []), now.get(what, []))
    return problems


def config_differences(then: dict, now: dict) -> list[str]:
    """The training parameters whose values differ (``name=then then, now now``), the
    per-call ones (:data:`PER_CALL`) aside."""
    return [f"{name}={then.get(name)!r} then, {now.get(name)!r} now"
            for name in sorted(set(then) | set(now))
            if name not in PER_CALL and then.get(name) != now.get(name)]


def recorded_config(record: dict) -> TrainConfig:
    """The run's configuration from its ``run.json``; a parameter added to
    :class:`~..config.TrainConfig` after the run started reads as what training did before
    it existed (:data:`..config.BEFORE_THEY_EXISTED`), else as its default.

    Raises :class:`~..config.TrainConfigError` if a recorded value is no longer allowed.
    """
    return TrainConfig.from_metadata({"training": record.get("config") or {}})


def read_run(path: PathLike) -> tuple[dict | None, dict | None]:
    """``run.json`` and ``state.json`` of the run folder ``path`` (None where missing).

    Raises ValueError if one cannot be read (damaged), naming it.
    """
    folder = Path(path)
    run = folder / "run.json"
    state = folder / "state.json"
    return (_read_json(run, "record") if run.exists() else None,
            _read_json(state, "state") if state.exists() else None)


# -- the run -------------------------------------------------------------------------
def _new_state() -> dict:
    return {"epochs_done": 0, "step": 0, "history": [], "best_epoch": 0,
            "best_val_loss": None, "best_val_map": None, "parent_val_map": None,
            "stopped_early": False, "finished": False, "seconds": 0.0, "parts": [],
            "checkpoints": [], "files": {"last": None, "best": None}, "final": None}


def _variables(optimizer) -> list:
    """The optimizer's variables (a loss-scale optimizer's own ones included)."""
    return list(optimizer.variables)


class Run:
    """A run folder opened by :func:`~.train.train`: the state read, the checkpoints written.

    Made by :func:`open_run`; ``train()`` calls, in order: :meth:`check_config`,
    :meth:`begin` (data and device checked, ``run.json`` written on the first call),
    :meth:`restore` (model, optimizer, history, best weights), :meth:`epoch_end` after
    each epoch, :meth:`end` when fitting ends for whatever reason, :meth:`saved`.

    The run state ``train()`` passes in has the attributes ``history`` (rows ``(epoch,
    loss, val_loss, val_map)``), ``best_epoch``, ``best_val_loss``, ``best_val_map``,
    ``best_weights``, ``stopped_early``, ``cancelled``, ``timed_out``, ``epochs``,
    ``first_epoch`` and ``progress``.

    Attributes
    ----------
    folder : pathlib.Path
    record : dict or None
        ``run.json`` (None until :meth:`begin` on a new run).
    state : dict
        ``state.json`` as last written (or read).
    resumed : bool
        Whether an earlier call left a state here.
    """

    def __init__(self, folder: Path, checkpoint_minutes: float, started: float,
                 clock: Clock = MONOTONIC) -> None:
        self.folder = folder
        self.clock = clock
        self.minutes = checkpoint_minutes
        self.started = started
        self.record, state = read_run(folder)
        self.resumed = state is not None
        self.state = state if state is not None else _new_state()
        self.seconds_before = float(self.state["seconds"])
        self._last_write = clock()
        self._epoch_end_step: int | None = None
        self._pending: tuple | None = None  # the last epoch end's arrays, not yet written
        self._written_step: int | None = self.state["step"] if self.resumed else None
        self._saved_best: Any = None
        self._clean()
        for part in self.state["parts"]:
            part["ended_by"] = part.get("ended_by") or "killed (its last checkpoint kept)"
        self.state["parts"].append({"started": _now(), "package_version": None,
                                    "first_epoch": self.state["epochs_done"],
                                    "epochs_done": self.state["epochs_done"],
                                    "seconds": 0.0, "ended_by": None})

    # -- files -------------------------------------------------------------------
    def _path(self, name: str | None) -> Path | None:
        return None if name is None else self.folder / name

    def _clean(self) -> None:
        """Remove what killed writes left: temporary files, arrays no state names."""
        kept = set(self.state["files"].values())
        for path in self.folder.glob("*"):
            name = path.name
            stale = (name.startswith(".") and ".partial" in name) or (
                name.endswith(".npz") and name.startswith(("last-", "best-"))
                and name not in kept)
            if stale and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()

    # -- the checks --------------------------------------------------------------
    def _restart(self) -> None:
        """Forget a run that saved no epoch: it starts again, with other parameters or data
        if need be (a first call that failed at once)."""
        self.record, part = None, self.state["parts"][-1]
        self.state, self.seconds_before = _new_state(), 0.0
        self.state["parts"].append(part)

    def check_config(self, config) -> None:
        """ValueError naming the parameters that differ from the run's (the time budget
        aside); a run that saved no epoch yet starts again instead."""
        if self.record is None:
            return
        differences = config_differences(recorded_config(self.record).to_metadata(),
                                         config.to_metadata())
        if differences and not self.state["epochs_done"]:
            self._restart()
        elif differences:
            raise ValueError(
                f"{self.folder} holds a run with other training parameters: "
                f"{'; '.join(differences)}. Resume it with its own parameters (only "
                f"{', '.join(PER_CALL)} and finish_within may change), or start a new run "
                "in another folder.")

    def begin(self, config, data: dict, parent, mixed_precision: bool,
              package_version: str) -> None:
        """Check the data, the starting model and the device against the run's; write
        ``run.json`` on a new run. ValueError naming each difference."""
        parent_record = None if parent is None else {"source": parent.source,
                                                     "sha256": parent.sha256}
        self.state["parts"][-1]["package_version"] = package_version
        if self.record is None:
            self.record = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION,
                           "config": config.to_metadata(), "data": data,
                           "initial_model": parent_record,
                           "mixed_precision": mixed_precision,
                           "package_version": package_version, "created": _now()}
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_json(self.folder / "run.json", self.record)
            return
        problems = data_differences(self.record.get("data", {}), data)
        recorded_parent = self.record.get("initial_model")
        if (recorded_parent or {}).get("sha256") != (parent_record or {}).get("sha256"):
            said = lambda p: "none" if p is None else f"{p['source']} ({p['sha256'][:12]})"  # noqa: E731
            problems.append(f"starting model {said(recorded_parent)} then, "
                            f"{said(parent_record)} now")
        if problems and not self.state["epochs_done"]:  # nothing saved: start again
            self._restart()
            self.begin(config, data, parent, mixed_precision, package_version)
            return
        if problems:
            raise ValueError(f"{self.folder} holds a run on other data: {'; '.join(problems)}."
                             " Resume it with its own data, or start a new run in another "
                             "folder.")
        if self.record.get("mixed_precision") != mixed_precision and self.state["epochs_done"]:
            then, now = ("with", "without") if self.record["mixed_precision"] else ("without",
                                                                                  "with")
            raise ValueError(f"the run in {self.folder} was trained {then} mixed precision "
                             f"(GPU or not), this call would run {now}: resume it on the "
                             "same kind of device.")

    # -- restoring ---------------------------------------------------------------------
    def restore(self, model, state) -> bool:
        """Load the last checkpoint into ``model`` (its optimizer built first) and
        ``state``; False when there is none (nothing finished an epoch yet)."""
        files = self.state["files"]
        if not self.state["epochs_done"] or files["last"] is None:
            return False
        arrays = _read_arrays(self._path(files["last"]))
        optimizer = model.optimizer
        if not optimizer.built:  # building twice would add a mixed-precision run's loss scale again
            optimizer.build(model.trainable_variables)
        for prefix, variables in (("model", list(model.variables)),
                                  ("optimizer", _variables(optimizer))):
            _assign(variables, arrays, prefix, self._path(files["last"]))
        if files["best"] is not None:
            best = _read_arrays(self._path(files["best"]))
            state.best_weights = [best[f"w{i:05d}"] for i in range(len(best))]
            self._saved_best = state.best_weights
        saved = self.state
        state.history = [(row[0], *(math.nan if v is None else v for v in row[1:]))
                         for row in saved["history"]]
        state.best_epoch = saved["best_epoch"]
        state.best_val_loss = (math.inf if saved["best_val_loss"] is None
                               else saved["best_val_loss"])
        state.best_val_map = (-math.inf if saved["best_val_map"] is None
                              else saved["best_val_map"])
        state.stopped_early = saved["stopped_early"]
        state.first_epoch = saved["epochs_done"]
        self._epoch_end_step = self._written_step = saved["step"]
        return True

    def parent_val_map(self, measured: float | None) -> float | None:
        """The starting model's validation mAP: measured on the first call, then read."""
        if self.resumed and self.state["epochs_done"]:
            return self.state["parent_val_map"]
        self.state["parent_val_map"] = _finite(measured)
        return measured

    @property
    def finished(self) -> bool:
        """Whether the run ran all its epochs or stopped early."""
        return bool(self.state["finished"])

    # -- checkpoints -------------------------------------------------------------------
    def _figures(self, state, step: int) -> dict:
        epochs_done = state.history[-1][0] if state.history else 0
        return {"epochs_done": epochs_done, "step": step,
                "history": [[row[0], *(_finite(v) for v in row[1:])] for row in state.history],
                "best_epoch": state.best_epoch,
                "best_val_loss": _finite(state.best_val_loss),
                "best_val_map": _finite(state.best_val_map),
                "stopped_early": state.stopped_early,
                "finished": state.stopped_early or epochs_done >= state.epochs}

    def _arrays(self, model) -> dict[str, np.ndarray]:
        arrays = {}
        for prefix, variables in (("model", list(model.variables)),
                                  ("optimizer", _variables(model.optimizer))):
            arrays[f"{prefix}_paths"] = np.array([v.path for v in variables])
            arrays.update({f"{prefix}{i:05d}": np.array(v, copy=True)
                           for i, v in enumerate(variables)})
        return arrays

    def epoch_end(self, model, state) -> None:
        """After each epoch: a checkpoint when one is due, else the epoch's end kept in
        memory for :meth:`end`."""
        step = int(model.optimizer.iterations)
        self._epoch_end_step = step
        figures = self._figures(state, step)
        due = self.clock() - self._last_write >= self.minutes * 60
        if due:
            self._write(self._arrays(model), figures, state)
        elif not figures["finished"]:  # a finished run's end is written by end() at once
            self._pending = (self._arrays(model), figures)

    def end(self, model, state) -> None:
        """When fitting ends (finished, stopped early or by time, cancelled, an error):
        write the end of the last finished epoch, and the seconds spent."""
        part = self.state["parts"][-1]
        part["ended_by"] = ("cancelled" if state.cancelled else "time limit" if state.timed_out
                            else "stopped early" if state.stopped_early
                            else "finished" if state.history and state.history[-1][0]
                            >= state.epochs else "interrupted")
        if self.finished and part["first_epoch"] == self.state["epochs_done"]:
            part["ended_by"] = "already finished"
        step = int(model.optimizer.iterations)
        if self._epoch_end_step is not None and step == self._epoch_end_step:
            if self._written_step != step:  # fitting ended at an epoch's end
                self._write(self._arrays(model), self._figures(state, step), state)
                return
        elif self._pending is not None:  # stopped within an epoch: the last one's end
            self._write(*self._pending, state)
            return
        try:
            self._write_state()
        except OSError as error:  # a full disk: the call still ends as it would
            _report(state, {"stage": "checkpoint", "epoch": self.state["epochs_done"],
                            "error": str(error)})

    def _write(self, arrays, figures: dict, state) -> None:
        """Write a checkpoint: the arrays, then state.json naming them, then clean up.

        The best weights are those of ``state`` (unchanged since the epoch of ``figures``:
        only the end of an epoch changes them)."""
        best = state.best_weights
        began = self.clock()
        token = secrets.token_hex(3)
        epoch = figures["epochs_done"]
        files = dict(self.state["files"])
        try:
            files["last"] = f"last-{epoch:06d}-{token}.npz"
            size = _write_arrays(self.folder / files["last"], arrays)
            if best is not None and best is not self._saved_best:
                files["best"] = f"best-{state.best_epoch:06d}-{token}.npz"
                size += _write_arrays(self.folder / files["best"],
                                      {f"w{i:05d}": w for i, w in enumerate(best)})
            self.state.update(figures, files=files)
            seconds = self.clock() - began
            self.state["checkpoints"].append({"time": _now(), "epoch": epoch,
                                              "step": figures["step"],
                                              "seconds": round(seconds, 3),
                                              "mb": round(size / 1e6, 2)})
            self._write_state()
        except OSError as error:  # a full disk: training goes on, and says so
            _report(state, {"stage": "checkpoint", "epoch": epoch, "error": str(error)})
            return
        self._saved_best, self._written_step = best, figures["step"]
        self._pending, self._last_write = None, self.clock()
        self._clean()
        _report(state, {"stage": "checkpoint", "epoch": epoch, "step": figures["step"],
                        "seconds": seconds, "mb": size / 1e6})

    def _write_state(self) -> None:
        part = self.state["parts"][-1]
        part["epochs_done"] = self.state["epochs_done"]
        part["seconds"] = round(self.clock() - self.started, 1)
        self.state["seconds"] = round(self.seconds_before + part["seconds"], 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(self.folder / "state.json", self.state)

    def seconds(self) -> float:
        """The seconds spent on the run so far, over all calls (this one until now)."""
        return self.seconds_before + self.clock() - self.started

    def saved(self, path: Path | None, validation: dict) -> None:
        """Record the final model (its path, validation mAP) and this call's seconds; give
        up the folder's lock."""
        self.state["final"] = {"out": None if path is None else str(Path(path).resolve()),
                               "val_map": _finite(validation.get("map")), "time": _now()}
        with contextlib.suppress(OSError):
            self._write_state()
        release(self.folder)


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a session that ends) raises KeyboardInterrupt,
    as Ctrl-C does: a training with a ``run_dir`` then writes its last finished epoch
    before the process ends. Only on the main thread (elsewhere the block runs as is);
    the previous handler comes back afterwards. For programs (the command line, scripts):
    a library call never changes the process's signal handlers.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(state, info: dict) -> None:
    if getattr(state, "progress", None) is not None:
        state.progress(info)


def _canonical(path: str) -> str:
    """A variable's path as far as it names the variable: its last two parts, without the
    numbers Keras appends to repeated object names (``adam_1/iteration``: the second
    optimizer made in this process; ``loss_scale_optimizer/adam/...`` or ``adam/...``
    under mixed precision, as the optimizer was built by ``fit`` or by a resume)."""
    return "/".join(re.sub(r"_\d+$", "", part) for part in str(path).split("/")[-2:])


def _assign(variables: list, arrays: dict, prefix: str, path: Path) -> None:
    """Assign the stored values to ``variables``, checked name by name and shape."""
    stored = [(_canonical(p), arrays[f"{prefix}{i:05d}"].shape)
              for i, p in enumerate(arrays[f"{prefix}_paths"])]
    now = [(_canonical(v.path), tuple(v.shape)) for v in variables]
    if stored != now:
        first = next((f"{a[0]} {a[1]} stored, {b[0]} {b[1]} now"
                      for a, b in zip(stored, now) if a != b), "")
        raise ValueError(f"the checkpoint {path} holds other {prefix} variables than this "
                         f"run builds ({len(stored)} stored, {len(now)} now{'; ' * bool(first)}"
                         f"{first}): it was not written by this run's network and optimizer.")
    for i, variable in enumerate(variables):
        variable.assign(arrays[f"{prefix}{i:05d}"])


#: The run folders this process holds, with their open lock files.
_LOCKS: dict[Path, Any] = {}


def _lock(folder: Path) -> None:
    """Hold ``folder/run.lock`` (``flock``: released when the process ends, also when it is
    killed); this process's own earlier lock on it is given up first (a call that ended
    with an error). No lock where ``fcntl`` is missing (Windows).

    Raises OSError if another process holds it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    key = folder.resolve()
    previous = _LOCKS.pop(key, None)
    if previous is not None:
        previous.close()
    stream = open(folder / "run.lock", "a")  # noqa: SIM115 - held until release()
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        stream.close()
        raise OSError(f"another process is training in {folder} (it holds run.lock): let it "
                      "end, or stop it, before resuming the run.") from None
    _LOCKS[key] = stream


def release(folder: PathLike) -> None:
    """Give up this process's lock on the run folder ``folder`` (if it holds one)."""
    stream = _LOCKS.pop(Path(folder).resolve(), None)
    if stream is not None:
        stream.close()


def open_run(path: PathLike, checkpoint_minutes: float, started: float,
             clock: Clock = MONOTONIC) -> Run:
    """The run folder ``path`` (created, and locked for this process), its state read.

    Parameters
    ----------
    path : path
        The run folder.
    checkpoint_minutes : float
        The least time between two checkpoints written at the end of an epoch (0: every
        epoch); the end of a call always writes one.
    started : float
        ``clock()`` when the call started (its seconds are counted from there).
    clock : callable, optional
        What the checkpoint interval and the seconds spent are read from
        (:data:`.budget.Clock`; ``time.monotonic`` by default).

    Raises
    ------
    NotADirectoryError
        ``path`` is a file.
    ValueError
        ``checkpoint_minutes`` is negative or not a number; a damaged ``run.json`` or
        ``state.json``.
    OSError
        Another process trains in ``path``; the folder cannot be made.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"run_dir {folder} is a file, not a folder.")
    if (isinstance(checkpoint_minutes, bool) or not isinstance(checkpoint_minutes, (int, float))
            or not math.isfinite(checkpoint_minutes) or checkpoint_minutes < 0):
        raise ValueError(f"checkpoint_minutes must be a number >= 0 (0: every epoch), got "
                         f"{checkpoint_minutes!r}.")
    folder.mkdir(parents=True, exist_ok=True)
    _lock(folder)
    return Run(folder, float(checkpoint_minutes), started, clock)
