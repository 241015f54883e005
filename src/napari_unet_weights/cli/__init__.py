"""Command line: ``napari-unet-weights weights|evaluate|train|predict|demo|check``.

Each subcommand is a module of this package (:mod:`.weights`, :mod:`.evaluate`,
:mod:`.predict`, :mod:`.train` with :mod:`.resume`, :mod:`.check`, :mod:`.demo`) with a
``HELP`` line, ``add_arguments(parser)`` and ``run(args) -> int``; they call the same core
functions as the widgets. What the subcommands share (argument types, common options, output
checks, the Keras backend's start) is in :mod:`.common`. The batches of ``weights`` and
``predict`` (which outputs may be written) are planned in :mod:`.batch`; zarr outputs
(computed lazily on dask) in :mod:`.big`.
Every output is checked before the work starts and written atomically; Ctrl-C ends a
command with status 130 and no partial file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from . import check, demo, evaluate, export, predict, report, train, weights
from .common import c_stderr_held_back as c_stderr_held_back  # for the tests

#: When this module was imported (``time.monotonic()``): where the command's time budget
#: (``train --minutes``) starts if the process's own start cannot be read.
IMPORTED = time.monotonic()


# -- entry point -------------------------------------------------------------
def _process_start() -> float | None:
    """When this process started, on the ``time.monotonic()`` clock; None if unknown.

    Linux: the start time in ``/proc/self/stat`` (clock ticks since boot), against
    ``CLOCK_BOOTTIME``: this counts the interpreter's start and the package's imports.
    """
    try:
        with open("/proc/self/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        started_after_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started_after_boot
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.monotonic() - age if age >= 0 else None


def _command_started(argv: Sequence[str] | None) -> float:
    """Where a command's time budget starts (``time.monotonic()``).

    Run as the program (no ``argv``): when the process started, so that the interpreter's
    start and the imports count; when this module was imported if that is unknown or
    implausibly early (over a minute before; ``main()`` called late in a long session).
    Called from Python with ``argv``: now.
    """
    now = time.monotonic()
    if argv is not None:
        return now
    start = _process_start()
    if start is None or not IMPORTED - 60.0 <= start <= IMPORTED:
        start = IMPORTED
    return start if now - start < 60.0 else now


SUBCOMMANDS = {
    "weights": (weights.HELP, weights.add_arguments, weights.run),
    "evaluate": (evaluate.HELP, evaluate.add_arguments, evaluate.run),
    "demo": (demo.HELP, demo.add_arguments, demo.run),
    "train": (train.HELP, train.add_arguments, train.run),
    "check": (check.HELP, check.add_arguments, check.run),
    "predict": (predict.HELP, predict.add_arguments, predict.run),
    "export": (export.HELP, export.add_arguments, export.run),
    "report": (report.HELP, report.add_arguments, report.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-unet-weights",
        description="U-Net border weight maps, weighted U-Net training and prediction, and the "
        "mAP of IoU, from the command line. 'napari-unet-weights COMMAND -h' for each command.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``napari-unet-weights`` with ``argv`` (default: the command line); the exit status.

    Ctrl-C stops the command with status 130; the file being written is discarded (each
    output is written under a temporary name and renamed once complete). The subcommand
    gets ``args.started``: where a time budget (``train --minutes``) starts, see
    :func:`_command_started`; run as the program, a subcommand that sets
    ``args.exit_at_once`` ends the process without the interpreter's shutdown
    (:func:`_exit_at_once`).
    """
    started = _command_started(argv)
    args = build_parser().parse_args(argv)
    args.started = started
    try:
        status = args.run(args)
    except KeyboardInterrupt:
        print(f"\nnapari-unet-weights {args.command}: interrupted; the files written so far "
              "are complete, the one in progress was discarded.", file=sys.stderr)
        status = 130
    if argv is None and getattr(args, "exit_at_once", False):
        _exit_at_once(status)
    return status


def _exit_at_once(status: int) -> None:
    """End the process now, skipping the interpreter's shutdown.

    With TensorFlow loaded, the shutdown takes 1.5 s on two idle cores and 7 s on busy
    ones; a command with a time budget (``train --minutes``) cannot afford it. Its outputs
    are complete (written atomically) and closed; the streams and log handlers are flushed
    here; exit handlers (TensorFlow's, absl's) do not run.
    """
    import logging

    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)
