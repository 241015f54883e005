"""The ``napari-unet-weights demo`` command: napari on a sample, with the plugin's widgets.

The Segment widget runs the bundled model on the sample, then hands its labels to the
Weight map and Evaluate widgets. With ``--screenshot`` the window is saved as a PNG
once all results are shown (under a private Xvfb server when there is no display).
Qt and napari are imported inside the functions, so that importing this module is cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from .common import add_backend_arguments, positive, start_backend

DEMO_SAMPLES = ("nuclei_crowded", "nuclei_fluorescence", "nuclei_histology", "touching_discs")
NO_DISPLAY_MESSAGE = (
    "napari-unet-weights demo: no display (DISPLAY and WAYLAND_DISPLAY are unset); run it "
    "from a desktop session or under a virtual display: xvfb-run -a napari-unet-weights demo ..."
)


def _has_display() -> bool:
    """Whether Qt can open windows here (always on Windows and macOS)."""
    import os

    if sys.platform in ("win32", "darwin"):
        return True
    env = os.environ
    offscreen = env.get("QT_QPA_PLATFORM", "").startswith("offscreen")
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or offscreen)


def _demo_under_xvfb(args: argparse.Namespace) -> int:
    """Run the screenshot demo in a child process on a private Xvfb display.

    The display comes from PyVirtualDisplay (a free display number, started and stopped
    for us); a child process, so that Qt has shut down before the X server goes away.
    """
    import os
    import subprocess

    from pyvirtualdisplay import Display
    from pyvirtualdisplay.abstractdisplay import XStartError

    display = Display(backend="xvfb", size=(1600, 1000), color_depth=24,
                      manage_global_env=False)
    try:
        display.start()
    except (OSError, XStartError) as error:
        print(f"napari-unet-weights demo: Xvfb did not start ({error}). {NO_DISPLAY_MESSAGE}",
              file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "napari_unet_weights.cli", "demo", "--sample", args.sample,
               "--screenshot", str(args.screenshot), "--timeout", str(args.timeout)]
    try:
        environment = {**os.environ, "DISPLAY": display.new_display_var}
        return subprocess.run(command, env=environment).returncode
    finally:
        display.stop()


def _dock_weight_map_widget(viewer) -> object:
    """Construct the plugin's "Weight map" widget and dock it on the right."""
    from .._widgets.weight_map.widget import WeightMapWidget

    widget = WeightMapWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Weight map", area="right")
    return widget


def _dock_segment_widget(viewer) -> object:
    """Dock the plugin's "Segment" widget as Plugins → U-Net Weights does (or construct it)."""
    from .._widgets.common.handoff import dock_plugin_widget
    from .._widgets.segment.widget import SegmentWidget

    return dock_plugin_widget(viewer, SegmentWidget.TITLE, SegmentWidget)


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
    from ..unet.model_file import BUNDLED_MODEL

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

    from .._sample_data import sample_layers

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


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo as ``napari-unet-weights demo`` was asked to; the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        ``sample``, ``screenshot`` (a PNG path or None) and ``timeout`` (seconds).

    Returns
    -------
    int
        0 ok, 1 a widget or its result failed, 2 no display or napari missing.
    """
    import importlib.util
    import shutil

    if not _has_display():
        if args.screenshot is not None and shutil.which("Xvfb"):
            return _demo_under_xvfb(args)
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 2
    if importlib.util.find_spec("napari") is None:
        print("napari-unet-weights: error: the demo needs napari: pip install "
              "'napari-unet-weights[napari]'", file=sys.stderr)
        return 2
    return _open_demo_viewer(args)


# -- the command -----------------------------------------------------------------
#: The command's help line.
HELP = "Open napari with a sample, its labels and the widgets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    add_backend_arguments(parser)
    parser.add_argument("--timeout", type=positive, default=120.0, metavar="SECONDS",
                        help="how long --screenshot waits for the results (default: "
                        "%(default)s)")


def run(args: argparse.Namespace) -> int:
    # Before napari, quietly: the Segment widget then finds Keras loaded. Without the
    # backend the demo says so and shows the weight map of the ground truth.
    with contextlib.suppress(ImportError):
        start_backend(args.verbose, args.backend)
    return run_demo(args)
