"""Read a bioimage.io model package that this plugin exported (.zip or its rdf.yaml).

The package's Keras 3 weights are our own ``.keras`` file, metadata included, so loading
them (:func:`.model_file.load_model`) restores the model with its post-processing. A
package from elsewhere is refused with what it lacks. Written by ``share/export.py``.

Its ONNX weights (:func:`onnx_network`, :func:`onnx_metadata`) are what
:func:`.model_file.load_model` falls back to when the Keras weights cannot load (Keras /
TensorFlow missing, or a package without them), and what ``engine="onnx"`` runs; the
metadata then comes from the Keras file's entry (read with zipfile, no TensorFlow) or,
without one, from the ONNX file's own (:func:`.onnx_runtime.to_onnx`).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from .onnx_runtime import METADATA_KEY, OnnxNetwork, embedded_metadata

#: The key of this plugin's entries in the package's ``config``.
CONFIG_KEY = "napari_unet_weights"


def is_package(path: str | Path) -> bool:
    """Whether ``path`` names a model package (a .zip, or an rdf.yaml file)."""
    path = Path(path)
    return path.suffix.lower() == ".zip" or path.name.endswith("rdf.yaml")


def _read(path: Path, name: str) -> bytes:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            try:
                return archive.read(name)
            except KeyError:
                raise ValueError(f"{path}: the package has no {name}.") from None
    return (path.parent / name).read_bytes()


def weight_sources(path: str | Path) -> dict[str, str]:
    """The package's weight files by format (``keras_v3``, ``onnx``), after checking that
    this plugin exported it.

    Raises
    ------
    ValueError
        If it is not a package exported by this plugin (what it lacks is named): no
        ``config.napari_unet_weights`` (then also no Keras 3 weights is named), or
        neither Keras 3 nor ONNX weights.
    """
    import yaml
    path = Path(path)
    rdf = yaml.safe_load(_read(path, "rdf.yaml" if path.suffix.lower() == ".zip"
                                    else path.name)) or {}
    lacks = []
    if CONFIG_KEY not in (rdf.get("config") or {}):
        lacks.append(f"config.{CONFIG_KEY} (classes and post-processing)")
    weights = rdf.get("weights") or {}
    if "keras_v3" not in weights and (lacks or "onnx" not in weights):  # ONNX: ours only
        wanted = "keras_v3" if "onnx" in weights else "keras_v3 or onnx"
        lacks.append(f"{wanted} weights (found: " + (", ".join(weights) or "none") + ")")
    if lacks:
        raise ValueError(f"{path}: not a model package exported by napari-unet-weights; "
                         f"it lacks {' and '.join(lacks)}. Run it with bioimage.io tools, "
                         "or export a .keras model with 'napari-unet-weights export'.")
    return {name: entry["source"] for name, entry in weights.items()
            if name in ("keras_v3", "onnx")}


def keras_weights(path: str | Path) -> tuple[str, bytes]:
    """The name and bytes of the package's Keras 3 weights, after checking its rdf.yaml.

    Raises
    ------
    ValueError
        If it is not a package exported by this plugin (what it lacks is named), or it
        has no Keras 3 weights.
    """
    sources = weight_sources(path)
    if "keras_v3" not in sources:
        raise ValueError(f"{path}: the package has no keras_v3 weights (only "
                         f"{', '.join(sources)}).")
    name = sources["keras_v3"]
    return name, _read(Path(path), name)


def _onnx_bytes(path: str | Path) -> bytes:
    sources = weight_sources(path)
    if "onnx" not in sources:
        raise ValueError(f"{path}: the package has no ONNX weights (only "
                         f"{', '.join(sources)}).")
    return _read(Path(path), sources["onnx"])


def onnx_metadata(path: str | Path) -> dict:
    """This plugin's metadata of a package, without Keras: the Keras file's entry (read
    with zipfile), else the one stored in the ONNX weights.

    Raises
    ------
    ValueError
        If neither holds it, or it is not a package of ours.
    """
    sources = weight_sources(path)
    if "keras_v3" in sources:
        data = _read(Path(path), sources["keras_v3"])
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if METADATA_KEY in archive.namelist():
                return json.loads(archive.read(METADATA_KEY).decode("utf-8"))
    metadata = embedded_metadata(_onnx_bytes(path)) if "onnx" in sources else None
    if metadata is None:
        raise ValueError(f"{path}: neither the package's Keras file nor its ONNX weights "
                         "hold napari-unet-weights metadata (export it again).")
    return metadata


def onnx_network(path: str | Path) -> OnnxNetwork:
    """The package's ONNX weights, ready to run (onnxruntime).

    Raises
    ------
    ValueError
        If the package has no ONNX weights (or is not ours).
    ImportError
        Without onnxruntime (the message says how to install it).
    """
    return OnnxNetwork(_onnx_bytes(path))
