"""Model QA: score one or two models on an annotated set of images, compare, report.

- :func:`.evaluate_models.evaluate_models` → :class:`.evaluate_models.QAResult`: per-image
  and per-object tables, a per-model summary with bootstrap intervals (per modality), the
  arrays of any image.
- :func:`.gallery.worst_objects` / :func:`.gallery.object_crops`: the worst missed,
  merged, split and false-positive objects, with bounding boxes and PNG crops.
- :func:`.compare.compare_models` → :class:`.compare.Comparison`:
  paired differences, where model B wins and loses, won / lost objects.
- :mod:`.plots`: the plots as PNG images (with the position of every point, for clicks);
  :mod:`.report`: the self-contained HTML report.

No Qt, no napari; TensorFlow only when a U-Net model runs.
"""

from .bootstrap import Interval, bootstrap_mean
from .compare import Comparison, compare_models
from .evaluate_models import REPORT_COLUMNS, ImageArrays, QAResult, evaluate_models
from .gallery import ERROR_KINDS, ObjectCrop, object_crops, worst_objects
from .modality import modality

__all__ = ["ERROR_KINDS", "REPORT_COLUMNS", "Comparison", "ImageArrays", "Interval",
           "ObjectCrop", "QAResult", "bootstrap_mean", "compare_models", "evaluate_models",
           "modality", "object_crops", "worst_objects"]
