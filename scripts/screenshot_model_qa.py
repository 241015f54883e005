"""Screenshots of the Model QA widget and of its HTML report, on real DSB 2018 images.

The images are the first of the recorded split's test part (``scripts/dsb2018_split.json``):
``--fluorescence`` fluorescence images and ``--others`` of the other modalities, read
from the DSB 2018 data (``../shared/data/dsb2018``, or ``$NAPARI_UNET_WEIGHTS_DSB``) and
copied into a temporary ``images/`` + ``labels/`` folder. Model A is the bundled model;
model B is the bundled model with test-time augmentation, its labels computed
beforehand into a folder (``bundled_tta/``), as another tool's predictions would be
given. The script docks the widget, runs it, clicks the worst image's row (its layers
open and the Evaluate widget shows the pair with its IoU view) and saves the window;
then the widget's Plot and Gallery tabs (``model_qa_plot.png``, ``model_qa_gallery.png``
beside ``--out``), and it saves the report with the widget and photographs it with
headless Chromium.

Needs a display: run it under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1800x1150x24" python scripts/screenshot_model_qa.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from screenshot_lib import add_data_argument, wait_until  # noqa: E402

WINDOW = (1800, 1150)
DOCK_WIDTH = 640
#: Heights of the Model QA and Evaluate docks (Evaluate's tables need less).
DOCK_HEIGHTS = (760, 420)
#: Chromium's window for the report's picture.
REPORT_WINDOW = "1200,1600"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    for option, default, what in (("--fluorescence", 6, "fluorescence images"),
                                  ("--others", 2, "brightfield / H&E images")):
        parser.add_argument(option, type=int, default=default,
                            help=f"{what} of the test split (default: %(default)s)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "docs" / "images" / "model_qa_widget.png")
    parser.add_argument("--report-out", type=Path,
                        default=ROOT / "docs" / "images" / "model_qa_report.png")
    return parser.parse_args(argv)


def test_images(n_fluorescence: int, n_others: int) -> list[str]:
    """The first images of the split's test part: fluorescence, then other modalities."""
    split = json.loads((ROOT / "scripts" / "dsb2018_split.json").read_text())
    fluorescence = [i for i in split["test"] if split["modality"][i] == "fluorescence"]
    others = [i for i in split["test"] if split["modality"][i] != "fluorescence"]
    return fluorescence[:n_fluorescence] + others[:n_others]


def make_dataset(data: Path, ids: list[str], folder: Path) -> None:
    """``folder/images``, ``folder/labels`` (copies) and ``folder/bundled_tta`` (labels of
    the bundled model with test-time augmentation)."""
    from napari_unet_weights import segment
    from napari_unet_weights.io.files import read_image, write_tiff

    for sub in ("images", "labels"):
        (folder / sub).mkdir(parents=True)
        for sample in ids:
            shutil.copy(data / sub / f"{sample}.tif", folder / sub / f"{sample}.tif")
    for sample in ids:
        labels = segment(read_image(folder / "images" / f"{sample}.tif"), tta=True)
        write_tiff(folder / "bundled_tta" / f"{sample}.tif", labels)
        print("TTA labels:", sample, int(labels.max()), "objects")


def widget_screenshot(folder: Path, out: Path, report: Path) -> None:
    """Dock the widget, run it on ``folder``, click the worst row, save the window and
    the report."""
    import napari
    from qtpy.QtCore import Qt

    from napari_unet_weights._widgets.model_qa.widget import ModelQAWidget

    viewer = napari.Viewer(title="napari-unet-weights: Model QA")
    viewer.window.resize(*WINDOW)
    widget = ModelQAWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Model QA", area="right")
    viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    widget.data_source.choose_folder(str(folder))
    widget.model_b.choose_folder(folder / "bundled_tta")
    widget.run()
    if not wait_until(lambda: widget.outcome is not None and not widget.busy, 900):
        sys.exit(f"the run did not finish: {widget.status_label.text()}")
    print(widget.summary_label.text().replace("<br>", "\n"))
    widget.table.select_row(0)
    wait_until(lambda: False, 1.0)  # the Evaluate dock is laid out
    docks = [viewer.window._dock_widgets[name] for name in viewer.window._dock_widgets]
    viewer.window._qt_window.resizeDocks(docks, list(DOCK_HEIGHTS), Qt.Orientation.Vertical)
    wait_until(lambda: False, 3.0)  # Evaluate scores the pair and draws its IoU view
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    print(f"saved {out}")
    for tab, name in ((2, "plot"), (3, "gallery")):
        widget.tabs.setCurrentIndex(tab)
        wait_until(lambda: False, 0.5)
        path = out.with_name(out.name.replace("widget", name))
        widget.tabs.grab().save(str(path))
        print(f"saved {path}")
    widget.save_report(report)
    if not wait_until(lambda: report.is_file() and not widget.busy, 120):
        sys.exit(f"the report was not written: {widget.status_label.text()}")
    viewer.close()


def report_screenshot(report: Path, out: Path) -> None:
    """Photograph ``report`` with headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium: apt-get install chromium")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={out}",
                    f"--window-size={REPORT_WINDOW}", report.as_uri()],
                   check=True, capture_output=True)
    print(f"saved {out}")


def main(argv=None) -> int:
    args = parse_args(argv)
    ids = test_images(args.fluorescence, args.others)
    if not all((args.data / "labels" / f"{i}.tif").is_file() for i in ids):
        sys.exit(f"the DSB 2018 test images are not all in {args.data}")
    os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")
    args.out, args.report_out = args.out.resolve(), args.report_out.resolve()
    with tempfile.TemporaryDirectory(prefix="model-qa-") as temp:
        os.chdir(temp)  # the report names the data folder as given: "dsb2018_test"
        folder = Path("dsb2018_test")
        make_dataset(args.data.resolve(), ids, folder)
        report = Path(temp) / "model_qa_report.html"
        widget_screenshot(folder, args.out, report)
        report_screenshot(report, args.report_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
