"""Read a bioimage.io model package that this plugin exported (.zip or its rdf.yaml).

The package's Keras 3 weights are our own ``.keras`` file, metadata included, so loading
them (:func:`.model_file.load_model`) restores the model with its post-processing. A
package from elsewhere is refused with what it lacks. Written by ``share/export.py``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

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


def keras_weights(path: str | Path) -> tuple[str, bytes]:
    """The name and bytes of the package's Keras 3 weights, after checking its rdf.yaml.

    Raises
    ------
    ValueError
        If it is not a package exported by this plugin (what it lacks is named).
    """
    import yaml
    path = Path(path)
    rdf = yaml.safe_load(_read(path, "rdf.yaml" if path.suffix.lower() == ".zip"
                                    else path.name)) or {}
    lacks = []
    if CONFIG_KEY not in (rdf.get("config") or {}):
        lacks.append(f"config.{CONFIG_KEY} (classes and post-processing)")
    weights = rdf.get("weights") or {}
    if "keras_v3" not in weights:
        lacks.append("keras_v3 weights (found: " + (", ".join(weights) or "none") + ")")
    if lacks:
        raise ValueError(f"{path}: not a model package exported by napari-unet-weights; "
                         f"it lacks {' and '.join(lacks)}. Run it with bioimage.io tools, "
                         "or export a .keras model with 'napari-unet-weights export'.")
    name = weights["keras_v3"]["source"]
    return name, _read(path, name)

