"""The weighted U-Net: targets, model, training, prediction and post-processing.

Nothing here imports TensorFlow at import time: Keras is imported inside the functions
that need it, so ``import napari_unet_weights`` stays fast. Install the extra with
``pip install "napari-unet-weights[unet]"``.
"""

from .model import build_unet, weighted_loss
from .model_file import BUNDLED_MODEL, UNetModel, load_model, read_metadata
from .postprocess import DEFAULT_POSTPROCESS, to_instances
from .predict import pad_to_multiple, predict, prepare_image
from .targets import three_class_target, training_weights, two_class_target
from .train import TrainingResult, train

__all__ = [
    "BUNDLED_MODEL",
    "DEFAULT_POSTPROCESS",
    "TrainingResult",
    "UNetModel",
    "build_unet",
    "load_model",
    "pad_to_multiple",
    "predict",
    "prepare_image",
    "read_metadata",
    "three_class_target",
    "to_instances",
    "train",
    "training_weights",
    "two_class_target",
    "weighted_loss",
]
