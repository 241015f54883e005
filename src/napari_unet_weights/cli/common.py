"""What the subcommands of :mod:`.` share: argument types, common options, usage
errors, output checks and the start of the Keras backend (TensorFlow quietly).

Kept apart from :mod:`.` so that the subcommands in modules of their own
(:mod:`.train`) use them without importing the entry point that lists them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator


# -- argument types ----------------------------------------------------------
def _number(text: str, *, minimum: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    too_small = value < minimum if inclusive else value <= minimum
    if too_small or value != value or value in (float("inf"), float("-inf")):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
    return value


def non_negative(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=True)


def positive(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=False)


def integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
    return value


# -- shared by the commands -------------------------------------------------
def usage_error(message: str) -> int:
    print(f"napari-unet-weights: error: {message}", file=sys.stderr)
    return 2


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace existing output files (input files are never replaced); without it "
        "they are kept and reported",
    )


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="show the backend's (TensorFlow's) own start-up and log messages")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` (the Keras backend that runs the network) and ``--verbose``."""
    from ..unet.backend import BACKENDS

    parser.add_argument(
        "--backend", choices=BACKENDS, default=None,
        help="the Keras backend that runs the network (default: $KERAS_BACKEND, else "
        "tensorflow if installed, else torch, else jax); torch and jax are the extras "
        "napari-unet-weights[torch] and [jax]",
    )
    add_verbose_argument(parser)


def output_problem(paths, overwrite: bool) -> str | None:
    """Why one of ``paths`` cannot be written (checked before any work), or None."""
    from ..io.files import check_output_file
    from .batch import OVERWRITE_HINT

    for path in paths:
        try:
            check_output_file(path, overwrite=overwrite)
        except FileExistsError:
            return f"{path} exists; {OVERWRITE_HINT} (or choose another name)."
        except OSError as error:
            return str(error)
    return None


# -- the backend (TensorFlow quietly) --------------------------------------------
#: Set (unless already set) before TensorFlow is imported, without --verbose: C++ log
#: messages below FATAL are dropped once TensorFlow has read its log level.
QUIET_TENSORFLOW_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}


@contextlib.contextmanager
def c_stderr_held_back() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file during the block; show it if it raises.

    TensorFlow's libraries print their start-up notices (oneDNN, CUDA probing) from C++
    straight to descriptor 2, some before they read TF_CPP_MIN_LOG_LEVEL.
    """
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to hold back
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except Exception:  # not on Ctrl-C: the user knows why it stopped
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                held.seek(0)
                sys.stderr.write(held.read().decode(errors="replace"))


def start_backend(verbose: bool, backend: str | None = None) -> str:
    """Import Keras on ``backend`` and look for GPUs before the work starts; TensorFlow
    quietly unless ``verbose``. Returns the device label (e.g. ``"CPU (tensorflow)"``).

    Raises ImportError (with the pip command) if the backend is missing, ValueError for an
    unknown one in ``KERAS_BACKEND``.
    """
    from ..unet.backend import use_backend
    from ..unet.device import device_name

    if use_backend(backend) == "tensorflow" and not verbose:
        for name, value in QUIET_TENSORFLOW_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    with contextlib.nullcontext() if verbose else c_stderr_held_back():
        return device_name()  # CUDA is probed here


#: The rules of the commands that write a batch of files, for their help texts.
BATCH_RULES = (
    "Outputs are checked before any work starts and written under a temporary name, then "
    "renamed: Ctrl-C leaves no partial file. An existing output is kept (its input "
    "skipped) unless --overwrite; an input file is never replaced, and a file named like "
    "the output of a file beside it (a{suffix}.tif beside a.tif: a ground truth or an "
    "earlier result) is not taken as an input."
)


def add_force_labels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force-labels", action="store_true",
        help="use label files that do not look like instance labels (colour images, or grey "
        "levels that change from pixel to pixel) all the same",
    )


def read_instance_labels(path, force: bool):
    """``read_labels(path)``, refusing files that are plainly not labels unless ``force``."""
    from ..io.files import implausible_labels_reason, read_labels

    labels = read_labels(path)
    reason = None if force else implausible_labels_reason(labels)
    if reason is not None:
        raise ValueError(f"{path} does not look like instance labels: {reason}. If it "
                         "holds labels all the same, pass --force-labels.")
    return labels
