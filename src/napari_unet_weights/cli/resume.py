"""``napari-unet-weights train --run-dir DIR`` and ``train --resume DIR``: runs that resume.

``--run-dir DIR`` keeps the whole state of the run in DIR (``train(run_dir=)``, see
:mod:`..unet.training.run_dir`) and records the command there (``command.json``: DATA_DIR,
``--out``, ``--val-dir`` / ``--val-on-training``, ``--from``, ``--overwrite`` and the
training options given); ``--resume DIR`` reads it back, so that a run goes on with no
other argument. Everything here is checked before TensorFlow starts: options given with
``--resume`` that differ from the run's, a ``--run-dir`` whose run has other parameters,
a finished run whose model is saved (nothing to do).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..io.files import atomic_output
from ..unet.config import TrainConfig, TrainConfigError
from ..unet.training.run_dir import (
    PER_CALL,
    config_differences,
    interrupt_on_sigterm,
    read_run,
    recorded_config,
)
from .common import non_negative

#: The file of the run folder that records the command that started the run.
COMMAND_FILE = "command.json"
#: What the command records besides the training options, with their command-line names.
RECORDED = {"data": "DATA_DIR", "out": "--out", "val_dir": "--val-dir",
            "val_on_training": "--val-on-training", "initial_model": "--from"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run-dir``, ``--resume`` and ``--checkpoint-minutes``."""
    group = parser.add_argument_group(
        "runs that resume",
        "A run kept in a folder goes on after an interruption (a killed process, the end "
        "of --minutes) from its last checkpoint, with the same batches and learning rate "
        "as if it had never stopped.")
    folders = group.add_mutually_exclusive_group()
    folders.add_argument(
        "--run-dir", metavar="DIR",
        help="keep the whole state of the run in DIR (the model and its optimizer, the "
        "history, the best weights, the time spent) and the command; the same command, or "
        "--resume DIR, goes on from its last checkpoint")
    folders.add_argument(
        "--resume", metavar="DIR",
        help="resume the run kept in DIR with the data, --out and options it started with "
        "(give none of them, or the same values); --minutes, --max-seconds and "
        "--checkpoint-minutes are this call's")
    group.add_argument(
        "--checkpoint-minutes", type=non_negative, default=5.0, metavar="M",
        help="with --run-dir / --resume: write a checkpoint at the end of an epoch once M "
        "minutes passed since the last one (0: every epoch); one is always written when "
        "training stops (default: %(default)s)")


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def _command_record(args: argparse.Namespace, given: dict) -> dict:
    initial = args.initial_model
    if initial not in (None, "bundled"):
        initial = str(Path(initial).resolve())
    return {"data": _absolute(args.data), "out": _absolute(args.out),
            "val_dir": _absolute(args.val_dir), "val_on_training": args.val_on_training,
            "initial_model": initial, "overwrite": args.overwrite,
            "options": {name: value for name, value in given.items() if name not in PER_CALL}}


def write_command(args: argparse.Namespace, given: dict) -> None:
    """Record the command in the run folder (``--run-dir``; ``--resume`` keeps the record).

    Raises OSError when the folder cannot be written.
    """
    if args.run_dir is None or args.resume is not None:
        return
    path = Path(args.run_dir) / COMMAND_FILE
    with atomic_output(path) as partial:
        partial.write_text(json.dumps(_command_record(args, given), indent=1) + "\n")


def _read_command(folder: Path) -> dict | str:
    if not folder.is_dir():
        return (f"--resume {folder}: no such folder." if not folder.exists()
                else f"--resume {folder} is a file, not a run folder.")
    path = folder / COMMAND_FILE
    if not path.exists():
        return (f"--resume {folder}: the folder holds no run started by this command (no "
                f"{COMMAND_FILE}); resume a run started from Python or a script the way it "
                "started, or give DATA_DIR, --out and its options with --run-dir.")
    try:
        record = json.loads(path.read_text())
        TrainConfig.check_names(record["options"])
        return record
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"--resume {folder}: {path} cannot be read ({error})."


def _recorded_values(args: argparse.Namespace, record: dict, given: dict,
                     option_text: Callable[[str, Any], str]) -> str | None:
    """Take DATA_DIR, --out, ... and the options from ``record``; the problem if the
    command line gives others (options written by ``option_text``: ``--lr 0.0003``)."""
    differ = []
    for key, flag in RECORDED.items():
        value = getattr(args, key)
        if key in ("data", "out", "val_dir"):
            value = _absolute(value)
        elif key == "initial_model" and value not in (None, "bundled"):
            value = str(Path(value).resolve())
        if value not in (None, False) and value != record[key]:
            differ.append(f"{flag} {value} (the run has {record[key] or 'none'})")
        setattr(args, key, record[key])
    options = record["options"]
    for name, value in list(given.items()):
        if name not in PER_CALL and name in options and options[name] != value:
            differ.append(f"{option_text(name, value)} (the run has "
                          f"{option_text(name, options[name])})")
    if differ:
        return (f"--resume {args.resume}: {', '.join(differ)}. A run keeps its data, output "
                "and options: leave these out (only --minutes, --max-seconds and "
                "--checkpoint-minutes are this call's), or start a new run with another "
                "--run-dir.")
    args.overwrite = args.overwrite or record["overwrite"]
    args.run_dir = args.resume
    for name, value in options.items():
        given.setdefault(name, value)
    return None


def prepare(args: argparse.Namespace, given: dict,
            option_text: Callable[[str, Any], str]) -> str | None:
    """Before the command's own checks: with ``--resume``, ``args`` and ``given`` (the
    training options) completed from the run's record; DATA_DIR and --out required
    otherwise; an output that is the run's own final model may be replaced. The usage
    error, or None. ``option_text(name, value)`` writes an option as given."""
    if args.resume is not None:
        record = _read_command(Path(args.resume))
        if isinstance(record, str):
            return record
        problem = _recorded_values(args, record, given, option_text)
        if problem is not None:
            return problem
    missing = [flag for key, flag in (("data", "DATA_DIR"), ("out", "--out"))
               if getattr(args, key) is None]
    if missing:
        return (f"the following arguments are required: {', '.join(missing)} (or --resume "
                "DIR, to resume a run)")
    if args.run_dir is not None:
        folder = Path(args.run_dir)
        if folder.exists() and not folder.is_dir():
            return f"--run-dir {folder} is a file, not a folder."
        try:
            _, state = read_run(folder)
        except ValueError as error:
            return str(error)
        final = (state or {}).get("final") or {}
        if final.get("out") and final["out"] == _absolute(args.out):
            args.overwrite = True  # the run's own model, from an earlier call
    return None


def config_problem(args: argparse.Namespace, config: TrainConfig) -> str | None:
    """Why the run kept in ``--run-dir`` cannot go on with ``config`` (other parameters,
    named), or None. With ``--resume``, ``config`` is made the run's recorded one (less
    the per-call budget) where they differ only by a parameter added to TrainConfig
    since the run started."""
    if args.run_dir is None:
        return None
    try:
        record, state = read_run(args.run_dir)
        recorded = None if record is None else recorded_config(record)
    except (ValueError, TrainConfigError) as error:
        return str(error)
    if recorded is None or not (state or {}).get("epochs_done"):
        return None  # no run yet, or none that saved an epoch: it starts again
    differences = config_differences(recorded.to_metadata(), config.to_metadata())
    if differences:
        flag = "--resume" if args.resume is not None else "--run-dir"
        return (f"{flag} {args.run_dir} holds a run with other training parameters: "
                f"{'; '.join(differences)}. Give the run's options (only --minutes, "
                "--max-seconds and --checkpoint-minutes are this call's), or start a new run "
                "with another --run-dir.")
    return None


def recorded_overrides(args: argparse.Namespace, given: dict) -> dict:
    """With ``--resume`` and a ``run.json``: every parameter of the run's configuration
    (so that TrainConfig's defaults of today do not change it), the per-call ones as given."""
    if args.resume is None:
        return given
    record, _ = read_run(args.run_dir)
    if record is None:
        return given
    values = recorded_config(record).to_metadata()
    return {**{k: v for k, v in values.items() if k not in PER_CALL},
            **{k: v for k, v in given.items() if k in PER_CALL}}


def finished_message(args: argparse.Namespace) -> str | None:
    """When the run kept in ``--run-dir`` has finished and its model is saved at ``--out``:
    what to say instead of training (nothing is left to do)."""
    if args.run_dir is None:
        return None
    _, state = read_run(args.run_dir)
    final = (state or {}).get("final") or {}
    if not (state or {}).get("finished") or final.get("out") != _absolute(args.out):
        return None
    if not Path(final["out"]).is_file():
        return None
    score = final.get("val_map")
    score_text = "" if score is None else f", validation mAP {score:.4f}"
    ended = "stopped early" if state.get("stopped_early") else "ran all its epochs"
    calls = len(state.get("parts", []))
    return (f"the run in {args.run_dir} has finished: it {ended} ({state.get('epochs_done')} "
            f"epochs, {state.get('seconds', 0):.0f} s over {calls} "
            f"call{'' if calls == 1 else 's'}); its model is {final['out']}"
            f"{score_text}. Delete that file to make it again.")


def resuming_message(args: argparse.Namespace) -> str | None:
    """``resuming the run in DIR after epoch 12/40 ...`` when the run has a checkpoint."""
    if args.run_dir is None:
        return None
    record, state = read_run(args.run_dir)
    if not state or not state.get("epochs_done") or record is None:
        return None
    epochs = (record.get("config") or {}).get("epochs", "?")
    calls = len(state.get("parts", []))
    return (f"resuming the run in {args.run_dir} after epoch {state['epochs_done']}/{epochs} "
            f"(step {state.get('step', '?')}, {state.get('seconds', 0) / 60:.1f} min over "
            f"{calls} call{'' if calls == 1 else 's'} so far)")


def interruptible(run_dir: str | None):
    """With a run folder, SIGTERM ends the training as Ctrl-C does (its last finished epoch
    written, exit status 130); without one, nothing changes."""
    return interrupt_on_sigterm() if run_dir is not None else contextlib.nullcontext()
