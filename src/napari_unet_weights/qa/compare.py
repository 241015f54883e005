"""Two models side by side: paired per-image differences, wins, losses, won / lost objects.

Model B is compared with model A on the same images (the comparison is paired): per
image the difference ``map_b - map_a``, its mean over the images with a bootstrap
interval (:func:`.bootstrap.bootstrap_mean` of the differences: the images resampled,
each keeping its pair), the images where B is better, worse or equal, and the true
objects that one model matches and the other does not:

- *won*: a true object that B matches (a true positive at the reference threshold, IoU
  ≥ 0.5 by default) and A does not;
- *lost*: one that A matches and B does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .bootstrap import bootstrap_mean

if TYPE_CHECKING:
    import pandas as pd

    from .evaluate_models import QAResult

__all__ = ["COMPARISON_COLUMNS", "OBJECT_COLUMNS", "Comparison", "compare_models"]

#: The columns of :attr:`Comparison.per_image`.
COMPARISON_COLUMNS = ("image", "modality", "map_a", "map_b", "difference", "outcome",
                      "won", "lost")
#: The columns of :attr:`Comparison.objects` (then ``centroid-0 ..``).
OBJECT_COLUMNS = ("image", "label", "outcome", "area", "iou_a", "iou_b", "status_a",
                  "status_b")
#: |map_b - map_a| at most this is "equal".
EQUAL = 1e-9


@dataclass
class Comparison:
    """Model ``b`` against model ``a`` on the same images.

    Attributes
    ----------
    a, b : str
        The two models' names.
    per_image : pandas.DataFrame
        One row per image, input order: ``image, modality, map_a, map_b, difference``
        (``map_b - map_a``), ``outcome`` (``"B better"``, ``"B worse"`` or ``"equal"``),
        ``won``, ``lost`` (true objects won / lost by B on that image).
    mean_difference, ci_low, ci_high : float
        The mean of the differences and its bootstrap interval (level ``level``).
    summary : pandas.DataFrame
        Over all images (``modality == "all"``), then per modality: ``n_images,
        map_a, map_b, mean_difference, ci_low, ci_high, b_better, b_worse, equal, won,
        lost``.
    objects : pandas.DataFrame
        The won and lost true objects: ``image, label, outcome`` (``"won"`` / ``"lost"``),
        ``area, iou_a, iou_b`` (IoU with each model's matched object, 0 if none),
        ``status_a, status_b``, ``centroid-0 ..``.
    level : float
        The interval's coverage.
    """

    a: str
    b: str
    per_image: pd.DataFrame = field(repr=False)
    mean_difference: float
    ci_low: float
    ci_high: float
    summary: pd.DataFrame = field(repr=False)
    objects: pd.DataFrame = field(repr=False)
    level: float

    def b_better(self) -> pd.DataFrame:
        """The images where B scores higher, largest gain first."""
        rows = self.per_image[self.per_image["outcome"] == "B better"]
        return rows.sort_values("difference", ascending=False, kind="stable")

    def b_worse(self) -> pd.DataFrame:
        """The images where B scores lower, largest loss first."""
        rows = self.per_image[self.per_image["outcome"] == "B worse"]
        return rows.sort_values("difference", kind="stable")


def _outcome(difference: np.ndarray) -> np.ndarray:
    return np.where(difference > EQUAL, "B better",
                    np.where(difference < -EQUAL, "B worse", "equal")).astype(object)


def won_lost_objects(result: QAResult, a: str, b: str) -> pd.DataFrame:
    """The true objects matched by exactly one of the models (see the module docstring)."""
    objects = result.per_object
    truth = objects[objects["kind"] == "gt"]
    centroids = [c for c in truth.columns if c.startswith("centroid-")]
    keys = ["image", "label"]
    pairs = truth[truth["model"] == a][[*keys, "area", *centroids, "matched_pred",
                                        "matched_iou", "status"]].merge(
        truth[truth["model"] == b][[*keys, "matched_pred", "matched_iou", "status"]],
        on=keys, suffixes=("_a", "_b"), sort=False)
    matched_a, matched_b = pairs["matched_pred_a"] != 0, pairs["matched_pred_b"] != 0
    chosen = pairs[matched_a != matched_b].rename(
        columns={"matched_iou_a": "iou_a", "matched_iou_b": "iou_b"})
    chosen = chosen.assign(outcome=np.where(matched_b[matched_a != matched_b], "won",
                                            "lost").astype(object))
    return chosen[[*OBJECT_COLUMNS, *centroids]].reset_index(drop=True)


def _summary_row(name: str, group: pd.DataFrame, result: QAResult) -> dict:
    interval = bootstrap_mean(group["difference"].to_numpy(), n_boot=result.n_boot,
                              seed=result.seed, level=result.level)
    outcome = group["outcome"].value_counts()
    return {
        "modality": name, "n_images": len(group), "map_a": float(group["map_a"].mean()),
        "map_b": float(group["map_b"].mean()), "mean_difference": interval.mean,
        "ci_low": interval.low, "ci_high": interval.high,
        "b_better": int(outcome.get("B better", 0)), "b_worse": int(outcome.get("B worse", 0)),
        "equal": int(outcome.get("equal", 0)), "won": int(group["won"].sum()),
        "lost": int(group["lost"].sum()),
    }


def compare_models(result: QAResult, a: str | None = None, b: str | None = None
                   ) -> Comparison:
    """Compare model ``b`` with model ``a`` on the images of ``result``.

    Parameters
    ----------
    result : QAResult
        From :func:`.evaluate_models.evaluate_models` with both models.
    a, b : str, optional
        The models' names (default: the first and the second model).

    Returns
    -------
    Comparison
        The mean of ``map_b - map_a`` over the images with its bootstrap interval (the
        result's ``n_boot``, ``seed`` and ``level``), per image and per modality, and
        the won / lost objects.

    Raises
    ------
    ValueError
        If the result holds fewer than two models, or ``a`` and ``b`` are the same.
    KeyError
        For a name that is not one of the result's models.
    """
    import pandas as pd

    from .evaluate_models import ALL, _modalities

    if a is None or b is None:
        if len(result.models) < 2:
            raise ValueError("a comparison needs two models; the result holds "
                             f"{len(result.models)}.")
        a, b = a or result.models[0], b or result.models[1]
    for name in (a, b):
        if name not in result.models:
            raise KeyError(f"no model named {name!r}; the models are {result.models}.")
    if a == b:
        raise ValueError(f"compare two different models, got {a!r} twice.")
    table = result.per_image.set_index("model")
    first, second = table.loc[[a]], table.loc[[b]]
    difference = second["map"].to_numpy() - first["map"].to_numpy()
    objects = won_lost_objects(result, a, b)
    counts = objects.groupby(["image", "outcome"]).size().unstack(fill_value=0)
    per_image = pd.DataFrame({
        "image": first["image"].to_numpy(), "modality": first["modality"].to_numpy(),
        "map_a": first["map"].to_numpy(), "map_b": second["map"].to_numpy(),
        "difference": difference, "outcome": _outcome(difference),
    })
    for column in ("won", "lost"):
        values = counts[column] if column in counts else pd.Series(dtype=int)
        per_image[column] = per_image["image"].map(values).fillna(0).astype(int)
    groups = [(ALL, per_image)] + [(m, per_image[per_image["modality"] == m])
                                   for m in _modalities(per_image["modality"])]
    summary = pd.DataFrame([_summary_row(name, group, result) for name, group in groups])
    overall = summary.iloc[0]
    return Comparison(a=a, b=b, per_image=per_image,
                      mean_difference=float(overall["mean_difference"]),
                      ci_low=float(overall["ci_low"]), ci_high=float(overall["ci_high"]),
                      summary=summary, objects=objects, level=result.level)
