"""What :func:`.evaluate_models.evaluate_models` is given, resolved before any work starts.

- The images and their ground truth (:func:`resolve_images`): a folder with ``images/``
  and ``labels/`` (paired by file name without extension, :func:`..io.files.pair_files`),
  a folder of images and a folder of labels, or two lists of arrays or files. Each
  :class:`ImageSource` reads its files when asked (zarr stores and TIFFs over
  :data:`..io.big.LARGE_PIXELS` lazily, through :func:`..io.big.open_lazy`).
- The models (:func:`resolve_models`): ``"bundled"`` (or None), a model file (``.keras``,
  or a package this plugin exported), a loaded :class:`..unet.model_file.UNetModel`, or
  precomputed label images: a folder (files paired with the images by name) or a list
  (in the images' order). Model files are loaded once, through :mod:`..unet.model_cache`.

Everything that can be checked without reading pixels or loading a network is checked
here: folders and files exist, lists have the images' length, a labels folder has a
file for every image, names are unique.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BUNDLED", "ImageSource", "ModelSource", "resolve_images", "resolve_models"]

PathLike = str | os.PathLike
#: The name that stands for the bundled nuclei model.
BUNDLED = "bundled"
#: Files smaller than this are read whole without a look at their header (a TIFF over
#: :data:`..io.big.LARGE_PIXELS` pixels is larger, unless it compresses 64-fold).
_SMALL_FILE = 1 << 20
#: Suffixes of model files (``rdf.yaml`` / ``.zip``: packages this plugin exported).
MODEL_SUFFIXES = (".keras", ".zip", ".yaml", ".yml")


def _is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


def read_array(item: Any, *, labels: bool):
    """An array as it is; a file read (lazily for zarr stores and large TIFFs)."""
    if not _is_path(item):
        return item
    from ..io.big import open_lazy, wants_zarr
    from ..io.files import read_image, read_labels

    path = Path(item)
    large = path.is_dir() or (path.is_file() and path.stat().st_size > _SMALL_FILE)
    if large and wants_zarr(path):
        return open_lazy(item, labels=labels).data
    return read_labels(item) if labels else read_image(item)


@dataclass
class ImageSource:
    """One image and its ground truth: arrays, or files read when asked.

    Attributes
    ----------
    name : str
        The image's name in the tables (the file name without extension, or the one
        given, or the position).
    image, truth : array-like or path
    """

    name: str
    image: Any = field(repr=False)
    truth: Any = field(repr=False)

    def read_image(self):
        """The image: the array, or the file read (lazily if large)."""
        return read_array(self.image, labels=False)

    def read_truth(self) -> np.ndarray:
        """The ground-truth labels as a numpy array (a lazy file computed)."""
        return np.asarray(read_array(self.truth, labels=True))


def _dataset_folders(images: Path, truths) -> tuple[Path, Path]:
    if truths is not None:
        return images, Path(truths)
    inner = (images / "images", images / "labels")
    if not all(folder.is_dir() for folder in inner):
        raise ValueError(
            f"{images} has no images/ and labels/ folders: give a folder holding both, or "
            "the images folder with truths= the labels folder.")
    return inner


def resolve_images(images, truths=None, image_names: Sequence[str] | None = None
                   ) -> list[ImageSource]:
    """The images and their ground truth, paired and named (no pixels read).

    Parameters
    ----------
    images : str, path, or sequence of arrays / paths
        A folder with ``images/`` and ``labels/`` (``truths`` None), a folder of images
        (``truths`` the folder of labels), or a list of images.
    truths : str, path, or sequence of arrays / paths, optional
        The ground-truth labels: a folder (files paired with the images by name) or a
        list in the images' order.
    image_names : sequence of str, optional
        Names for listed images (default: the file name without extension for files,
        else the position).

    Returns
    -------
    list of ImageSource

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        For a missing folder.
    ValueError
        For folders that do not pair, lists of different lengths, no images, or names
        given that are not unique or not one per image.
    """
    from ..io.files import file_stem, pair_files

    if _is_path(images):
        folder = Path(images)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder.")
        image_folder, truth_folder = _dataset_folders(folder, truths)
        pairs = pair_files(image_folder, truth_folder)
        sources = [ImageSource(file_stem(a), a, b) for a, b in pairs]
    else:
        if truths is None or _is_path(truths):
            raise ValueError("a list of images needs truths= a list of label images of the "
                             "same length.")
        images, truths = list(images), list(truths)
        if len(images) != len(truths):
            raise ValueError(f"{len(images)} images but {len(truths)} ground-truth label "
                             "images: give one per image.")
        sources = [ImageSource(file_stem(a) if _is_path(a) else str(i), a, b)
                   for i, (a, b) in enumerate(zip(images, truths, strict=True))]
    if not sources:
        raise ValueError("no images to evaluate.")
    if image_names is not None:
        image_names = [str(name) for name in image_names]
        if len(image_names) != len(sources):
            raise ValueError(f"{len(image_names)} image names for {len(sources)} images.")
        for source, name in zip(sources, image_names, strict=True):
            source.name = name
    _check_unique([s.name for s in sources], "image names")
    return sources


def _check_unique(names: list[str], what: str) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(map(str, repeated))}.")


@dataclass
class ModelSource:
    """One model of the comparison: a U-Net to run, or precomputed labels to read.

    Attributes
    ----------
    name : str
        The model's name in the tables.
    kind : str
        ``"unet"`` (run with :func:`..unet.predict.segment`) or ``"labels"``.
    model : UNetModel, path or None
        ``"unet"``: a loaded model, a model file, or None (the bundled model); loaded on
        first use, once (:func:`..unet.model_cache.load_cached`).
    labels : dict of str to array / path
        ``"labels"``: the prediction of each image, by image name.
    """

    name: str
    kind: str
    model: Any = field(default=None, repr=False)
    labels: dict[str, Any] = field(default_factory=dict, repr=False)

    def loaded(self):
        """The U-Net (``kind == "unet"``), loaded through the model cache the first time."""
        from ..unet.model_cache import load_cached
        from ..unet.model_file import UNetModel

        if not isinstance(self.model, UNetModel):
            self.model = load_cached(self.model)
        return self.model

    def read_labels(self, name: str):
        """The precomputed labels of image ``name`` (``kind == "labels"``)."""
        return read_array(self.labels[name], labels=True)


def _labels_folder(folder: Path, sources: list[ImageSource]) -> dict[str, Path]:
    from ..io.files import files_by_stem, listing

    files = files_by_stem(folder)
    missing = [s.name for s in sources if s.name not in files]
    if missing:
        raise ValueError(f"the labels folder {folder} has no file for {len(missing)} "
                         f"image(s): {listing(missing)}.")
    return {s.name: files[s.name] for s in sources}


def _model_source(spec: Any, name: str | None, position: int,
                  sources: list[ImageSource]) -> ModelSource:
    """One model argument as a :class:`ModelSource` (see :func:`resolve_models`)."""
    from ..unet.model_file import UNetModel

    if spec is None or (isinstance(spec, str) and spec == BUNDLED):
        return ModelSource(name or BUNDLED, "unet", None)
    if isinstance(spec, UNetModel):
        return ModelSource(name or f"model {position + 1}", "unet", spec)
    if _is_path(spec):
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such model file or labels folder.")
        if path.is_dir() and path.suffix.lower() != ".zarr":
            return ModelSource(name or path.name, "labels",
                               labels=_labels_folder(path, sources))
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise ValueError(f"{path}: a model is a .keras file (or a .zip / rdf.yaml "
                             "package exported by this plugin), 'bundled', or a folder of "
                             "label images.")
        return ModelSource(name or path.stem, "unet", path)
    if isinstance(spec, (list, tuple)):
        if len(spec) != len(sources):
            raise ValueError(f"precomputed labels {name or position + 1}: {len(spec)} label "
                             f"images for {len(sources)} images.")
        return ModelSource(name or f"labels {position + 1}", "labels",
                           labels={s.name: item for s, item in zip(sources, spec, strict=True)})
    raise TypeError(
        f"model {position + 1}: expected 'bundled', a model file, a UNetModel, a folder or a "
        f"list of label images, got {type(spec).__name__}. A single model's precomputed "
        "labels go in a list of their own: models=[labels] or models={'name': labels}.")


def resolve_models(models, sources: list[ImageSource],
                   names: Sequence[str] | None = None) -> list[ModelSource]:
    """The models to evaluate, named and checked (nothing loaded).

    Parameters
    ----------
    models : model, sequence of models, or mapping of name to model
        Each model is ``"bundled"`` (or None), a model file path, a :class:`UNetModel`, a
        folder of label images, or a list of label images (arrays or files) in the
        images' order. A list of models is a list: one model's precomputed labels go in a
        list of their own (``[labels]``) or a mapping (``{"cellpose": labels}``).
    sources : list of ImageSource
        The images (for the names that label folders are paired by, and the count).
    names : sequence of str, optional
        The models' names (default: the mapping's keys, ``"bundled"``, the file name
        without extension, the folder name, or ``"model N"``).

    Returns
    -------
    list of ModelSource

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        As each model's check says (missing file, unknown suffix, labels missing for an
        image, repeated names).
    """
    if isinstance(models, Mapping):
        specs, given = list(models.values()), [str(key) for key in models]
    else:
        single = models is None or _is_path(models) or not isinstance(models, (list, tuple))
        specs, given = ([models] if single else list(models)), [None] * (1 if single else
                                                                         len(models))
    if not specs:
        raise ValueError("no models to evaluate.")
    if names is not None:
        if len(names) != len(specs):
            raise ValueError(f"{len(names)} names for {len(specs)} models.")
        given = [str(name) for name in names]
    resolved = [_model_source(spec, name, i, sources)
                for i, (spec, name) in enumerate(zip(specs, given, strict=True))]
    _check_unique([m.name for m in resolved], "model names")
    return resolved
