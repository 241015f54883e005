"""Big images and labels on disk, read and written lazily: zarr, OME-Zarr and large TIFFs.

Reading (:func:`open_lazy`) gives a dask array whose chunks are the file's own, read
chunk by chunk when computed (nothing image-sized is read up front):

- a **zarr array** (``x.zarr``, or ``x.zarr/path/to/array``; zarr v2 or v3);
- an **OME-Zarr image** (a group with ``multiscales`` metadata, OME-NGFF 0.4 in
  ``.zattrs`` or 0.5 under ``"ome"`` in ``zarr.json``; a bioformats2raw folder's first
  image): its level 0, the first dataset of the first multiscale; a channel axis
  ``c`` with one channel is dropped, with several it is moved last (images) or
  refused (labels);
- a **TIFF** through tifffile's zarr store (series 0, level 0). A tiled TIFF keeps its
  tiles as chunks; a striped one is read in bands of whole strips and given chunks of
  :data:`STRIPED_CHUNK` pixels square. The reader pickles as its path, so the worker
  processes of a dask cluster open the file themselves (once per process).

Writing keeps the input's chunking:

- :func:`write_zarr_array`: a dask array (a weight map) into a plain zarr array, region
  by region (memory bounded, as :func:`..weights.lazy.write_zarr`), on any ``compute``
  (an :class:`..runtime.engine.Engine`'s, for progress, cancel and clusters);
- :func:`create_labels_zarr` then :func:`write_pyramid`: labels as an OME-Zarr 0.5
  image (zarr v3) with a multiscale pyramid: level 0 at full resolution, each further
  level every second pixel of the one before along y and x (nearest neighbour: ids
  stay ids), until a level fits in one chunk. The group's metadata also says
  ``image-label``. napari 0.9 opens such a folder without plugins, lazily, as a
  multiscale *image* layer (its built-in reader turns a zarr group's arrays into the
  levels); as a labels layer: ``viewer.add_labels(open_pyramid(path), multiscale=True)``
  (or, with the napari-ome-zarr plugin, ``viewer.open(path, plugin="napari-ome-zarr")``).

Outputs are written under a hidden temporary name beside the target and renamed once
complete (:func:`atomic_store`): an interrupted write leaves no partial store.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import validate_labels
from .files import (
    TIFF_SUFFIXES,
    _looks_like_colour,
    check_output_file,
    expand_inputs,
    implausible_labels_reason,
)

__all__ = [
    "LARGE_PIXELS",
    "LAZY_TIFF_PIXELS",
    "LEVEL_SIDE",
    "MAX_LEVELS",
    "STRIPED_CHUNK",
    "LazyArray",
    "atomic_store",
    "check_output_store",
    "create_labels_zarr",
    "expand_lazy_inputs",
    "halvings",
    "is_zarr_store",
    "labels_problem",
    "lazy_pyramid",
    "open_lazy",
    "open_pyramid",
    "tiff_pixels",
    "write_pyramid",
    "write_zarr_array",
]

ZARR_SUFFIX = ".zarr"
_ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")
#: What is "large" (8192², all planes together; 256 MiB of uint32 labels): TIFFs over it
#: are read lazily (the CLI), layers over it computed lazily (the widgets).
LARGE_PIXELS = 8192 * 8192
#: The CLI's older name of :data:`LARGE_PIXELS` (kept for compatibility: the same number).
LAZY_TIFF_PIXELS = LARGE_PIXELS
#: Pyramids shown in napari stop at the first level whose plane is at most this many
#: pixels a side (:func:`lazy_pyramid`).
LEVEL_SIDE = 1024
#: The chunk side given to striped (untiled) TIFFs, whose strips span the whole width.
STRIPED_CHUNK = 1024
#: Most levels of a labels pyramid, level 0 included (napari's built-in reader sorts the
#: level names as text: "10" would come before "2").
MAX_LEVELS = 8
#: Side of the window read to judge whether a file holds instance labels.
SAMPLE_SIDE = 512

Compute = Callable[..., tuple]


class _Unusable(ValueError):
    """Contents found unusable by this module (passed on as they are, not as an OSError)."""


# -- finding inputs ----------------------------------------------------------------------
def is_zarr_store(path) -> bool:
    """Whether ``path`` is a zarr store: a folder named ``*.zarr`` or holding zarr metadata."""
    path = Path(path)
    return path.is_dir() and (path.suffix.lower() == ZARR_SUFFIX
                              or any((path / name).is_file() for name in _ZARR_METADATA))


def expand_lazy_inputs(paths: Iterable) -> list[Path]:
    """:func:`.files.expand_inputs`, with zarr stores taken as files.

    A zarr store given is one input; a folder gives its image files and the ``*.zarr``
    stores directly inside it (hidden ones skipped).
    """
    found: set[Path] = set()
    for item in map(Path, paths):
        if is_zarr_store(item):
            found.add(item)
            continue
        found.update(expand_inputs([item]))
        if item.is_dir():
            found.update(child for child in item.iterdir() if not child.name.startswith(".")
                         and child.suffix.lower() == ZARR_SUFFIX and is_zarr_store(child))
    return sorted(found)


def tiff_pixels(path) -> int | None:
    """Pixels of a TIFF's first image (all its planes), from its header; None if unreadable."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            return math.prod(tiff.series[0].shape) if tiff.series else None
    except Exception:  # any reader error: the file is read (and reported) as usual
        return None


def wants_zarr(path) -> bool:
    """Whether ``path`` is read lazily: a zarr store, or a TIFF over :data:`LARGE_PIXELS`."""
    path = Path(path)
    if is_zarr_store(path):
        return True
    return path.suffix.lower() in TIFF_SUFFIXES and (tiff_pixels(path) or 0) > LARGE_PIXELS


# -- reading -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LazyArray:
    """A file's pixels as a lazy dask array, with what the outputs keep of it.

    Attributes
    ----------
    data : dask.array.Array
        Channels last, if any; chunked as :attr:`chunks`.
    chunks : tuple of int
        The file's chunk shape (per axis of ``data``).
    axes : tuple of str, optional
        Axis names (``"t"``, ``"z"``, ``"y"``, ``"x"``, ``"c"``, ...) where the file says.
    transforms : list of dict, optional
        OME-Zarr ``coordinateTransformations`` of level 0, per axis of ``data``.
    kind : str
        ``"zarr"``, ``"ome-zarr"``, ``"tiff"``, or ``"memory"`` (another file type, read
        whole).
    """

    data: Any
    chunks: tuple[int, ...]
    axes: tuple[str, ...] | None
    transforms: list | None
    kind: str


class _TiffReader:
    """A TIFF's image read by slices through tifffile's zarr store; pickles as its path.

    Each process opens the file once (:func:`_open_tiff`) and keeps it open.
    """

    def __init__(self, path, series: int = 0, level: int = 0) -> None:
        self.path, self.series, self.level = str(Path(path).resolve()), series, level
        array, self.axes = _open_tiff(self.path, series, level)
        self.shape, self.dtype, self.ndim = tuple(array.shape), array.dtype, array.ndim
        self.store_chunks = tuple(array.chunks)

    def __getitem__(self, key):
        return _open_tiff(self.path, self.series, self.level)[0][key]

    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


#: Open TIFFs of this process: (path, mtime, series, level) → (TiffFile, zarr array, axes).
_TIFFS: dict[tuple, tuple[Any, Any, str]] = {}
_TIFFS_LOCK = threading.Lock()
#: Most TIFFs a process keeps open.
_MAX_OPEN_TIFFS = 4


def _open_tiff(path: str, series: int, level: int) -> tuple[Any, str]:
    """A TIFF's series and level as a zarr array, and its axes; opened once per process."""
    import tifffile
    import zarr

    key = (path, os.stat(path).st_mtime_ns, series, level)
    with _TIFFS_LOCK:
        if key not in _TIFFS:
            while len(_TIFFS) >= _MAX_OPEN_TIFFS:
                _TIFFS.pop(next(iter(_TIFFS)))[0].close()
            tiff = tifffile.TiffFile(path)
            try:
                if not tiff.series:
                    raise ValueError("no image in the file")
                chosen = tiff.series[series]
                _TIFFS[key] = (tiff, zarr.open_array(chosen.aszarr(level=level), mode="r"),
                               chosen.axes)
            except BaseException:
                tiff.close()
                raise
        return _TIFFS[key][1:]


def close_tiffs() -> None:
    """Close the TIFFs this process keeps open."""
    with _TIFFS_LOCK:
        while _TIFFS:
            _TIFFS.popitem()[1][0].close()


def _multiscales(attributes: dict) -> list | None:
    """The OME-Zarr ``multiscales`` of a group's attributes (NGFF 0.4 or 0.5), or None."""
    return (attributes.get("ome") or {}).get("multiscales") or attributes.get("multiscales")


def _open_zarr(path: Path):
    """(zarr array, axes or None, level-0 transforms or None, kind) of a zarr path."""
    import zarr

    node = zarr.open(str(path), mode="r")
    while isinstance(node, zarr.Group):
        attributes = dict(node.attrs)
        multiscales = _multiscales(attributes)
        if multiscales:
            scale = multiscales[0]
            level = scale["datasets"][0]
            axes = scale.get("axes")
            names = tuple(a["name"] if isinstance(a, dict) else a for a in axes) if axes else None
            return node[level["path"]], names, level.get("coordinateTransformations"), \
                "ome-zarr"
        arrays = sorted(node.array_keys())
        if "bioformats2raw.layout" in attributes and "0" in node.group_keys():
            node = node["0"]
        elif len(arrays) == 1:
            node = node[arrays[0]]
        else:
            raise _Unusable(
                f"{path} is a zarr group without OME-Zarr multiscales metadata and with "
                f"{len(arrays)} arrays ({', '.join(arrays[:5]) or 'none'}); give the path of "
                "one array, such as " + str(path / (arrays[0] if arrays else "ARRAY")) + ".")
    return node, None, None, "zarr"


def _dask_of(reader, chunks: Sequence[int], name: str):
    import dask.array as da
    from dask.base import tokenize

    return da.from_array(reader, chunks=tuple(chunks), asarray=True, fancy=False,
                         name=f"{name}-{tokenize(name, reader.shape, str(reader.dtype))}")


def _tiff_chunks(reader: _TiffReader) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(read chunks, output chunks): tiles as they are; strips in bands, then squares."""
    chunks, shape = reader.store_chunks, reader.shape
    spatial = 3 if (reader.axes or "").endswith("S") else 2  # samples (RGB) last
    width_axis = reader.ndim - spatial + 1
    if chunks[width_axis] < shape[width_axis]:  # tiled
        return chunks, chunks
    rows = chunks[width_axis - 1]
    band = max(rows, STRIPED_CHUNK // rows * rows)
    read = tuple(band if axis == width_axis - 1 else c for axis, c in enumerate(chunks))
    out = tuple(min(STRIPED_CHUNK, n) if axis in (width_axis - 1, width_axis) else c
                for axis, (c, n) in enumerate(zip(chunks, shape)))
    return read, out


def _in_memory(path: Path, labels: bool) -> LazyArray:
    """A small file of another type (PNG, JPEG, NPY), read whole by :mod:`.files`, as dask."""
    import dask.array as da

    from .files import read_image, read_labels

    data = read_labels(path) if labels else read_image(path)
    spatial = data.ndim - (1 if _looks_like_colour(data) else 0)
    chunks = tuple(min(STRIPED_CHUNK, n) if spatial - 2 <= axis < spatial else
                   (1 if axis < spatial else n) for axis, n in enumerate(data.shape))
    return LazyArray(da.from_array(data, chunks=chunks), chunks, None, None, "memory")


def _open_raw(path: Path, labels: bool) -> LazyArray:
    """The file's array as stored (axis order untouched)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder.")
    if not is_zarr_store(path) and path.suffix.lower() not in TIFF_SUFFIXES:
        return _in_memory(path, labels)
    try:
        if is_zarr_store(path):
            array, axes, transforms, kind = _open_zarr(path)
            data = _dask_of(array, array.chunks, f"zarr-{path.name}")
            return LazyArray(data, tuple(array.chunks), axes, transforms, kind)
        reader = _TiffReader(path)
        read, out = _tiff_chunks(reader)
        data = _dask_of(reader, read, f"tiff-{path.name}")
        axes = tuple(a.lower() for a in reader.axes) if reader.axes else None
        return LazyArray(data.rechunk(out) if read != out else data, out, axes, None, "tiff")
    except _Unusable:
        raise
    except Exception as error:  # the readers raise many types for broken files
        raise OSError(f"could not read {path}: {error or type(error).__name__}") from error


def _channel_axis(lazy: LazyArray) -> int | None:
    """The channel axis the file names (``c`` in OME-Zarr, ``c``/``s`` in TIFF), or None."""
    names = lazy.axes or ()
    found = [i for i, name in enumerate(names) if name in ("c", "s")]
    return found[0] if len(found) == 1 and len(names) == lazy.data.ndim else None


def _reordered(lazy: LazyArray, axes: Sequence[int], data) -> LazyArray:
    """``lazy`` with ``data`` whose axes are ``lazy``'s axes ``axes`` (in that order)."""
    def pick(values):
        return None if values is None else [values[i] for i in axes]

    transforms = None if lazy.transforms is None else [
        {**t, **{key: pick(t[key]) for key in ("scale", "translation") if key in t}}
        for t in lazy.transforms]
    names = pick(lazy.axes)
    return LazyArray(data, tuple(pick(lazy.chunks)), None if names is None else tuple(names),
                     transforms, lazy.kind)


def open_lazy(path, *, labels: bool = False) -> LazyArray:
    """A zarr store, OME-Zarr image or TIFF as a lazy dask array (see the module).

    Parameters
    ----------
    path : str or path
        A ``.zarr`` store (array, OME-Zarr group, or a path inside a store) or a TIFF;
        other files (PNG, JPEG, NPY: small by nature) are read whole by :mod:`.files` and
        given square chunks of :data:`STRIPED_CHUNK` pixels (one plane deep).
    labels : bool
        Labels: integer dtype required (checked here, without reading pixels), a
        one-channel axis dropped, several channels refused. Images: the channel axis is
        moved last (a single channel dropped).

    Returns
    -------
    LazyArray

    Raises
    ------
    FileNotFoundError, OSError
        If the path is missing or cannot be read.
    TypeError, ValueError
        For labels that are not integers or have channels; for unsupported files.
    """
    lazy = _open_raw(Path(path), labels)
    axis = _channel_axis(lazy)
    others = [i for i in range(lazy.data.ndim) if i != axis]
    if axis is not None and lazy.data.shape[axis] == 1:
        lazy = _reordered(lazy, others, lazy.data[(slice(None),) * axis + (0,)])
    elif axis is not None and labels:
        raise ValueError(f"{path} has {lazy.data.shape[axis]} channels; labels have one.")
    elif axis is not None and axis != lazy.data.ndim - 1:
        lazy = _reordered(lazy, [*others, axis], lazy.data.transpose([*others, axis]))
    if labels:
        validate_labels(np.zeros((0,) * lazy.data.ndim, lazy.data.dtype), name=str(path))
    return lazy


def labels_problem(data) -> str | None:
    """:func:`.files.implausible_labels_reason` of a lazy array, judged on a window of it.

    Reads one window of at most :data:`SAMPLE_SIDE` pixels square from the middle of the
    first plane (of every channel of a colour-like shape).
    """
    colour = _looks_like_colour(data)
    lead = data.ndim - (3 if colour else 2)
    window = tuple(slice(None) if colour and axis == data.ndim - 1 else
                   slice(max(0, (n - SAMPLE_SIDE) // 2), (n - SAMPLE_SIDE) // 2 + SAMPLE_SIDE)
                   for axis, n in enumerate(data.shape[lead:], start=lead))
    sample = np.asarray(data[(0,) * lead + window])
    reason = implausible_labels_reason(sample)
    return reason.replace(str(sample.shape), str(tuple(data.shape))) if reason else reason


# -- output stores ----------------------------------------------------------------------
def check_output_store(path, *, overwrite: bool = True) -> Path:
    """:func:`.files.check_output_file` for an output that is a zarr store (a folder).

    An existing zarr store (or empty folder) counts as an existing output (replaced only
    with ``overwrite``); an existing folder that is not a zarr store is never replaced.
    """
    path = Path(path)
    if not path.is_dir():
        return check_output_file(path, overwrite=overwrite)
    empty = not any(path.iterdir())
    if not empty and not any((path / name).is_file() for name in _ZARR_METADATA):
        raise IsADirectoryError(f"{path} is a folder but not a zarr store: not replaced.")
    if not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or allow overwriting.")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot replace {path}: the folder {path.parent} is not "
                              "writable.")
    return path


def _hidden_beside(path: Path, what: str) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.{what}{path.suffix}")


@contextlib.contextmanager
def atomic_store(path) -> Iterator[Path]:
    """A temporary store beside ``path`` (a hidden folder) that replaces ``path`` once complete.

    Write the store at the yielded path; when the block ends normally it is renamed to
    ``path`` (an existing zarr store or file there is removed once the new one is in
    place); when it raises, Ctrl-C included, the temporary store is deleted and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _hidden_beside(path, "partial")
    try:
        yield partial
        old = None
        if path.is_dir() or path.is_file():
            check_output_store(path, overwrite=True)  # never a folder that is not zarr
            old = _hidden_beside(path, "old")
            os.rename(path, old)
        os.rename(partial, path)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


# -- writing -----------------------------------------------------------------------------
def write_zarr_array(array, target, *, compute: Compute | None = None,
                     memory_budget: int | str = "auto",
                     progress: Callable[[int, int], None] | None = None):
    """Store a dask array into an existing zarr array of the same shape, region by region.

    Parameters
    ----------
    array : dask.array.Array
        What to write (e.g. a lazy weight map); rechunked to ``target``'s chunks.
    target : zarr.Array
        Where (its chunks are kept).
    compute : callable, optional
        ``compute(delayed) -> tuple``: an :class:`..runtime.engine.Engine`'s ``compute`` (threads
        or a cluster, with its progress bar and cancel); default ``dask.compute``.
    memory_budget : int or str
        What a region's chunks may take (:func:`..runtime.memory.region_shape`).
    progress : callable, optional
        ``progress(done, total)`` after each region.

    Returns
    -------
    zarr.Array
        ``target``.
    """
    import dask
    import dask.array as da

    from ..runtime.memory import region_shape, regions, resolve_memory_budget

    compute = dask.compute if compute is None else compute
    array = array.rechunk(target.chunks)
    budget = resolve_memory_budget(memory_budget)
    per_chunk = math.prod(target.chunks) * array.dtype.itemsize
    planned = [] if array.size == 0 else list(
        regions(array.chunks, region_shape(array.numblocks, per_chunk, budget)))
    for number, region in enumerate(planned):
        compute(da.store(array[region], target, regions=region, lock=False, compute=False))
        if progress is not None:
            progress(number + 1, len(planned))
    return target


def _ome_axes(names: Sequence[str] | None, ndim: int) -> list[dict]:
    """OME-NGFF axes: the file's names if they make valid ones, else t, z, y, x by count."""
    kinds = {"t": "time", "z": "space", "y": "space", "x": "space"}
    if names is None or len(names) != ndim or list(names[-2:]) != ["y", "x"]:
        names = {2: "yx", 3: "zyx", 4: "tzyx"}.get(ndim) or ("t", "dim_1", "z", "y", "x")
    axes = [{"name": name, **({"type": kinds[name]} if name in kinds else {})}
            for name in names]
    order = [{"time": 0, "space": 2}.get(axis.get("type"), 1) for axis in axes]
    spatial = sum(axis.get("type") == "space" for axis in axes)
    if order != sorted(order) or not 2 <= spatial <= 3 or ndim > 5:
        if ndim > 5:
            raise ValueError(f"OME-Zarr holds at most 5 axes; these labels have {ndim}.")
        return _ome_axes(None, ndim)
    return axes


def _level_transforms(transforms: list | None, ndim: int, factor: int) -> list[dict]:
    """A level's coordinateTransformations: level 0's, its y and x scale times ``factor``."""
    transforms = transforms or [{"type": "scale", "scale": [1.0] * ndim}]
    return [{**t, "scale": [float(s) * (factor if i >= ndim - 2 else 1)
                            for i, s in enumerate(t["scale"])]} if t.get("type") == "scale"
            else dict(t) for t in transforms]


def create_labels_zarr(path, shape: Sequence[int], chunks: Sequence[int], *,
                       dtype=np.uint32, axes: Sequence[str] | None = None,
                       transforms: list | None = None, name: str = "labels"):
    """A new OME-Zarr 0.5 labels image at ``path``: its group and level 0 (zeros).

    Fill level 0 (e.g. ``segment(..., out=level0)``), then :func:`write_pyramid`.

    Parameters
    ----------
    path : str or path
        The store to create (it must not exist).
    shape, chunks : sequence of int
        Level 0's shape and chunks (the input's chunking).
    dtype : numpy dtype
        Of every level.
    axes : sequence of str, optional
        Axis names from the input (``"t"``, ``"z"``, ``"y"``, ``"x"``); default by count.
    transforms : list of dict, optional
        Level 0's OME coordinateTransformations (default: scale 1).
    name : str
        The multiscale's name.

    Returns
    -------
    zarr.Array
        Level 0 (path ``"0"`` in the group).
    """
    import zarr

    group = zarr.create_group(store=str(path), zarr_format=3, attributes={"ome": {
        "version": "0.5",
        "multiscales": [{"name": name, "axes": _ome_axes(axes, len(shape)),
                         "type": "stride",
                         "metadata": {"description": "each level takes every second pixel "
                                      "of the one before along y and x (nearest neighbour)"},
                         "datasets": [{"path": "0", "coordinateTransformations":
                                       _level_transforms(transforms, len(shape), 1)}]}],
        "image-label": {},
    }})
    return group.create_array("0", shape=tuple(shape), chunks=tuple(chunks), dtype=dtype,
                              fill_value=0)


def halvings(shape: Sequence[int], fits: Sequence[int], max_levels: int | None = None
             ) -> list[tuple[int, ...]]:
    """Shapes of a pyramid's levels after level 0: the one stop rule of the package.

    Each level halves the one before along y and x (every second pixel: sides rounded
    up), until a level's plane fits in ``fits`` (height, width).

    Parameters
    ----------
    shape : sequence of int
        Level 0's shape (..., H, W).
    fits : (int, int)
        The plane to fit in: a chunk (a written pyramid), or :data:`LEVEL_SIDE` square
        (a pyramid shown in napari).
    max_levels : int, optional
        Most levels, level 0 included (None: no limit).

    Returns
    -------
    list of tuple of int
    """
    shapes: list[tuple[int, ...]] = []
    current = tuple(int(n) for n in shape)
    while ((max_levels is None or len(shapes) + 1 < max_levels)
           and any(n > c for n, c in zip(current[-2:], fits[-2:]))):
        current = (*current[:-2], *(-(-n // 2) for n in current[-2:]))
        shapes.append(current)
    return shapes


def lazy_pyramid(level0) -> list:
    """``level0`` (a dask array) and its halvings (``[..., ::2, ::2]``, lazy) down to a
    plane of at most :data:`LEVEL_SIDE` pixels a side (:func:`halvings`)."""
    levels = [level0]
    for _ in halvings(level0.shape, (LEVEL_SIDE, LEVEL_SIDE)):
        levels.append(levels[-1][..., ::2, ::2])
    return levels


def write_pyramid(path, *, compute: Compute | None = None, memory_budget: int | str = "auto",
                  progress: Callable[[int, int], None] | None = None) -> list:
    """Add the lower levels to the labels image of :func:`create_labels_zarr` at ``path``.

    Level k + 1 is level k's every second pixel along y and x (read from level k), with
    level 0's chunks; the multiscales metadata lists every level.

    Returns
    -------
    list of zarr.Array
        All the levels, level 0 first.
    """
    import dask.array as da
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    level = group["0"]
    levels = [level]
    shapes = halvings(level.shape, level.chunks, MAX_LEVELS)
    for number, shape in enumerate(shapes, start=1):
        target = group.create_array(str(number), shape=shape, dtype=level.dtype, fill_value=0,
                                    chunks=tuple(min(c, n) for c, n in zip(levels[0].chunks,
                                                                           shape)))
        coarser = da.from_zarr(level)[(..., slice(None, None, 2), slice(None, None, 2))]
        write_zarr_array(coarser, target, compute=compute, memory_budget=memory_budget)
        levels.append(level := target)
        if progress is not None:
            progress(number, len(shapes))
    attributes = dict(group.attrs)
    scale = attributes["ome"]["multiscales"][0]
    base = scale["datasets"][0]["coordinateTransformations"]
    scale["datasets"] = [{"path": str(k), "coordinateTransformations":
                          _level_transforms(base, level.ndim, 2**k)} for k in range(len(levels))]
    group.attrs.put(attributes)
    return levels


def open_pyramid(path) -> list:
    """The levels of a labels image written here (any OME-Zarr multiscale), as dask arrays.

    ``viewer.add_labels(open_pyramid("x_labels.zarr"), multiscale=True)`` shows them in
    napari as a lazily loaded labels layer.
    """
    import dask.array as da
    import zarr

    group = zarr.open_group(str(path), mode="r")
    multiscales = _multiscales(dict(group.attrs))
    if not multiscales:
        raise ValueError(f"{path} has no OME-Zarr multiscales metadata.")
    return [da.from_zarr(group[d["path"]]) for d in multiscales[0]["datasets"]]
