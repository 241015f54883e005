"""``napari-unet-weights export``: a model file as a bioimage.io model package (.zip).

The package (rdf.yaml, Keras 3 and ONNX weights, test tensors, cover, model card) is
written by :func:`~..share.export.export_model`; docs/share.md says how to open it elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..share.extra import extra_message, missing_export_modules
from .common import add_overwrite_argument, output_problem, usage_error

HELP = ("Write a model file as a bioimage.io model package (.zip: Keras 3 and ONNX weights) "
        "for deepImageJ, ilastik, QuPath and the bioimage.io tools.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="a .keras model file (default: the bundled model)")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="the package to write (NAME.zip)")
    parser.add_argument("--name", default=None, help="the model's name in the package")
    add_overwrite_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".zip":
        return usage_error(f"{args.output}: the package must be a .zip file.")
    problem = output_problem([args.output], args.overwrite)
    if problem:
        return usage_error(problem)
    missing = missing_export_modules()
    if missing:
        return usage_error(extra_message(missing))
    from ..share.export import export_model

    try:
        path = export_model(args.model, args.output, name=args.name)
    except (OSError, ValueError, ImportError) as error:  # a missing or unreadable model
        return usage_error(str(error))
    print(f"{path}: bioimage.io model package (keras_v3, onnx); "
          f"check it with: bioimageio test {path}")
    return 0
