"""The ``report`` command: score one or two models on an annotated folder, write an HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    add_backend_arguments,
    add_overwrite_argument,
    integer,
    output_problem,
    start_backend,
    usage_error,
)

#: The command's help line.
HELP = "Score one or two models on an annotated folder: an HTML report and a CSV table."
#: Suffixes of the report (-o) and the table (--csv).
HTML_SUFFIXES = (".html", ".htm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "DATA holds images/ and labels/ (files paired by name without extension). Each "
        "--model is 'bundled', a .keras model file (or a .zip package exported by this "
        "plugin), or a folder of label images (another tool's output, paired with the "
        "images by name); give it twice to compare two models (the second against the "
        "first). The report is one HTML file (summary per model and modality with "
        "bootstrap intervals, plots, the per-image table worst first, a gallery of the "
        "worst objects; images embedded); --csv writes the per-image table with columns "
        "image, model, map, ap50, ap75, ap90, tp, fp, fn, missed, merged, split, n_true, "
        "n_pred (model: the --model value as given). Everything is checked before a model "
        "loads. Exit status: 0 written, 1 an image or label file could not be read or "
        "used, 2 usage error."
    )
    parser.add_argument("data", metavar="DATA", help="a folder with images/ and labels/")
    parser.add_argument("--model", action="append", metavar="MODEL",
                        help="'bundled', a model file or a folder of label images; at most "
                        "twice (default: bundled)")
    parser.add_argument("-o", "--output", required=True, metavar="REPORT.html",
                        help="the HTML report")
    parser.add_argument("--csv", metavar="TABLE.csv", help="also write the per-image table")
    parser.add_argument("--gallery", type=lambda text: integer(text, 0), default=6,
                        metavar="N", help="worst objects shown per model and kind of error "
                        "(default: %(default)s; 0: no gallery)")
    parser.add_argument("--seed", type=lambda text: integer(text, 0), default=0,
                        metavar="N", help="seed of the bootstrap intervals (default: 0)")
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU even if the backend sees a GPU")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation for the U-Net models (~8x slower)")
    add_overwrite_argument(parser)
    add_backend_arguments(parser)


def _output_check(args: argparse.Namespace) -> str | None:
    """Why the outputs cannot be written (suffixes, existing files), or None."""
    if Path(args.output).suffix.lower() not in HTML_SUFFIXES:
        return f"-o {args.output}: the report is an HTML file; end its name with .html."
    outputs = [args.output]
    if args.csv is not None:
        if Path(args.csv).suffix.lower() != ".csv":
            return f"--csv {args.csv}: end the table's name with .csv."
        if Path(args.csv).resolve() == Path(args.output).resolve():
            return "-o and --csv name the same file; give them different names."
        outputs.append(args.csv)
    return output_problem(outputs, args.overwrite)


def _model_check(models, sources) -> str | None:
    """Why the models cannot be used (nothing loaded: a model file's record is read)."""
    from ..qa.inputs import resolve_models
    from ..unet.model_file import read_metadata

    if len(models) > 2:
        return f"give at most two --model (got {len(models)}): the report compares two."
    if len(set(models)) < len(models):
        return f"--model {models[0]} is repeated: compare two different models."
    try:
        resolved = resolve_models({name: name for name in models}, sources)
        for model in resolved:
            if model.kind == "unet" and model.model is not None:
                read_metadata(model.model)
            elif model.kind == "labels":
                _check_labels_folder(model.name, model.labels[sources[0].name])
    except (OSError, ValueError, TypeError) as error:
        return f"--model: {error}"
    return None


def _check_labels_folder(name: str, first) -> None:
    """Refuse a folder whose first file plainly holds no labels (an images folder)."""
    from ..io.files import implausible_labels_reason, read_labels

    reason = implausible_labels_reason(read_labels(first))
    if reason is not None:
        raise ValueError(f"{name} is read as a folder of label images, but {first} does not "
                         f"look like instance labels: {reason}.")


def _check(args: argparse.Namespace):
    """The images, or the exit status of a usage error (before any model loads)."""
    from ..qa.inputs import resolve_images

    data = Path(args.data)
    if not data.is_dir():
        return usage_error(f"{data}: no such folder; DATA is a folder with images/ and "
                           "labels/.")
    problem = _output_check(args)
    if problem is not None:
        return usage_error(problem)
    try:
        sources = resolve_images(data)
    except (OSError, ValueError) as error:
        return usage_error(str(error))
    problem = _model_check(args.model, sources)
    return usage_error(problem) if problem is not None else sources


class _Progress:
    """``image k/n`` on stderr: in place on a terminal, every tenth otherwise."""

    def __init__(self, stream, models: int) -> None:
        self.stream, self.models, self.tty = stream, models, stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if done % self.models:
            return
        image, images = done // self.models, total // self.models
        if self.tty:
            self.stream.write(f"\rimage {image}/{images}" + ("\n" if done == total else ""))
            self.stream.flush()
        elif image == images or image % max(1, images // 10) == 0:
            print(f"image {image}/{images}", file=self.stream)


def _print_summary(result, comparison) -> None:
    for row in result.summary.itertuples(index=False):
        print(f"{row.model} [{row.modality}, {row.n_images} images]: mAP {row.map:.4f} "
              f"[{row.map_low:.4f}, {row.map_high:.4f}]  AP@0.5 {row.ap50:.4f}  "
              f"missed {row.missed}  merged {row.merged}  split {row.split}  "
              f"false positives {row.false_positives}")
    if comparison is not None:
        print(f"{comparison.b} - {comparison.a}: mean mAP difference "
              f"{comparison.mean_difference:+.4f} [{comparison.ci_low:+.4f}, "
              f"{comparison.ci_high:+.4f}]; better on {len(comparison.b_better())}, worse on "
              f"{len(comparison.b_worse())} images")


def run(args: argparse.Namespace) -> int:
    from ..qa.compare import compare_models
    from ..qa.evaluate_models import evaluate_models
    from ..qa.report import write_report

    args.model = args.model or ["bundled"]
    sources = _check(args)
    if isinstance(sources, int):
        return sources
    networks = [m for m in args.model if not Path(m).is_dir()]
    if networks:
        try:
            print(f"device {start_backend(args.verbose, args.backend)}", file=sys.stderr)
        except (ImportError, ValueError) as error:
            return usage_error(str(error))
    options = {"tta": args.tta, "use_gpu": False if args.cpu else None}
    try:
        result = evaluate_models([s.image for s in sources], [s.truth for s in sources],
                                 {name: name for name in args.model},
                                 image_names=[s.name for s in sources], seed=args.seed,
                                 segment_options=options,
                                 progress=_Progress(sys.stderr, len(args.model)))
        comparison = compare_models(result) if len(args.model) == 2 else None
        _print_summary(result, comparison)
        written = [write_report(result, args.output, comparison=comparison,
                                source=str(args.data), per_kind=args.gallery)]
        if args.csv is not None:
            written.append(result.to_csv(args.csv))
    except (OSError, ValueError, TypeError) as error:
        print(f"napari-unet-weights report: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0
