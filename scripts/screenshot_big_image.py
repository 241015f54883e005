"""Screenshot of a large image in the widgets: a lazy weight map and a lazily loaded segmentation.

The script builds (once) an 8192² mosaic of DSB 2018 fluorescence images (``../shared/data/
dsb2018``, or ``$NAPARI_UNET_WEIGHTS_DSB``; the :data:`CROWDED` 256² ones with the most
nuclei, first channel, repeated and turned to fill 32 × 32 tiles) and of their labels (ids
made unique), held as zarr in ``--work``:
the image as a zarr array chunked 1024², the labels as an OME-Zarr pyramid
(:mod:`napari_unet_weights.io.big`). napari opens both lazily. The Weight map widget maps
the labels lazily (a multiscale dask map: napari computes the part on the canvas only),
and the Segment widget segments the image with the bundled model, block by block, into a
zarr store whose labels layer napari loads lazily (contours). The view is zoomed in on a
region and the window is saved as a PNG; the peak memory of the process is printed.

Needs a display: run it under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1800x1150x24" python scripts/screenshot_big_image.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "scripts" / "dsb2018_split.json"
from screenshot_lib import add_data_argument, wait_until  # noqa: E402

TILE, TILES, CHUNK = 256, 32, 1024  # 32 × 32 tiles of 256²: 8192²
CROWDED = 64  # the tiles used: the fluorescence samples of 256² with the most nuclei
WINDOW = (1800, 1150)
DOCK_WIDTHS = [430, 430]
#: The view: its centre (row, column) in the mosaic, and how many rows it shows.
CENTER, ROWS = (4480, 4400), 330


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--work", type=Path, default=Path("/tmp/napari-unet-weights-big"),
                        help="where the mosaic's zarr stores are kept (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "big-image.png")
    return parser.parse_args(argv)


def fluorescence_tiles(data: Path) -> list:
    """The :data:`CROWDED` 256² fluorescence samples with the most nuclei, as (image,
    labels), first channel, the most crowded first."""
    import numpy as np
    import tifffile

    modality = json.loads(SPLIT.read_text())["modality"]
    index = json.loads((data / "index.json").read_text())
    samples = sorted((s for s, kind in modality.items() if kind == "fluorescence"
                      and index[s]["shape"] == [TILE, TILE]),
                     key=lambda s: (-index[s]["n_objects"], s))[:CROWDED]
    tiles = []
    for sample in samples:
        image = tifffile.imread(data / "images" / f"{sample}.tif")
        labels = tifffile.imread(data / "labels" / f"{sample}.tif").astype(np.uint32)
        tiles.append((image[..., 0] if image.ndim == 3 else image, labels))
    return tiles


def build_mosaic(data: Path, work: Path) -> tuple[Path, Path]:
    """The mosaic's image and labels stores in ``work`` (built once, a row of tiles at a time)."""
    import numpy as np
    import zarr

    from napari_unet_weights.io.big import create_labels_zarr, write_pyramid

    image_path, labels_path = work / "mosaic.zarr", work / "mosaic_nuclei.zarr"
    if image_path.exists() and labels_path.exists():
        return image_path, labels_path
    tiles = fluorescence_tiles(data)
    side = TILE * TILES
    image = zarr.create_array(str(image_path), shape=(side, side), chunks=(CHUNK, CHUNK),
                              dtype=np.uint8, overwrite=True)
    labels = create_labels_zarr(labels_path, (side, side), (CHUNK, CHUNK), name="nuclei")
    offset = 0
    for row in range(TILES):
        images, ids = [], []
        for column in range(TILES):
            number = row * TILES + column
            picture, objects = (np.rot90(a, number // len(tiles)) for a in
                                tiles[number % len(tiles)])
            images.append(picture)
            ids.append(np.where(objects > 0, objects + offset, 0))
            offset += int(objects.max())
        rows = slice(row * TILE, (row + 1) * TILE)
        image[rows] = np.concatenate(images, axis=1)
        labels[rows] = np.concatenate(ids, axis=1)
    write_pyramid(labels_path)
    print(f"mosaic: {side}² pixels, {offset} nuclei, in {work}", file=sys.stderr)
    return image_path, labels_path


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    import dask.array as da
    import napari  # the viewer before TensorFlow (see napari_unet_weights.unet.device)
    from qtpy.QtCore import Qt

    from napari_unet_weights._widgets.common.lazy_layers import pyramid
    from napari_unet_weights._widgets.segment.widget import SegmentWidget
    from napari_unet_weights._widgets.weight_map.widget import WeightMapWidget
    from napari_unet_weights.io.big import open_pyramid

    args.work.mkdir(parents=True, exist_ok=True)
    image_path, labels_path = build_mosaic(args.data, args.work)
    viewer = napari.Viewer(title="napari-unet-weights: an 8192² image, lazily")
    viewer.window.resize(*WINDOW)
    image = viewer.add_image(pyramid(da.from_zarr(str(image_path))), multiscale=True,
                             name="mosaic 8192²", contrast_limits=(0, 120))
    nuclei = viewer.add_labels(open_pyramid(labels_path), multiscale=True, name="nuclei",
                               visible=False)
    weights = WeightMapWidget(viewer)
    segment = SegmentWidget(viewer)
    docks = [viewer.window.add_dock_widget(segment, name="Segment", area="left"),
             viewer.window.add_dock_widget(weights, name="Weight map", area="right")]
    viewer.window._qt_window.resizeDocks(docks, DOCK_WIDTHS, Qt.Orientation.Horizontal)
    weights.layer_combo.value = nuclei
    if not wait_until(lambda: not weights.busy, 120):
        sys.exit(f"the weight map did not finish: {weights.status_label.text()}")

    segment.image_layer = image
    segment.output_zarr.choose(args.work / "mosaic_segmented.zarr")
    start = time.monotonic()
    segment.run()
    wait_until(lambda: False, 0.5)
    if not wait_until(lambda: segment.labels_layer is not None and not segment.running, 1800):
        sys.exit(f"the segmentation did not finish: {segment.status_label.text()}")
    print(f"segmented in {time.monotonic() - start:.0f} s: {segment.status_label.text()}",
          file=sys.stderr)
    predicted = segment.labels_layer
    predicted.contour = 2
    viewer.layers.selection.active = predicted
    viewer.scene.camera.center = CENTER
    viewer.scene.camera.zoom = viewer.canvas.size[0] / ROWS
    text = viewer.canvas.overlays.text
    text.visible, text.color, text.font_size, text.position = True, "white", 11, "top_left"
    text.text = (f"8192² mosaic (zarr) · rows {CENTER[0] - ROWS // 2}–{CENTER[0] + ROWS // 2}"
                 "\nweight map: computed for this view\nsegmentation: zarr, loaded lazily")
    wait_until(lambda: False, 3.0)  # let the canvas load and draw the view
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"saved {args.out}; peak memory of the process {peak:.2f} GiB", file=sys.stderr)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
