"""What the screenshot scripts share: the DSB 2018 folder option and a Qt event wait.

Screenshots are made under Xvfb (``xvfb-run -a -s "-screen 0 1800x1150x24" python
scripts/screenshot_....py``); the scripts drive napari from Python, outside a test, so they
wait by processing Qt events until the widget says it is done.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018"


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """``--data``: the DSB 2018 folder ($NAPARI_UNET_WEIGHTS_DSB or ../shared/data/dsb2018)."""
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", DEFAULT_DATA)),
                        help="the DSB 2018 folder (images/, labels/)")


def wait_until(predicate, timeout: float) -> bool:
    """Process Qt events until ``predicate()`` or ``timeout`` seconds; its last value."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    return bool(predicate())
