"""Command line: ``napari-unet-weights weights|evaluate|train|predict|demo|check``.

Each subcommand has an ``_add_<name>_arguments(parser)`` and a ``_run_<name>(args) -> int``
(``train``: ``add_arguments`` and ``run`` in :mod:`._cli_train`); both call the same core
functions as the widgets. What the subcommands share (argument types, common options, output
checks, TensorFlow's quiet start) is in :mod:`._cli_common`. The batches of ``weights`` and
``predict`` (which outputs may be written) are planned in :mod:`._batch`, the demo's
window lives in :mod:`._demo`; zarr outputs (computed lazily on dask) in :mod:`._cli_big`.
Every output is checked before the work starts and written atomically; Ctrl-C ends a
command with status 130 and no partial file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import _cli_big, _cli_check, _cli_train
from ._cli_common import (
    _add_overwrite_argument,
    _add_verbose_argument,
    _integer,
    _non_negative,
    _output_problem,
    _positive,
    _start_tensorflow,
    _usage_error,
)
from ._cli_common import _c_stderr_held_back as _c_stderr_held_back  # for the tests

#: When this module was imported (``time.monotonic()``): where the command's time budget
#: (``train --minutes``) starts if the process's own start cannot be read.
IMPORTED = time.monotonic()

#: The rules of the commands that write a batch of files, for their help texts.
BATCH_RULES = (
    "Outputs are checked before any work starts and written under a temporary name, then "
    "renamed: Ctrl-C leaves no partial file. An existing output is kept (its input "
    "skipped) unless --overwrite; an input file is never replaced, and a file named like "
    "the output of a file beside it (a{suffix}.tif beside a.tif: a ground truth or an "
    "earlier result) is not taken as an input."
)


# -- shared by the commands -------------------------------------------------
def _add_force_labels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force-labels", action="store_true",
        help="use label files that do not look like instance labels (colour images, or grey "
        "levels that change from pixel to pixel) all the same",
    )


def _read_instance_labels(path, force: bool):
    """``read_labels(path)``, refusing files that are plainly not labels unless ``force``."""
    from .io import implausible_labels_reason, read_labels

    labels = read_labels(path)
    reason = None if force else implausible_labels_reason(labels)
    if reason is not None:
        raise ValueError(f"{path} does not look like instance labels: {reason}. If it "
                         "holds labels all the same, pass --force-labels.")
    return labels


# -- weights -----------------------------------------------------------------
def _class_weights(text: str) -> str | tuple[float, float]:
    """``balanced``, ``inverse``, ``none`` or ``"BG,FG"`` → weight_map's class_weights."""
    from .weights import CLASS_WEIGHT_MODES

    if text in CLASS_WEIGHT_MODES:
        return text
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(CLASS_WEIGHT_MODES)} or two numbers "
            f"'BACKGROUND,FOREGROUND' (e.g. '1,5'), got {text!r}"
        )
    background, foreground = (_non_negative(part.strip()) for part in parts)
    return background, foreground


def _add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    from .weights import BORDER_MODES

    parser.epilog = (
        "Each LABELS file gives OUTDIR/<name>_weights.tif (float32, zlib-compressed). A file "
        "that cannot be read or used, or that is plainly not instance labels (a colour or "
        "intensity image), is reported and skipped. "
        + _cli_big.zarr_rules("weights") + BATCH_RULES.format(suffix="_weights")
        + " Exit status: 0 all written, 1 some skipped, 2 usage error."
    )
    parser.add_argument(
        "labels", nargs="+", metavar="LABELS",
        help="instance label images (.tif/.tiff/.png/.npy/.zarr, 0 = background) or folders "
        "of them",
    )
    parser.add_argument(
        "-o", "--outdir", required=True, metavar="OUTDIR",
        help="folder for the weight maps (created if missing); NAME.zarr: the zarr weight map "
        "of a single input",
    )
    parser.add_argument("--w0", type=_non_negative, default=10.0,
                        help="weight of the border term (default: %(default)s)")
    parser.add_argument("--sigma", type=_positive, default=5.0,
                        help="width of the border term in pixels (default: %(default)s)")
    parser.add_argument(
        "--border", choices=BORDER_MODES, default="background",
        help="'background': border term on background pixels only (U-Net paper); 'all': on "
        "every pixel, distances to object boundaries (seed blog) (default: %(default)s)",
    )
    parser.add_argument(
        "--class-weights", type=_class_weights, default="balanced",
        metavar="{balanced,inverse,none}|BG,FG",
        help="class weights w_c: a rule, or background and foreground weights such as "
        "'1,5' (default: %(default)s)",
    )
    parser.add_argument(
        "--per-plane", action="store_true",
        help="treat each 2-D plane of a stack separately (slices annotated one by one)",
    )
    _cli_big.add_arguments(parser, "weights")
    _add_overwrite_argument(parser)
    _add_force_labels_argument(parser)


def _write_weight_map(path, out, args: argparse.Namespace) -> None:
    from .io import write_tiff
    from .weights import weight_map

    labels = _read_instance_labels(path, args.force_labels)
    weights = weight_map(
        labels, args.w0, args.sigma, border=args.border, class_weights=args.class_weights,
        spatial_dims=min(2, labels.ndim) if args.per_plane else None,
    )
    write_tiff(out, weights)


def _run_weights(args: argparse.Namespace) -> int:
    batch = _cli_big.plan(args, args.labels, "_weights", "label images")
    if isinstance(batch, int):
        return batch

    def write(path, out, _prefix: str) -> str:
        _write_weight_map(path, out, args)
        return ""

    return _cli_big.run(args, batch, write, _cli_big.write_weights, "weight map(s)")


# -- evaluate ----------------------------------------------------------------
def _thresholds(text: str) -> tuple[float, ...]:
    """``"0.5,0.75"`` → (0.5, 0.75), each in [0, 1]."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as '0.5,0.75', got {text!r}") from None
    if not all(0.0 <= value <= 1.0 for value in values):
        raise argparse.ArgumentTypeError(f"IoU thresholds must lie in [0, 1], got {text!r}")
    return values


def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "GT and PRED are two label files, or two folders whose files are paired by name "
        "without extension (a/img1.tif with b/img1.png). The score is the mean over the "
        "thresholds of TP/(TP+FP+FN) (DSB 2018); for folders, the dataset score is the mean "
        "of the image scores, and the per-threshold table pools the counts of all images. "
        "The CSV files are checked before scoring (existing ones are replaced only with "
        "--overwrite) and written under a temporary name, then renamed. Exit status: 0 "
        "scored, 1 an input could not be read or used, 2 usage error."
    )
    parser.add_argument("gt", metavar="GT", help="ground-truth labels: a file or a folder")
    parser.add_argument("pred", metavar="PRED", help="predicted labels: a file or a folder")
    parser.add_argument(
        "--csv", metavar="OUT",
        help="write the tables as CSV: if OUT is an existing folder or ends with '/', files "
        "OUT/per_threshold.csv, OUT/per_object.csv (and OUT/per_image.csv for folders); "
        "otherwise OUT is a file name prefix: OUT_per_threshold.csv, ...",
    )
    parser.add_argument("--strict", action="store_true",
                        help="match with IoU > t (seed blog, Kaggle text) instead of IoU >= t")
    parser.add_argument(
        "--thresholds", type=_thresholds, default=None, metavar="T1,T2,...",
        help="IoU thresholds (default: 0.5,0.55,...,0.95)",
    )
    parser.add_argument("--skip-unpaired", action="store_true",
                        help="with folders, ignore files that have no partner instead of failing")
    _add_overwrite_argument(parser)
    _add_force_labels_argument(parser)


def _evaluate_error(message: str, status: int) -> int:
    print(f"napari-unet-weights evaluate: error: {message}", file=sys.stderr)
    return status


def _format_table(table) -> str:
    return table.to_string(index=False, float_format=lambda value: f"{value:.4f}")


def _evaluate_files(args: argparse.Namespace, thresholds):
    from .metrics import evaluate

    gt, pred = (_read_instance_labels(path, args.force_labels) for path in (args.gt, args.pred))
    evaluation = evaluate(gt, pred, thresholds, strict=args.strict)
    print(_format_table(evaluation.per_threshold))
    print(f"mAP (mean of TP/(TP+FP+FN) over {len(evaluation.thresholds)} thresholds): "
          f"{evaluation.map:.4f}")
    return evaluation


def _evaluate_folders(args: argparse.Namespace, thresholds):
    from .io import file_stem, pair_files
    from .metrics import evaluate_dataset

    def read(path):
        return _read_instance_labels(path, args.force_labels)

    pairs = pair_files(args.gt, args.pred, strict=not args.skip_unpaired)
    result = evaluate_dataset(
        ((file_stem(gt), read(gt), read(pred)) for gt, pred in pairs),
        thresholds, strict=args.strict,
    )
    print(_format_table(result.per_image))
    print(f"\nper threshold, counts pooled over {len(pairs)} images:")
    print(_format_table(result.per_threshold))
    print(f"dataset mAP (mean of the {len(pairs)} image mAPs): {result.map:.4f}")
    return result


#: The tables that ``evaluate --csv`` writes, for files and for folders.
EVALUATE_TABLES = {False: ("per_threshold", "per_object"),
                   True: ("per_image", "per_threshold", "per_object")}


def _run_evaluate(args: argparse.Namespace) -> int:
    from .io import csv_table_paths, write_csv_tables
    from .metrics import DEFAULT_THRESHOLDS

    gt, pred = Path(args.gt), Path(args.pred)
    for path in (gt, pred):
        if not path.exists():
            return _evaluate_error(f"{path}: no such file or folder.", 2)
    if gt.is_dir() != pred.is_dir():
        return _evaluate_error(
            f"GT and PRED must both be files or both be folders, got {gt} and {pred}.", 2)
    if args.csv:
        problem = _output_problem(csv_table_paths(args.csv, EVALUATE_TABLES[gt.is_dir()])
                                  .values(), args.overwrite)
        if problem is not None:
            return _evaluate_error(problem, 2)
    thresholds = args.thresholds or DEFAULT_THRESHOLDS
    run = _evaluate_folders if gt.is_dir() else _evaluate_files
    try:
        result = run(args, thresholds)
    except (OSError, ValueError, TypeError) as error:
        return _evaluate_error(str(error), 1)
    if not args.csv:
        return 0
    try:
        written = write_csv_tables(result.tables(), args.csv)
    except OSError as error:
        return _evaluate_error(str(error), 1)
    print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


# -- predict -----------------------------------------------------------------
def _diameter(text: str) -> float | str:
    """``--diameter``: a number of pixels > 0, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels > 0 or 'auto', got {text!r}") from None


def _diameter_problem(args: argparse.Namespace, batch) -> str | None:
    """Why ``--diameter`` cannot be used for this batch and model (no TensorFlow)."""
    from .unet.diameter import model_diameter, scale_factor
    from .unet.model_file import read_metadata

    if args.diameter is None or not batch.outputs:
        return None
    if any(_cli_big.is_zarr_output(out) for out in batch.outputs.values()):
        return ("--diameter is not available for zarr outputs (segmented block by block): "
                "resize those images first, or leave out --diameter.")
    try:
        model = model_diameter(read_metadata(args.model),
                               f"the model {args.model or '(bundled)'}")
        if args.diameter != "auto":
            scale_factor(model, args.diameter)
    except (OSError, ValueError) as error:
        return f"--diameter: {error}"
    return None


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Each IMAGE (2-D grayscale, RGB, or a stack / time series, predicted plane by plane) "
        "gives OUTDIR/<name>_labels.tif: instance labels (uint16, uint32 beyond 65534 "
        "objects, ids unique over a stack, zlib-compressed), with the model file's "
        "normalisation and post-processing. A file that cannot be read or used is reported "
        "and skipped. "
        + _cli_big.zarr_rules("predict") + BATCH_RULES.format(suffix="_labels")
        + " Needs TensorFlow: pip install \"napari-unet-weights[unet]\". Exit "
        "status: 0 all written, 1 some skipped, 2 usage error or unusable model."
    )
    parser.add_argument("images", nargs="+", metavar="IMAGES",
                        help="images (.tif/.tiff/.png/.jpg/.npy/.zarr) or folders of them")
    parser.add_argument("-o", "--outdir", required=True, metavar="OUTDIR",
                        help="folder for the label images (created if missing); NAME.zarr: "
                        "the zarr labels of a single input")
    parser.add_argument("--model", metavar="FILE",
                        help="a .keras model file (default: the bundled nuclei model)")
    parser.add_argument("--tile", type=lambda text: _integer(text, 1), metavar="N",
                        help="tile side in pixels, rounded up to a multiple of 2**depth "
                        "(default: the whole image if it fits the memory budget)")
    parser.add_argument("--overlap", type=lambda text: _integer(text, 0), metavar="N",
                        help="overlap of tiles in pixels (default: 8 · 2**depth)")
    parser.add_argument("--batch-size", type=lambda text: _integer(text, 1), default=4,
                        metavar="N", help="tiles per network call (default: %(default)s)")
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU even if TensorFlow sees a GPU")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average over 8 flips/rotations: "
                        "~8x slower, usually a little more accurate")
    parser.add_argument("--diameter", type=_diameter, metavar="N|auto",
                        help="the nuclei's diameter in pixels: each image is resized so "
                        "that its nuclei have the size the model was trained on (the "
                        "median its file records: 20.3 px for the bundled model), "
                        "segmented there and the labels resized back to its shape; auto: "
                        "estimated by a first pass, a second one when it differs from the "
                        "model's by over 10%% (printed per file). Default: the image as it "
                        "is. Not for zarr outputs")
    _cli_big.add_arguments(parser, "predict")
    _add_overwrite_argument(parser)
    _add_verbose_argument(parser)


class _TileProgress:
    """On a terminal, a bar over the tiles of one file, updated in place."""

    def __init__(self, stream, prefix: str) -> None:
        self.stream, self.prefix = stream, prefix
        self.tty = stream.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            filled = 20 * done // max(total, 1)
            self.stream.write(f"\r{self.prefix} [{'#' * filled}{'.' * (20 - filled)}] "
                              f"tile {done}/{total}")
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.shown = False


def _load_predict_model(args: argparse.Namespace):
    """The model and the device it runs on, or the exit status of a usage error."""
    try:
        _start_tensorflow(args.verbose)
        from .unet.device import device_name
        from .unet.model_file import load_model, score_summary

        model = load_model(args.model)
        device = device_name(use_gpu=False if args.cpu else None)
    except (OSError, ValueError, ImportError) as error:
        return _usage_error(str(error))
    print(f"model {args.model or 'bundled'} ({score_summary(model.metadata)}); device {device}",
          file=sys.stderr)
    return model


def _write_labels(path, out, model, args: argparse.Namespace, progress) -> str:
    """Segment one file and write its labels; say on stderr if pixels were missing.

    Returns the note of its report line: the objects, and the diameter used (--diameter).
    """
    from .io import read_image, write_tiff
    from .unet.predict import segment
    from .unet.sizing import segment_at_diameter

    options = {"tile_shape": args.tile, "overlap": args.overlap,
               "batch_size": args.batch_size, "progress": progress,
               "use_gpu": False if args.cpu else None, "tta": args.tta}
    sizing = ""
    with _cli_big.missing_data_reported(path, before=progress.clear):
        if args.diameter is None:
            labels = segment(read_image(path), model, **options)
        else:
            result = segment_at_diameter(read_image(path), model, diameter=args.diameter,
                                         **options)
            labels, sizing = result.labels, f"{result.sizing.describe()}, "
    write_tiff(out, labels)
    return f"{int(labels.max())} objects, {sizing}"


def _run_predict(args: argparse.Namespace) -> int:
    batch = _cli_big.plan(args, args.images, "_labels", "images")
    if isinstance(batch, int):
        return batch
    problem = _diameter_problem(args, batch)
    if problem is not None:
        return _usage_error(problem)
    model = _load_predict_model(args) if batch.outputs else None  # none if all are skipped
    if isinstance(model, int):
        return model

    def write(path, out, prefix: str) -> str:
        progress = _TileProgress(sys.stderr, prefix)
        try:
            return _write_labels(path, out, model, args, progress)
        finally:
            progress.clear()

    def write_zarr(path, out, args, run, prefix: str) -> str:
        return _cli_big.write_labels(path, out, model, args, run, prefix)

    return _cli_big.run(args, batch, write, write_zarr, "label image(s)")


# -- demo --------------------------------------------------------------------
def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    from ._demo import DEMO_SAMPLES

    parser.epilog = (
        "The demo segments the sample with the bundled model (Segment widget), shows the "
        "prediction's weight map (Weight map widget) and scores it against the sample's "
        "ground truth (Evaluate widget). Without the bundled model it shows the weight map "
        "of the ground truth and says so. With --screenshot and no display, a private Xvfb "
        "server is started if Xvfb is installed. Exit status: 0 ok, 1 a widget or its "
        "result failed, 2 no display or napari missing."
    )
    parser.add_argument("--sample", choices=DEMO_SAMPLES, default="nuclei_crowded",
                        help="sample data to open (default: %(default)s)")
    parser.add_argument(
        "--screenshot", metavar="FILE",
        help="save a PNG of the window once all results are shown, then exit",
    )
    _add_verbose_argument(parser)
    parser.add_argument("--timeout", type=_positive, default=120.0, metavar="SECONDS",
                        help="how long --screenshot waits for the results (default: "
                        "%(default)s)")


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    # Before napari, quietly: the Segment widget then finds TensorFlow loaded. Without
    # TensorFlow the demo says so and shows the weight map of the ground truth.
    with contextlib.suppress(ImportError):
        _start_tensorflow(args.verbose)
    return run_demo(args)


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
    "weights": ("Write U-Net weight maps of label images.", _add_weights_arguments, _run_weights),
    "evaluate": ("Score predicted labels against ground truth (mAP of IoU).",
                 _add_evaluate_arguments, _run_evaluate),
    "demo": ("Open napari with a sample, its labels and the widgets.", _add_demo_arguments,
             _run_demo),
    "train": (_cli_train.HELP, _cli_train.add_arguments, _cli_train.run),
    "check": (_cli_check.HELP, _cli_check.add_arguments, _cli_check.run),
    "predict": ("Segment images with a U-Net model file: instance label TIFFs.",
                _add_predict_arguments, _run_predict),
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


if __name__ == "__main__":
    sys.exit(main())
