"""napari-unet-weights: U-Net border weight maps, weighted U-Net and mAP-of-IoU for napari.

The public API is re-exported here; nothing in this module imports Qt, napari or
TensorFlow, so ``import napari_unet_weights`` is fast and works headless.
"""

from importlib.metadata import PackageNotFoundError, version

from . import _moved
from .labels.checks import PROBLEMS, LabelReport, check_labels
from .labels.fixes import (
    LabelFix,
    cut_touching,
    fill_holes,
    fix_labels,
    fix_problems,
    relabel,
    remove_small,
    split_disconnected,
)
from .metrics.matching import DatasetEvaluation, Evaluation, evaluate, evaluate_dataset
from .qa import Comparison, QAResult, compare_models, evaluate_models
from .runtime.engine import Engine
from .share.export import export_model  # bioimage.io packages; bioimageio loaded when used
from .unet import (  # TensorFlow is loaded when used
    MissingDataWarning,
    PredictionCancelled,
    TrainConfig,
    TrainConfigError,
    UNetModel,
    estimate_diameter,
    load_model,
    object_diameter,
    predict,
    segment,
    to_instances,
    train,
)
from .weights.exact import WeightMapCache, border_radius, class_weight_values, weight_map

_moved.install()  # the module paths of before the feature folders keep importing

try:
    __version__ = version("napari-unet-weights")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0.0.0"

__all__ = [
    "PROBLEMS",
    "Comparison",
    "DatasetEvaluation",
    "Engine",
    "Evaluation",
    "LabelFix",
    "LabelReport",
    "MissingDataWarning",
    "PredictionCancelled",
    "QAResult",
    "TrainConfig",
    "TrainConfigError",
    "UNetModel",
    "WeightMapCache",
    "__version__",
    "border_radius",
    "check_labels",
    "class_weight_values",
    "compare_models",
    "cut_touching",
    "estimate_diameter",
    "evaluate",
    "evaluate_dataset",
    "evaluate_models",
    "export_model",
    "fill_holes",
    "fix_labels",
    "fix_problems",
    "load_model",
    "object_diameter",
    "predict",
    "relabel",
    "remove_small",
    "segment",
    "split_disconnected",
    "to_instances",
    "train",
    "weight_map",
]
