"""Independent, slow reference implementations used only by the tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries


def dsb_folder() -> Path:
    """The DSB 2018 data: ``$NAPARI_UNET_WEIGHTS_DSB`` or ``../shared/data/dsb2018``."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018"
    return Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", default))


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
