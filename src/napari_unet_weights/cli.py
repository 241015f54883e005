"""Command line: ``napari-unet-weights weights|evaluate|demo``.

Each subcommand has an ``_add_<name>_arguments(parser)`` and a ``_run_<name>(args) -> int``;
both call the same core functions as the widgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


# -- weights -----------------------------------------------------------------
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


def _non_negative(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=True)


def _positive(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=False)


def _class_weights(text: str) -> str | tuple[float, float]:
    """``balanced``, ``inverse``, ``none`` or ``"BG,FG"`` → weight_map's class_weights."""
    from .weights import CLASS_WEIGHT_MODES

    if text in CLASS_WEIGHT_MODES:
        return text
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(CLASS_WEIGHT_MODES)} or two numbers "
            f"'BACKGROUND,FOREGROUND' (e.g. '1,5'), got {text!r}"
        )
    background, foreground = (_non_negative(part.strip()) for part in parts)
    return background, foreground


def _add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    from .weights import BORDER_MODES

    parser.epilog = (
        "Each LABELS file gives OUTDIR/<name>_weights.tif (float32, zlib-compressed). A file "
        "that cannot be read or used is reported and skipped. Exit status: 0 all written, "
        "1 some skipped, 2 usage error."
    )
    parser.add_argument(
        "labels", nargs="+", metavar="LABELS",
        help="instance label images (.tif/.tiff/.png/.npy, 0 = background) or folders of them",
    )
    parser.add_argument(
        "-o", "--outdir", required=True, metavar="OUTDIR",
        help="folder for the weight maps (created if missing)",
    )
    parser.add_argument("--w0", type=_non_negative, default=10.0,
                        help="weight of the border term (default: %(default)s)")
    parser.add_argument("--sigma", type=_positive, default=5.0,
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


def _usage_error(message: str) -> int:
    print(f"napari-unet-weights: error: {message}", file=sys.stderr)
    return 2


def _output_names(files: list, outdir) -> dict:
    """Map each input file to ``OUTDIR/<stem>_weights.tif``."""
    from pathlib import Path

    from .io import file_stem

    return {path: Path(outdir) / f"{file_stem(path)}_weights.tif" for path in files}


def _clashes(outputs: dict) -> list[str]:
    seen: dict = {}
    for path, out in outputs.items():
        seen.setdefault(out, []).append(str(path))
    return [" and ".join(paths) for paths in seen.values() if len(paths) > 1]


def _write_weight_map(path, out, args: argparse.Namespace) -> None:
    from .io import read_labels, write_tiff
    from .weights import weight_map

    labels = read_labels(path)
    weights = weight_map(
        labels, args.w0, args.sigma, border=args.border, class_weights=args.class_weights,
        spatial_dims=min(2, labels.ndim) if args.per_plane else None,
    )
    write_tiff(out, weights)


def _collect_weight_jobs(args: argparse.Namespace) -> dict | int:
    """Input → output paths, or the exit status of a usage error."""
    from .io import expand_inputs

    try:
        files = expand_inputs(args.labels)
    except OSError as error:
        return _usage_error(str(error))
    if not files:
        return _usage_error(f"no label images found in {', '.join(args.labels)}.")
    outputs = _output_names(files, args.outdir)
    clashes = _clashes(outputs)
    if clashes:
        return _usage_error(f"inputs would write the same output file: {'; '.join(clashes)}.")
    return outputs


def _run_weights(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    outputs = _collect_weight_jobs(args)
    if isinstance(outputs, int):
        return outputs
    try:
        Path(args.outdir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _usage_error(f"cannot create output folder {args.outdir}: {error}")
    skipped = 0
    for index, (path, out) in enumerate(outputs.items(), start=1):
        prefix = f"[{index}/{len(outputs)}]"
        start = time.perf_counter()
        try:
            _write_weight_map(path, out, args)
        except (OSError, ValueError, TypeError) as error:
            skipped += 1
            print(f"{prefix} skipped {path}: {error}", file=sys.stderr)
            continue
        print(f"{prefix} {path} → {out} ({time.perf_counter() - start:.2f} s)", file=sys.stderr)
    written = len(outputs) - skipped
    print(f"wrote {written} weight map(s) to {args.outdir}"
          + (f", skipped {skipped} file(s)" if skipped else ""), file=sys.stderr)
    return 1 if skipped else 0


# -- evaluate ----------------------------------------------------------------
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


def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "GT and PRED are two label files, or two folders whose files are paired by name "
        "without extension (a/img1.tif with b/img1.png). The score is the mean over the "
        "thresholds of TP/(TP+FP+FN) (DSB 2018); for folders, the dataset score is the mean "
        "of the image scores, and the per-threshold table pools the counts of all images. "
        "Exit status: 0 scored, 1 an input could not be read or used, 2 usage error."
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


def _evaluate_error(message: str, status: int) -> int:
    print(f"napari-unet-weights evaluate: error: {message}", file=sys.stderr)
    return status


def _format_table(table) -> str:
    return table.to_string(index=False, float_format=lambda value: f"{value:.4f}")


def _evaluate_files(args: argparse.Namespace, thresholds):
    from .io import read_labels
    from .metrics import evaluate

    evaluation = evaluate(read_labels(args.gt), read_labels(args.pred), thresholds,
                          strict=args.strict)
    print(_format_table(evaluation.per_threshold))
    print(f"mAP (mean of TP/(TP+FP+FN) over {len(evaluation.thresholds)} thresholds): "
          f"{evaluation.map:.4f}")
    return evaluation


def _evaluate_folders(args: argparse.Namespace, thresholds):
    from .io import file_stem, pair_files, read_labels
    from .metrics import evaluate_dataset

    pairs = pair_files(args.gt, args.pred, strict=not args.skip_unpaired)
    result = evaluate_dataset(
        ((file_stem(gt), read_labels(gt), read_labels(pred)) for gt, pred in pairs),
        thresholds, strict=args.strict,
    )
    print(_format_table(result.per_image))
    print(f"\nper threshold, counts pooled over {len(pairs)} images:")
    print(_format_table(result.per_threshold))
    print(f"dataset mAP (mean of the {len(pairs)} image mAPs): {result.map:.4f}")
    return result


def _run_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .metrics import DEFAULT_THRESHOLDS

    gt, pred = Path(args.gt), Path(args.pred)
    for path in (gt, pred):
        if not path.exists():
            return _evaluate_error(f"{path}: no such file or folder.", 2)
    if gt.is_dir() != pred.is_dir():
        return _evaluate_error(
            f"GT and PRED must both be files or both be folders, got {gt} and {pred}.", 2)
    thresholds = args.thresholds or DEFAULT_THRESHOLDS
    run = _evaluate_folders if gt.is_dir() else _evaluate_files
    try:
        result = run(args, thresholds)
    except (OSError, ValueError, TypeError) as error:
        return _evaluate_error(str(error), 1)
    if args.csv:
        try:
            written = result.to_csv(args.csv)
        except OSError as error:
            return _evaluate_error(f"cannot write {args.csv}: {error}", 1)
        print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


# -- demo --------------------------------------------------------------------
DEMO_SAMPLES = ("nuclei_crowded", "nuclei_fluorescence", "nuclei_histology", "touching_discs")
NO_DISPLAY_MESSAGE = (
    "napari-unet-weights demo: no display (DISPLAY and WAYLAND_DISPLAY are unset); run it "
    "from a desktop session or under a virtual display: xvfb-run -a napari-unet-weights demo ..."
)


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "With --screenshot and no display, a private Xvfb server is started if Xvfb is "
        "installed. Exit status: 0 ok, 1 the widget or its weight map failed, 2 no display "
        "or napari missing."
    )
    parser.add_argument("--sample", choices=DEMO_SAMPLES, default="nuclei_crowded",
                        help="sample data to open (default: %(default)s)")
    parser.add_argument(
        "--screenshot", metavar="FILE",
        help="save a PNG of the window once the weight map is shown, then exit",
    )
    parser.add_argument("--timeout", type=_positive, default=120.0, metavar="SECONDS",
                        help="how long --screenshot waits for the weight map (default: "
                        "%(default)s)")


def _has_display() -> bool:
    """Whether Qt can open windows here (always on Windows and macOS)."""
    import os

    if sys.platform in ("win32", "darwin"):
        return True
    env = os.environ
    offscreen = env.get("QT_QPA_PLATFORM", "").startswith("offscreen")
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or offscreen)


def _read_display_number(fd: int, timeout: float) -> str:
    """The display number that ``Xvfb -displayfd`` writes to ``fd`` once it is ready."""
    import os
    import select
    import time

    text, deadline = b"", time.monotonic() + timeout
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(fd, 64) if ready else b""
        if not chunk:
            raise OSError("Xvfb did not start (no display number reported).")
        text += chunk
    return text.decode().strip()


def _start_xvfb(timeout: float = 30.0):
    """Start ``Xvfb`` on a free display; return ``(process, ":N")``."""
    import os
    import subprocess

    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
             "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write_fd)
    try:
        number = _read_display_number(read_fd, timeout)
    except OSError:
        _stop(process)
        raise
    finally:
        os.close(read_fd)
    return process, f":{number}"


def _stop(process) -> None:
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _demo_under_xvfb(args: argparse.Namespace) -> int:
    """Run the screenshot demo in a child process on a private Xvfb display.

    A child process, so that Qt has shut down before the X server goes away.
    """
    import os
    import subprocess

    try:
        server, display = _start_xvfb()
    except OSError as error:
        print(f"napari-unet-weights demo: {error} {NO_DISPLAY_MESSAGE}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "napari_unet_weights.cli", "demo", "--sample", args.sample,
               "--screenshot", str(args.screenshot), "--timeout", str(args.timeout)]
    try:
        return subprocess.run(command, env={**os.environ, "DISPLAY": display}).returncode
    finally:
        _stop(server)


def _dock_weight_map_widget(viewer) -> object:
    """Construct the plugin's "Weight map" widget and dock it on the right."""
    from ._widgets.weight_map import WeightMapWidget

    widget = WeightMapWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Weight map", area="right")
    return widget


def _is_filled(layer) -> bool:
    import numpy as np

    data = layer.data
    return not isinstance(data, np.ndarray) or bool(data.any())


def _process_events_until(condition, timeout: float) -> bool:
    """Process Qt events until ``condition()`` is true or ``timeout`` seconds have passed."""
    import time

    from qtpy.QtWidgets import QApplication

    app, deadline = QApplication.instance(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def _save_screenshot(viewer, known_layers: list, args: argparse.Namespace, *,
                     wait: bool = True) -> int:
    """Wait for the widget's weight map layer, then save the window as ``args.screenshot``.

    Returns 0 if the weight map layer appeared, else 1 (the screenshot is saved anyway).
    """
    from pathlib import Path

    def weight_layer_shown() -> bool:
        new = [layer for layer in viewer.layers if all(layer is not k for k in known_layers)]
        return any(_is_filled(layer) for layer in new)

    found = wait and _process_events_until(weight_layer_shown, args.timeout)
    if wait and not found:
        print(f"napari-unet-weights demo: no weight map layer appeared within "
              f"{args.timeout:g} s; saving the screenshot anyway.", file=sys.stderr)
    viewer.reset_view()
    _process_events_until(lambda: False, 0.5)  # let the canvas draw the new layer
    path = Path(args.screenshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False)
    print(f"saved {path}", file=sys.stderr)
    return 0 if found else 1


def _open_demo_viewer(args: argparse.Namespace) -> int:
    import os

    if args.screenshot is not None:  # keep warning pop-ups off the picture (this process only)
        os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    import napari

    from ._sample_data import sample_layers

    viewer = napari.Viewer(title=f"napari-unet-weights demo: {args.sample}")
    for data, meta, kind in sample_layers(args.sample):
        getattr(viewer, f"add_{kind}")(data, **meta)
    known_layers = list(viewer.layers)
    try:
        _dock_weight_map_widget(viewer)
        docked = True
    except Exception as error:  # show the viewer anyway; say why the widget is missing
        print(f"napari-unet-weights demo: could not open the Weight map widget: "
              f"{type(error).__name__}: {error}", file=sys.stderr)
        docked = False
    if args.screenshot is None:
        napari.run()
        return 0
    viewer.window.resize(1280, 800)
    status = _save_screenshot(viewer, known_layers, args, wait=docked)
    viewer.close()
    return status


def _run_demo(args: argparse.Namespace) -> int:
    import importlib.util
    import shutil

    if not _has_display():
        if args.screenshot is not None and shutil.which("Xvfb"):
            return _demo_under_xvfb(args)
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 2
    if importlib.util.find_spec("napari") is None:
        return _usage_error("the demo needs napari: pip install 'napari-unet-weights[napari]'")
    return _open_demo_viewer(args)


# -- train -------------------------------------------------------------------
def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "DATA_DIR holds images/ and labels/ with files paired by name (like DSB 2018). The "
        "model file records the normalisation, classes, w0/sigma, post-processing, the split "
        "and the validation mAP. Needs TensorFlow: pip install \"napari-unet-weights[unet]\". "
        "Exit status: 0 trained, 1 training failed or bad data, 2 usage error."
    )
    parser.add_argument("data", metavar="DATA_DIR", help="folder with images/ and labels/")
    parser.add_argument("--out", required=True, metavar="MODEL.keras",
                        help="where to save the trained model (.keras)")
    parser.add_argument("--classes", type=int, choices=(2, 3), default=3,
                        help="2: background/object with 1-px gaps; 3: background/interior/"
                        "boundary (default: %(default)s)")
    parser.add_argument("--w0", type=_non_negative, default=10.0,
                        help="weight-map border term (default: %(default)s)")
    parser.add_argument("--sigma", type=_positive, default=5.0,
                        help="weight-map border width in pixels (default: %(default)s)")
    parser.add_argument("--no-weights", action="store_true",
                        help="plain cross-entropy instead of the weight map")
    for flag, default, help_text in (
        ("--epochs", 30, "epochs"), ("--steps", 50, "steps per epoch"),
        ("--batch-size", 8, "patches per step"), ("--patch-size", 128, "patch side in pixels"),
        ("--seed", 0, "seed of the split, patches and initial weights"),
        ("--depth", 4, "U-Net depth (poolings)"), ("--filters", 16, "filters of the first level"),
    ):
        parser.add_argument(flag, type=int, default=default,
                            help=f"{help_text} (default: %(default)s)")
    parser.add_argument("--val-fraction", type=_positive, default=0.15,
                        help="share of samples held out for validation (default: %(default)s)")
    parser.add_argument("--lr", type=_positive, default=1e-3,
                        help="Adam learning rate (default: %(default)s)")


class _TrainProgress:
    """One line per epoch; on a terminal, a bar over the steps updated in place."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, info: dict) -> None:
        if info["stage"] == "batch" and self.tty:
            done = int(20 * info["step"] / info["steps"])
            self.stream.write(f"\repoch {info['epoch']}/{info['epochs']} "
                              f"[{'#' * done}{'.' * (20 - done)}] step {info['step']}/"
                              f"{info['steps']} loss {info['loss']:.4f}")
            self.stream.flush()
        elif info["stage"] == "epoch":
            val_map = "-" if info["val_map"] is None else f"{info['val_map']:.4f}"
            self.stream.write(("\r\x1b[K" if self.tty else "")
                              + f"epoch {info['epoch']}/{info['epochs']} loss "
                              f"{info['loss']:.4f} val_loss {info['val_loss']:.4f} "
                              f"val_mAP {val_map}\n")
            self.stream.flush()


def _run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    data = Path(args.data)
    if not data.is_dir():
        return _usage_error(f"{data}: no such folder.")
    if not args.out.endswith(".keras"):
        return _usage_error(f"--out must end with .keras, got {args.out!r}.")
    try:
        from .unet.train import train

        result = train(
            data, n_classes=args.classes, w0=args.w0, sigma=args.sigma,
            use_weights=not args.no_weights, epochs=args.epochs, steps_per_epoch=args.steps,
            batch_size=args.batch_size, patch_size=args.patch_size,
            validation_fraction=args.val_fraction, learning_rate=args.lr, seed=args.seed,
            depth=args.depth, base_filters=args.filters, out=args.out,
            progress=_TrainProgress(sys.stderr),
        )
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"napari-unet-weights train: error: {error}", file=sys.stderr)
        return 1
    validation = result.validation
    print(f"validation mAP (0.5:0.95, per image, {validation['n_images']} images): "
          f"{validation['map']:.4f}; device {result.device}; {result.seconds:.0f} s",
          file=sys.stderr)
    print(f"saved {result.path}", file=sys.stderr)
    return 0


# -- entry point -------------------------------------------------------------
SUBCOMMANDS = {
    "weights": ("Write U-Net weight maps of label images.", _add_weights_arguments, _run_weights),
    "evaluate": ("Score predicted labels against ground truth (mAP of IoU).",
                 _add_evaluate_arguments, _run_evaluate),
    "demo": ("Open napari with a sample, its labels and the widgets.", _add_demo_arguments,
             _run_demo),
    "train": ("Train a U-Net with the weighted loss on a folder of images and labels.",
              _add_train_arguments, _run_train),
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
