"""Batches of input files → output files, for the ``weights`` and ``predict`` commands.

The rules that keep a user's files safe are decided here, before any work starts:

- an output never replaces an input file of the run, not even with ``overwrite``;
- an existing output is replaced only with ``overwrite``, otherwise its input is skipped;
- a file named like the output of a file beside it (``a_labels.tif`` beside ``a.tif``:
  a ground truth or an earlier result) is not taken as an input; for ``weights`` and
  ``predict`` it is never replaced either (it may be a ground truth), whether the folder
  or ``a.tif`` alone is given; ``check``'s fixed copies (``a_fixed.tif``) are its own
  earlier results, replaced with ``overwrite`` whichever way ``a.tif`` is given;
- the output folder must be writable (it is created only when the first file is written);
- an output that is a zarr store (a folder, :mod:`..io.big`) is never written inside an
  input store, nor over a folder that holds an input or that is not a zarr store.

Then :func:`run_batch` writes each output (atomically: see :func:`..io.atomic_output`)
and reports on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..io.files import check_output_file, expand_inputs, file_stem

#: How a refusal of an existing output ends, naming the flag that allows it.
OVERWRITE_HINT = "--overwrite replaces it"


@dataclass
class Batch:
    """The output of each input, or why the input is skipped before any work.

    Attributes
    ----------
    outputs : dict of Path to Path
        Input file → output file to write.
    refused : dict of Path to str
        Input file → why it is skipped.
    existing : int
        How many of the refused inputs have an output that exists already.
    """

    outputs: dict[Path, Path] = field(default_factory=dict)
    refused: dict[Path, str] = field(default_factory=dict)
    existing: int = 0

    def inputs(self) -> list[Path]:
        """All the inputs, sorted."""
        return sorted(self.outputs.keys() | self.refused.keys())


def _output_names(files: list[Path], outdir, suffix: str) -> dict[Path, Path]:
    """Map each input file to ``OUTDIR/<stem><suffix>.tif``."""
    return {path: Path(outdir) / f"{file_stem(path)}{suffix}.tif" for path in files}


def _clashes(outputs: dict[Path, Path]) -> list[str]:
    seen: dict[Path, list[str]] = {}
    for path, out in outputs.items():
        seen.setdefault(out, []).append(str(path))
    return [" and ".join(paths) for paths in seen.values() if len(paths) > 1]


def _named_like_outputs(files: list[Path], suffix: str) -> list[Path]:
    """Files named like the output of another input beside them (``a_labels.*`` by ``a.*``)."""
    places = {(path.parent, file_stem(path)) for path in files}
    return [path for path in files if file_stem(path).endswith(suffix)
            and (path.parent, file_stem(path)[:-len(suffix)]) in places]


def _report_left_out(left_out: list[Path], suffix: str) -> None:
    names = ", ".join(path.name for path in left_out[:3]) + (", ..." if len(left_out) > 3 else "")
    print(f"napari-unet-weights: left out {len(left_out)} file(s) named like the {suffix} "
          f"output of a file beside them ({names}): ground truths or earlier results are "
          "not inputs; name such a file alone to process it.", file=sys.stderr)


def _named_like_its_output(path: Path, out: Path, suffix: str) -> bool:
    """Whether ``out`` exists beside ``path``, named like its output (``a_labels.*`` by
    ``a.*``): a ground truth or an earlier result."""
    return (out.exists() and out.parent.resolve() == path.parent.resolve()
            and file_stem(out) == file_stem(path) + suffix)


def _replaces_an_input(out: Path, protected: set[Path]) -> bool:
    """Whether writing ``out`` replaces an input, or (a store) writes inside or over one."""
    out = out.resolve()
    return out in protected or any(
        path.is_relative_to(out) or (path.is_dir() and out.is_relative_to(path))
        for path in protected)


def _check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() == ".zarr":
        from ..io.big import check_output_store

        check_output_store(out, overwrite=overwrite)
    else:
        check_output_file(out, overwrite=overwrite)


@dataclass(frozen=True)
class _Protection:
    """What no output may replace, and how a refusal ends."""

    inputs: set[Path]  # resolved
    suffix: str | None  # files named like an output beside their source; None: not kept
    option: str  # the command's output folder option

    def refusal(self, path: Path, out: Path) -> str | None:
        """Why ``out`` may not be written for ``path``, or None."""
        advice = (f"which is never done (not even with --overwrite); choose another output "
                  f"folder ({self.option})")
        if self.suffix is not None and _named_like_its_output(path, out, self.suffix):
            return (f"its output would replace {out}, a file beside it named like its "
                    f"output (a ground truth or an earlier result), {advice}")
        if _replaces_an_input(out, self.inputs):
            return f"its output {out} would replace an input file, {advice}"
        return None


def _sort_outputs(outputs: dict[Path, Path], protection: _Protection, overwrite: bool) -> Batch:
    """Split ``outputs`` into those to write and those refused; OSError if none can be."""
    batch = Batch()
    for path, out in outputs.items():
        refusal = protection.refusal(path, out)
        if refusal is not None:
            batch.refused[path] = refusal
            continue
        try:
            _check_output(out, overwrite)
        except FileExistsError:
            batch.refused[path] = f"{out} exists; {OVERWRITE_HINT}"
            batch.existing += 1
        except IsADirectoryError as error:
            batch.refused[path] = str(error)
        else:
            batch.outputs[path] = out
    return batch


def plan_batch(inputs: list[str], outdir, suffix: str, what: str, *,
               overwrite: bool, output_for: Callable[[Path], Path] | None = None,
               expand: Callable[[list[str]], list[Path]] = expand_inputs,
               own_earlier_outputs: bool = False, output_option: str = "-o") -> Batch:
    """Find the input files and check every output, creating nothing.

    Parameters
    ----------
    inputs : list of str
        Files and folders, as given on the command line.
    outdir : str or path
        The output folder (need not exist).
    suffix : str
        Each input ``<stem>.*`` gives ``OUTDIR/<stem><suffix>.tif``.
    what : str
        What the inputs are, for messages (``"images"``).
    overwrite : bool
        Whether existing outputs may be replaced.
    output_for : callable, optional
        ``output_for(input) -> output``, instead of ``OUTDIR/<stem><suffix>.tif``; it may
        raise ValueError (a usage error).
    expand : callable
        Inputs as given → the input files (:func:`..io.files.expand_inputs`; zarr-aware:
        :func:`..io.big.expand_lazy_inputs`).
    own_earlier_outputs : bool
        Whether a file named like an output beside its source is this command's own
        earlier result, replaced with ``overwrite`` (``check``'s fixed copies); False:
        it may be a ground truth and is never replaced, also when the source is given
        alone.
    output_option : str
        The command's output folder option, for the refusals' advice.

    Returns
    -------
    Batch

    Raises
    ------
    OSError
        If an input is missing or the output folder cannot be written.
    ValueError
        If no input is found or two inputs would write the same output.
    """
    found = expand(inputs)
    left_out = _named_like_outputs(found, suffix)
    files = [path for path in found if path not in left_out]
    if not files:
        raise ValueError(f"no {what} found in {', '.join(inputs)}.")
    if left_out:
        _report_left_out(left_out, suffix)
    outputs = (_output_names(files, outdir, suffix) if output_for is None
               else {path: Path(output_for(path)) for path in files})
    clashes = _clashes(outputs)
    if clashes:
        raise ValueError(f"inputs would write the same output file: {'; '.join(clashes)}.")
    protection = _Protection({path.resolve() for path in (files if own_earlier_outputs
                                                          else found)},
                             None if own_earlier_outputs else suffix, output_option)
    return _sort_outputs(outputs, protection, overwrite)


def run_batch(batch: Batch, write: Callable[[Path, Path, str], str], written: str,
              outdir) -> int:
    """Write each output, report each file on stderr and a summary; the exit status.

    Parameters
    ----------
    batch : Batch
        From :func:`plan_batch`; refused inputs are reported as skipped.
    write : callable
        ``write(path, out, prefix) -> str`` writes one output and returns a note for its
        report line (``""`` or such as ``"3 objects, "``); it raises OSError, ValueError
        or TypeError for an input that is skipped. ``prefix`` is the ``[i/n]`` counter.
    written : str
        What the outputs are, for the summary, such as ``"weight map(s)"``.
    outdir : str or path
        The output folder, for the summary.

    Returns
    -------
    int
        0 if every output was written, 1 if some input was skipped.
    """
    import time

    inputs = batch.inputs()
    skipped = 0
    for index, path in enumerate(inputs, start=1):
        prefix = f"[{index}/{len(inputs)}]"
        reason = batch.refused.get(path)
        if reason is None:
            start = time.perf_counter()
            try:
                note = write(path, batch.outputs[path], prefix)
            except (OSError, ValueError, TypeError) as error:
                reason = str(error)
            else:
                print(f"{prefix} {path} → {batch.outputs[path]} "
                      f"({note}{time.perf_counter() - start:.2f} s)", file=sys.stderr)
                continue
        skipped += 1
        print(f"{prefix} skipped {path}: {reason}", file=sys.stderr)
    existed = f" ({batch.existing} of them because the output exists: {OVERWRITE_HINT})"
    print(f"wrote {len(inputs) - skipped} {written} to {outdir}"
          + (f", skipped {skipped} file(s)" if skipped else "")
          + (existed if batch.existing else ""), file=sys.stderr)
    return 1 if skipped else 0
