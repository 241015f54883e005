"""Write a bioimage.io model package (spec 0.5) of a U-Net model file.

The description is built with ``bioimageio.spec``'s pydantic models (which check every
field) and saved with its packaging function: rdf.yaml, the Keras 3 weights (``keras_v3``),
ONNX weights (Keras' own export through tf2onnx, ``parent: keras_v3``), test tensors from
a bundled sample, a cover image and the model card as documentation. The post-processing
parameters go to ``config["napari_unet_weights"]`` so that this plugin restores them.

``export_model(..., progress=, should_stop=)`` reports each of :data:`STEPS` before it
starts and stops between them (the widgets' "Export…"); the zip is written next to its
name and renamed at the end, so that a cancelled or failed export leaves no file.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from ..io.files import atomic_output
from ..runtime.progress import PhaseProgress, ShouldStop, check_stop
from ..unet.model_file import UNetModel, as_model, size_multiple
from ..unet.package_file import CONFIG_KEY

TEST_SAMPLE = "nuclei_fluorescence"
TEST_SIZE = 256
#: The steps of an export, in order, as ``progress(done, total, phase)`` names them.
STEPS = ("loading the model", "test tensors", "Keras weights", "ONNX weights",
         "writing the package")


class _Steps:
    """Reports each step before it starts; raises ``Cancelled`` when asked to stop."""

    def __init__(self, progress: PhaseProgress | None, should_stop: ShouldStop | None) -> None:
        self.progress, self.should_stop = progress, should_stop

    def __call__(self, phase: str) -> None:
        check_stop(self.should_stop, f"export cancelled before {phase}: no file written")
        if self.progress is not None:
            self.progress(STEPS.index(phase), len(STEPS), phase)


def _test_tensors(unet: UNetModel) -> tuple[np.ndarray, np.ndarray]:
    """A crop of a bundled sample (raw, float32, (1, y, x, 1)) and the network's output."""
    from .._sample_data import load_sample
    from ..unet.predict import predict
    image = np.asarray(load_sample(TEST_SAMPLE)[0], dtype=np.float32)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    crop = np.ascontiguousarray(image[:TEST_SIZE, :TEST_SIZE])
    probabilities = predict(crop, model=unet, tta=False)
    return crop[None, ..., None], np.asarray(probabilities, np.float32)[None]


def _cover(image: np.ndarray, probabilities: np.ndarray, path: Path) -> Path:
    """Input (left) and its 3-class output as RGB (right), side by side."""
    from skimage.io import imsave
    x = image[0, ..., 0]
    low, high = np.percentile(x, (1, 99.8))
    gray = np.clip((x - low) / max(high - low, 1e-6), 0, 1)
    left = np.repeat(gray[..., None], 3, axis=-1)
    right = probabilities[0][..., [2, 1, 0]] * [1.0, 1.0, 0.0]
    picture = (np.concatenate([left, right], axis=1) * 255).astype(np.uint8)
    imsave(path, picture, check_contrast=False)
    return path


def _documentation(unet: UNetModel, path: Path) -> Path:
    """The model card: what the network does, how to feed it, and the recorded figures."""
    from ..unet.model_file import score_summary
    meta = unet.metadata
    lines = [
        "# Weighted U-Net for nuclei (napari-unet-weights)", "",
        "2D U-Net (Ronneberger et al. 2015) trained with the weighted cross-entropy loss.",
        "Output: per pixel softmax over 3 classes: background, interior, boundary.",
        "Instances: seeds where interior > seed_threshold, grown over interior > threshold,",
        "objects below min_size pixels dropped (values in the package's config).", "",
        "## Input", "",
        "One gray channel, normalised per image: (x - p1) / (p99.8 - p1) (scale_range).",
        f"Input settings recorded by the plugin: `{json.dumps(meta.get('input', {}))}`.",
        "Not reproducible by the spec's preprocessing: colour (H&E) images are reduced to",
        "a haematoxylin channel, and bright-background images are inverted (1 - x) when",
        "their median lies above the middle of the range; consumers must do this",
        "themselves (or use this plugin), or feed fluorescence-like gray images.", "",
        "## Scores", "", score_summary(meta) or "No scores recorded.", "",
        "## Recorded metadata", "", "```json",
        json.dumps({k: meta.get(k) for k in ("training", "split", "validation", "test",
                                               "lineage", "postprocess") if k in meta},
                   indent=1, default=str)[:20000], "```", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _onnx(unet: UNetModel, path: Path) -> tuple[Path, int]:
    """The network as ONNX (Keras' export; needs tf2onnx), our metadata inside (so that
    the package loads on its ONNX weights alone: :mod:`..unet.onnx_runtime`), and its opset."""
    import onnx

    from ..unet.onnx_runtime import to_onnx
    to_onnx(unet.keras_model, unet.metadata, path)
    return path, int(max(o.version for o in onnx.load(str(path)).opset_import
                         if o.domain in ("", "ai.onnx")))


def _backend() -> tuple[str, str]:
    """The Keras backend that wrote the weights and its version."""
    import importlib.metadata

    import keras
    name = keras.backend.backend()
    return name, importlib.metadata.version({"tensorflow": "tensorflow", "torch": "torch",
                                             "jax": "jax"}[name])


def describe(unet: UNetModel, folder: Path, name: str | None = None,
             steps: _Steps | None = None):
    """The package's ``ModelDescr`` with its files written into ``folder``."""
    import bioimageio.spec.model.v0_5 as v
    import keras
    steps = steps or _Steps(None, None)
    step = size_multiple(unet.metadata)
    steps("test tensors")
    image, expected = _test_tensors(unet)
    np.save(folder / "test_input.npy", image)
    np.save(folder / "test_output.npy", expected)
    steps("Keras weights")
    keras_file = unet.save(folder / "model.keras")
    steps("ONNX weights")
    onnx_file, opset = _onnx(unet, folder / "model.onnx")
    percentiles = unet.metadata.get("normalization", {}).get("percentiles", [1.0, 99.8])
    inp = v.InputTensorDescr(
        id=v.TensorId("image"), description="gray image (raw intensities)",
        axes=[v.BatchAxis(), v.SpaceInputAxis(id=v.AxisId("y"),
                                               size=v.ParameterizedSize(min=step, step=step)),
              v.SpaceInputAxis(id=v.AxisId("x"), size=v.ParameterizedSize(min=step, step=step)),
              v.ChannelAxis(channel_names=[v.Identifier("gray")])],
        test_tensor=v.FileDescr(source=folder / "test_input.npy"),
        preprocessing=[v.ScaleRangeDescr(kwargs=v.ScaleRangeKwargs(
            axes=[v.AxisId("y"), v.AxisId("x")], min_percentile=float(percentiles[0]),
            max_percentile=float(percentiles[1]), eps=1e-6))])
    out = v.OutputTensorDescr(
        id=v.TensorId("probabilities"),
        description="softmax over background, interior, boundary",
        axes=[v.BatchAxis(),
              v.SpaceOutputAxis(id=v.AxisId("y"), size=v.SizeReference(
                  tensor_id=v.TensorId("image"), axis_id=v.AxisId("y"))),
              v.SpaceOutputAxis(id=v.AxisId("x"), size=v.SizeReference(
                  tensor_id=v.TensorId("image"), axis_id=v.AxisId("x"))),
              v.ChannelAxis(channel_names=[v.Identifier(c) for c in
                                           unet.metadata.get("classes", ["background",
                                                                         "interior",
                                                                         "boundary"])])],
        test_tensor=v.FileDescr(source=folder / "test_output.npy"))
    return v.ModelDescr(
        name=name or "napari-unet-weights nuclei U-Net",
        description="2D U-Net (weighted loss) for nuclei: 3-class softmax "
                    "(background, interior, boundary), instances by seeded growth.",
        authors=[v.Author(name="napari-unet-weights")],
        cite=[v.CiteEntry(text="Ronneberger, Fischer, Brox. U-Net: Convolutional Networks "
                               "for Biomedical Image Segmentation. MICCAI 2015.",
                          doi=v.Doi("10.1007/978-3-319-24574-4_28")),
              v.CiteEntry(text="Caicedo et al. Nucleus segmentation across imaging "
                               "experiments: the 2018 Data Science Bowl. Nat Methods 2019.",
                          doi=v.Doi("10.1038/s41592-019-0612-7"))],
        license=v.LicenseId("MIT"), tags=["nuclei", "segmentation", "unet", "2d"],
        covers=[v.FileDescr(source=_cover(image, expected, folder / "cover.png"))],
        documentation=v.FileDescr(source=_documentation(unet, folder / "README.md")),
        inputs=[inp], outputs=[out],
        weights=v.WeightsDescr(
            keras_v3=v.KerasV3WeightsDescr(source=keras_file, keras_version=v.Version(
                keras.__version__), backend=_backend()),
            onnx=v.OnnxWeightsDescr(source=onnx_file, opset_version=opset,
                                    parent="keras_v3")),
        config={CONFIG_KEY: {"postprocess": dict(unet.postprocess_parameters),
                             "metadata_entry": "napari_unet_weights.json"}})


def export_model(model: UNetModel | str | Path | None, path: str | Path, *,
                 name: str | None = None, progress: PhaseProgress | None = None,
                 should_stop: ShouldStop | None = None) -> Path:
    """Write ``model`` (a UNetModel, a .keras file, None: the bundled model) as a zip.

    Parameters
    ----------
    model : UNetModel, str, pathlib.Path or None
        The model; None: the bundled one.
    path : str or pathlib.Path
        The package to write (``NAME.zip``); replaced only once complete.
    name : str, optional
        The model's name in the package.
    progress : callable, optional
        ``progress(done, total, phase)`` before each of :data:`STEPS` (``done`` steps of
        ``total`` finished), and ``progress(total, total, "done")`` at the end.
    should_stop : callable, optional
        Polled before each step; True stops the export.

    Returns
    -------
    Path
        The package written (a bioimage.io model zip).

    Raises
    ------
    Cancelled
        ``should_stop()`` returned True; ``path`` was not written (an existing file is
        left as it was).
    """
    from bioimageio.spec import save_bioimageio_package
    steps = _Steps(progress, should_stop)
    path = Path(path)
    steps("loading the model")
    unet = as_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        descr = describe(unet, Path(tmp), name, steps)
        steps("writing the package")
        with atomic_output(path) as partial:
            save_bioimageio_package(descr, output_path=partial)
            check_stop(should_stop, "export cancelled while writing the package: no file "
                                    "written")
    if progress is not None:
        progress(len(STEPS), len(STEPS), "done")
    return path

