"""Self-describing U-Net model files: a ``.keras`` zip plus our metadata entry.

``UNetModel.save`` writes the Keras file and then adds ``napari_unet_weights.json`` to
the zip (Keras ignores entries it does not know). The metadata says how to prepare an
image (channels, normalisation), the classes, the weight-map parameters the model was
trained with, the post-processing parameters, the training configuration, the data
split and the validation scores, so a model trained anywhere predicts the same here.

:func:`read_metadata` reads that entry with ``zipfile`` + ``json`` only: no TensorFlow,
so the GUI can show a model's recorded score at once. It checks the entries that
prediction uses (:func:`metadata_problem`), so a file with, say, a post-processing
threshold of ``"abc"`` is refused when it is read, not on every image.

Everything about a model lives here, so that prediction and training use this module
and never the reverse: the metadata and its checks, what it says about shapes
(:func:`input_channels`, :func:`size_multiple`), :func:`check_model` (the network fits
its metadata), and :func:`as_model` / :func:`model_metadata` (a model, a file or the
bundled one). Prediction itself is ``predict(image, model)`` / ``segment(image, model)``
(:mod:`.predict`).
"""

from __future__ import annotations

import json
import numbers
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..io.files import atomic_output, check_output_file
from .device import keras_or_error
from .onnx_runtime import is_onnx
from .package_file import (
    is_package,
    keras_weights,
    onnx_metadata,
    onnx_network,
    weight_sources,
)
from .postprocess import check_postprocess_parameters
from .preprocess import COLOUR_RULES, INPUT_MODES

__all__ = [
    "BUNDLED_MODEL",
    "FORMAT_VERSION",
    "METADATA_ENTRY",
    "REQUIRED_KEYS",
    "UNetModel",
    "as_model",
    "check_model",
    "check_model_path",
    "input_channels",
    "load_model",
    "metadata_problem",
    "model_metadata",
    "read_metadata",
    "record_metadata",
    "score_summary",
    "size_multiple",
]

METADATA_ENTRY = "napari_unet_weights.json"
FORMAT_VERSION = 1
#: Metadata entries that prediction needs.
REQUIRED_KEYS = ("format_version", "n_classes", "input", "normalization", "architecture",
                 "postprocess")
#: The nuclei model shipped with the package (trained by scripts/train_bundled_model.py).
BUNDLED_MODEL = Path(__file__).with_name("models") / "dsb2018_nuclei.keras"

PathLike = str | os.PathLike


def _json_default(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in model metadata")


def _check_model_file(path: Path) -> None:
    if not path.exists():
        if path == BUNDLED_MODEL:
            raise FileNotFoundError(
                f"the bundled nuclei model is not installed ({path}); train it with "
                "scripts/train_bundled_model.py --install, or pass a model file."
            )
        raise FileNotFoundError(f"{path}: no such model file.")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a .keras model file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras model file (.keras, a zip archive): it is corrupt or "
            "another kind of file."
        )


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _positive_integer(value: Any) -> bool:
    return _is_integer(value) and value >= 1


def _percentile_pair(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] < value[1] <= 100)


#: (section, key): (test, what the value must be), for the entries prediction uses.
_METADATA_RULES: dict[tuple[str, ...], tuple[Callable[[Any], bool], str]] = {
    ("format_version",): (lambda v: _is_integer(v) and 1 <= v <= FORMAT_VERSION,
                          f"an integer from 1 to {FORMAT_VERSION} (a higher one comes from a "
                          "newer napari-unet-weights: update the plugin)"),
    ("n_classes",): (lambda v: _is_integer(v) and v >= 2, "an integer >= 2"),
    ("input", "mode"): (lambda v: isinstance(v, str) and v in INPUT_MODES,
                        " or ".join(repr(m) for m in INPUT_MODES)),
    ("input", "n_channels"): (_positive_integer, "an integer >= 1"),
    ("input", "invert_bright_background"): (lambda v: isinstance(v, bool), "true or false"),
    ("input", "colour"): (lambda v: isinstance(v, str) and v in COLOUR_RULES,
                          " or ".join(repr(r) for r in COLOUR_RULES)),
    ("normalization", "percentiles"): (_percentile_pair,
                                       "two numbers [low, high] with 0 <= low < high <= 100"),
    **{("architecture", key): (_positive_integer, "an integer >= 1")
       for key in ("n_channels", "depth", "base_filters", "multiple")},
}
_SECTIONS = ("input", "normalization", "architecture", "postprocess")


def metadata_problem(metadata: Mapping[str, Any]) -> str | None:
    """What is wrong with the entries of model metadata that prediction uses, if anything.

    Only the entries present are checked (missing ones take their defaults): the
    ``format_version``, ``n_classes``, the ``input``, ``normalization`` and
    ``architecture`` settings, and the ``postprocess`` parameters (see
    :func:`..postprocess.check_postprocess_parameters`).

    Parameters
    ----------
    metadata : mapping

    Returns
    -------
    str or None
        ``"<key>: <problem>"`` for the first bad entry (e.g. ``"postprocess.threshold:
        threshold must be a number in [0, 1], got 'abc' (str)."``), None if all are good.
    """
    for section in _SECTIONS:
        if not isinstance(metadata.get(section, {}), Mapping):
            return f"{section}: must be a JSON object, got {metadata[section]!r}."
    for keys, (test, expected) in _METADATA_RULES.items():
        section = metadata if len(keys) == 1 else metadata.get(keys[0], {})
        if keys[-1] in section and not test(section[keys[-1]]):
            return f"{'.'.join(keys)}: must be {expected}, got {section[keys[-1]]!r}."
    for name, value in metadata.get("postprocess", {}).items():
        try:
            check_postprocess_parameters({name: value})
        except (TypeError, ValueError) as error:
            return f"postprocess.{name}: {error}"
    return None


def read_metadata(path: PathLike | None = None) -> dict:
    """The metadata of a model file, read without TensorFlow.

    Parameters
    ----------
    path : str or path-like, optional
        A ``.keras`` file written by :meth:`UNetModel.save`; None: the bundled model.

    Returns
    -------
    dict
        The metadata (see :meth:`UNetModel.save`).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a zip / .keras file, lacks our metadata (a plain Keras model), or
        the metadata is unreadable, misses required entries or has a bad one (the file
        and the entry are named in the message, see :func:`metadata_problem`).
    """
    if path is not None and is_package(path):  # a package we exported: its .keras file
        return _package_keras(Path(path), read_metadata)
    path = Path(BUNDLED_MODEL if path is None else path)
    _check_model_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_ENTRY not in archive.namelist():
                raise ValueError(
                    f"{path} has no {METADATA_ENTRY} entry: it is not a napari-unet-weights "
                    "model (a plain Keras model does not say how to normalise images or "
                    "post-process); train one with napari_unet_weights.train, or wrap "
                    "it with UNetModel(model, metadata).save(path)."
                )
            text = archive.read(METADATA_ENTRY).decode("utf-8")
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is a corrupt model file: {error}") from error
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: {METADATA_ENTRY} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: {METADATA_ENTRY} must hold a JSON object, got "
                         f"{type(metadata).__name__}.")
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"{path}: the model metadata lacks {', '.join(missing)}.")
    problem = metadata_problem(metadata)
    if problem is not None:
        raise ValueError(f"{path}: bad model metadata ({METADATA_ENTRY}): {problem}")
    return metadata


def input_channels(metadata: Mapping[str, Any]) -> int:
    """The number of channels the network takes, as the model's metadata records it."""
    input_spec = metadata.get("input", {})
    architecture = metadata.get("architecture", {})
    return int(input_spec.get("n_channels", architecture.get("n_channels", 1)))


def size_multiple(metadata: Mapping[str, Any]) -> int:
    """What the input height and width must be multiples of: ``2**depth`` of the U-Net."""
    architecture = metadata.get("architecture", {})
    return int(architecture.get("multiple", 2 ** int(architecture.get("depth", 4))))


def model_metadata(model: UNetModel | Mapping[str, Any] | PathLike | None) -> dict:
    """The metadata of a model, of a model file (read without TensorFlow) or of the bundled
    model (None); metadata given as a mapping is returned as it is."""
    if isinstance(model, Mapping):
        return dict(model)
    if isinstance(model, UNetModel):
        return model.metadata
    return read_metadata(model)


def check_model_path(path: PathLike) -> Path:
    """Check, without creating anything, that a model file can be written at ``path``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OSError
        If it cannot be written (see :func:`..io.files.check_output_file`).
    ValueError
        If ``path`` does not end with ``.keras``.
    """
    path = check_output_file(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files must end with .keras, got {path.name!r}.")
    return path


class UNetModel:
    """A Keras U-Net with the metadata needed to use it.

    Run it with ``predict(image, model)`` or ``segment(image, model)``
    (:mod:`napari_unet_weights.unet.predict`).

    Parameters
    ----------
    keras_model : keras.Model
        Input (None, None, None, C), softmax output (None, None, None, K).
    metadata : dict
        JSON-serialisable description (see :meth:`save`).

    Raises
    ------
    ValueError
        If an entry that prediction uses is bad (see :func:`metadata_problem`).

    Attributes
    ----------
    keras_model : keras.Model
    metadata : dict
    """

    def __init__(self, keras_model: Any, metadata: dict) -> None:
        problem = metadata_problem(metadata)
        if problem is not None:
            raise ValueError(f"bad model metadata: {problem}")
        self.keras_model = keras_model
        self.metadata = dict(metadata)

    def __repr__(self) -> str:
        score = self.metadata.get("validation", {}).get("map")
        score_text = f", validation mAP {score:.3f}" if isinstance(score, float) else ""
        return f"UNetModel(n_classes={self.n_classes}{score_text})"

    @property
    def n_classes(self) -> int:
        """Number of output classes."""
        return int(self.metadata["n_classes"])

    @property
    def postprocess_parameters(self) -> dict:
        """Keyword arguments of :func:`~napari_unet_weights.unet.postprocess.to_instances`."""
        return dict(self.metadata.get("postprocess", {}))

    def save(self, path: PathLike) -> Path:
        """Write the model as a ``.keras`` file with the metadata inside.

        The metadata is the JSON entry ``napari_unet_weights.json`` of the zip. Keys
        written by training: ``format``, ``format_version``, ``n_classes``,
        ``classes``, ``input``, ``normalization``, ``architecture``, ``weights``,
        ``postprocess``, ``training``, ``split``, ``validation``, ``package_version``,
        ``keras_version``, ``created``, ``object_diameter`` (the median nucleus diameter
        of the training labels, for ``diameter=``: :func:`.diameter.diameter_record`).

        The file is written under a temporary name next to ``path`` and renamed once it
        is complete (metadata included): an interruption (error, Ctrl-C) leaves no
        partial file, and an existing ``path`` is replaced only by a complete one.

        Parameters
        ----------
        path : str or path-like
            Output file; must end with ``.keras``; parent folders are created.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        ValueError, OSError
            If ``path`` is not a writable ``.keras`` file name (see
            :func:`check_model_path`), checked before anything is written; a model on ONNX
            weights (it has no Keras network to save).
        """
        if is_onnx(self):
            raise ValueError(f"{path}: this model runs ONNX weights (engine='onnx', or a "
                             "package loaded without Keras) and cannot be saved as a .keras "
                             "file; on a dask cluster use engine='keras'.")
        path = check_model_path(path)
        text = json.dumps(self.metadata, indent=1, default=_json_default, allow_nan=True)
        with atomic_output(path) as partial:
            self.keras_model.save(partial)
            with zipfile.ZipFile(partial, "a", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(METADATA_ENTRY, text)
        return path


def score_summary(metadata: Mapping[str, Any]) -> str:
    """A model's scores in a few words: the test mAP first when the file records one.

    The test figure (``metadata["test"]``) comes from images that chose nothing; the
    validation figure (``metadata["validation"]``) chose the epoch and the
    post-processing, so it is kept apart and named as such.

    Parameters
    ----------
    metadata : mapping
        A model's metadata (:func:`read_metadata`).

    Returns
    -------
    str
        E.g. ``"test mAP 0.612 (86 images; validation 0.634)"``, ``"validation mAP
        0.540 (84 images)"``, ``"mAP 0.460 on its 2 training images"`` (validated on
        them, see :func:`.training.train.train`), or ``"no recorded score"``.
    """
    def figure(entry: Any) -> tuple[float, Any] | None:
        if isinstance(entry, Mapping) and isinstance(entry.get("map"), numbers.Real):
            return float(entry["map"]), entry.get("n_images")
        return None

    test, validation = figure(metadata.get("test")), figure(metadata.get("validation"))
    if test is not None:
        extra = [f"{test[1]} images"] if test[1] else []
        if validation is not None:
            extra.append(f"validation {validation[0]:.3f}")
        return f"test mAP {test[0]:.3f}" + (f" ({'; '.join(extra)})" if extra else "")
    if validation is not None:
        images = f"{validation[1]} " if validation[1] else ""
        if metadata["validation"].get("on") == "training images":  # not an independent score
            return f"mAP {validation[0]:.3f} on its {images}training images"
        return f"validation mAP {validation[0]:.3f}" + (
            f" ({validation[1]} images)" if validation[1] else "")
    return "no recorded score"


def record_metadata(path: PathLike, **entries: Any) -> Path:
    """Add or replace top-level metadata entries of a model file, without TensorFlow.

    Used to record figures measured after training (e.g. ``test=...``). The file is
    rewritten under a temporary name and renamed (see :meth:`UNetModel.save`).

    Parameters
    ----------
    path : str or path-like
        An existing model file.
    **entries
        JSON-ready values by metadata key.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    metadata = {**read_metadata(path), **entries}
    text = json.dumps(metadata, indent=1, default=_json_default, allow_nan=True)
    with atomic_output(path) as partial, zipfile.ZipFile(path) as source, \
            zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != METADATA_ENTRY:
                target.writestr(item, source.read(item.filename))
        target.writestr(METADATA_ENTRY, text)
    return path


def _package_keras(path: Path, read: Callable[[Path], Any]) -> Any:
    """``read`` (load_model, read_metadata) applied to a package's Keras 3 weights, or its
    ONNX weights where those cannot load (:func:`_package_onnx`)."""
    import tempfile
    try:
        name, data = keras_weights(path)
        with tempfile.TemporaryDirectory() as folder:
            keras_file = Path(folder) / Path(name).name
            keras_file.write_bytes(data)
            return read(keras_file)
    except (ImportError, ValueError) as error:
        if "onnx" not in weight_sources(path):  # also refuses a package not ours again
            raise
        return _package_onnx(path, error, metadata_only=read is read_metadata)


def _package_onnx(path: Path, error: Exception, metadata_only: bool) -> Any:
    """A package's metadata, or its model on its ONNX weights (onnxruntime), when its Keras
    weights (absent, or Keras / TensorFlow missing) failed with ``error``."""
    metadata = onnx_metadata(path)
    problem = metadata_problem(metadata)
    if problem is not None:
        raise ValueError(f"{path}: bad model metadata: {problem}") from error
    if metadata_only:
        return metadata
    try:
        network = onnx_network(path)
    except ImportError as missing:
        raise ImportError(f"{path}: its Keras weights cannot be used ({error}), and {missing}"
                          ) from error
    warnings.warn(f"{path}: its Keras weights cannot be used ({error}); running its ONNX "
                  "weights through onnxruntime.", UserWarning, stacklevel=4)
    model = UNetModel(network, metadata)
    check_model(model)
    return model


def load_model(path: PathLike | None = None) -> UNetModel:
    """Load a model file written by :meth:`UNetModel.save` (no network access).

    Parameters
    ----------
    path : str or path-like, optional
        The ``.keras`` file, or a bioimage.io package (.zip / rdf.yaml) that this plugin
        exported; None: the bundled DSB 2018 nuclei model. A package's Keras weights are
        preferred; where they cannot load (Keras / TensorFlow missing, none in the
        package, Keras refuses them) its ONNX weights run through onnxruntime instead
        (a UserWarning says so; :mod:`.onnx_runtime`).

    Returns
    -------
    UNetModel

    Raises
    ------
    FileNotFoundError
        If the file (or the bundled model) does not exist.
    ValueError
        If it is not a model file, is corrupt, lacks our metadata (what is missing is
        named), or its network does not fit the metadata (input channels, classes).
    ImportError
        If TensorFlow is not installed (a package: nor onnxruntime).
    """
    path = Path(BUNDLED_MODEL if path is None else path)
    if is_package(path):  # a bioimage.io package that we exported (docs/share.md)
        return _package_keras(path, load_model)
    metadata = read_metadata(path)
    keras = keras_or_error()
    try:
        keras_model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for broken archives
        raise ValueError(f"{path}: Keras could not load the model: {error}") from error
    model = UNetModel(keras_model, metadata)
    try:
        check_model(model)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return model


def as_model(model: UNetModel | PathLike | None) -> UNetModel:
    """A loaded model as it is; a model file, or None for the bundled one, loaded.

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        See :func:`load_model`.
    """
    return model if isinstance(model, UNetModel) else load_model(model)


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def check_model(unet: UNetModel) -> None:
    """Check that the Keras model fits its metadata: input (None, None, C), K outputs.

    Parameters
    ----------
    unet : UNetModel

    Raises
    ------
    ValueError
        If the Keras model does not take one (batch, None, None, C) input with the
        recorded C, or does not output the recorded number of classes.
    """
    keras_model, channels, classes = unet.keras_model, input_channels(unet.metadata), unet.n_classes
    inputs, outputs = getattr(keras_model, "inputs", None), getattr(keras_model, "outputs", None)
    if not inputs or not outputs:  # a subclassed model: nothing to check before running
        return
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"the Keras model has {len(inputs)} inputs and {len(outputs)} "
                         "outputs; a U-Net model file needs one of each.")
    shape_in, shape_out = _shape(inputs[0]), _shape(outputs[0])
    if len(shape_in) != 4 or shape_in[1:3] != (None, None):
        raise ValueError(
            f"the Keras model takes inputs of shape {shape_in}; prediction needs a fully "
            "convolutional 2-D model with input shape (batch, None, None, channels).")
    if shape_in[3] != channels:
        raise ValueError(
            f"the Keras model takes {shape_in[3]} input channel(s) but its metadata records "
            f"{channels} (input.n_channels): the model file is inconsistent.")
    if len(shape_out) != 4 or shape_out[-1] != classes:
        raise ValueError(
            f"the Keras model outputs shape {shape_out} but its metadata records "
            f"{classes} classes (n_classes): the model file is inconsistent.")
