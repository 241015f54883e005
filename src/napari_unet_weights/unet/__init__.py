"""The weighted U-Net: targets, model, training, prediction and post-processing.

Nothing here imports TensorFlow at import time: Keras is imported inside the functions
that need it, so ``import napari_unet_weights`` stays fast. Install the extra with
``pip install "napari-unet-weights[unet]"``.
"""

from .config import TrainConfig, TrainConfigError
from .diameter import Sizing, object_diameter
from .model import build_unet, weighted_loss
from .model_file import BUNDLED_MODEL, UNetModel, load_model, read_metadata
from .postprocess import DEFAULT_POSTPROCESS, to_instances
from .predict import PredictionCancelled, predict, segment
from .preprocess import MissingDataWarning, prepare_image
from .sizing import SizedSegmentation, estimate_diameter, segment_at_diameter
from .targets import three_class_target, training_weights, two_class_target
from .tiling import pad_to_multiple
from .training.train import TrainingResult, train

__all__ = [
    "BUNDLED_MODEL",
    "DEFAULT_POSTPROCESS",
    "MissingDataWarning",
    "PredictionCancelled",
    "SizedSegmentation",
    "Sizing",
    "TrainConfig",
    "TrainConfigError",
    "TrainingResult",
    "UNetModel",
    "build_unet",
    "estimate_diameter",
    "load_model",
    "object_diameter",
    "pad_to_multiple",
    "predict",
    "prepare_image",
    "read_metadata",
    "segment",
    "segment_at_diameter",
    "three_class_target",
    "to_instances",
    "train",
    "training_weights",
    "two_class_target",
    "weighted_loss",
]
