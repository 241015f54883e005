"""The ``evaluate`` command: the mAP of IoU of predicted labels against ground truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    add_force_labels_argument,
    add_overwrite_argument,
    output_problem,
    read_instance_labels,
)

#: The command's help line.
HELP = "Score predicted labels against ground truth (mAP of IoU)."


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    add_overwrite_argument(parser)
    add_force_labels_argument(parser)


def _evaluate_error(message: str, status: int) -> int:
    print(f"napari-unet-weights evaluate: error: {message}", file=sys.stderr)
    return status


def _format_table(table) -> str:
    return table.to_string(index=False, float_format=lambda value: f"{value:.4f}")


def _evaluate_files(args: argparse.Namespace, thresholds):
    from ..metrics.matching import evaluate

    gt, pred = (read_instance_labels(path, args.force_labels) for path in (args.gt, args.pred))
    evaluation = evaluate(gt, pred, thresholds, strict=args.strict)
    print(_format_table(evaluation.per_threshold))
    print(f"mAP (mean of TP/(TP+FP+FN) over {len(evaluation.thresholds)} thresholds): "
          f"{evaluation.map:.4f}")
    return evaluation


def _evaluate_folders(args: argparse.Namespace, thresholds):
    from ..io.files import file_stem, pair_files
    from ..metrics.matching import evaluate_dataset

    def read(path):
        return read_instance_labels(path, args.force_labels)

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


def run(args: argparse.Namespace) -> int:
    from ..io.files import csv_table_paths, write_csv_tables
    from ..metrics.matching import DEFAULT_THRESHOLDS

    gt, pred = Path(args.gt), Path(args.pred)
    for path in (gt, pred):
        if not path.exists():
            return _evaluate_error(f"{path}: no such file or folder.", 2)
    if gt.is_dir() != pred.is_dir():
        return _evaluate_error(
            f"GT and PRED must both be files or both be folders, got {gt} and {pred}.", 2)
    if args.csv:
        problem = output_problem(csv_table_paths(args.csv, EVALUATE_TABLES[gt.is_dir()])
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
