"""Independent, slow reference implementations and plain helpers shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

#: Layer scale and translation of the dock-widget tests (outputs must follow them).
SCALE = (0.5, 2.0)
TRANSLATE = (10.0, -4.0)

#: Opens a Qt application and imports ``ViewerModel`` in :func:`run_widget_script`.
_QT_PRELUDE = (
    "import sys\n"
    "from qtpy.QtWidgets import QApplication\n"
    "app = QApplication([])\n"
    "from napari.components import ViewerModel\n"
)
#: Prints the list of the TensorFlow / Keras modules imported so far.
_PRINT_TENSORFLOW = "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"


def dsb_folder() -> Path:
    """The DSB 2018 data: ``$NAPARI_UNET_WEIGHTS_DSB`` or ``../shared/data/dsb2018``."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018"
    return Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", default))


def require_dsb_folder(kind: str = "") -> Path:
    """``dsb_folder() / kind``; skips the test without it, except under ``CI=true``.

    CI always has ../shared, so there a missing folder is a failure, not a skip.
    """
    import pytest

    folder = dsb_folder() / kind
    if not folder.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the DSB 2018 data at {folder}")
        pytest.skip(f"no DSB 2018 data at {folder}")
    return folder


def brute_force_weight_map(labels, w0=10.0, sigma=5.0, *, border="background",
                           class_weights="balanced", spacing=None):
    """Per-object full-image EDT, the two smallest distances per pixel, the formula."""
    labels = np.asarray(labels)
    ids = [i for i in np.unique(labels) if i != 0]
    nearest = np.full(labels.shape, np.inf)
    second = np.full(labels.shape, np.inf)
    for i in ids:
        mask = labels == i
        if border == "all":
            mask = find_boundaries(mask, mode="inner")
        distance = ndi.distance_transform_edt(~mask, sampling=spacing)
        second = np.minimum(second, np.maximum(nearest, distance))
        nearest = np.minimum(nearest, distance)
    term = np.zeros(labels.shape)
    if border == "all" and len(ids) == 1:
        term = w0 * np.exp(-(nearest**2) / (2 * sigma**2))
    elif len(ids) >= 2:
        term = w0 * np.exp(-((nearest + second) ** 2) / (2 * sigma**2))
        if border == "background":
            term[labels != 0] = 0
    foreground = labels != 0
    n, n_fg = labels.size, int(foreground.sum())
    if class_weights == "balanced":
        bg, fg = n_fg / n, 1 - n_fg / n
    elif class_weights == "inverse":
        bg = n / (2 * (n - n_fg)) if n - n_fg else 0.0
        fg = n / (2 * n_fg) if n_fg else 0.0
    elif class_weights == "none":
        bg, fg = 1.0, 1.0
    else:
        bg, fg = class_weights
    return term + np.where(foreground, fg, bg)


def seed_make_weight_map(masks, w0=10, sigma=5):
    """The seed blog's ``make_weight_map``, verbatim but for the w0/sigma arguments."""
    nrows, ncols = masks.shape[1:]
    masks = (masks > 0).astype(int)
    distMap = np.zeros((nrows * ncols, masks.shape[0]))
    X1, Y1 = np.meshgrid(np.arange(nrows), np.arange(ncols))
    X1, Y1 = np.c_[X1.ravel(), Y1.ravel()].T
    for i, mask in enumerate(masks):
        bounds = find_boundaries(mask, mode="inner")
        X2, Y2 = np.nonzero(bounds)
        xSum = (X2.reshape(-1, 1) - X1.reshape(1, -1)) ** 2
        ySum = (Y2.reshape(-1, 1) - Y1.reshape(1, -1)) ** 2
        distMap[:, i] = np.sqrt(xSum + ySum).min(axis=0)
    ix = np.arange(distMap.shape[0])
    if distMap.shape[1] == 1:
        d1 = distMap.ravel()
        border_loss_map = w0 * np.exp((-1 * (d1) ** 2) / (2 * (sigma**2)))
    else:
        if distMap.shape[1] == 2:
            d1_ix, d2_ix = np.argpartition(distMap, 1, axis=1)[:, :2].T
        else:
            d1_ix, d2_ix = np.argpartition(distMap, 2, axis=1)[:, :2].T
        d1 = distMap[ix, d1_ix]
        d2 = distMap[ix, d2_ix]
        border_loss_map = w0 * np.exp((-1 * (d1 + d2) ** 2) / (2 * (sigma**2)))
    xBLoss = np.zeros((nrows, ncols))
    xBLoss[X1, Y1] = border_loss_map
    loss = np.zeros((nrows, ncols))
    w_1 = 1 - masks.sum() / loss.size
    w_0 = 1 - w_1
    loss[masks.sum(0) == 1] = w_1
    loss[masks.sum(0) == 0] = w_0
    return xBLoss + loss


def labels_to_masks(labels):
    """(n_objects, H, W) binary masks, the seed's input format."""
    ids = [i for i in np.unique(labels) if i != 0]
    return np.stack([labels == i for i in ids]).astype(np.uint8)


def discs(shape, centres, radius, ids=None) -> np.ndarray:
    """uint16 labels with one disc per centre.

    Parameters
    ----------
    shape : tuple of int
        The shape of the labels.
    centres : sequence of (int, int)
        The centre of each disc.
    radius : float or sequence of float
        One radius for all discs, or one per centre.
    ids : sequence of int, optional
        The label of each disc; default 1, 2, ...

    Returns
    -------
    numpy.ndarray of uint16
        The labels, 0 outside the discs.
    """
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, dtype=np.uint16)
    ids = ids or range(1, len(centres) + 1)
    radii = np.broadcast_to(radius, len(centres))
    for value, (cy, cx), r in zip(ids, centres, radii, strict=True):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = value
    return labels


def split_id(top: int, dtype) -> np.ndarray:
    """20×20 labels whose id ``top`` is painted in two pieces (the second larger), beside
    a clean id 3: a fix must give a piece the id ``top + 1``."""
    labels = np.zeros((20, 20), dtype=dtype)
    labels[1:5, 1:5] = top
    labels[10:15, 10:15] = top
    labels[15:19, 1:5] = 3
    return labels


def noisy_image(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A float32 image of ``labels``: 0.9 inside objects, 0.1 outside, Gaussian noise 0.05."""
    rng = np.random.default_rng(seed)
    return ((labels > 0) * 0.8 + 0.1 + rng.normal(0, 0.05, labels.shape)).astype(np.float32)


def run_widget_script(body: str) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter with Qt, then print the TensorFlow modules imported.

    Parameters
    ----------
    body : str
        Python lines run after a ``QApplication`` is made and ``sys`` and napari's
        ``ViewerModel`` are imported.

    Returns
    -------
    subprocess.CompletedProcess
        With text ``stdout`` (its last line the sorted list of the imported modules among
        ``tensorflow`` and ``keras``) and ``stderr``.
    """
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    if "DISPLAY" not in env:
        env["QT_QPA_PLATFORM"] = "offscreen"
    code = _QT_PRELUDE + body + _PRINT_TENSORFLOW
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
