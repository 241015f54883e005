"""The ``weights`` command: U-Net weight maps of label images."""

from __future__ import annotations

import argparse

from . import big
from .common import (
    BATCH_RULES,
    add_force_labels_argument,
    add_overwrite_argument,
    non_negative,
    positive,
    read_instance_labels,
)

#: The command's help line.
HELP = "Write U-Net weight maps of label images."


def _class_weights(text: str) -> str | tuple[float, float]:
    """``balanced``, ``inverse``, ``none`` or ``"BG,FG"`` → weight_map's class_weights."""
    from ..weights.exact import CLASS_WEIGHT_MODES

    if text in CLASS_WEIGHT_MODES:
        return text
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(CLASS_WEIGHT_MODES)} or two numbers "
            f"'BACKGROUND,FOREGROUND' (e.g. '1,5'), got {text!r}"
        )
    background, foreground = (non_negative(part.strip()) for part in parts)
    return background, foreground


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..weights.exact import BORDER_MODES

    parser.epilog = (
        "Each LABELS file gives OUTDIR/<name>_weights.tif (float32, zlib-compressed). A file "
        "that cannot be read or used, or that is plainly not instance labels (a colour or "
        "intensity image), is reported and skipped. "
        + big.zarr_rules("weights") + BATCH_RULES.format(suffix="_weights")
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
    parser.add_argument("--w0", type=non_negative, default=10.0,
                        help="weight of the border term (default: %(default)s)")
    parser.add_argument("--sigma", type=positive, default=5.0,
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
    big.add_arguments(parser, "weights")
    add_overwrite_argument(parser)
    add_force_labels_argument(parser)


def _write_weight_map(path, out, args: argparse.Namespace) -> None:
    from ..io.files import write_tiff
    from ..weights.exact import weight_map

    labels = read_instance_labels(path, args.force_labels)
    weights = weight_map(
        labels, args.w0, args.sigma, border=args.border, class_weights=args.class_weights,
        spatial_dims=min(2, labels.ndim) if args.per_plane else None,
    )
    write_tiff(out, weights)


def run(args: argparse.Namespace) -> int:
    batch = big.plan(args, args.labels, "_weights", "label images")
    if isinstance(batch, int):
        return batch

    def write(path, out, _prefix: str) -> str:
        _write_weight_map(path, out, args)
        return ""

    return big.run(args, batch, write, big.write_weights, "weight map(s)")
