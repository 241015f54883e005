"""``napari-unet-weights check``: find the annotation errors in label files, list them,
write them as CSV and, with ``--fix``, write fixed copies (never over the inputs).

The checks are :func:`~..labels.checks.check_labels`, the fixes
:func:`~..labels.fixes.fix_labels`; the output files follow the rules of :mod:`.batch`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels.checks import PROBLEMS
from .common import add_overwrite_argument, non_negative, output_problem, usage_error

HELP = ("Check label images for annotation errors (ids in several pieces, small fragments, "
        "holes, touching objects, ids reused across planes) and write fixed copies.")

#: The suffix of the fixed copies: ``OUTDIR/<name>_fixed.tif``.
FIXED_SUFFIX = "_fixed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Problems: 'disconnected' (one id in several separate pieces, 8-connectivity; "
        "26 in 3-D), 'small' (fewer than --min-size pixels), 'hole' (background enclosed "
        "by one object), 'touching' (two objects with no background between them, which "
        "the 2-class training target cuts apart), 'reused' (with --per-plane: one id in "
        "several planes). Each file gets a summary line on stdout (files that cannot be read, "
        "and the fixed copies written, are reported on stderr). --fix writes "
        f"OUTDIR/<name>{FIXED_SUFFIX}.tif for every file, problems or not: pieces split "
        "into new ids, small objects removed (or merged), holes filled, touching objects "
        "separated by a one-pixel gap, reused ids renumbered. An input file is never "
        "replaced, an existing output only with --overwrite, and a file named like the "
        f"output of a file beside it (a{FIXED_SUFFIX}.tif beside a.tif) is not an input: "
        "it is an earlier fixed copy, replaced with --overwrite (--fix into the labels' "
        "own folder can be run again), whether the folder or a.tif alone is given. "
        "A fix whose new ids do not fit the file's integer type (an id at its largest value "
        "split in two) writes no copy and says so; the batch goes on (with --relabel the ids "
        "are numbered 1..N first). The fixed copies keep the input's type when their ids "
        "fit it. The last line counts the files checked, those with problems, those not "
        "checked (unreadable, or not labels) and those left without a fixed copy. "
        "Exit status: 0 every file checked and clean (and every fixed copy written), 1 "
        "otherwise, 2 usage error."
    )
    parser.add_argument(
        "labels", nargs="+", metavar="LABELS",
        help="instance label images (.tif/.tiff/.png/.npy, 0 = background), zarr / OME-Zarr "
        "stores (level 0, read whole: the check works in memory) or folders of them",
    )
    parser.add_argument("--min-size", type=non_negative, default=10.0, metavar="N",
                        help="objects with fewer pixels are 'small' (default: %(default)g; "
                        "0: no check)")
    parser.add_argument("--per-plane", action="store_true",
                        help="check each 2-D plane of a stack on its own (slices annotated "
                        "one by one); an id in several planes is then 'reused'")
    parser.add_argument("--ignore", action="append", choices=PROBLEMS, default=[],
                        metavar="PROBLEM",
                        help="do not look for this problem (repeatable), e.g. 'touching' for "
                        "labels of a 3-class target, 'reused' for tracked ids")
    parser.add_argument("--list", action="store_true",
                        help="list every problem (id, plane, box) under its file's summary")
    parser.add_argument("--csv", metavar="OUT",
                        help="write all problems of all files to the CSV file OUT")
    parser.add_argument("--fix", metavar="OUTDIR",
                        help="write fixed copies to OUTDIR (created if missing)")
    parser.add_argument("--merge-small", action="store_true",
                        help="with --fix: merge a small object into the neighbour it touches "
                        "most instead of removing it")
    parser.add_argument("--relabel", action="store_true",
                        help="with --fix: number the objects 1..N in the fixed copies")
    add_overwrite_argument(parser)
    parser.add_argument(
        "--force-labels", action="store_true",
        help="check files that do not look like instance labels (colour images, or grey "
        "levels that change from pixel to pixel) all the same",
    )


# -- one file ------------------------------------------------------------------
def _read(path: Path, force: bool) -> np.ndarray:
    """The labels of a file, or of a zarr store's level 0 (judged on a window of it
    before it is read whole: the check works in memory)."""
    from ..io.big import is_zarr_store, labels_problem, open_lazy
    from ..io.files import implausible_labels_reason, read_labels

    if is_zarr_store(path):
        labels, judge = open_lazy(path, labels=True).data, labels_problem
    else:
        labels, judge = read_labels(path), implausible_labels_reason
    reason = None if force else judge(labels)
    if reason is None:
        return np.asarray(labels)
    raise ValueError(f"{path} does not look like instance labels: {reason} "
                     "(--force-labels checks it all the same)")


def _options(args: argparse.Namespace, ndim: int) -> dict:
    return {"min_size": args.min_size, "spatial_dims": min(2, ndim) if args.per_plane else None}


def _summary(report) -> str:
    counts = [f"{count} {name}" for name, count in report.summary.items() if count]
    objects = f"{report.n_objects} object{'s' if report.n_objects != 1 else ''}"
    return f"{', '.join(counts)} ({objects})" if counts else f"clean ({objects})"


def _listing(report) -> str:
    table = report.problems[["label", "problem", "plane", "other", "area", "bbox",
                             "detail"]].copy()
    if not report.shape[: len(report.shape) - report.spatial_dims]:
        table = table.drop(columns="plane")
    if "touching" not in report.checks:
        table = table.drop(columns="other")
    return "\n".join("    " + line for line in table.to_string(index=False).splitlines())


def _csv_rows(path: Path, report):
    table = report.problems.copy()
    table.insert(0, "file", str(path))
    table["plane"] = [",".join(map(str, plane)) for plane in table["plane"]]
    for column in ("bbox", "centroid"):
        table[column] = [" ".join(f"{v:g}" for v in values) for values in table[column]]
    return table


def _write_fixed(labels, out: Path, args: argparse.Namespace, checks) -> str:
    from ..io.files import write_tiff
    from ..labels.checks import check_labels
    from ..labels.fixes import fix_labels

    options = _options(args, labels.ndim)
    fix = fix_labels(labels, checks=checks, merge_small=args.merge_small,
                     sequential=args.relabel, **options)
    write_tiff(out, fix.labels)
    left = check_labels(fix.labels, checks=checks, **options)
    return (f"fixed copy → {out} ({fix.changed} pixels changed; "
            f"{'clean' if left.clean else 'still: ' + _summary(left)})")


@dataclass
class _Tally:
    """What became of the files: the last line and the exit status."""

    files: int
    checked: int = 0
    flagged: int = 0
    refused: int = 0
    unfixed: int = 0

    def line(self) -> str:
        """``checked 3 files: 1 with problems; 1 not checked; 1 without a fixed copy``."""
        of = "" if self.checked == self.files else f" of {self.files}"
        parts = []
        if self.checked:
            parts.append(f"{self.flagged} with problems" if self.flagged else "no problem found")
        if self.refused:
            parts.append(f"{self.refused} not checked")
        if self.unfixed:
            parts.append(f"{self.unfixed} without a fixed copy")
        return (f"checked {self.checked}{of} file{'s' if self.files != 1 else ''}: "
                + "; ".join(parts))

    @property
    def status(self) -> int:
        """0 all clean (and every fixed copy written), else 1."""
        return 1 if self.flagged or self.refused or self.unfixed else 0


def _fixed_copy(path: Path, labels, out: Path, args: argparse.Namespace, checks,
                tally: _Tally) -> None:
    """Write the fixed copy of one file, or say why not (the batch goes on)."""
    try:
        print(f"{path}: {_write_fixed(labels, out, args, checks)}", file=sys.stderr)
    except (OSError, ValueError, TypeError) as error:
        from ..labels.fixes import IdOverflowError

        tally.unfixed += 1
        hint = (" --relabel numbers the objects 1..N first."
                if isinstance(error, IdOverflowError) else "")
        print(f"{path}: fixed copy not written: {error}{hint}", file=sys.stderr)


def _check_file(path: Path, args: argparse.Namespace, checks, out: Path | None, tables: list,
                tally: _Tally) -> None:
    """Check one file, print its lines and count it in ``tally``."""
    from ..labels.checks import check_labels

    try:
        labels = _read(path, args.force_labels)
        report = check_labels(labels, checks=checks, **_options(args, labels.ndim))
    except (OSError, ValueError, TypeError) as error:
        tally.refused += 1
        print(f"{path}: not checked: {error}", file=sys.stderr)
        return
    tally.checked += 1
    tally.flagged += not report.clean
    print(f"{path}: {_summary(report)}")
    if args.list and not report.clean:
        print(_listing(report))
    if args.csv:
        tables.append(_csv_rows(path, report))
    if out is not None:
        _fixed_copy(path, labels, out, args, checks, tally)


# -- the command -------------------------------------------------------------------
def _inputs(args: argparse.Namespace):
    """(files, {file: output} or None, {file: why it gets no output}), or an exit status."""
    from ..io.big import expand_lazy_inputs
    from .batch import plan_batch

    try:
        if args.fix is None:
            files = expand_lazy_inputs(args.labels)
            if not files:
                raise ValueError(f"no label images found in {', '.join(args.labels)}.")
            return files, None, {}
        batch = plan_batch(args.labels, args.fix, FIXED_SUFFIX, "label images",
                           overwrite=args.overwrite, expand=expand_lazy_inputs,
                           own_earlier_outputs=True, output_option="--fix OUTDIR")
    except (OSError, ValueError) as error:
        return usage_error(str(error))
    return batch.inputs(), batch.outputs, batch.refused


def _write_csv(tables: list, path: str) -> None:
    import pandas as pd

    from ..io.files import atomic_output

    columns = ["file", "label", "problem", "plane", "other", "area", "bbox", "centroid",
               "detail"]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    with atomic_output(path) as partial:
        table.to_csv(partial, index=False)


def run(args: argparse.Namespace) -> int:
    """Check every file; the exit status (0 clean, 1 problems, 2 usage error)."""
    if (args.merge_small or args.relabel) and args.fix is None:
        return usage_error("--merge-small and --relabel change the fixed copies: give --fix.")
    if args.csv:
        problem = output_problem([args.csv], args.overwrite)
        if problem is not None:
            return usage_error(problem)
    planned = _inputs(args)
    if isinstance(planned, int):
        return planned
    files, outputs, refused = planned
    checks = tuple(name for name in PROBLEMS if name not in args.ignore)
    tables: list = []
    tally = _Tally(len(files))
    for path in files:
        out = None if outputs is None else outputs.get(path)
        _check_file(path, args, checks, out, tables, tally)
        if path in refused:
            tally.unfixed += 1
            print(f"{path}: no fixed copy: {refused[path]}", file=sys.stderr)
    if args.csv:
        try:
            _write_csv(tables, args.csv)
        except OSError as error:
            print(f"napari-unet-weights check: could not write {args.csv}: {error}",
                  file=sys.stderr)
            return 1
        print(f"wrote {args.csv}", file=sys.stderr)
    print(tally.line())
    return tally.status
