"""Command line: ``napari-unet-weights weights|evaluate|demo``.

Each subcommand has an ``_add_<name>_arguments(parser)`` and a ``_run_<name>(args) -> int``;
both call the same core functions as the widgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


# -- weights -----------------------------------------------------------------
def _add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    raise NotImplementedError


def _run_weights(args: argparse.Namespace) -> int:
    raise NotImplementedError


# -- evaluate ----------------------------------------------------------------
def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt")
    parser.add_argument("pred")


def _run_evaluate(args: argparse.Namespace) -> int:
    print("evaluate is not implemented yet", file=sys.stderr)
    return 2


# -- demo --------------------------------------------------------------------
def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    raise NotImplementedError


def _run_demo(args: argparse.Namespace) -> int:
    raise NotImplementedError


# -- entry point -------------------------------------------------------------
SUBCOMMANDS = {
    "weights": ("Write U-Net weight maps of label images.", _add_weights_arguments, _run_weights),
    "evaluate": ("Score predicted labels against ground truth (mAP of IoU).",
                 _add_evaluate_arguments, _run_evaluate),
    "demo": ("Open napari with a sample, its labels and the widgets.", _add_demo_arguments,
             _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-unet-weights", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
