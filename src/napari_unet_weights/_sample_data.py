"""Sample data: three real DSB 2018 nuclei images with labels, and the seed's three discs.

The DSB 2018 files live in ``data/`` (see ``data/README.md`` for credits). Each napari
sample command returns an image layer and its labels layer; :func:`load_sample` gives
the bare ``(image, labels)`` arrays to the CLI and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from .io.files import read_image, read_labels

__all__ = [
    "SAMPLES",
    "load_sample",
    "nuclei_crowded",
    "nuclei_fluorescence",
    "nuclei_histology",
    "sample_layers",
    "touching_discs",
    "touching_discs_labels",
]

LayerDataTuple = tuple[np.ndarray, dict[str, Any], str]

# The seed blog's example: (row, column, radius) of three discs in a 64×64 image.
DISC_PARAMS = ((20, 16, 10), (44, 16, 10), (47, 47, 10))
DISC_SHAPE = (64, 64)


@dataclass(frozen=True)
class Sample:
    """One sample: the layer name, whether the image is RGB, and where it comes from."""

    name: str
    rgb: bool
    source: str


SAMPLES: dict[str, Sample] = {
    "nuclei_fluorescence": Sample(
        "DSB nuclei (fluorescence)", False, "DSB 2018 stage 1 train 44ab6a09eedee848"
    ),
    "nuclei_crowded": Sample(
        "DSB crowded nuclei", False,
        "DSB 2018 stage 1 train 0ea221716cf13710, rows 192:448, columns 120:376",
    ),
    "nuclei_histology": Sample(
        "DSB nuclei (histology)", True, "DSB 2018 stage 1 train 3934a094e8537841"
    ),
    "touching_discs": Sample(
        "touching discs", False, "seed blog example: three discs of radius 10 in 64×64"
    ),
}


def touching_discs_labels() -> np.ndarray:
    """The seed blog's three discs as uint16 labels 1, 2, 3 in a 64×64 image.

    ``skimage.draw.disk`` replaces the seed's removed ``draw.circle`` (same pixels).
    Discs 1 and 2 are 5 pixels apart (rows 30–34); disc 3 is farther away.
    """
    from skimage.draw import disk

    labels = np.zeros(DISC_SHAPE, dtype=np.uint16)
    for value, (row, column, radius) in enumerate(DISC_PARAMS, start=1):
        rr, cc = disk((row, column), radius, shape=DISC_SHAPE)
        labels[rr, cc] = value
    return labels


def _data_file(name: str):
    return resources.files(__package__).joinpath("data", name)


def _read_packaged(name: str) -> tuple[np.ndarray, np.ndarray]:
    with resources.as_file(_data_file(f"{name}.tif")) as image_path:
        image = read_image(image_path)
    with resources.as_file(_data_file(f"{name}_labels.tif")) as labels_path:
        labels = read_labels(labels_path)
    return image, labels


def load_sample(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(image, labels)`` arrays of one sample.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLES`: ``"nuclei_fluorescence"``, ``"nuclei_crowded"``,
        ``"nuclei_histology"`` or ``"touching_discs"``.

    Returns
    -------
    image : numpy.ndarray
        uint8 (H, W) or (H, W, 3) for the DSB samples; for the discs, the labels'
        binary mask as float32.
    labels : numpy.ndarray
        uint16 instance labels (H, W), 0 = background, numbered 1..N.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}.")
    if name == "touching_discs":
        labels = touching_discs_labels()
        return (labels > 0).astype(np.float32), labels
    return _read_packaged(name)


def sample_layers(name: str) -> list[LayerDataTuple]:
    """napari layer data of one sample: its image layer, then its labels layer.

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLES`.

    Returns
    -------
    list of (data, metadata, layer_type)
        ``[(image, {"name": ...}, "image"), (labels, {"name": "... labels"}, "labels")]``.
    """
    image, labels = load_sample(name)
    sample = SAMPLES[name]
    image_meta: dict[str, Any] = {"name": sample.name, "metadata": {"source": sample.source}}
    if sample.rgb:
        image_meta["rgb"] = True
    labels_meta = {"name": f"{sample.name} labels", "metadata": {"source": sample.source}}
    return [(image, image_meta, "image"), (labels, labels_meta, "labels")]


def nuclei_fluorescence() -> list[LayerDataTuple]:
    """DSB 2018 fluorescence nuclei, 256×256 grayscale, 34 nuclei, with labels."""
    return sample_layers("nuclei_fluorescence")


def nuclei_crowded() -> list[LayerDataTuple]:
    """A 256×256 crop of crowded DSB 2018 fluorescence nuclei (98, many touching)."""
    return sample_layers("nuclei_crowded")


def nuclei_histology() -> list[LayerDataTuple]:
    """DSB 2018 RGB histology (H&E-like) nuclei, 256×320, 65 nuclei, with labels."""
    return sample_layers("nuclei_histology")


def touching_discs() -> list[LayerDataTuple]:
    """The seed blog's example: three discs of radius 10, two of them nearly touching."""
    return sample_layers("touching_discs")
