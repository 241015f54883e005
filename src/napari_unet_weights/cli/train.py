"""``napari-unet-weights train``: the options, the checks made before TensorFlow starts,
the ``--minutes`` budget, progress and the summary line.

The training options are :class:`~..unet.config.TrainConfig`'s; they are parsed without
defaults so that the ones given on the command line, and only those, reach ``train()``:
starting ``--from`` a model, the others get the fine-tuning defaults
(:data:`~..unet.training.parent.FINE_TUNING_DEFAULTS`) and the model's own values
(:data:`~..unet.training.parent.INHERITED`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..unet.config import TrainConfig, TrainConfigError
from ..unet.training.budget import MONOTONIC, Clock
from ..unet.training.parent import (
    FEW_SAMPLES,
    FINE_TUNING_DEFAULTS,
    INHERITED,
    TUNE_MIN_IMAGES,
    fine_tuning_config,
)
from . import resume as _cli_resume
from .common import (
    add_backend_arguments,
    add_overwrite_argument,
    output_problem,
    positive,
    start_backend,
    usage_error,
)

HELP = ("Train a U-Net with the weighted loss on a folder of images and labels, from scratch "
        "or starting from a model (fine-tuning).")

#: Seconds of a ``--minutes`` budget kept for the summary and the end of the process
#: (``train()`` itself keeps the time its final validation and saving need; run as the
#: program, the process then ends without the interpreter's shutdown, see
#: :func:`._exit_at_once`).
EXIT_SECONDS = 2.0
#: Line width of the help's closing paragraphs.
EPILOG_WIDTH = 78
#: The least time left after start-up under ``--minutes`` for training to start at all.
MIN_TRAIN_SECONDS = 10.0

#: ``result.validation["on"]`` → what the summary says the mAP was measured on.
MEASURED_ON = {
    "held-out split": "{n} held-out image{s}",
    "validation set": "{n} image{s} of --val-dir",
    "training images": "the {n} training image{s} (not an independent score)",
}
#: ``result.validation["postprocess_from"]`` → the summary's words.
POSTPROCESS_FROM = {
    "tuned": "post-processing tuned on them",
    "parent": "the starting model's post-processing",
    "defaults": "the default post-processing",
}


def _flag(name: str) -> str:
    return TrainConfig.parameter(name).flag


def _epilog() -> str:
    inherited = ", ".join(_flag(name) for name in INHERITED)
    tuning = ", ".join(_option_text(name, value) for name, value in FINE_TUNING_DEFAULTS.items())
    paragraphs = [
        "DATA_DIR (and the --val-dir folder) holds images/ and labels/ with files paired by "
        "name (like DSB 2018).",
        "Starting from a model: with --from, training starts from the weights of the bundled "
        "nuclei model or of a .keras file made by this program, and keeps what they were "
        f"trained for: {inherited} take the model's values (another value is a usage "
        "error). The training options you give are used as given; the others get the "
        f"fine-tuning defaults ({tuning}) instead of the defaults shown above.",
        "Validation: the validation mAP is measured on --val-fraction of DATA_DIR held out "
        "(chosen with --seed); on the images of --val-dir (all of DATA_DIR then trains); or, "
        "with --val-on-training, on the training images themselves (when a few annotated "
        "images leave none to hold out; the score is then not independent). --val-dir "
        "images with the pixels of a training pair (under any name) are training images: "
        "all of them, and the score is that of --val-on-training; some, and the summary "
        "says how many. Training data whose label images hold no object at all is "
        "refused (exit status 1). With --from "
        f"and at most {FEW_SAMPLES} images in DATA_DIR, the training images are used unless "
        "--val-dir is given. The post-processing is tuned on independent validation images "
        f"(at least {TUNE_MIN_IMAGES} with --from); else the starting model's (or the "
        "default one) is kept.",
        "Time: --minutes is a hard budget for the whole command, start-up included (Python, "
        "TensorFlow, reading the images, loading the model): training stops early enough to "
        "validate and save within it. It replaces the fitting limit --max-seconds unless "
        "that is given too.",
        "The last line says the validation mAP (and the starting model's on the same "
        "images), what it was measured on, where the post-processing came from, the time "
        "used against the budget and the saved file. The model file records the "
        "normalisation, classes, w0/sigma, post-processing, the training parameters, the "
        "split, the validation mAP and, with --from, its lineage: the starting model and its "
        "SHA-256, the images added, the time spent.",
        "Each option also answers to its name in Python (--steps-per-epoch for --steps). "
        "Needs TensorFlow: pip install \"napari-unet-weights[unet]\". NEW.keras is checked "
        "before training starts (an existing file is replaced only with --overwrite) and "
        "written under a temporary name, then renamed.",
        "Runs that resume: with --run-dir DIR the whole state of the run is kept in DIR "
        "(checkpoints every --checkpoint-minutes and when training stops, for whatever "
        "reason); the same command, or --resume DIR alone (it repeats the last command "
        "given with --run-dir), goes on from the last checkpoint with the same batches, "
        "learning rate and early-stopping count: the model is the one an uninterrupted run "
        "makes. A finished run whose model is saved at --out has nothing left to do.",
        "Exit status: 0 trained (or nothing left to do); 1 training failed or bad data; 2 "
        "usage error, found before "
        "training starts: an option, a missing folder or model file, a model that cannot "
        "start this training, or a --minutes budget that start-up leaves too little of.",
    ]
    return "\n\n".join(textwrap.fill(paragraph, EPILOG_WIDTH) for paragraph in paragraphs)


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """TrainConfig's options with no defaults: only those given appear in the namespace.

    The help still shows :class:`TrainConfig`'s defaults (training from scratch).
    """
    group = parser.add_argument_group(
        "training parameters",
        "The defaults shown are those of training from scratch; with --from, see below.")
    TrainConfig.add_arguments(group)
    for action in group._group_actions:
        if action.help:
            shown = "none" if action.default is None else str(action.default)
            action.help = action.help.replace("%(default)s", shown)
        action.default = argparse.SUPPRESS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # the epilog's paragraphs
    parser.epilog = _epilog()
    parser.add_argument("data", metavar="DATA_DIR", nargs="?",
                        help="folder with images/ and labels/ (required unless --resume)")
    parser.add_argument("--out", metavar="NEW.keras",
                        help="where to save the trained model (.keras; required unless "
                        "--resume)")
    parser.add_argument(
        "--from", dest="initial_model", metavar="bundled|MODEL.keras",
        help="start from this model's weights instead of random ones: 'bundled' (the "
        "bundled nuclei model) or a .keras file (default: from scratch)")
    parser.add_argument(
        "--minutes", type=positive, metavar="M",
        help="hard time budget of the whole command in minutes, start-up included "
        "(default: no limit)")
    validation = parser.add_mutually_exclusive_group()
    validation.add_argument(
        "--val-dir", metavar="DIR",
        help="validate on this folder of images/ and labels/ (all of DATA_DIR trains)")
    validation.add_argument(
        "--val-on-training", action="store_true",
        help="validate on the training images themselves (for a few images; not an "
        "independent score, the post-processing is not tuned)")
    add_overwrite_argument(parser)
    add_backend_arguments(parser)
    _cli_resume.add_arguments(parser)
    _add_training_options(parser)


# -- checks before TensorFlow ---------------------------------------------------------
def _folder_problem(path: str, what: str) -> str | None:
    folder = Path(path)
    if not folder.exists():
        return f"{what} {folder}: no such folder."
    if not folder.is_dir():
        return f"{what} {folder} is a file, not a folder."
    if not (folder / "images").is_dir() or not (folder / "labels").is_dir():
        return (f"{what} {folder} must hold an images/ and a labels/ folder (files paired "
                "by name).")
    return None


def _starting_metadata(initial_model: str) -> dict:
    """The metadata of ``--from``'s model, read without TensorFlow.

    Raises ValueError with what to change.
    """
    from ..unet.model_file import read_metadata

    if initial_model != "bundled" and Path(initial_model).suffix != ".keras":
        raise ValueError(f"--from takes 'bundled' or a .keras model file, got "
                         f"{initial_model!r}.")
    try:
        return read_metadata(None if initial_model == "bundled" else initial_model)
    except (OSError, ValueError) as error:
        raise ValueError(f"--from: {error}") from None


def _option_text(name: str, value: Any) -> str:
    """How the command line gives ``value`` of parameter ``name``: ``--lr 0.0003``."""
    parameter = TrainConfig.parameter(name)
    if parameter.kind is bool:
        return parameter.flag if value else "--no-" + parameter.flag[2:]
    if value is None:
        return f"{parameter.flag} none"
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{parameter.flag} {shown}"


def _inherited_conflicts(initial_model: str, metadata: dict, given: dict) -> str | None:
    fixed = TrainConfig.from_metadata(metadata)
    conflicts = [name for name in INHERITED
                 if name in given and given[name] != getattr(fixed, name)]
    if not conflicts:
        return None
    said = ", ".join(f"{_option_text(name, given[name])} (the model has "
                     f"{_option_text(name, getattr(fixed, name))})" for name in conflicts)
    return (f"--from {initial_model} keeps what its weights were trained for: {said}. "
            "Leave these options out, or train from scratch (without --from).")


@dataclass
class _Plan:
    """What ``train()`` is called with, found before TensorFlow starts."""

    overrides: dict = field(default_factory=dict)
    validation: str | None = None
    initial_model: str | None = None
    run_dir: str | None = None


def _given(args: argparse.Namespace) -> dict:
    """The training parameters given on the command line (parsed without defaults)."""
    return {p.name: getattr(args, p.name) for p in TrainConfig.fields() if hasattr(args, p.name)}


def _paths_problem(args: argparse.Namespace) -> str | None:
    for path, what in ((args.data, "DATA_DIR"), (args.val_dir, "--val-dir")):
        problem = None if path is None else _folder_problem(path, what)
        if problem is not None:
            return problem
    if not args.out.endswith(".keras"):
        return f"--out must end with .keras, got {args.out!r}."
    return output_problem([args.out], args.overwrite)


def _validation_problem(args: argparse.Namespace, given: dict) -> str | None:
    if "validation_fraction" in given and (args.val_dir or args.val_on_training):
        return (f"--val-fraction holds images out of DATA_DIR: it does nothing with "
                f"{'--val-dir' if args.val_dir else '--val-on-training'}; leave one out.")
    if given.get("tune_postprocess") and args.val_on_training:
        return ("--tune: the post-processing is not tuned on the training images (it would "
                "fit them, not new images); leave --tune out, or validate on --val-dir.")
    return None


def _starting_config(args: argparse.Namespace, given: dict) -> TrainConfig | str:
    """The run's configuration, or why the training options do not go together (with the
    model of --from)."""
    starting = TrainConfig()
    if args.initial_model is not None:
        try:
            metadata = _starting_metadata(args.initial_model)
        except ValueError as error:
            return str(error)
        conflicts = _inherited_conflicts(args.initial_model, metadata, given)
        if conflicts is not None:
            return conflicts
        starting = fine_tuning_config(metadata)
    try:
        return starting.replace(**given)
    except TrainConfigError as error:
        return str(error)


def _plan(args: argparse.Namespace) -> _Plan | str:
    """The plan of the run, or the usage error: everything checked without TensorFlow."""
    given = _given(args)
    problem = (_cli_resume.prepare(args, given, _option_text) or _paths_problem(args)
               or _validation_problem(args, given))
    if problem is not None:
        return problem
    config = _starting_config(args, given)
    problem = config if isinstance(config, str) else _cli_resume.config_problem(args, config)
    if problem is not None:
        return problem
    if args.minutes is not None and "max_seconds" not in given:
        given["max_seconds"] = None  # the budget limits the run, not the fitting's default
    initial_model = args.initial_model
    if initial_model not in (None, "bundled"):  # the lineage names the file wherever it is
        initial_model = str(Path(initial_model).resolve())
    # --val-dir as an absolute path: train() reads the word "training" as --val-on-training,
    # and a folder may be called that.
    validation = "training" if args.val_on_training else (
        None if args.val_dir is None else os.path.abspath(args.val_dir))
    return _Plan(overrides=_cli_resume.recorded_overrides(args, given),
                 initial_model=initial_model, validation=validation, run_dir=args.run_dir)


# -- progress, time, summary ------------------------------------------------------------
class _TrainProgress:
    """One line per epoch; on a terminal, a bar over the steps updated in place.

    With a budget (``started``, ``budget`` in seconds), each epoch line ends with the
    time used of it (read from ``clock``).
    """

    def __init__(self, stream, started: float | None = None,
                 budget: float | None = None, clock: Clock = MONOTONIC) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.started, self.budget, self.clock = started, budget, clock

    def __call__(self, info: dict) -> None:
        if info["stage"] == "batch" and self.tty:
            done = int(20 * info["step"] / info["steps"])
            self.stream.write(f"\repoch {info['epoch']}/{info['epochs']} "
                              f"[{'#' * done}{'.' * (20 - done)}] step {info['step']}/"
                              f"{info['steps']} loss {info['loss']:.4f}")
            self.stream.flush()
        elif info["stage"] == "epoch":
            val_map = "-" if info["val_map"] is None else f"{info['val_map']:.4f}"
            clock = ""
            if self.budget is not None and self.started is not None:
                clock = f" [{self.clock() - self.started:.0f}/{self.budget:.0f} s]"
            self.stream.write(("\r\x1b[K" if self.tty else "")
                              + f"epoch {info['epoch']}/{info['epochs']} loss "
                              f"{info['loss']:.4f} val_loss {info['val_loss']:.4f} "
                              f"val_mAP {val_map}{clock}\n")
            self.stream.flush()
        elif info["stage"] == "checkpoint":
            said = (f"FAILED: {info['error']}" if "error" in info else
                    f"{info['mb']:.1f} MB in {info['seconds']:.1f} s")
            self.stream.write(f"checkpoint of epoch {info['epoch']}: {said}\n")
            self.stream.flush()


def _time_for_training(budget: float, used: float) -> float | str:
    """Seconds ``train()`` may take (its ``finish_within``) when start-up ``used`` seconds
    of ``budget``, or the usage error."""
    left = budget - used - EXIT_SECONDS
    if left < MIN_TRAIN_SECONDS:
        need = math.ceil((used + EXIT_SECONDS + MIN_TRAIN_SECONDS) / 6) / 10  # minutes
        return (f"--minutes {budget / 60:g}: start-up took {used:.1f} s of the {budget:.0f} s, "
                f"leaving less than {MIN_TRAIN_SECONDS:.0f} s to train, validate and save; "
                f"give --minutes {need:g} or more (training itself needs more than that "
                "to learn anything).")
    return left


def _ended_by(result) -> str:
    if result.time_limit_reached:
        return "the time limit"
    if result.stopped_early:
        return "early stopping"
    return "the last epoch"


def _summary(result, used: float, budget: float | None) -> str:
    """The last line: the mAP, what it was measured on, the post-processing, time, file."""
    validation, epochs = result.validation, len(result.history)
    n = validation["n_images"]
    on = MEASURED_ON.get(validation["on"], validation["on"]).format(n=n, s="" if n == 1 else "s")
    shared = validation.get("also_training")
    if shared:
        on += f" ({shared} of them training images: not an independent score)"
    parent_map = (result.model.metadata.get("lineage") or {}).get("parent_val_map")
    before = "" if parent_map is None else f" (starting model: {parent_map:.4f})"
    postprocess = POSTPROCESS_FROM.get(validation["postprocess_from"],
                                       validation["postprocess_from"])
    if budget is None:
        spent = f"{used:.1f} s"
    else:
        over = " - OVER the budget" if used > budget else ""
        spent = f"{used:.1f} s of the {budget:g} s budget{over}"
    return (f"validation mAP {validation['map']:.4f}{before} on {on}, {postprocess}; "
            f"{epochs} epoch{'' if epochs == 1 else 's'}, ended by {_ended_by(result)}; "
            f"{result.device}; {spent}; saved {result.path}")


# -- the command -------------------------------------------------------------------
def _error(message: str) -> int:
    print(f"napari-unet-weights train: error: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace, clock: Clock = MONOTONIC) -> int:
    """Run the command; its exit status.

    ``args.started`` (set by :func:`.main`; else now) is where a ``--minutes``
    budget starts, on ``clock`` (:mod:`..unet.training.budget`), which ``train()`` reads too.
    """
    started = getattr(args, "started", None) or clock()
    budget = None if args.minutes is None else args.minutes * 60
    args.exit_at_once = budget is not None  # TensorFlow's shutdown would overrun the budget
    plan = _plan(args)
    if isinstance(plan, str):
        return usage_error(plan)
    finished = _cli_resume.finished_message(args)
    if finished is not None:  # nothing left to do
        print(f"napari-unet-weights train: {finished}", file=sys.stderr)
        return 0
    try:
        _cli_resume.write_command(args, plan.overrides)
    except OSError as error:
        return usage_error(f"--run-dir: {error}")
    resuming = _cli_resume.resuming_message(args)
    if resuming is not None:
        print(f"napari-unet-weights train: {resuming}", file=sys.stderr)
    try:
        device = start_backend(args.verbose, args.backend)
    except (ImportError, ValueError) as error:
        return _error(str(error))
    print(f"napari-unet-weights train: on {device}", file=sys.stderr)
    finish_within = None
    if budget is not None:
        finish_within = _time_for_training(budget, clock() - started)
        if isinstance(finish_within, str):
            return usage_error(finish_within)
    try:
        from ..unet.training.train import train

        # with a run folder, SIGTERM (a session that ends) saves the last epoch as Ctrl-C does
        with _cli_resume.interruptible(plan.run_dir):
            result = train(args.data, validation=plan.validation,
                           initial_model=plan.initial_model, finish_within=finish_within,
                           out=args.out,
                           progress=_TrainProgress(sys.stderr, started, budget, clock),
                           run_dir=plan.run_dir, checkpoint_minutes=args.checkpoint_minutes,
                           clock=clock, **plan.overrides)
    except (OSError, ValueError, TypeError, ImportError) as error:
        return _error(str(error))
    print(_summary(result, clock() - started, budget), file=sys.stderr)
    return 0
