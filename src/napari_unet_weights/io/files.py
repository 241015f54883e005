"""Read and write images, labels and folders of image files, with clear errors.

Pure numpy / tifffile / imageio: no Qt, no napari. Every error about a file names it:
unreadable or corrupt files raise :class:`OSError` (missing files
:class:`FileNotFoundError`), unsupported or unsuitable contents :class:`ValueError`, and
labels that are not integer instance labels the :class:`TypeError` / :class:`ValueError`
of :func:`napari_unet_weights._checks.validate_labels`.

Outputs are written atomically (:func:`atomic_output`): a temporary file next to the
target, renamed over it once complete, so an interrupted write never leaves a partial
file under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

from .._checks import validate_labels

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_ID_CHANGE_FRACTION",
    "atomic_output",
    "check_output_file",
    "csv_table_paths",
    "expand_inputs",
    "file_stem",
    "files_by_stem",
    "image_files",
    "implausible_labels_reason",
    "listing",
    "pair_files",
    "read_image",
    "read_labels",
    "write_csv_tables",
    "write_tiff",
]

PathLike = str | os.PathLike

TIFF_SUFFIXES = (".tif", ".tiff")
JPEG_SUFFIXES = (".jpg", ".jpeg")
PIL_SUFFIXES = (".png", *JPEG_SUFFIXES)
IMAGE_SUFFIXES = (*TIFF_SUFFIXES, *PIL_SUFFIXES, ".npy")
_MAX_LISTED = 10

#: Above this share of adjacent object pixels with different values, an image is taken
#: for intensities, not labels. Real DSB 2018 labels stay below 0.04 (touching nuclei);
#: their images are above 0.22. Superpixel-like labels of 5 x 5 pixels reach 0.2.
MAX_ID_CHANGE_FRACTION = 0.2
#: Below this many adjacent object pixel pairs, there is too little to judge.
_MIN_PAIRS_TO_JUDGE = 100


class _ContentsError(ValueError):
    """Unsupported contents found by this module (not wrapped in an OSError)."""


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
    if not isinstance(array, np.ndarray):  # an .npz archive saved as .npy
        array.close()
        raise _ContentsError(
            f"{path} holds several arrays (an .npz archive), not one image; save one "
            "array with numpy.save."
        )
    return array


def _read_pil(path: Path, *, palette_indices: bool = False) -> np.ndarray:
    if palette_indices:
        from PIL import Image

        with Image.open(path) as image:
            if image.mode == "P":  # indexed PNG: the indices are the labels
                return np.asarray(image)
    return iio.imread(path)


def _read_array(path: Path, *, palette_indices: bool = False) -> np.ndarray:
    """Read ``path`` by its suffix; wrap the readers' own exceptions in an :class:`OSError`.

    The :class:`ValueError` raised here about unsupported contents passes unchanged.
    """
    _check_readable(path)
    suffix = _suffix(path)
    try:
        if suffix in TIFF_SUFFIXES:
            return _read_tiff(path)
        if suffix == ".npy":
            return _read_npy(path)
        return _read_pil(path, palette_indices=palette_indices)
    except (MemoryError, _ContentsError):
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
    """Labels saved as (H, W, 3|4) PNG with equal colour channels → (H, W)."""
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

    Indexed (palette) PNGs give their indices. PNG files with three or four equal
    colour channels give one channel. JPEG files are refused: lossy compression changes
    the ids along object borders. Whether the contents look like labels at all is
    :func:`implausible_labels_reason`'s question, not checked here.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read (.tif/.tiff, .png or .npy).

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
        If the file type is not supported (JPEG included), holds a colour image or
        negative values.
    """
    path = Path(path)
    if _suffix(path) in JPEG_SUFFIXES:
        raise ValueError(
            f"{path}: JPEG cannot hold labels: its lossy compression changes the ids along "
            "object borders. Save labels as PNG or TIFF."
        )
    array = _read_array(path, palette_indices=True)
    if _suffix(path) in PIL_SUFFIXES:
        array = _drop_grey_channels(array, path)
    return validate_labels(array, name=str(path))


def _looks_like_colour(labels: np.ndarray) -> bool:
    """(H, W, 2..4) with H and W of 16 pixels or more: channels, not a thin volume."""
    return labels.ndim == 3 and 2 <= labels.shape[-1] <= 4 and min(labels.shape[:2]) >= 16


def _id_change_counts(plane: np.ndarray) -> tuple[int, int]:
    """Adjacent pixel pairs (along both axes) inside objects, and those whose ids differ."""
    pairs = changes = 0
    for first, second in ((plane[1:], plane[:-1]), (plane[:, 1:], plane[:, :-1])):
        inside = (first != 0) & (second != 0)
        pairs += int(np.count_nonzero(inside))
        changes += int(np.count_nonzero(inside & (first != second)))
    return pairs, changes


def implausible_labels_reason(labels: np.ndarray) -> str | None:
    """Say why an integer image is plainly not instance labels, or None if it may be.

    Two cheap tests (one pass over the pixels), tuned so that all 561 DSB 2018 label
    images pass and their intensity images do not:

    - colour or multichannel data: shape (H, W, 2|3|4) with H, W >= 16;
    - intensities: in labels, two adjacent object pixels almost always carry the same id
      (they differ only where two objects touch: under 4 % of the pairs in DSB 2018,
      375 nuclei included); in intensity images grey levels change from pixel to pixel
      (over 22 %). Images with more than :data:`MAX_ID_CHANGE_FRACTION` (20 %) of their
      adjacent non-zero pairs differing are refused, counted along the last two axes of
      each 2-D plane. A count of ids alone cannot tell: an 8-bit image has at most 255
      grey levels, fewer than the nuclei of a crowded DSB image.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer array (as returned by :func:`read_labels`).

    Returns
    -------
    str or None
        Why ``labels`` looks like an image rather than instance labels (one sentence
        without the file name), or None.
    """
    labels = np.asarray(labels)
    if _looks_like_colour(labels):
        return (f"its shape {labels.shape} is that of a colour or multichannel image "
                f"({labels.shape[-1]} values per pixel)")
    if labels.ndim < 2 or labels.size == 0:  # nothing to judge (a 0×0 image is labels)
        return None
    pairs = changes = 0
    for plane in labels.reshape(-1, *labels.shape[-2:]):
        plane_pairs, plane_changes = _id_change_counts(plane)
        pairs, changes = pairs + plane_pairs, changes + plane_changes
    if pairs < _MIN_PAIRS_TO_JUDGE or changes <= MAX_ID_CHANGE_FRACTION * pairs:
        return None
    return (f"neighbouring object pixels carry different values at {changes / pairs:.0%} "
            f"of places (instance labels: a few %, where objects touch), as grey levels "
            f"of an intensity image do")


def check_output_file(path: PathLike, *, overwrite: bool = True) -> Path:
    """Check, before any work starts, that ``path`` can be written as a new file.

    Nothing is created: the nearest existing parent folder must be a folder that this
    process may write into, and ``path`` itself must not be a folder (nor, unless
    ``overwrite``, an existing file).

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    overwrite : bool
        Whether an existing file may be replaced.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    OSError
        If ``path`` is a folder, or a parent is a file or not writable (the message says
        which).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or allow overwriting.")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: the folder {parent} is not writable.")
    return path


def _new_partial_file(path: Path) -> Path:
    """Create an empty, hidden ``.<name>.<random>.partial<suffix>`` next to ``path``.

    Created with mode 0o666 less the umask, as a plain ``open`` would (``mkstemp``'s
    0o600 would make every output private to its owner once renamed).
    """
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial{path.suffix}")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """A temporary file next to ``path`` that replaces ``path`` only once it is complete.

    Write to the yielded path; when the block ends normally the file is renamed to
    ``path`` (atomic on one file system); when it raises, including on Ctrl-C, the
    temporary file is removed and ``path`` is left as it was. Missing parent folders are
    created.

    Parameters
    ----------
    path : str or os.PathLike
        The final file name; the temporary one keeps its suffix (writers that go by the
        suffix, such as Keras, still work).

    Yields
    ------
    pathlib.Path
        The temporary file to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _new_partial_file(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_tiff(path: PathLike, array: np.ndarray, *, level: int = 6) -> Path:
    """Write ``array`` as a zlib-compressed TIFF, creating missing parent folders.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; replaced if it exists, only once the new file is complete
        (see :func:`atomic_output`).
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
        with atomic_output(path) as partial, warnings.catch_warnings():
            # an image with no pixel (0×0) is written as tifffile reads it back
            warnings.filterwarnings("ignore", ".*writing zero-size array", UserWarning)
            tifffile.imwrite(
                partial, array, compression="zlib", compressionargs={"level": level},
                photometric="minisblack",
            )
    except OSError as error:
        raise OSError(f"could not write {path}: {error.strerror or error}") from error
    return path


def csv_table_paths(path: PathLike, names: Iterable[str]) -> dict[str, Path]:
    """Where :func:`write_csv_tables` writes each table: in a folder, or by a prefix.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (an existing one, or a path ending with a separator): ``NAME.csv`` in
        it; otherwise a file name prefix: ``run1`` gives ``run1_NAME.csv``.
    names : iterable of str
        The table names.

    Returns
    -------
    dict of str to pathlib.Path
        Table name → file.
    """
    text = os.fspath(path)
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return {name: Path(text) / f"{name}.csv" for name in names}
    prefix = Path(text)
    return {name: prefix.with_name(f"{prefix.name}_{name}.csv") for name in names}


def write_csv_tables(tables: Mapping[str, object], path: PathLike) -> list[Path]:
    """Write pandas tables as CSV files named by :func:`csv_table_paths`, atomically.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Table name → table (anything with ``to_csv(path, index=False)``).
    path : str or os.PathLike
        A folder or a file name prefix, as in :func:`csv_table_paths`; missing folders
        are created.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``tables``.

    Raises
    ------
    OSError
        If a file cannot be written (the message names it).
    """
    targets = csv_table_paths(path, tables)
    for name, table in tables.items():
        try:
            with atomic_output(targets[name]) as partial:
                table.to_csv(partial, index=False)
        except OSError as error:
            raise OSError(f"could not write {targets[name]}: {error.strerror or error}"
                          ) from error
    return list(targets.values())


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


def files_by_stem(folder: PathLike, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """The image files of ``folder`` by :func:`file_stem`; a ValueError for an empty folder
    or two files of one stem (``a.tif`` and ``a.png``), which says which."""
    folder = Path(folder)
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


def listing(names: list[str]) -> str:
    """The first names, then how many more."""
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _unpaired_message(only_a: list[str], only_b: list[str], a: Path, b: Path) -> str:
    parts = [f"{len(only_a) + len(only_b)} file(s) have no partner of the same name"]
    if only_a:
        parts.append(f"only in {a}: {listing(only_a)}")
    if only_b:
        parts.append(f"only in {b}: {listing(only_b)}")
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
    files_a, files_b = files_by_stem(a, suffixes), files_by_stem(b, suffixes)
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
