"""Screenshot of "Export…" in the Segment widget, taken while the bundled model is exported.

The script opens the bundled fluorescence sample, segments it with the bundled model,
then exports that model as a bioimage.io package (into a temporary folder, as if the
save dialog had been answered) and saves the window as a PNG while the export's progress
bar is at its ONNX step.

Needs a display and the ``[export]`` extra: run it under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1400x900x24" python scripts/screenshot_export.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from screenshot_lib import wait_until  # noqa: E402

WINDOW = (1400, 900)
DOCK_WIDTH = 430
#: The step shown (it lasts a few seconds).
STEP = "ONNX weights"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "export.png")
    args = parser.parse_args(argv)
    os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    import napari  # the viewer before TensorFlow (see napari_unet_weights.unet.device)
    from qtpy.QtCore import Qt

    from napari_unet_weights._sample_data import load_sample
    from napari_unet_weights._widgets.segment.widget import SegmentWidget

    viewer = napari.Viewer()
    viewer.window.resize(*WINDOW)
    viewer.add_image(load_sample("nuclei_fluorescence")[0], name="nuclei")
    segment = SegmentWidget(viewer)
    dock = viewer.window.add_dock_widget(segment, name="Segment", area="right")
    viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    segment.run()
    if not wait_until(lambda: segment.labels_layer is not None and not segment.running, 300):
        sys.exit("the segmentation did not finish")
    bar = segment.exporter.progress_bar
    with tempfile.TemporaryDirectory() as folder:
        segment.exporter.export(Path(folder) / "dsb2018_nuclei.zip")
        if not wait_until(lambda: bar.format().startswith(STEP), 300):
            sys.exit(f"the export did not reach its {STEP} step")
        wait_until(lambda: False, 0.5)  # let the window draw
        viewer.screenshot(str(args.out), canvas_only=False)
        if not wait_until(lambda: not segment.exporter.running, 300):
            sys.exit("the export did not finish")
    print(args.out, segment.exporter.status_label.text())
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
