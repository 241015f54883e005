"""Screenshot of the Check labels widget on a real DSB 2018 image and its labels.

The sample (default ``f6863b83d75e5927``, fluorescence, 256 × 256, 92 nuclei) is read
from the DSB 2018 data (``../shared/data/dsb2018``, or ``$NAPARI_UNET_WEIGHTS_DSB``). Its
labels as published already hold 28 touching pairs and one id painted in two places;
the script adds one error of each other kind, as an annotator might make them: a hole
in a nucleus, a nucleus's id painted again elsewhere (a split id) and a stray fragment
of a new id. It docks the widget, selects the split id's row (the camera centres on
its two pieces) and saves the window as a PNG.

Needs a display: run it under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1800x1150x24" python scripts/screenshot_check_labels.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from screenshot_lib import add_data_argument, wait_until  # noqa: E402

DEFAULT_SAMPLE = "f6863b83d75e5927"
WINDOW = (1800, 1150)
DOCK_WIDTH = 560
#: How much more than the clicked problem the view shows (the widget zooms close).
ZOOM_OUT = 1.4


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default=DEFAULT_SAMPLE,
                        help="a DSB 2018 image id (default: %(default)s)")
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "check-labels.png")
    return parser.parse_args(argv)


def _free_square(labels, side: int, margin: int, start=(0, 0)):
    """The top-left corner of a ``side``² square of background, ``margin`` px from any object."""
    import numpy as np
    from scipy import ndimage as ndi

    near = ndi.binary_dilation(labels != 0, np.ones((3, 3), bool), iterations=margin)
    free = ndi.uniform_filter((~near).astype(float), size=side, mode="constant") > 0.999
    free[: side // 2 + margin] = free[-side // 2 - margin:] = False
    free[:, : side // 2 + margin] = free[:, -side // 2 - margin:] = False
    rows, columns = np.nonzero(free)
    order = np.argsort((rows - start[0]) ** 2 + (columns - start[1]) ** 2)
    return int(rows[order[0]]) - side // 2, int(columns[order[0]]) - side // 2


def inject_errors(labels):
    """``labels`` with a hole, a split id and a stray fragment added; what was added."""
    import numpy as np
    from scipy import ndimage as ndi

    from napari_unet_weights.labels.checks import check_labels

    labels = labels.copy()
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    # A hole: 3 × 3 background in the middle of the largest nucleus that touches none.
    table = check_labels(labels).problems
    busy = set(table["label"]) | set(table["other"])
    for label in ids[np.argsort(-areas)]:
        inner = ndi.binary_erosion(labels == label, iterations=3)
        r, c = (int(v) for v in np.argwhere(inner).mean(axis=0).round()) if inner.any() \
            else (0, 0)
        if label not in busy and inner[r, c]:
            labels[r - 1:r + 2, c - 1:c + 2] = 0
            hole = (int(label), (r, c))
            break
    # A split id: the id of a large nucleus near the middle, painted again in the
    # background close by (a slip of the brush with the wrong label selected).
    centre = np.array(labels.shape) / 2
    centroids = ndi.center_of_mass(labels > 0, labels, ids)
    distance = [np.hypot(*(np.array(c) - centre)) if a >= 150 and i not in busy else np.inf
                for i, a, c in zip(ids, areas, centroids)]
    split_id = int(ids[np.argmin(distance)])
    r, c = _free_square(labels, 6, 3, start=centroids[list(ids).index(split_id)])
    labels[r:r + 6, c:c + 6] = split_id
    # A stray fragment: 2 × 2 pixels of a new id.
    r2, c2 = _free_square(labels, 2, 3, start=(0, labels.shape[1]))
    fragment = int(labels.max()) + 1
    labels[r2:r2 + 2, c2:c2 + 2] = fragment
    return labels, {"hole": hole, "split": (split_id, (r, c)), "fragment": (fragment, (r2, c2))}


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.data / "labels" / f"{args.sample}.tif").is_file():
        sys.exit(f"no DSB 2018 sample {args.sample} in {args.data}")
    os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    import napari
    import numpy as np
    import tifffile
    from qtpy.QtCore import Qt

    from napari_unet_weights._widgets.check_labels.widget import CheckLabelsWidget

    image = tifffile.imread(args.data / "images" / f"{args.sample}.tif")
    truth = tifffile.imread(args.data / "labels" / f"{args.sample}.tif")
    labels, injected = inject_errors(truth)
    print("injected:", injected)

    viewer = napari.Viewer(title="napari-unet-weights: Check labels")
    viewer.window.resize(*WINDOW)
    viewer.add_image(image if image.ndim == 2 else image[..., :3], name=args.sample[:6],
                     rgb=image.ndim == 3)
    layer = viewer.add_labels(labels, name="nuclei", opacity=0.45)
    widget = CheckLabelsWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Check labels", area="right")
    viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    if not wait_until(lambda: widget.report is not None and not widget.busy, 60):
        sys.exit(f"the check did not finish: {widget.status_label.text()}")
    print(widget.summary_label.text(), "|", widget.status_label.text())

    frame = widget.table.frame
    row = int(np.flatnonzero((frame["problem"] == "disconnected")
                             & (frame["label"] == injected["split"][0]))[0])
    widget.table.select_row(row)
    viewer.scene.camera.zoom /= ZOOM_OUT
    viewer.layers.selection.active = layer
    wait_until(lambda: False, 1.0)  # let the canvas draw
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    print(f"saved {args.out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
