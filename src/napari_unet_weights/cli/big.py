"""The ``weights`` and ``predict`` commands on big files: zarr outputs, computed lazily on dask.

Which output an input gets (:data:`ZARR_RULES`, the help texts say the same):

- ``-o OUTDIR`` (a folder, as before): ``OUTDIR/<name><suffix>.zarr`` for a zarr store
  (a zarr array or an OME-Zarr image), for a TIFF over
  :data:`..io.big.LARGE_PIXELS` pixels, and for every input with ``--zarr``;
  ``OUTDIR/<name><suffix>.tif`` (read and computed in memory, as before) otherwise;
- ``-o NAME.zarr`` (the name ends in ``.zarr``): the one input's output is that store.

A zarr output is read and computed block by block on an :class:`..runtime.engine.Engine`
(threads; ``--workers N`` a local cluster of N processes; ``--scheduler ADDRESS`` an
existing cluster), written with the input's chunking (:mod:`..io.big`), under a hidden
temporary name renamed once complete. On a terminal, each computation shows dask's
progress bar on stderr; elsewhere a plain line on stderr per step (and every
:data:`LINE_INTERVAL` seconds of a long one). Ctrl-C cancels (the cluster's futures
too) and leaves no partial store.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from .common import integer, usage_error

#: Seconds between two plain progress lines of one long step (stderr not a terminal).
LINE_INTERVAL = 10.0

#: The rules of zarr outputs, for the help texts of ``weights`` and ``predict``.
ZARR_RULES = (
    "Zarr: a zarr store (zarr array, or OME-Zarr image: its level 0), a TIFF over "
    "8192x8192 pixels, or any input with --zarr, is read lazily, computed block by block "
    "and written as OUTDIR/<name>{suffix}.zarr with the input's chunking (a striped TIFF: "
    "1024x1024 chunks); -o NAME.zarr names the zarr output of a single input. {what} "
    "--workers N computes them on a local dask cluster of N processes, --scheduler ADDRESS "
    "on a running one (whose workers must see the files). Progress: dask's progress bar "
    "on a terminal, a line per step otherwise."
)
WHAT = {
    "weights": "Weight maps are plain float32 zarr arrays.",
    "predict": "Labels are OME-Zarr images (uint32) with a pyramid of levels (every second "
    "pixel), which napari opens lazily (as a multiscale image layer; see docs/big-images.md, "
    "\"Opening the results in napari\", for a labels layer).",
}


def zarr_rules(command: str) -> str:
    """:data:`ZARR_RULES` for ``weights`` or ``predict``, ending with a space."""
    suffix = "_weights" if command == "weights" else "_labels"
    return ZARR_RULES.format(suffix=suffix, what=WHAT[command]) + " "


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """``--zarr``, ``--workers``, ``--scheduler`` (and ``--block`` for predict)."""
    parser.add_argument("--zarr", action="store_true",
                        help="write every output as .zarr, computed lazily block by block "
                        "(default: only for zarr inputs and TIFFs over 8192x8192 pixels)")
    if command == "predict":
        parser.add_argument("--block", type=lambda text: integer(text, 1), metavar="N",
                            help="zarr outputs: block side in pixels, segmented with a margin "
                            "of context and stitched (default: 1024)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=lambda text: integer(text, 1), metavar="N",
                         help="zarr outputs: compute on a local dask cluster of N worker "
                         "processes (default: threads of this process)")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="zarr outputs: compute on a running dask cluster, e.g. "
                         "tcp://host:8786 (its workers must see the input and output files)")


def is_zarr_output(path) -> bool:
    return Path(path).suffix.lower() == ".zarr"


# -- planning ------------------------------------------------------------------------------
def _output_rule(args: argparse.Namespace, suffix: str):
    """``output_for(input) -> output`` for :func:`.batch.plan_batch` (see the module)."""
    from ..io.big import wants_zarr
    from ..io.files import file_stem

    target = Path(args.outdir)
    if is_zarr_output(target):
        first: list[Path] = []

        def single(path: Path) -> Path:
            first.append(path)
            if len(first) > 1:
                raise ValueError(f"-o {target} names the output of one input, and "
                                 f"{len(first)} or more were given ({first[0]}, {path}); "
                                 "give a folder for several.")
            return target

        return single

    def in_folder(path: Path) -> Path:
        zarr = args.zarr or wants_zarr(path)
        return target / f"{file_stem(path)}{suffix}{'.zarr' if zarr else '.tif'}"

    return in_folder


def plan(args: argparse.Namespace, inputs: list[str], suffix: str, what: str):
    """The :class:`.batch.Batch` of the inputs, or the exit status of a usage error."""
    from ..io.big import expand_lazy_inputs
    from .batch import plan_batch

    try:
        return plan_batch(inputs, args.outdir, suffix, what, overwrite=args.overwrite,
                          output_for=_output_rule(args, suffix), expand=expand_lazy_inputs)
    except (OSError, ValueError) as error:
        return usage_error(str(error))


# -- the engine and its progress -----------------------------------------------------------
class _Lines:
    """The engine's progress as plain lines (stderr not a terminal), per step of a file."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.label = ""
        self.step = 0
        self.total: int | None = None
        self.done = 0
        self.started = self.printed = 0.0

    def begin(self, label: str) -> None:
        self.label, self.step, self.total = label, 0, None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total != self.total or done < self.done:  # a new computation
            self.step, self.total, self.started, self.printed = self.step + 1, total, now, now
        self.done = done
        if done >= total or now - self.printed >= LINE_INTERVAL:
            self.printed = now
            print(f"{self.label}, step {self.step}: {done}/{total} done "
                  f"({now - self.started:.1f} s)", file=self.stream, flush=True)
        if done >= total:
            self.total = None  # the next call starts the next step


class LazyRun:
    """The engine that the zarr outputs of one command share, and its progress on stderr."""

    def __init__(self, args: argparse.Namespace, stream=None) -> None:
        from ..runtime.engine import Engine

        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines = _Lines(self.stream)
        self.remote = args.scheduler is not None
        self.engine = Engine(args.workers, args.scheduler,
                             progress=None if self.tty else self.lines, progress_bar=self.tty)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> LazyRun:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def begin(self, label: str) -> None:
        """Start a named part of a file's work: a heading above the bars, or the lines' label."""
        self.lines.begin(label)
        if self.tty:
            print(label, file=self.stream, flush=True)

    @contextlib.contextmanager
    def computing(self, path) -> Iterator[None]:
        """dask's bars (which print to stdout) on our stream; task errors as per-file errors.

        Errors of the readers and tasks that are not OSError, ValueError or TypeError
        (codecs, unexpected contents) become an OSError naming the file: it is skipped.
        """
        redirect = contextlib.redirect_stdout(self.stream) if self.tty else \
            contextlib.nullcontext()
        try:
            with redirect:
                yield
        except (OSError, ValueError, TypeError):
            raise
        except Exception as error:
            raise OSError(f"{path}: {type(error).__name__}: {error}") from error

    @contextlib.contextmanager
    def default_scheduler(self) -> Iterator[None]:
        """dask's default scheduler: the cluster's, if any (for code that calls dask.compute)."""
        import dask

        with (dask.config.set(scheduler=self.engine.client) if self.engine.distributed
              else contextlib.nullcontext()):
            yield


def start(args: argparse.Namespace, batch) -> LazyRun | contextlib.nullcontext | int:
    """The :class:`LazyRun` of a batch with zarr outputs (a null context without any), or
    the exit status of a usage error (a cluster that cannot be started or reached)."""
    lazy = any(is_zarr_output(out) for out in batch.outputs.values())
    if not lazy:
        if args.workers is not None or args.scheduler is not None:
            print("napari-unet-weights: note: --workers / --scheduler are used by zarr "
                  "outputs only, and there are none (--zarr makes every output one).",
                  file=sys.stderr)
        return contextlib.nullcontext()
    try:
        return LazyRun(args)
    except Exception as error:  # distributed raises many types (OSError, TimeoutError...)
        where = (f"connect to the dask scheduler {args.scheduler}" if args.scheduler else
                 f"start a local dask cluster of {args.workers} workers")
        return usage_error(f"could not {where}: {type(error).__name__}: {error}")


def run(args: argparse.Namespace, batch, write, write_zarr, written: str) -> int:
    """Write a planned batch (:func:`.batch.run_batch`): the zarr outputs with
    ``write_zarr(path, out, args, lazy_run, prefix)`` on the batch's :class:`LazyRun`,
    the others with ``write(path, out, prefix)``; the exit status."""
    from .batch import run_batch

    lazy = start(args, batch)
    if isinstance(lazy, int):
        return lazy

    def either(path, out, prefix: str) -> str:
        if is_zarr_output(out):
            return write_zarr(path, out, args, lazy, prefix)
        return write(path, out, prefix)

    with lazy:
        return run_batch(batch, either, written, args.outdir)


def _header(prefix: str, path, data, chunks, out, run: LazyRun) -> str:
    shape = "x".join(map(str, data.shape))
    print(f"{prefix} {path}: {shape} {data.dtype}, chunks {tuple(chunks)} → {out} "
          f"({run.engine!r})", file=run.stream, flush=True)
    return f"{prefix} {Path(path).name}"


# -- weights -------------------------------------------------------------------------------
def write_weights(path, out, args: argparse.Namespace, run: LazyRun, prefix: str) -> str:
    """The weight map of a label file as a float32 zarr array with the labels' chunks."""
    import zarr

    from ..io.big import atomic_store, labels_problem, open_lazy, write_zarr_array
    from ..weights.exact import weight_map

    labels = open_lazy(path, labels=True)
    with run.computing(path):
        reason = None if args.force_labels else labels_problem(labels.data)
    if reason is not None:
        raise ValueError(f"{path} does not look like instance labels: {reason}. If it "
                         "holds labels all the same, pass --force-labels.")
    label = _header(prefix, path, labels.data, labels.chunks, out, run)
    parameters = {"w0": args.w0, "sigma": args.sigma, "border": args.border,
                  "class_weights": args.class_weights, "per_plane": args.per_plane}
    with atomic_store(out) as partial, run.computing(path):
        run.begin(f"{label}: class counts and weight map")
        with run.default_scheduler():  # the class counts are taken here
            weights = weight_map(
                labels.data, args.w0, args.sigma, border=args.border,
                class_weights=args.class_weights,
                spatial_dims=min(2, labels.data.ndim) if args.per_plane else None)
        target = zarr.create_array(
            str(partial), shape=weights.shape, chunks=labels.chunks, dtype="float32",
            fill_value=0.0, attributes={"napari-unet-weights": {
                "weight_map": parameters, "labels": str(path)}})
        write_zarr_array(weights, target, compute=run.engine.compute)
    return f"zarr, chunks {tuple(labels.chunks)}, "


# -- predict -------------------------------------------------------------------------------
@contextlib.contextmanager
def missing_data_reported(path, before=None) -> Iterator[None]:
    """Say on stderr that ``path`` had missing pixels (after ``before()``); other warnings pass."""
    from ..unet.preprocess import MissingDataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingDataWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, MissingDataWarning):
            if before is not None:
                before()
            print(f"warning: {path}: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)


def write_labels(path, out, model, args: argparse.Namespace, run: LazyRun, prefix: str) -> str:
    """Segment an image block by block into an OME-Zarr labels image with its pyramid
    (:func:`..unet.chunked.zarr_labels.segment_to_ome_zarr`, on the batch's engine)."""
    from ..io.big import open_lazy
    from ..io.files import file_stem
    from ..unet.chunked.zarr_labels import segment_to_ome_zarr
    from ..unet.preprocess import guess_channels

    image = open_lazy(path)
    channels = (image.axes[-1] in ("c", "s") if image.axes and len(image.axes) == image.data.ndim
                else guess_channels(image.data.shape))
    keep = image.data.ndim - (1 if channels else 0)
    axes = image.axes[:keep] if image.axes else None
    transforms = None if image.transforms is None else [
        {**t, **{key: t[key][:keep] for key in ("scale", "translation") if key in t}}
        for t in image.transforms]
    label = _header(prefix, path, image.data, image.chunks, out, run)
    with run.computing(path), missing_data_reported(path):
        written = segment_to_ome_zarr(
            image.data, model, out, engine=run.engine, rgb=channels, chunks=image.chunks[:keep],
            axes=axes, transforms=transforms, name=file_stem(out),
            # an existing cluster's workers see the output's folder, not our /tmp
            temp_beside_store=run.remote, on_phase=lambda phase: run.begin(f"{label}: {phase}"),
            tile_shape=args.tile, overlap=args.overlap, batch_size=args.batch_size,
            use_gpu=False if args.cpu else None, tta=args.tta, block_shape=args.block)
    return (f"{written.n_objects} objects, zarr, chunks {written.chunks}, "
            f"{len(written.levels)} levels, ")
