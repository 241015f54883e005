"""napari-unet-weights: U-Net border weight maps, weighted U-Net and mAP-of-IoU for napari.

The public API is re-exported here; nothing in this module imports Qt, napari or
TensorFlow, so ``import napari_unet_weights`` is fast and works headless.
"""

from importlib.metadata import PackageNotFoundError, version

from .metrics import DatasetEvaluation, Evaluation, evaluate, evaluate_dataset
from .unet import (  # TensorFlow is loaded when used
    MissingDataWarning,
    PredictionCancelled,
    TrainConfig,
    TrainConfigError,
    UNetModel,
    load_model,
    predict,
    segment,
    to_instances,
    train,
)
from .weights import WeightMapCache, border_radius, class_weight_values, weight_map

try:
    __version__ = version("napari-unet-weights")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0.0.0"

__all__ = [
    "DatasetEvaluation",
    "Evaluation",
    "MissingDataWarning",
    "PredictionCancelled",
    "TrainConfig",
    "TrainConfigError",
    "UNetModel",
    "WeightMapCache",
    "__version__",
    "border_radius",
    "class_weight_values",
    "evaluate",
    "evaluate_dataset",
    "load_model",
    "predict",
    "segment",
    "to_instances",
    "train",
    "weight_map",
]
