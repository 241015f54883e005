"""Prediction with a U-Net model file: the public entry points (TensorFlow imported lazily).

- :func:`predict`: class probabilities of 2-D images, RGB / multichannel images, 3-D
  stacks and time series (plane by plane over the leading axes: the model is 2-D).
  Whether the last axis holds channels is the ``rgb`` argument, else
  :func:`.preprocess.guess_channels`: a last axis of 1 to 4 entries after two longer
  ones. Each plane is prepared as the model file says (:func:`.preprocess.prepare_image`:
  channel handling, percentile normalisation of the *whole* plane, NaN / infinite pixels
  as missing data) and cut into the tiles of :func:`.tiling.tile_grid` (on the grid of
  the whole-plane padding, blended with weights that sum to 1: no seams), run in
  batches of ``batch_size``: memory is bounded by the tile size × batch. Missing pixels
  are predicted as background, with one :class:`.preprocess.MissingDataWarning` per call.
- :func:`segment`: :func:`predict` + :func:`..postprocess.to_instances` per plane with
  the model file's post-processing parameters; ids are unique over a stack.
- :func:`infer`: either or both, as a :class:`.inference.SegmentResult` that also counts
  the missing pixels (and says the diameter used): what the Segment widget runs.
- Test-time augmentation (``tta=True``, :func:`.inference.network_output`): every batch
  the network sees is run in the 8 orientations of the square's symmetry group (4
  rotations by 90° × a mirror), each output turned back, and the 8 averaged (8× the
  network time).
- Nucleus size (``diameter``, like cellpose's): each plane is resized so that its nuclei
  have the diameter the model file records, predicted and post-processed there, and the
  outputs resized back to its exact shape (:mod:`.rescale`, :mod:`.diameter`);
  ``"auto"`` estimates the diameter from a first pass.

Where the work is done: this module only checks the arguments and dispatches. Images in
memory go to the inference core, :func:`.inference.run_in_memory`; dask and zarr arrays
(or ``out``, ``block_shape``, ``workers`` or ``scheduler``) go block by block through
:mod:`.chunked.big`, whose tasks run the same core on each block
(:func:`.inference.block_probabilities` / :func:`.inference.block_labels`, with the whole
plane's normalisation). predict → big → inference and predict → inference: nothing
calls back into this module.
"""

from __future__ import annotations

import os

from ..runtime.progress import PredictionCancelled, Progress, ShouldStop
from . import inference
from .diameter import check_diameter
from .inference import TTA_TRANSFORMS, SegmentResult, network_output, predict_prepared
from .inference_engine import check_engine, engine_model
from .model_file import UNetModel

__all__ = ["TTA_TRANSFORMS", "PredictionCancelled", "SegmentResult", "infer",
           "network_output", "predict", "predict_prepared", "segment"]


def _chunked(image, *options) -> bool:
    """Whether to predict block by block: a dask or zarr array, or a chunked option set."""
    lazy = type(image).__module__.split(".")[0] in ("dask", "zarr")
    return lazy or any(option is not None for option in options)


def predict(image, model: UNetModel | str | os.PathLike | None = None, *,
            rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
            overlap: int | None = None, batch_size: int = 4, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
            tta: bool = False, out=None, block_shape: int | tuple[int, int] | None = None,
            workers: int | None = None, scheduler=None, temp_dir=None, diameter=None,
            engine: str = "keras"):
    """Class probabilities of an image, a stack or a time series, tile by tile.

    Parameters
    ----------
    image : array-like
        (H, W) grayscale; (H, W, C) RGB / multichannel (``rgb``); or (..., H, W[, C])
        stacks and time series, predicted plane by plane over the leading axes. Any
        numeric dtype; numpy arrays, or array-likes read a plane at a time; dask and zarr
        arrays are predicted block by block (chunked, see ``out``). Each plane is
        prepared by :func:`.preprocess.prepare_image` as the model file says
        (percentiles of the whole plane). NaN and infinite pixels are missing data: left
        out of the normalisation, and their probabilities are set to background (class 0).
    model : UNetModel, str or path, optional
        A loaded model, a ``.keras`` model file, or None for the bundled nuclei model.
    rgb : bool, optional
        Whether the last axis holds channels (colour or not). None:
        :func:`.preprocess.guess_channels`, True when the last axis has 1 to 4 entries and the two
        before it more than 4 each: (H, W, 1), (H, W, 2), (H, W, 3), (H, W, 4) and
        (Z, H, W, 2) have channels, (Z, H, W) does not. Pass it for the ambiguous stacks
        of planes at most 4 pixels wide. Then, in "gray" input mode the channels are
        averaged (alpha dropped); "channels" mode needs the recorded number of them.
    tile_shape : int or (int, int), optional
        Tile height and width, rounded up to a multiple of the model's ``2**depth``; None:
        :func:`.tiling.auto_tile_shape` (the whole plane if it fits the memory budget).
    overlap : int, optional
        Overlap of neighbouring tiles in pixels, rounded up to a multiple of ``2**depth``;
        None: :func:`.tiling.default_overlap` (≈ the receptive field, ``8 · 2**depth``).
        Tiles are blended with a sin² ramp over the overlap; tiled and untiled outputs
        agree where ``overlap / 2`` exceeds the distance over which a tile edge changes the
        output.
    batch_size : int
        Tiles per network call (tiles of consecutive planes share batches).
    progress : callable, optional
        ``progress(done, total)`` after each batch; ``total`` counts the tiles of all
        planes (with ``tta`` too).
    should_stop : callable, optional
        Polled before each batch (with ``tta``, before each of its 8 network calls);
        when it returns True, :class:`PredictionCancelled` is raised (nothing is
        returned).
    use_gpu : bool, optional
        None: TensorFlow's choice (the GPU if it sees one); False: the CPU; True: the
        GPU (a ValueError that says so if TensorFlow sees none; see :mod:`.device`).
    tta : bool
        Test-time augmentation: each batch of tiles (or whole planes) is run in the 8
        orientations of a square (4 rotations by 90° × a left-right mirror), each output
        is turned back and the 8 are averaged (:func:`network_output`). Costs 8× the
        network time (about the same memory); the probabilities become equivariant to flips
        and quarter turns of each tile, and are usually a little more accurate. Tiling,
        blending and missing pixels are as without it.
    out : str, path or zarr.Array, optional
        Chunked prediction (:mod:`.chunked.big`) writes the probabilities there (a ``.zarr``
        folder is created, replacing an existing one) and returns that zarr array.
    block_shape : int or (int, int), optional
        Chunked prediction's blocks (default :data:`.chunked.big.DEFAULT_BLOCK`).
    workers : int, optional
        Chunked prediction on a ``distributed.LocalCluster`` of this many processes.
    scheduler : str, distributed.Client or Engine, optional
        Chunked prediction on an existing dask cluster (its scheduler's address, or a
        client), or on an :class:`..runtime.engine.Engine` (reused: one cluster for many calls,
        its progress bar, its progress and ``should_stop`` callbacks).
    temp_dir : str or path, optional
        Chunked prediction's temporary files (a folder every worker of the cluster sees);
        default: beside ``out`` (a path), else the system's temporary folder.
    diameter : float or "auto", optional
        The nuclei's diameter in the image, in pixels (cellpose's ``diameter``). None:
        as trained, the image as it is. A number: each plane is resized by ``model
        diameter / diameter`` (the median diameter of the model's training nuclei,
        recorded in its file; linear, anti-aliased when shrinking), predicted there,
        and the probabilities resized back (linear) to exactly its shape; factors from
        0.1 to 10 only. ``"auto"``: a first pass as trained, the median diameter of the
        objects it finds (:func:`.diameter.object_diameter`), then a second pass at that
        diameter if it differs from the model's by more than 10 % (the first pass is
        kept if it finds nothing). Not for chunked prediction (a ValueError): resize
        such an image beforehand. See :func:`.sizing.segment_at_diameter` for the
        diameter used.
    engine : {"keras", "onnx"}
        The inference runtime of the network call (not a dask cluster: that is
        ``scheduler``). "keras": the Keras network (or, for a package loaded on its ONNX
        weights because Keras could not load them, those). "onnx": ONNX weights through
        onnxruntime on the CPU: a package's own, or the ONNX conversion of a Keras model
        (made once per process and weights; needs the ``[export]`` extra). Everything
        else (normalisation, tiles, blending, ``tta``, post-processing) is the same
        (:mod:`.inference_engine`).

    Returns
    -------
    numpy.ndarray of float32, shape (..., H, W, n_classes)
        Softmax probabilities (they sum to 1 over the last axis). Chunked (a dask or zarr
        ``image``, or any of ``out``, ``block_shape``, ``workers``, ``scheduler``): a lazy
        dask array of them, or the zarr array ``out``; each block is predicted with a
        margin of context and normalised with its whole plane's percentiles (see
        :func:`.chunked.big.predict_blocks`). :func:`infer` also returns the count of missing
        pixels.

    Raises
    ------
    PredictionCancelled
        If ``should_stop()`` returned True (:class:`..runtime.progress.Cancelled`).
    ValueError
        For a bad image shape, tile shape, overlap or batch size, an unknown
        ``engine``, a model whose Keras
        network does not fit its metadata (:func:`.model_file.check_model`), a
        ``diameter`` out of range, with a model file that does not record its nuclei's
        diameter, or with chunked prediction.
    FileNotFoundError, ImportError
        See :func:`..model_file.load_model`; ImportError also for ``engine="onnx"``
        without onnxruntime (``pip install "napari-unet-weights[export]"``).

    Warns
    -----
    MissingDataWarning
        Once, when pixels are NaN or infinite; it says how many.
    """
    return infer(image, model, labels=False, probabilities=True, rgb=rgb,
                 tile_shape=tile_shape, overlap=overlap, batch_size=batch_size,
                 progress=progress, should_stop=should_stop, use_gpu=use_gpu, tta=tta,
                 out=out, block_shape=block_shape, workers=workers, scheduler=scheduler,
                 temp_dir=temp_dir, diameter=diameter, engine=engine).probabilities


def segment(image, model: UNetModel | str | os.PathLike | None = None, *,
            rgb: bool | None = None, tile_shape: int | tuple[int, int] | None = None,
            overlap: int | None = None, batch_size: int = 4, progress: Progress | None = None,
            should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
            tta: bool = False, out=None, block_shape: int | tuple[int, int] | None = None,
            workers: int | None = None, scheduler=None, temp_dir=None, diameter=None,
            engine: str = "keras", **postprocess):
    """Instance labels of an image, a stack or a time series.

    :func:`predict`, then :func:`..postprocess.to_instances` on each plane as soon as its
    tiles are done (the probabilities of one plane at a time are kept), with the model
    file's recorded post-processing parameters.

    Parameters
    ----------
    image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop, use_gpu, tta
        As in :func:`predict` (``tta``: test-time augmentation, 8× the network time).
    engine : {"keras", "onnx"}
        The inference runtime, as in :func:`predict`.
    out, block_shape, workers, scheduler, temp_dir
        Chunked segmentation, as in :func:`predict`; the labels are stitched across the
        blocks (:func:`.chunked.big.segment_blocks`).
    diameter : float or "auto", optional
        The nuclei's diameter in pixels, as in :func:`predict`: None, the image as it is;
        otherwise each plane is segmented at the model's scale, post-processing included
        (``min_size`` and ``expand`` are in the model's pixels), and its labels resized
        back by nearest neighbour to exactly its shape (ids renumbered 1..N; an object
        smaller than a pixel of the image can vanish). Not for chunked segmentation.
    **postprocess
        Overrides of the recorded post-processing parameters (``threshold``,
        ``seed_threshold``, ``min_size``, ``fill_holes``, ``expand``).

    Returns
    -------
    numpy.ndarray of uint16 (uint32 beyond 65534 objects), shape (..., H, W)
        0 = background; ids are unique over the whole stack (plane after plane: the
        objects of the second plane follow those of the first). Chunked: a lazy dask
        array of them, or the zarr array ``out`` (ids 1..N, objects cut by the blocks'
        faces joined). :func:`infer` also returns the probabilities and the count of
        missing pixels, from the same run.

    Raises
    ------
    TypeError
        For an unknown post-processing parameter or one of the wrong type, or a
        ``diameter`` that is not a number, "auto" or None.
    ValueError
        For a post-processing parameter out of range, or a ``diameter`` refused as in
        :func:`predict` (checked before the network runs).
    PredictionCancelled, ValueError, FileNotFoundError, ImportError
        As in :func:`predict`.

    Warns
    -----
    MissingDataWarning
        As in :func:`predict`.
    """
    return infer(image, model, rgb=rgb, tile_shape=tile_shape, overlap=overlap,
                 batch_size=batch_size, progress=progress, should_stop=should_stop,
                 use_gpu=use_gpu, tta=tta, out=out, block_shape=block_shape,
                 workers=workers, scheduler=scheduler, temp_dir=temp_dir,
                 diameter=diameter, engine=engine, **postprocess).labels


def infer(image, model: UNetModel | str | os.PathLike | None = None, *,
          labels: bool = True, probabilities: bool = False, rgb: bool | None = None,
          tile_shape: int | tuple[int, int] | None = None, overlap: int | None = None,
          batch_size: int = 4, progress: Progress | None = None,
          should_stop: ShouldStop | None = None, use_gpu: bool | None = None,
          tta: bool = False, out=None, block_shape: int | tuple[int, int] | None = None,
          workers: int | None = None, scheduler=None, temp_dir=None, diameter=None,
          engine: str = "keras", **postprocess) -> SegmentResult:
    """The labels and / or the probabilities of one run, with the count of missing pixels.

    :func:`segment` (``labels``) and :func:`predict` (``probabilities``) in one: both
    from the same network run (the labels post-processed from these probabilities, plane
    by plane), and the missing pixels counted while the image is read (no second pass).

    Parameters
    ----------
    image, model, rgb, tile_shape, overlap, batch_size, progress, should_stop, use_gpu, tta
        As in :func:`predict`.
    engine : {"keras", "onnx"}
        The inference runtime, as in :func:`predict`.
    labels, probabilities : bool
        Which outputs to return (at least one; chunked: exactly one).
    out, block_shape, workers, scheduler, temp_dir
        Chunked prediction (:mod:`.chunked.big`), as in :func:`predict` / :func:`segment`.
    diameter : float or "auto", optional
        As in :func:`segment` (in-memory images only); the result's ``sizing`` says
        which diameter was used.
    **postprocess
        Overrides of the recorded post-processing parameters, as in :func:`segment`.

    Returns
    -------
    SegmentResult
        ``labels`` as :func:`segment` returns them, ``probabilities`` as :func:`predict`
        does (None for an output not asked for), ``n_missing`` and ``n_pixels`` (the
        numbers of :class:`.preprocess.MissingDataWarning`), ``sizing`` (with a
        ``diameter``).

    Raises
    ------
    ValueError
        Neither output asked for, or both with chunked prediction; otherwise as in
        :func:`segment`.
    PredictionCancelled, TypeError, FileNotFoundError, ImportError
        As in :func:`segment`.

    Warns
    -----
    MissingDataWarning
        As in :func:`predict`.
    """
    if not (labels or probabilities):
        raise ValueError("infer: ask for the labels, the probabilities or both.")
    options = {"rgb": rgb, "tile_shape": tile_shape, "overlap": overlap,
               "batch_size": batch_size, "use_gpu": use_gpu, "tta": tta,
               "engine": check_engine(engine, use_gpu)}
    chunked = (out, block_shape, workers, scheduler)
    if diameter is not None:
        _check_sizable(diameter, image, *chunked)
    if diameter is None and _chunked(image, *chunked):
        return _infer_blocks(image, model, options, postprocess if labels else None,
                             probabilities=probabilities, out=out, block_shape=block_shape,
                             workers=workers, scheduler=scheduler, temp_dir=temp_dir,
                             progress=progress, should_stop=should_stop)
    return inference.run_in_memory(image, model, options, postprocess if labels else None,
                                   probabilities=probabilities, diameter=diameter,
                                   progress=progress, should_stop=should_stop)


def _infer_blocks(image, model, options: dict, postprocess: dict | None, *,
                  probabilities: bool, **chunked) -> SegmentResult:
    """:func:`infer` of a chunked image: :mod:`.chunked.big`'s probabilities or its labels."""
    from .chunked.big import predict_blocks, segment_blocks
    if options["engine"] == "onnx":  # converted (or a package's read) once, not per block
        model = engine_model(model, "onnx")

    if postprocess is not None and probabilities:
        raise ValueError("chunked prediction returns the labels or the probabilities, not "
                         "both: call predict and segment (or infer twice).")
    if postprocess is None:
        return predict_blocks(image, model, options, **chunked)
    return segment_blocks(image, model, options, postprocess, **chunked)


# -- nucleus size ---------------------------------------------------------------------------
def _check_sizable(diameter, image, *chunked_options) -> None:
    """Refuse a bad ``diameter``, and any ``diameter`` with chunked prediction."""
    check_diameter(diameter)
    if _chunked(image, *chunked_options):
        raise ValueError(
            "diameter is not available for chunked prediction (dask / zarr images, or out, "
            "block_shape, workers, scheduler): resize the image by model diameter / "
            "diameter first (e.g. skimage.transform.rescale, or dask_image.ndinterp."
            "affine_transform for a dask array), segment it, and resize the labels back "
            "by nearest neighbour; or pass a numpy array.")
