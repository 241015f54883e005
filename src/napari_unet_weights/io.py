"""Read and write images, labels and folders of image files, with clear errors.

Pure numpy / tifffile / imageio: no Qt, no napari. Every error about a file names it:
unreadable or corrupt files raise :class:`OSError` (missing files
:class:`FileNotFoundError`), unsupported or unsuitable contents :class:`ValueError`, and
labels that are not integer instance labels the :class:`TypeError` / :class:`ValueError`
of :func:`napari_unet_weights.weights.validate_labels`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

from .weights import validate_labels

__all__ = [
    "IMAGE_SUFFIXES",
    "expand_inputs",
    "file_stem",
    "image_files",
    "pair_files",
    "read_image",
    "read_labels",
    "write_tiff",
]

PathLike = str | os.PathLike

TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = (*TIFF_SUFFIXES, *PIL_SUFFIXES, ".npy")
_MAX_LISTED = 10


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not an image file.")
    if _suffix(path) not in IMAGE_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; expected one of "
            f"{', '.join(IMAGE_SUFFIXES)}."
        )


class _TiffWarnings(logging.Filter):
    """Collect (and silence) the warnings tifffile logs while parsing a broken file."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


def _read_tiff(path: Path) -> np.ndarray:
    logger = logging.getLogger("tifffile")
    warnings = _TiffWarnings()
    logger.addFilter(warnings)
    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.series:
                raise ValueError("; ".join(warnings.messages) or "no image in the file")
            return tiff.asarray()
    finally:
        logger.removeFilter(warnings)


def _read_npy(path: Path) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if not isinstance(array, np.ndarray):  # an .npz saved as .npy
        raise ValueError("not a single numpy array")
    return array


def _read_pil(path: Path, *, palette_indices: bool = False) -> np.ndarray:
    if palette_indices:
        from PIL import Image

        with Image.open(path) as image:
            if image.mode == "P":  # indexed PNG: the indices are the labels
                return np.asarray(image)
    return iio.imread(path)


def _read_array(path: Path, *, palette_indices: bool = False) -> np.ndarray:
    """Read ``path`` by its suffix; wrap the readers' exceptions in an :class:`OSError`."""
    _check_readable(path)
    suffix = _suffix(path)
    try:
        if suffix in TIFF_SUFFIXES:
            return _read_tiff(path)
        if suffix == ".npy":
            return _read_npy(path)
        return _read_pil(path, palette_indices=palette_indices)
    except MemoryError:
        raise
    except Exception as error:  # the readers raise many types for corrupt files
        reason = str(error) or type(error).__name__
        raise OSError(f"could not read {path}: {reason}") from error


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file (.tif/.tiff, .png, .jpg/.jpeg or .npy) into a numpy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    numpy.ndarray
        The pixels as stored: 2-D grayscale, (H, W, 3|4) colour, or n-D stacks.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    OSError
        If the file is unreadable or corrupt (the message names the file).
    ValueError
        If the file type is not supported.
    """
    return _read_array(Path(path))


def _drop_grey_channels(array: np.ndarray, path: Path) -> np.ndarray:
    """Labels saved as (H, W, 3|4) PNG/JPEG with equal colour channels → (H, W)."""
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        return array
    colour = array[..., :3]
    if np.all(colour == colour[..., :1]):
        return np.ascontiguousarray(colour[..., 0])
    raise ValueError(
        f"{path} is a colour image, not instance labels: save labels as a single-channel "
        "integer image (0 = background, 1..N = objects)."
    )


def read_labels(path: PathLike) -> np.ndarray:
    """Read instance labels (integers, 0 = background) from an image file.

    Indexed (palette) PNGs give their indices. PNG/JPEG files with three or four equal
    colour channels give one channel.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read (.tif/.tiff, .png, .jpg/.jpeg or .npy).

    Returns
    -------
    numpy.ndarray
        Integer labels.

    Raises
    ------
    FileNotFoundError, OSError
        If the file is missing, unreadable or corrupt.
    TypeError
        If the file holds floating-point or boolean values.
    ValueError
        If the file type is not supported, holds a colour image or negative values.
    """
    path = Path(path)
    array = _read_array(path, palette_indices=True)
    if _suffix(path) in PIL_SUFFIXES:
        array = _drop_grey_channels(array, path)
    return validate_labels(array, name=str(path))


def write_tiff(path: PathLike, array: np.ndarray, *, level: int = 6) -> Path:
    """Write ``array`` as a zlib-compressed TIFF, creating missing parent folders.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; overwritten if it exists.
    array : numpy.ndarray
        Pixels to write, dtype kept (weight maps are float32).
    level : int
        zlib compression level, 1 (fast) to 9 (small).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    OSError
        If the file cannot be written (the message names it).
    """
    path = Path(path)
    array = np.asarray(array)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(
            path, array, compression="zlib", compressionargs={"level": level},
            photometric="minisblack",
        )
    except OSError as error:
        raise OSError(f"could not write {path}: {error.strerror or error}") from error
    return path


def file_stem(path: PathLike) -> str:
    """The file name without its image suffix (``"a.ome.tif"`` → ``"a.ome"``)."""
    return Path(path).stem


def _is_image_file(path: Path, suffixes: Iterable[str]) -> bool:
    return path.is_file() and not path.name.startswith(".") and _suffix(path) in suffixes


def image_files(folder: PathLike, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (hidden files skipped).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to list (not recursive).
    suffixes : iterable of str
        Accepted lower-case suffixes, with the dot.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If ``folder`` is missing or is not a folder.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder.")
    suffixes = tuple(s.lower() for s in suffixes)
    return sorted(p for p in folder.iterdir() if _is_image_file(p, suffixes))


def _by_stem(folder: Path, suffixes: Iterable[str]) -> dict[str, Path]:
    files = image_files(folder, suffixes)
    if not files:
        raise ValueError(
            f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})."
        )
    by_stem: dict[str, Path] = {}
    for path in files:
        stem = file_stem(path)
        if stem in by_stem:
            raise ValueError(
                f"{folder} holds two files named {stem!r}: {by_stem[stem].name} and "
                f"{path.name}; keep one of them."
            )
        by_stem[stem] = path
    return by_stem


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _unpaired_message(only_a: list[str], only_b: list[str], a: Path, b: Path) -> str:
    parts = [f"{len(only_a) + len(only_b)} file(s) have no partner of the same name"]
    if only_a:
        parts.append(f"only in {a}: {_listing(only_a)}")
    if only_b:
        parts.append(f"only in {b}: {_listing(only_b)}")
    return "; ".join(parts) + "."


def pair_files(
    folder_a: PathLike,
    folder_b: PathLike,
    *,
    strict: bool = True,
    suffixes: Iterable[str] = IMAGE_SUFFIXES,
) -> list[tuple[Path, Path]]:
    """Pair the image files of two folders by file name without extension.

    ``a/img1.png`` pairs with ``b/img1.tif``. Typical use: images with their labels,
    or ground-truth labels with predicted labels.

    Parameters
    ----------
    folder_a, folder_b : str or os.PathLike
        The two folders (not searched recursively; hidden files are skipped).
    strict : bool
        If True (default), a file without a partner is an error; if False, such files
        are left out.
    suffixes : iterable of str
        Accepted lower-case suffixes, with the dot.

    Returns
    -------
    list of (pathlib.Path, pathlib.Path)
        ``(file_in_a, file_in_b)`` pairs sorted by name.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If a folder is missing or is not a folder.
    ValueError
        If a folder holds no image files, holds two files with the same name (e.g.
        ``x.tif`` and ``x.png``), no pair is found, or (``strict``) some files have no
        partner; the message lists them.
    """
    a, b = Path(folder_a), Path(folder_b)
    suffixes = tuple(s.lower() for s in suffixes)
    files_a, files_b = _by_stem(a, suffixes), _by_stem(b, suffixes)
    common = sorted(files_a.keys() & files_b.keys())
    only_a = sorted(files_a.keys() - files_b.keys())
    only_b = sorted(files_b.keys() - files_a.keys())
    if not common or (strict and (only_a or only_b)):
        prefix = f"no file names in common between {a} and {b}: " if not common else ""
        raise ValueError(prefix + _unpaired_message(only_a, only_b, a, b))
    return [(files_a[stem], files_b[stem]) for stem in common]


def expand_inputs(
    paths: Iterable[PathLike], suffixes: Iterable[str] = IMAGE_SUFFIXES
) -> list[Path]:
    """Turn files and folders into a sorted list of files without duplicates.

    Folders give the image files directly inside them (by suffix, hidden files
    skipped); files are kept as given, whatever their suffix, so that reading them
    later reports a clear error rather than silently dropping them.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Files and folders.
    suffixes : iterable of str
        Accepted lower-case suffixes for files found in folders.

    Returns
    -------
    list of pathlib.Path
        Sorted files; may be empty (e.g. only empty folders).

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    found: set[Path] = set()
    for item in map(Path, paths):
        if item.is_dir():
            found.update(image_files(item, suffixes))
        elif item.exists():
            found.add(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder.")
    return sorted(found)
