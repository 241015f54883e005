"""Screenshot of the correction loop: segment, correct, add to the training set, fine-tune, use.

On an H&E image of the test split (``scripts/dsb2018_split.json``) read from the DSB
2018 data (``../shared/data/dsb2018``, or ``$NAPARI_UNET_WEIGHTS_DSB``), the script
drives the plugin's widgets as a user would: Segment runs the bundled model; the
predicted labels are "corrected" in a rectangle (there, the ground-truth nuclei replace
the prediction, standing in for the user's painting); "Add to training set" copies the
rectangle and the current view; the Train U-Net widget fine-tunes the bundled model on
the two pairs within a short time budget; "Use this model" segments the image again
with the new model. The window is then saved as a PNG.

Needs a display: run it under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1800x1150x24" python scripts/screenshot_correction_loop.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "scripts" / "dsb2018_split.json"
from screenshot_lib import add_data_argument, wait_until  # noqa: E402

DEFAULT_SAMPLE = "610f32e2d9d270d7"  # H&E, test split, 256 × 320, 55 nuclei
#: The rectangle corrected and added, in pixels (rows, columns).
BOX = ((32, 160), (48, 208))
WINDOW = (1800, 1150)
#: Widths of the Segment and Train U-Net docks (wide enough for every control's text).
DOCK_WIDTHS = [400, 520]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default=DEFAULT_SAMPLE,
                        help="an H&E image id of the test split (default: %(default)s)")
    add_data_argument(parser)
    parser.add_argument("--minutes", type=float, default=1.0,
                        help="time budget of the fine-tuning (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4,
                        help="batches per epoch of the fine-tuning (default: %(default)s)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "docs" / "images" / "correction-loop.png")
    return parser.parse_args(argv)


def check_sample(sample: str) -> None:
    split = json.loads(SPLIT.read_text())
    if sample not in split["test"] or split["modality"][sample] != "he":
        sys.exit(f"{sample} is not an H&E image of the test split")


def corrected(predicted, truth, box):
    """``predicted`` with the ground-truth nuclei in ``box`` (new ids): the user's correction."""
    import numpy as np

    rows, columns = (slice(*side) for side in box)
    labels = predicted.copy()
    region = labels[rows, columns]
    region[:] = 0
    ids = np.unique(truth[rows, columns])
    ids = ids[ids > 0]
    for offset, old in enumerate(ids, start=int(labels.max()) + 1):
        region[truth[rows, columns] == old] = offset
    return labels


def main(argv=None) -> int:
    args = parse_args(argv)
    check_sample(args.sample)
    os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    import napari  # the viewer before TensorFlow (see napari_unet_weights.unet.device)
    import tifffile
    from qtpy.QtCore import Qt

    from napari_unet_weights._widgets.segment.widget import SegmentWidget
    from napari_unet_weights._widgets.train.widget import TrainWidget

    image_data = tifffile.imread(args.data / "images" / f"{args.sample}.tif")
    truth = tifffile.imread(args.data / "labels" / f"{args.sample}.tif")
    viewer = napari.Viewer(title="napari-unet-weights: the correction loop")
    viewer.window.resize(*WINDOW)
    image = viewer.add_image(image_data[..., :3], name=args.sample[:6], rgb=True)
    segment = SegmentWidget(viewer)
    docks = [viewer.window.add_dock_widget(segment, name="Segment", area="left")]
    train = TrainWidget(viewer)
    docks.append(viewer.window.add_dock_widget(train, name="Train U-Net", area="right"))
    viewer.window._qt_window.resizeDocks(docks, DOCK_WIDTHS, Qt.Orientation.Horizontal)

    segment.image_layer = image
    segment.run()
    if not wait_until(lambda: segment.labels_layer is not None and not segment.running, 300):
        sys.exit(f"the segmentation did not finish: {segment.status_label.text()}")
    labels = segment.labels_layer
    labels.data = corrected(labels.data, truth, BOX)
    (top, bottom), (left, right) = BOX
    viewer.add_shapes([[[top, left], [bottom, right]]], shape_type="rectangle",
                      name="corrected region", edge_color="yellow", face_color="transparent",
                      edge_width=2)
    segment.add_to_training_set("rectangle")
    viewer.scene.camera.center = (176, 200)  # the view: about 144 rows around there
    viewer.scene.camera.zoom = viewer.canvas.size[0] / 144
    segment.add_to_training_set("current view")
    print("training set:", [s.name for s in train.training_set.snapshots], file=sys.stderr)

    train.start_from.combo.setCurrentIndex(1)  # the bundled model
    train.start_from.budget_spin.setValue(args.minutes)
    train.steps_spin.setValue(args.steps)  # short epochs: a few points on the plot
    train.start_button.click()
    if not wait_until(lambda: not train.running, 60 * args.minutes + 300):
        sys.exit("the fine-tuning did not finish")
    if train.result is None:
        sys.exit(f"the fine-tuning failed: {train.status_label.text()}")
    print(train.status_label.text(), "|", train.result_label.text(), file=sys.stderr)
    train.use_model()
    wait_until(lambda: False, 0.5)
    if not wait_until(lambda: not segment.running, 300):
        sys.exit("the new segmentation did not finish")
    viewer.layers.selection.active = labels
    viewer.reset_view()
    wait_until(lambda: False, 1.0)  # let the canvas draw
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    print(f"saved {args.out}", file=sys.stderr)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
