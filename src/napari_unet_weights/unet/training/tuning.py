"""The validation of a trained model: its mAP, and the post-processing tuned on it.

:func:`final_validation` scores a model on the validation samples with a starting
post-processing (:class:`Tuning`: the defaults, or a parent model's), tuned on them first
when :func:`tuning` says there is enough to tune on: the thresholds of
:data:`TUNING_GRID`, then the smallest object kept (:data:`MIN_SIZES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..config import TrainConfig
from ..network import predictor
from ..postprocess import DEFAULT_POSTPROCESS, to_instances
from ..predict import predict_prepared
from .data import PreparedSample
from .parent import TUNE_MIN_IMAGES

__all__ = ["MIN_SIZES", "TUNING_GRID", "VALIDATED_ON", "Tuning", "final_validation",
           "predict_samples", "score_samples", "tuning", "tuning_candidates"]

#: Post-processing grids searched on the validation set after training.
TUNING_GRID = {
    2: {"threshold": (0.3, 0.4, 0.5, 0.6, 0.7), "expand": (0, 1)},
    3: {"threshold": (0.4, 0.5, 0.6), "seed_threshold": (0.5, 0.6, 0.7, 0.8, 0.9)},
}
#: Then the smallest object kept, searched with the best thresholds of the grid.
MIN_SIZES = (5, 10, 20, 30, 50)


# -- scoring -------------------------------------------------------------------
def predict_samples(keras_model, samples: list[PreparedSample],
                    multiple: int) -> list[np.ndarray]:
    """The network's class probabilities on each whole sample (one inference copy of the
    network for them all: its weights fingerprinted once)."""
    network = predictor(keras_model)
    return [predict_prepared(keras_model, s.x, multiple, network=network) for s in samples]


def score_samples(samples: list[PreparedSample], probabilities: list[np.ndarray],
                  parameters: dict):
    """The DSB 2018 score of the instances ``parameters`` make of ``probabilities``."""
    from ...metrics.matching import evaluate_dataset

    return evaluate_dataset(
        (s.name, s.labels, to_instances(p, **parameters))
        for s, p in zip(samples, probabilities)
    )


def _grid(n_classes: int) -> list[dict]:
    grid = TUNING_GRID[n_classes]
    return [dict(zip(grid, values)) for values in product(*grid.values())]


def _best_of(samples, probabilities, candidates: list[dict]) -> tuple[dict, float]:
    """The candidate post-processing with the highest mAP (the first one on ties)."""
    best, best_map = candidates[0], -1.0
    for parameters in candidates:
        score = score_samples(samples, probabilities, parameters).map
        if score > best_map + 1e-9:
            best, best_map = parameters, score
    return best, best_map


def _tune(samples, probabilities, n_classes: int) -> tuple[dict, float]:
    """The thresholds of :data:`TUNING_GRID`, then the :data:`MIN_SIZES` with them."""
    best, _ = _best_of(samples, probabilities,
                       [{**DEFAULT_POSTPROCESS, **overrides} for overrides in _grid(n_classes)])
    return _best_of(samples, probabilities, [{**best, "min_size": size} for size in MIN_SIZES])


def _per_threshold_records(result) -> list[dict]:
    per_image = np.array([e.per_threshold["accuracy"].to_numpy() for e in result.images])
    records = result.per_threshold.to_dict("records")
    for i, record in enumerate(records):
        record["map"] = float(per_image[:, i].mean()) if per_image.size else 0.0
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in records]


#: ``validation["on"]``: what the validation figures were measured on, by split source.
VALIDATED_ON = {None: "held-out split", "given": "validation set",
                "training": "training images"}


@dataclass(frozen=True)
class Tuning:
    """The final validation's post-processing: where it starts, whether it is tuned."""

    base: dict
    base_name: str  # "parent" or "defaults": where untuned parameters come from
    tune: bool


def final_validation(keras_model, samples, config: TrainConfig, tuning: Tuning,
                     split: dict) -> dict:
    """The model's validation record: mAP, per threshold and image, the post-processing."""
    probabilities = predict_samples(keras_model, samples, config.multiple)
    default = score_samples(samples, probabilities, tuning.base)
    parameters = dict(tuning.base)
    if tuning.tune:
        parameters, _ = _tune(samples, probabilities, config.n_classes)
    result = score_samples(samples, probabilities, parameters)
    return {
        "map": float(result.map),
        "map_default_postprocess": float(default.map),
        "thresholds": list(result.thresholds),
        "per_threshold": _per_threshold_records(result),
        "per_image": [{"image": name, "map": float(score)} for name, score
                      in zip(result.per_image["image"], result.per_image["map"])],
        "n_images": len(samples),
        "postprocess": parameters,
        "postprocess_tuned_on": "validation" if tuning.tune else None,
        "postprocess_from": "tuned" if tuning.tune else tuning.base_name,
        "on": VALIDATED_ON.get(split.get("source"), "held-out split"),
        **({"also_training": split["also_training"]} if split.get("also_training") else {}),
        "definition": "mean over images of the mean over IoU thresholds 0.5:0.95:0.05 of "
                      "TP/(TP+FP+FN) (DSB 2018); per_threshold: map = mean over images, "
                      "counts pooled",
    }


def tuning_candidates(n_classes: int) -> int:
    """How many post-processings tuning scores."""
    return len(_grid(n_classes)) + len(MIN_SIZES)


def tuning(config: TrainConfig, parent, split: dict, n_validation: int) -> Tuning:
    """Where the final post-processing starts and whether it is tuned.

    Not on the training images; when fine-tuning, only on at least
    :data:`.parent.TUNE_MIN_IMAGES` validation images (else the parent's is kept).
    """
    independent = split.get("source") != "training"
    if parent is None:
        return Tuning(dict(DEFAULT_POSTPROCESS), "defaults",
                       config.tune_postprocess and independent)
    return Tuning({**DEFAULT_POSTPROCESS, **parent.model.postprocess_parameters}, "parent",
                   config.tune_postprocess and independent and n_validation >= TUNE_MIN_IMAGES)
