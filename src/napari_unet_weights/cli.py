"""Command line: ``napari-unet-weights weights|evaluate|train|predict|demo``.

Each subcommand has an ``_add_<name>_arguments(parser)`` and a ``_run_<name>(args) -> int``;
both call the same core functions as the widgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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


def _non_negative(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=True)


def _positive(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=False)


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
    return value


# -- weights -----------------------------------------------------------------
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


def _output_names(files: list, outdir, suffix: str = "_weights") -> dict:
    """Map each input file to ``OUTDIR/<stem><suffix>.tif``."""
    from pathlib import Path

    from .io import file_stem

    return {path: Path(outdir) / f"{file_stem(path)}{suffix}.tif" for path in files}


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


def _collect_jobs(inputs: list[str], outdir, suffix: str, what: str) -> dict | int:
    """Input → output paths, with ``outdir`` created; or the exit status of a usage error."""
    from .io import expand_inputs

    try:
        files = expand_inputs(inputs)
    except OSError as error:
        return _usage_error(str(error))
    if not files:
        return _usage_error(f"no {what} found in {', '.join(inputs)}.")
    outputs = _output_names(files, outdir, suffix)
    clashes = _clashes(outputs)
    if clashes:
        return _usage_error(f"inputs would write the same output file: {'; '.join(clashes)}.")
    failed = _make_folder(outdir)
    return outputs if failed is None else failed


def _make_folder(outdir) -> int | None:
    """Create ``outdir`` if missing: None, or the exit status of a usage error."""
    from pathlib import Path

    try:
        Path(outdir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _usage_error(f"cannot create output folder {outdir}: {error}")
    return None


def _run_jobs(outputs: dict, write, written: str, outdir) -> int:
    """Write each output, report each file on stderr and a summary; the exit status.

    Parameters
    ----------
    outputs : dict
        Input path → output path, from :func:`_collect_jobs`.
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

    skipped = 0
    for index, (path, out) in enumerate(outputs.items(), start=1):
        prefix = f"[{index}/{len(outputs)}]"
        start = time.perf_counter()
        try:
            note = write(path, out, prefix)
        except (OSError, ValueError, TypeError) as error:
            skipped += 1
            print(f"{prefix} skipped {path}: {error}", file=sys.stderr)
            continue
        print(f"{prefix} {path} → {out} ({note}{time.perf_counter() - start:.2f} s)",
              file=sys.stderr)
    print(f"wrote {len(outputs) - skipped} {written} to {outdir}"
          + (f", skipped {skipped} file(s)" if skipped else ""), file=sys.stderr)
    return 1 if skipped else 0


def _run_weights(args: argparse.Namespace) -> int:
    outputs = _collect_jobs(args.labels, args.outdir, "_weights", "label images")
    if isinstance(outputs, int):
        return outputs

    def write(path, out, _prefix: str) -> str:
        _write_weight_map(path, out, args)
        return ""

    return _run_jobs(outputs, write, "weight map(s)", args.outdir)


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
        "The demo segments the sample with the bundled model (Segment widget), shows the "
        "prediction's weight map (Weight map widget) and scores it against the sample's "
        "ground truth (Evaluate widget). Without the bundled model it shows the weight map "
        "of the ground truth and says so. With --screenshot and no display, a private Xvfb "
        "server is started if Xvfb is installed. Exit status: 0 ok, 1 a widget or its "
        "result failed, 2 no display or napari missing."
    )
    parser.add_argument("--sample", choices=DEMO_SAMPLES, default="nuclei_crowded",
                        help="sample data to open (default: %(default)s)")
    parser.add_argument(
        "--screenshot", metavar="FILE",
        help="save a PNG of the window once all results are shown, then exit",
    )
    parser.add_argument("--timeout", type=_positive, default=120.0, metavar="SECONDS",
                        help="how long --screenshot waits for the results (default: "
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


def _dock_segment_widget(viewer) -> object:
    """Dock the plugin's "Segment" widget as Plugins → U-Net Weights does (or construct it)."""
    from ._widgets.segment import SegmentWidget, dock_plugin_widget

    return dock_plugin_widget(viewer, "Segment", SegmentWidget)


class _DemoLoop:
    """The demo's loop: the Segment widget runs, then hands its labels to the others.

    When the prediction arrives, "→ Weight map" and "→ Evaluate" are pressed: the weight
    map of the prediction and its scores against the sample's ground truth.
    """

    def __init__(self, viewer, image) -> None:
        self.viewer = viewer
        self.segment = _dock_segment_widget(viewer)
        self.weights = self.evaluate = None
        self.segment.segmented.connect(self._hand_off)
        self.segment.image_layer = image
        self.segment.run()

    def _hand_off(self, labels) -> None:
        self.weights = self.segment.send_to_weight_map()
        self.evaluate = self.segment.send_to_evaluate()
        self._arrange(labels)

    def _arrange(self, labels) -> None:
        """The prediction's outlines over its weight map; Weight map tabbed under Segment."""
        labels.contour = 2
        for layer in (self.segment.probability_layer, self.evaluate.gt_layer):
            if layer is not None:
                layer.visible = False
        self.viewer.layers.selection.active = labels
        segment_dock, weights_dock = self.segment.parentWidget(), self.weights.parentWidget()
        window = segment_dock.parentWidget() if segment_dock is not None else None
        if window is not None and hasattr(window, "tabifyDockWidget"):  # a QMainWindow
            from qtpy.QtCore import Qt

            window.tabifyDockWidget(segment_dock, weights_dock)
            segment_dock.raise_()
            evaluate_dock = self.evaluate.parentWidget()
            window.resizeDocks([segment_dock, evaluate_dock], [330, 620], Qt.Vertical)

    @property
    def failed(self) -> bool:
        """Whether the segmentation ended without a result."""
        return not self.segment.busy and self.segment.labels_layer is None

    def done(self) -> bool:
        """Whether the prediction, its weight map and its evaluation are all shown."""
        if self.failed:
            return True
        if self.weights is None or self.evaluate is None:
            return False
        weights_shown = f"{self.segment.labels_layer.name} weight map" in self.viewer.layers
        return (weights_shown and not self.weights.busy and not self.evaluate.busy
                and self.evaluate.evaluation is not None)

    def report(self) -> str:
        """One line about the outcome, for the terminal."""
        if self.evaluate is None or self.evaluate.evaluation is None:
            return f"segmentation: {self.segment.status_label.text()}"
        return (f"segmentation: {self.segment.status_label.text()}; mAP against the ground "
                f"truth {self.evaluate.evaluation.map:.3f}")


def _bundled_model_available() -> bool:
    from .unet.model_file import BUNDLED_MODEL

    return BUNDLED_MODEL.exists()


def _start_demo_widgets(viewer, known_layers: list):
    """Dock the widgets and start the loop; return ``(ready, loop)``.

    ``ready()`` says when the screenshot may be taken; ``loop`` is the :class:`_DemoLoop`,
    or None without the bundled model (then only the ground truth's weight map is shown).
    """
    image = known_layers[0]
    if not _bundled_model_available():
        print("napari-unet-weights demo: the bundled model is not installed (train it with "
              "scripts/train_bundled_model.py --install); showing the weight map of the "
              "ground truth only.", file=sys.stderr)
        _dock_weight_map_widget(viewer)
        _dock_segment_widget(viewer).image_layer = image

        def weight_layer_shown() -> bool:
            new = [layer for layer in viewer.layers if all(layer is not k for k in known_layers)]
            return any(_is_filled(layer) for layer in new)

        return weight_layer_shown, None
    loop = _DemoLoop(viewer, image)
    return loop.done, loop


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


def _wait_for_workers(timeout: float = 10.0) -> None:
    """Process Qt events until no worker thread runs (none may outlive the viewer)."""
    from qtpy.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    _process_events_until(lambda: pool.activeThreadCount() == 0, timeout)


def _save_screenshot(viewer, ready, args: argparse.Namespace) -> int:
    """Wait until ``ready()``, then save the window as ``args.screenshot``.

    Returns 0 if the results appeared, else 1 (the screenshot is saved anyway).
    """
    from pathlib import Path

    found = ready is not None and _process_events_until(ready, args.timeout)
    if ready is not None and not found:
        print(f"napari-unet-weights demo: the results did not appear within "
              f"{args.timeout:g} s; saving the screenshot anyway.", file=sys.stderr)
    _wait_for_workers()
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
    try:  # the viewer exists before anything imports TensorFlow (see unet.model)
        ready, loop = _start_demo_widgets(viewer, known_layers)
    except Exception as error:  # show the viewer anyway; say why the widgets are missing
        print(f"napari-unet-weights demo: could not open the widgets: "
              f"{type(error).__name__}: {error}", file=sys.stderr)
        ready, loop = None, None
    if args.screenshot is None:
        napari.run()
        return 0
    viewer.window.resize(1600, 1000)
    status = _save_screenshot(viewer, ready, args)
    if loop is not None:
        print(f"napari-unet-weights demo: {loop.report()}", file=sys.stderr)
        status = 1 if loop.failed else status
    _wait_for_workers()  # e.g. a weight-map refresh started by the last redraw
    viewer.close()
    _wait_for_workers()
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


# -- predict -----------------------------------------------------------------
def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Each IMAGE (2-D grayscale, RGB, or a stack / time series, predicted plane by plane) "
        "gives OUTDIR/<name>_labels.tif: instance labels (uint16, uint32 beyond 65534 "
        "objects, ids unique over a stack, zlib-compressed), with the model file's "
        "normalisation and post-processing. A file that cannot be read or used is reported "
        "and skipped. Needs TensorFlow: pip install \"napari-unet-weights[unet]\". Exit "
        "status: 0 all written, 1 some skipped, 2 usage error or unusable model."
    )
    parser.add_argument("images", nargs="+", metavar="IMAGES",
                        help="images (.tif/.tiff/.png/.jpg/.npy) or folders of them")
    parser.add_argument("-o", "--outdir", required=True, metavar="OUTDIR",
                        help="folder for the label images (created if missing)")
    parser.add_argument("--model", metavar="FILE",
                        help="a .keras model file (default: the bundled nuclei model)")
    parser.add_argument("--tile", type=lambda text: _integer(text, 1), metavar="N",
                        help="tile side in pixels, rounded up to a multiple of 2**depth "
                        "(default: the whole image if it fits the memory budget)")
    parser.add_argument("--overlap", type=lambda text: _integer(text, 0), metavar="N",
                        help="overlap of tiles in pixels (default: 8 · 2**depth)")
    parser.add_argument("--batch-size", type=lambda text: _integer(text, 1), default=4,
                        metavar="N", help="tiles per network call (default: %(default)s)")
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU even if TensorFlow sees a GPU")


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


def _load_predict_model(args: argparse.Namespace):
    """The model and the device it runs on, or the exit status of a usage error."""
    try:
        from .unet.model_file import load_model
        from .unet.predict import device_name

        model = load_model(args.model)
        device = device_name(use_gpu=False if args.cpu else None)
    except (OSError, ValueError, ImportError) as error:
        return _usage_error(str(error))
    score = model.metadata.get("validation", {}).get("map")
    score_text = f", validation mAP {score:.3f}" if isinstance(score, float) else ""
    print(f"model {args.model or 'bundled'}{score_text}; device {device}", file=sys.stderr)
    return model


def _write_labels(path, out, model, args: argparse.Namespace, progress) -> int:
    from .io import read_image, write_tiff
    from .unet.predict import segment

    labels = segment(read_image(path), model, tile_shape=args.tile, overlap=args.overlap,
                     batch_size=args.batch_size, progress=progress,
                     use_gpu=False if args.cpu else None)
    write_tiff(out, labels)
    return int(labels.max())


def _run_predict(args: argparse.Namespace) -> int:
    outputs = _collect_jobs(args.images, args.outdir, "_labels", "images")
    if isinstance(outputs, int):
        return outputs
    model = _load_predict_model(args)
    if isinstance(model, int):
        return model

    def write(path, out, prefix: str) -> str:
        progress = _TileProgress(sys.stderr, prefix)
        try:
            count = _write_labels(path, out, model, args, progress)
        finally:
            progress.clear()
        return f"{count} objects, "

    return _run_jobs(outputs, write, "label image(s)", args.outdir)


# -- entry point -------------------------------------------------------------
SUBCOMMANDS = {
    "weights": ("Write U-Net weight maps of label images.", _add_weights_arguments, _run_weights),
    "evaluate": ("Score predicted labels against ground truth (mAP of IoU).",
                 _add_evaluate_arguments, _run_evaluate),
    "demo": ("Open napari with a sample, its labels and the widgets.", _add_demo_arguments,
             _run_demo),
    "train": ("Train a U-Net with the weighted loss on a folder of images and labels.",
              _add_train_arguments, _run_train),
    "predict": ("Segment images with a U-Net model file: instance label TIFFs.",
                _add_predict_arguments, _run_predict),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-unet-weights",
        description="U-Net border weight maps, weighted U-Net training and prediction, and the "
        "mAP of IoU, from the command line. 'napari-unet-weights COMMAND -h' for each command.",
    )
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
