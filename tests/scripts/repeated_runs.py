"""Segment three times back to back, Cancel -> Run, then Train twice, in a fresh napari.

Run by tests/test_unet_device.py in a fresh interpreter (TensorFlow not yet imported),
which is how a user meets the plugin. Prints one line per finished run and "done".
Exits 3 when a run does not finish within its deadline; the test kills the process if
it hangs for good (the deadlock this guards against leaves no thread able to exit).
"""

import sys
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

import napari_unet_weights
from napari_unet_weights._widgets.segment.widget import SegmentWidget
from napari_unet_weights._widgets.train.widget import TrainWidget
from napari_unet_weights.io.files import read_image

DEADLINE_S = 90


def wait_until(condition, what: str) -> None:
    """Process Qt events until ``condition()`` holds; exit 3 after DEADLINE_S."""
    app = QApplication.instance()
    end = time.monotonic() + DEADLINE_S
    while not condition():
        app.processEvents()
        if time.monotonic() > end:
            print(f"timeout: {what}", flush=True)
            sys.exit(3)
        time.sleep(0.005)  # polling the event loop, not synchronisation


def segment_runs(viewer) -> None:
    data = Path(napari_unet_weights.__file__).parent / "data"
    viewer.add_image(read_image(data / "nuclei_fluorescence.tif")[:128, :128], name="nuclei")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")
    for run in range(3):
        widget.run()
        wait_until(lambda: not widget.running, f"segment run {run}")
        print("segment", run, widget.status_label.text(), flush=True)
    widget.run()
    wait_until(lambda: widget.running, "segment start")
    widget.cancel()
    widget.run()
    wait_until(lambda: not widget.busy, "run after cancel")
    print("after cancel", widget.status_label.text(), flush=True)


def train_runs(viewer) -> None:
    viewer.layers.clear()
    yy, xx = np.indices((32, 32))
    labels = (((yy - 10) ** 2 + (xx - 10) ** 2 < 36) * 1
              + ((yy - 22) ** 2 + (xx - 20) ** 2 < 36) * 2).astype(np.uint16)
    for name in ("a", "b"):
        viewer.add_image((labels > 0).astype(np.float32) + 0.1, name=f"image {name}")
        viewer.add_labels(labels, name=f"labels {name}")
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train U-Net")
    settings = {"epochs": 1, "steps": 2, "batch": 2, "patch": 32, "depth": 2, "filters": 4,
                "validation": 0.5}
    for name, value in settings.items():
        getattr(widget, f"{name}_spin").setValue(value)
    widget.add_pair()
    for run in range(2):
        widget.start()
        wait_until(lambda: not widget.running, f"train run {run}")
        print("train", run, widget.result is not None, widget.status_label.text(), flush=True)


viewer = napari.Viewer(show=False)
segment_runs(viewer)
train_runs(viewer)
viewer.close()
print("done", flush=True)
