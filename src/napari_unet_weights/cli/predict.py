"""The ``predict`` command: instance label TIFFs (or OME-Zarr stores) from a U-Net model file."""

from __future__ import annotations

import argparse
import sys

from . import big
from .common import (
    BATCH_RULES,
    add_backend_arguments,
    add_overwrite_argument,
    integer,
    positive,
    start_backend,
    usage_error,
)

#: The command's help line.
HELP = "Segment images with a U-Net model file: instance label TIFFs."


def _diameter(text: str) -> float | str:
    """``--diameter``: a number of pixels > 0, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels > 0 or 'auto', got {text!r}") from None


def _diameter_problem(args: argparse.Namespace, batch) -> str | None:
    """Why ``--diameter`` cannot be used for this batch and model (no TensorFlow)."""
    from ..unet.diameter import model_diameter, scale_factor
    from ..unet.model_file import read_metadata

    if args.diameter is None or not batch.outputs:
        return None
    if any(big.is_zarr_output(out) for out in batch.outputs.values()):
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


def _engine_problem(args: argparse.Namespace, batch) -> str | None:
    """Why ``--engine onnx`` cannot be used for this batch (zarr outputs run on Keras)."""
    if args.engine != "keras" and any(big.is_zarr_output(out)
                                      for out in batch.outputs.values()):
        return ("--engine onnx is not available for zarr outputs (segmented block by "
                "block on Keras): leave out --engine.")
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Each IMAGE (2-D grayscale, RGB, or a stack / time series, predicted plane by plane) "
        "gives OUTDIR/<name>_labels.tif: instance labels (uint16, uint32 beyond 65534 "
        "objects, ids unique over a stack, zlib-compressed), with the model file's "
        "normalisation and post-processing. A file that cannot be read or used is reported "
        "and skipped. "
        + big.zarr_rules("predict") + BATCH_RULES.format(suffix="_labels")
        + " Needs TensorFlow: pip install \"napari-unet-weights[unet]\". Exit "
        "status: 0 all written, 1 some skipped, 2 usage error or unusable model."
    )
    parser.add_argument("images", nargs="+", metavar="IMAGES",
                        help="images (.tif/.tiff/.png/.jpg/.npy/.zarr) or folders of them")
    parser.add_argument("-o", "--outdir", required=True, metavar="OUTDIR",
                        help="folder for the label images (created if missing); NAME.zarr: "
                        "the zarr labels of a single input")
    parser.add_argument("--model", metavar="FILE",
                        help="a .keras model file or a bioimage.io package (.zip) exported by "
                             "this plugin (default: the bundled nuclei model)")
    parser.add_argument("--tile", type=lambda text: integer(text, 1), metavar="N",
                        help="tile side in pixels, rounded up to a multiple of 2**depth "
                        "(default: the whole image if it fits the memory budget)")
    parser.add_argument("--overlap", type=lambda text: integer(text, 0), metavar="N",
                        help="overlap of tiles in pixels (default: 8 · 2**depth)")
    parser.add_argument("--batch-size", type=lambda text: integer(text, 1), default=4,
                        metavar="N", help="tiles per network call (default: %(default)s)")
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU even if the backend sees a GPU")
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
    parser.add_argument("--engine", choices=("keras", "onnx"), default="keras",
                        help="the inference runtime (not a dask cluster: that is "
                        "--scheduler): keras, or onnx: ONNX weights through onnxruntime on "
                        "the CPU (an exported package's own, else the model converted once "
                        "per run; needs pip install \"napari-unet-weights[export]\"). Same "
                        "tiles and post-processing. Default: %(default)s")
    big.add_arguments(parser, "predict")
    add_overwrite_argument(parser)
    add_backend_arguments(parser)


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


def _start_backend(args: argparse.Namespace) -> None:
    """Keras' backend started; a package runs on its ONNX weights without it."""
    from ..unet.package_file import is_package

    try:
        start_backend(args.verbose, args.backend)
    except ImportError:
        if args.model is None or not is_package(args.model):
            raise


def _load_predict_model(args: argparse.Namespace):
    """The model and the device it runs on, or the exit status of a usage error."""
    try:
        _start_backend(args)
        from ..unet.device import device_name
        from ..unet.inference_engine import engine_model
        from ..unet.model_file import score_summary
        from ..unet.onnx_runtime import is_onnx

        model = engine_model(args.model, args.engine)  # a package: its ONNX weights
        device = (f"CPU (onnxruntime, {model.keras_model.threads} threads)" if is_onnx(model)
                  else device_name(use_gpu=False if args.cpu else None))
    except (OSError, ValueError, ImportError) as error:
        return usage_error(str(error))
    print(f"model {args.model or 'bundled'} ({score_summary(model.metadata)}); device {device}",
          file=sys.stderr)
    return model


def _write_labels(path, out, model, args: argparse.Namespace, progress) -> str:
    """Segment one file and write its labels; say on stderr if pixels were missing.

    Returns the note of its report line: the objects, and the diameter used (--diameter).
    """
    from ..io.files import read_image, write_tiff
    from ..unet.predict import segment
    from ..unet.sizing import segment_at_diameter

    options = {"tile_shape": args.tile, "overlap": args.overlap,
               "batch_size": args.batch_size, "progress": progress,
               "use_gpu": False if args.cpu else None, "tta": args.tta,
               "engine": args.engine}
    sizing = ""
    with big.missing_data_reported(path, before=progress.clear):
        if args.diameter is None:
            labels = segment(read_image(path), model, **options)
        else:
            result = segment_at_diameter(read_image(path), model, diameter=args.diameter,
                                         **options)
            labels, sizing = result.labels, f"{result.sizing.describe()}, "
    write_tiff(out, labels)
    return f"{int(labels.max())} objects, {sizing}"


def run(args: argparse.Namespace) -> int:
    batch = big.plan(args, args.images, "_labels", "images")
    if isinstance(batch, int):
        return batch
    problem = _diameter_problem(args, batch) or _engine_problem(args, batch)
    if problem is not None:
        return usage_error(problem)
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
        return big.write_labels(path, out, model, args, run, prefix)

    return big.run(args, batch, write, write_zarr, "label image(s)")
