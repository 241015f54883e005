"""The worst objects of a model QA: missed, merged, split and false positives, with crops.

:func:`worst_objects` picks, per model and kind of error, the objects a person checking
the model should look at first: the largest ones (a large nucleus missed or merged is a
plain error, a tiny one may be debris or a labelling choice), the lowest best IoU first
among equal areas. Each comes with its bounding box, read from the label image it belongs
to (the ground truth for missed, merged and split objects, the model's prediction for
false positives). :func:`object_crops` renders them as small PNG images: the image
around the object (percentile-normalised over the whole image), true outlines in green,
predicted ones in magenta, the object's own outline in yellow.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .evaluate_models import ImageArrays, QAResult

__all__ = ["ERROR_KINDS", "ObjectCrop", "object_crops", "render_crop", "worst_objects"]

#: The kinds of errors, as the per-object ``status`` names them (true objects: missed,
#: merged, split; predictions: false positive).
ERROR_KINDS = ("missed", "merged", "split", "false positive")
_PREDICTED_KINDS = ("false positive",)
TRUTH_COLOUR = (60, 220, 90)
PREDICTION_COLOUR = (230, 60, 230)
SUBJECT_COLOUR = (255, 230, 40)


def _bounding_boxes(labels: np.ndarray, ids: Sequence[int]) -> dict[int, tuple]:
    """``{id: (min-0, .., max-0 (exclusive), ..)}`` of the objects ``ids`` of ``labels``."""
    boxes = {}
    for label in ids:
        where = np.nonzero(labels == label)
        if where[0].size:
            boxes[int(label)] = (*(int(w.min()) for w in where),
                                 *(int(w.max()) + 1 for w in where))
    return boxes


def worst_objects(result: QAResult, model: str | None = None, *,
                  kinds: Sequence[str] = ERROR_KINDS, per_kind: int = 6) -> pd.DataFrame:
    """The worst objects of each kind of error, with their bounding boxes.

    Parameters
    ----------
    result : QAResult
    model : str, optional
        One model's objects (default: every model's).
    kinds : sequence of str
        Among :data:`ERROR_KINDS`.
    per_kind : int
        At most this many objects per model and kind: the largest first, then the
        lowest best IoU.

    Returns
    -------
    pandas.DataFrame
        Rows of :attr:`QAResult.per_object` with ``error`` (the kind) in front and the
        bounding box ``bbox-min-0 .. bbox-min-{ndim-1}, bbox-max-0 ..`` (max exclusive)
        at the end, in the label image the object belongs to. Ordered by model, kind (as
        in ``kinds``), then worst first.

    Raises
    ------
    ValueError
        For an unknown kind, or (for false positives) a U-Net prediction not kept.
    """
    import pandas as pd

    unknown = set(kinds) - set(ERROR_KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; choose among {ERROR_KINDS}.")
    objects = result.per_object
    models = result.models if model is None else [model]
    picked = []
    for name in models:
        mine = objects[objects["model"] == name]
        for kind in kinds:
            wanted = "pred" if kind in _PREDICTED_KINDS else "gt"
            rows = mine[(mine["kind"] == wanted) & (mine["status"] == kind)]
            rows = rows.sort_values(["area", "best_iou"], ascending=[False, True],
                                    kind="stable").head(per_kind)
            picked.append(rows.assign(error=kind))
    table = pd.concat(picked, ignore_index=True) if picked else objects.iloc[:0]
    table = table[["error", *(c for c in table.columns if c != "error")]]
    return _with_boxes(result, table)


def _with_boxes(result: QAResult, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the bounding box of each object, one reading of the labels per image
    (not of the image)."""
    ndim = sum(c.startswith("centroid-") for c in table.columns)
    boxes = np.zeros((len(table), 2 * ndim), np.int64)
    for image, rows in table.groupby("image", sort=False):
        arrays = result.arrays(image, models=sorted(set(rows["model"])), with_image=False)
        for kind, group in rows.groupby("kind", sort=False):
            for model, items in group.groupby("model", sort=False):
                labels = arrays.truth if kind == "gt" else arrays.predictions[model]
                found = _bounding_boxes(labels, items["label"].tolist())
                for position, label in zip(items.index, items["label"], strict=True):
                    boxes[table.index.get_loc(position)] = found[int(label)]
    columns = [f"bbox-min-{i}" for i in range(ndim)] + [f"bbox-max-{i}" for i in range(ndim)]
    return table.assign(**{c: boxes[:, i] for i, c in enumerate(columns)}
                        ).reset_index(drop=True)


@dataclass
class ObjectCrop:
    """One object of the gallery, rendered.

    Attributes
    ----------
    image, model, error : str
        Which image and model, and the kind of error.
    label : int
        The object's id (in the ground truth, or in the prediction for false positives).
    area : int
        Its area in pixels.
    bbox : tuple of int
        ``(min-0, min-1, max-0, max-1)`` of the object (max exclusive).
    window : tuple of int
        ``(min-0, min-1, max-0, max-1)`` of the crop shown around it.
    centroid : tuple of float
        Where to centre the viewer.
    png : bytes
        The rendered crop.
    """

    image: str
    model: str
    error: str
    label: int
    area: int
    bbox: tuple[int, ...]
    window: tuple[int, ...]
    centroid: tuple[float, ...]
    png: bytes = field(repr=False)


def _normalised(image: np.ndarray) -> np.ndarray:
    """A 2-D grayscale or RGB image as uint8 RGB (1st-99.8th percentile of the image)."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., :3] if array.shape[-1] >= 3 else array.mean(axis=-1)
    finite = array[np.isfinite(array)]
    low, high = np.percentile(finite, (1.0, 99.8)) if finite.size else (0.0, 1.0)
    scaled = np.clip((np.nan_to_num(array) - low) / max(high - low, 1e-12), 0, 1)
    grey = (scaled * 255).astype(np.uint8)
    return grey if grey.ndim == 3 else np.repeat(grey[..., None], 3, axis=-1)


def _outline(labels: np.ndarray) -> np.ndarray:
    """Pixels of ``labels`` with a different 4-neighbour (object borders, inside)."""
    from skimage.segmentation import find_boundaries

    return find_boundaries(labels, mode="inner") & (labels > 0)


def _window(bbox: tuple[int, ...], shape: tuple[int, ...], margin: float) -> tuple[int, ...]:
    """The square-ish crop around ``bbox`` grown by ``margin`` × its size (≥ 8 px)."""
    (top, left, bottom, right) = bbox
    grow = max(8, int(margin * max(bottom - top, right - left)))
    return (max(0, top - grow), max(0, left - grow), min(shape[0], bottom + grow),
            min(shape[1], right + grow))


def render_crop(rgb: np.ndarray, truth: np.ndarray, prediction: np.ndarray,
                subject: np.ndarray, window: tuple[int, ...], size: int = 96) -> bytes:
    """A PNG of one crop: the image with true, predicted and subject outlines.

    Parameters
    ----------
    rgb : numpy.ndarray of uint8, shape (H, W, 3)
        The whole image, normalised (:func:`_normalised`).
    truth, prediction : numpy.ndarray
        The whole label images.
    subject : numpy.ndarray of bool
        The whole mask of the object shown.
    window : tuple of int
        ``(min-0, min-1, max-0, max-1)``.
    size : int
        The longer side of the PNG in pixels (nearest-neighbour scaling).

    Returns
    -------
    bytes
    """
    from PIL import Image

    top, left, bottom, right = window
    area = (slice(top, bottom), slice(left, right))
    crop = rgb[area].copy()
    crop[_outline(truth[area])] = TRUTH_COLOUR
    crop[_outline(prediction[area])] = PREDICTION_COLOUR
    crop[_outline(subject[area].astype(np.uint8))] = SUBJECT_COLOUR
    scale = max(1, size // max(crop.shape[:2]))
    picture = Image.fromarray(crop).resize((crop.shape[1] * scale, crop.shape[0] * scale),
                                           Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _crops_of_image(arrays: ImageArrays, rows: pd.DataFrame, size: int, margin: float
                    ) -> list[ObjectCrop]:
    rgb = _normalised(arrays.image)
    crops = []
    for row in rows.itertuples(index=False):
        row = row._asdict()
        prediction = arrays.predictions[row["model"]]
        labels = arrays.truth if row["kind"] == "gt" else prediction
        bbox = tuple(int(row[f"bbox_{end}_{i}"]) for end in ("min", "max") for i in (0, 1))
        window = _window(bbox, labels.shape, margin)
        subject = labels == row["label"]
        crops.append(ObjectCrop(
            image=arrays.name, model=row["model"], error=row["error"], label=int(row["label"]),
            area=int(row["area"]), bbox=bbox, window=window,
            centroid=(float(row["centroid_0"]), float(row["centroid_1"])),
            png=render_crop(rgb, arrays.truth, prediction, subject, window, size)))
    return crops


def object_crops(result: QAResult, objects: pd.DataFrame | None = None, *,
                 size: int = 96, margin: float = 0.5) -> list[ObjectCrop]:
    """Render objects (default: :func:`worst_objects` of every model) as PNG crops.

    Parameters
    ----------
    result : QAResult
    objects : pandas.DataFrame, optional
        Rows of :func:`worst_objects`. Objects of images that are not 2-D (stacks) are
        left out.
    size : int
        The longer side of each PNG, about (crops are scaled by whole factors).
    margin : float
        Context around the object, as a share of its larger side (at least 8 pixels).

    Returns
    -------
    list of ObjectCrop
        In the order of ``objects``.
    """
    objects = worst_objects(result) if objects is None else objects
    # itertuples renames "bbox-min-0" / "centroid-0": positional names would be fragile
    renamed = objects.rename(columns=lambda c: c.replace("-", "_"))
    crops: dict[int, ObjectCrop] = {}
    for image, rows in renamed.groupby("image", sort=False):
        arrays = result.arrays(image, models=sorted(set(rows["model"])))
        if arrays.truth.ndim != 2:
            continue
        for position, crop in zip(rows.index, _crops_of_image(arrays, rows, size, margin),
                                  strict=True):
            crops[position] = crop
    return [crops[position] for position in renamed.index if position in crops]
