"""Model QA on an annotated set: every model on every image, scored, summarised.

:func:`evaluate_models` runs each model on each image (or reads its precomputed labels),
scores the prediction with :func:`..metrics.matching.evaluate` and returns a
:class:`QAResult`: a per-image table, a per-object table, a per-model summary with
bootstrap intervals (overall and per modality), the arrays of any row, the worst objects
(:mod:`.gallery`) and the comparison of two models (:mod:`.compare`).

Nothing is computed twice: each image and its ground truth are read once, every model
runs on it in turn, and each model file is loaded once (:mod:`..unet.model_cache`). The
network runs through :func:`..unet.predict.segment`, so a lazy (dask / zarr) image is
segmented block by block as the Segment widget does; the scores need the labels in
memory.

Per-image figures (one row per image and model)
-----------------------------------------------
``map``
    The DSB 2018 image score: the mean over the IoU thresholds (0.5, 0.55, ..., 0.95) of
    ``TP / (TP + FP + FN)``.
``ap50``, ``ap75``, ``ap90``
    ``TP / (TP + FP + FN)`` at IoU 0.5, 0.75 and 0.9 (NaN where not among the thresholds).
``tp``, ``fp``, ``fn``
    Counts at the reference threshold (the lowest: 0.5 by default), one-to-one matching.
``missed``, ``merged``, ``split``
    True objects by their status at the reference threshold (the rule of
    :mod:`..metrics.matching`; "covers more than half" means that more than half of the
    object's pixels lie inside the other):

    - *merged*: not matched, and one predicted object covers more than half of it and
      more than half of at least one other true object;
    - *split*: not matched, not merged, and two or more predicted objects each lie more
      than half inside it, together covering more than half of it;
    - *missed*: every other unmatched true object.

    So ``missed + merged + split == fn``.
``false_positives``
    Predicted objects matched to nothing that are neither a merge (covering more than
    half of two or more true objects) nor a fragment of a split true object. ``fp``
    counts those too.
``n_true``, ``n_pred``
    Objects in the ground truth and in the prediction.
``median_area``
    The median area (pixels) of the true objects (NaN if none).
``modality``
    ``"fluorescence"``, ``"brightfield"``, ``"he"`` or ``"other"``, by the recorded rule of
    :func:`.modality.modality`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics.matching import DEFAULT_THRESHOLDS, Evaluation, evaluate
from ..runtime.progress import Progress, ShouldStop, check_stop
from .bootstrap import DEFAULT_N_BOOT, DEFAULT_SEED, bootstrap_mean
from .inputs import ImageSource, ModelSource, resolve_images, resolve_models
from .modality import MODALITIES, modality

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PER_IMAGE_COLUMNS", "REPORT_COLUMNS", "SUMMARY_COLUMNS", "ImageArrays",
           "QAResult", "evaluate_models"]

#: The columns of the report's CSV (``napari-unet-weights report --csv``).
REPORT_COLUMNS = ("image", "model", "map", "ap50", "ap75", "ap90", "tp", "fp", "fn",
                  "missed", "merged", "split", "n_true", "n_pred")
#: The columns of :attr:`QAResult.per_image`.
PER_IMAGE_COLUMNS = (*REPORT_COLUMNS[:12], "false_positives", "n_true", "n_pred",
                     "median_area", "modality")
#: The columns of :attr:`QAResult.summary`.
SUMMARY_COLUMNS = ("model", "modality", "n_images", "map", "map_low", "map_high", "ap50",
                   "ap75", "ap90", "tp", "fp", "fn", "missed", "merged", "split",
                   "false_positives", "n_true", "n_pred")
#: The thresholds of the ``ap50``, ``ap75`` and ``ap90`` columns.
AP_COLUMNS = {"ap50": 0.5, "ap75": 0.75, "ap90": 0.9}
_COUNT_COLUMNS = ("tp", "fp", "fn", "missed", "merged", "split", "false_positives",
                  "n_true", "n_pred")
#: The summary's row of all images.
ALL = "all"


@dataclass
class ImageArrays:
    """One image with its ground truth and each model's prediction (see
    :meth:`QAResult.arrays`).

    Attributes
    ----------
    name : str
        The image's name (a value of the tables' ``image`` column).
    image : array-like
        The image as read (numpy, or a lazy dask array for a large file); None when not
        read (``arrays(..., with_image=False)``).
    truth : numpy.ndarray
        The ground-truth labels.
    predictions : dict of str to numpy.ndarray
        Each model's labels, by model name (only the models asked for).
    """

    name: str
    image: Any = field(repr=False)
    truth: np.ndarray = field(repr=False)
    predictions: dict[str, np.ndarray] = field(repr=False)


@dataclass
class QAResult:
    """What :func:`evaluate_models` found. Tables are :class:`pandas.DataFrame`.

    Attributes
    ----------
    models : list of str
        The models' names, in the order given.
    images : list of str
        The images' names, in input order.
    per_image : pandas.DataFrame
        One row per model and image (models in order, then images in order), columns
        :data:`PER_IMAGE_COLUMNS` (defined in the module docstring).
    summary : pandas.DataFrame
        Per model, one row over all images (``modality == "all"``) then one per modality
        present: ``n_images``, the mean ``map`` with its bootstrap interval ``map_low``,
        ``map_high`` (:func:`.bootstrap.bootstrap_mean` over the images: ``n_boot``
        resamples, ``seed``, ``level``), mean ``ap50``, ``ap75``, ``ap90`` and the counts
        summed. Columns :data:`SUMMARY_COLUMNS`.
    thresholds : tuple of float
        The IoU thresholds of ``map``.
    strict : bool
        Whether a match needed ``IoU > t``.
    n_boot, seed : int
        The bootstrap's resamples and seed (comparisons use them too).
    level : float
        The intervals' coverage (0.95).
    """

    models: list[str]
    images: list[str]
    per_image: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    thresholds: tuple[float, ...]
    strict: bool
    n_boot: int
    seed: int
    level: float
    _evaluations: dict[tuple[str, str], Evaluation] = field(repr=False)
    _sources: dict[str, ImageSource] = field(repr=False)
    _model_sources: dict[str, ModelSource] = field(repr=False)
    _predictions: dict[tuple[str, str], np.ndarray] = field(repr=False)
    _per_object: pd.DataFrame | None = field(default=None, repr=False)

    # -- tables ------------------------------------------------------------------
    @property
    def per_object(self) -> pd.DataFrame:
        """One row per object, per image and model (built on first use, then kept).

        Columns ``image, model`` then those of :attr:`..metrics.matching.Evaluation.
        per_object`: ``kind`` (``"gt"``: every true object; ``"pred"``: predictions
        matched to nothing), ``label, area, centroid-0 .. centroid-{ndim-1}, best_pred,
        best_gt, best_iou, matched_pred, matched_iou, max_tp_threshold, status``. The
        status of a true object is ``"matched"``, ``"missed"``, ``"merged"`` or
        ``"split"``; of a prediction ``"merge"``, ``"split"`` (a fragment) or ``"false
        positive"`` (the rules in the module docstring).
        """
        if self._per_object is None:
            import pandas as pd

            frames = [_object_rows(self._evaluations[image, model], image, model)
                      for model in self.models for image in self.images]
            self._per_object = pd.concat(frames, ignore_index=True)
        return self._per_object

    def evaluation(self, image: str, model: str) -> Evaluation:
        """The full :class:`..metrics.matching.Evaluation` of one image and model."""
        return self._evaluations[str(image), str(model)]

    def worst_images(self, model: str | None = None) -> pd.DataFrame:
        """:attr:`per_image` of one model (default: the first), worst ``map`` first."""
        model = self.models[0] if model is None else model
        rows = self.per_image[self.per_image["model"] == model]
        return rows.sort_values(["map", "image"], kind="stable").reset_index(drop=True)

    def report_table(self) -> pd.DataFrame:
        """:attr:`per_image` with the columns of the report's CSV (:data:`REPORT_COLUMNS`)."""
        return self.per_image.loc[:, list(REPORT_COLUMNS)]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`report_table` as a CSV file (atomically); returns its path."""
        from ..io.files import atomic_output

        path = Path(path)
        with atomic_output(path) as partial:
            self.report_table().to_csv(partial, index=False)
        return path

    # -- arrays ------------------------------------------------------------------
    def arrays(self, image: str, models: Sequence[str] | None = None, *,
               with_image: bool = True) -> ImageArrays:
        """The image, its ground truth and the predictions, without running any model.

        Parameters
        ----------
        image : str
            The image's name (a value of ``per_image["image"]``).
        models : sequence of str, optional
            Whose predictions (default: all).
        with_image : bool
            False: only the labels (``image`` is None; the image file is not read).

        Returns
        -------
        ImageArrays
            Arrays given to :func:`evaluate_models` as they were; files read again
            (reading, not recomputing); U-Net predictions as kept.

        Raises
        ------
        KeyError
            For an unknown image or model.
        ValueError
            For a U-Net prediction that was not kept (``keep_predictions=False``).
        """
        source = self._sources[str(image)]
        predictions = {}
        for model in self.models if models is None else models:
            predictions[model] = self._prediction(source.name, model)
        return ImageArrays(source.name, source.read_image() if with_image else None,
                           source.read_truth(), predictions)

    def _prediction(self, image: str, model: str) -> np.ndarray:
        if (image, model) in self._predictions:
            return self._predictions[image, model]
        source = self._model_sources[model]
        if source.kind == "labels":
            return np.asarray(source.read_labels(image))
        raise ValueError(f"the prediction of {model!r} on {image!r} was not kept: run "
                         "evaluate_models with keep_predictions=True.")


def _object_rows(evaluation: Evaluation, image: str, model: str) -> pd.DataFrame:
    """``evaluation.per_object`` with ``image, model`` in front and the predictions'
    statuses of ``pred_features`` (merge, split, false positive)."""
    table = evaluation.per_object.copy()
    predicted = (table["kind"] == "pred").to_numpy()
    if predicted.any():
        status = dict(zip(evaluation.pred_features["index"].tolist(),
                          evaluation.pred_features["status"].tolist(), strict=True))
        table.loc[predicted, "status"] = [status[label]
                                          for label in table.loc[predicted, "label"].tolist()]
    table.insert(0, "model", model)
    table.insert(0, "image", image)
    return table


def _image_row(evaluation: Evaluation, image: str, model: str, kind: str) -> dict:
    """The per-image figures of one evaluation (the module docstring defines them)."""
    per_threshold = evaluation.per_threshold
    thresholds = per_threshold["threshold"].to_numpy()
    accuracy = per_threshold["accuracy"].to_numpy()
    reference = int(np.argmin(thresholds))
    counts = {c: int(per_threshold[c].to_numpy()[reference]) for c in ("tp", "fp", "fn")}
    objects = evaluation.per_object
    truth = objects["kind"].to_numpy() == "gt"
    status = objects["status"].to_numpy()[truth]
    areas = objects["area"].to_numpy()[truth]
    ap = {}
    for column, t in AP_COLUMNS.items():
        at = np.flatnonzero(np.isclose(thresholds, t, rtol=0, atol=1e-9))
        ap[column] = float(accuracy[at[0]]) if at.size else float("nan")
    return {
        "image": image, "model": model, "map": float(evaluation.map), **ap, **counts,
        **{name: int(np.count_nonzero(status == name)) for name in ("missed", "merged",
                                                                     "split")},
        "false_positives": int(np.count_nonzero(
            evaluation.pred_features["status"].to_numpy() == "false positive")),
        "n_true": evaluation.n_true, "n_pred": evaluation.n_pred,
        "median_area": float(np.median(areas)) if areas.size else float("nan"),
        "modality": kind,
    }


def _modalities(present) -> list[str]:
    """The modalities present, in :data:`.modality.MODALITIES` order, then the others."""
    present = set(present)
    return [m for m in MODALITIES if m in present] + sorted(present - set(MODALITIES))


def summarize(per_image: pd.DataFrame, models: Sequence[str], *, n_boot: int, seed: int,
              level: float) -> pd.DataFrame:
    """The per-model summary of :attr:`QAResult.summary` from the per-image table."""
    import pandas as pd

    rows = []
    for model in models:
        mine = per_image[per_image["model"] == model]
        groups = [(ALL, mine)] + [(m, mine[mine["modality"] == m])
                                  for m in _modalities(mine["modality"])]
        for name, group in groups:
            interval = bootstrap_mean(group["map"].to_numpy(), n_boot=n_boot, seed=seed,
                                      level=level)
            rows.append({
                "model": model, "modality": name, "n_images": len(group),
                "map": interval.mean, "map_low": interval.low, "map_high": interval.high,
                **{c: float(group[c].mean()) for c in AP_COLUMNS},
                **{c: int(group[c].sum()) for c in _COUNT_COLUMNS},
            })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _predict(model: ModelSource, source: ImageSource, image, options: Mapping[str, Any],
             should_stop: ShouldStop | None) -> np.ndarray:
    """One model's labels of one image: the network run, or the precomputed file read."""
    if model.kind == "labels":
        return np.asarray(model.read_labels(source.name))
    from ..unet.predict import segment

    return np.asarray(segment(image, model.loaded(), should_stop=should_stop, **options))


def evaluate_models(
    images,
    truths=None,
    models="bundled",
    *,
    names: Sequence[str] | None = None,
    image_names: Sequence[str] | None = None,
    thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS,
    strict: bool = False,
    segment_options: Mapping[str, Any] | None = None,
    keep_predictions: bool = True,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> QAResult:
    """Score one or more models on annotated images: per image, per object, per model.

    Parameters
    ----------
    images : str, path, or sequence of arrays / paths
        A folder holding ``images/`` and ``labels/`` (files paired by name without
        extension; ``truths`` None), a folder of images (``truths`` the labels folder),
        or a list of images (arrays, or files: read once; zarr stores and TIFFs over
        :data:`..io.big.LARGE_PIXELS` lazily).
    truths : str, path, or sequence of arrays / paths, optional
        The ground-truth instance labels: a folder, or a list in the images' order.
    models : model, sequence of models, or mapping of name to model
        Each model is ``"bundled"`` (or None: the bundled nuclei model), a model file
        (``.keras``, or a ``.zip`` package this plugin exported), a loaded
        :class:`..unet.model_file.UNetModel`, or precomputed labels, so that any tool's
        output can be judged: a folder of label images (paired with the images by name)
        or a list of label images (arrays or files, in the images' order). A list is a
        list of models: one model's precomputed labels go in a list of their own
        (``[labels]``) or a mapping (``{"cellpose": labels}``).
    names : sequence of str, optional
        The models' names in the tables (default: the mapping's keys, ``"bundled"``, the
        file's name without extension, the folder's name, or ``"model N"``).
    image_names : sequence of str, optional
        The images' names (default: file names without extension, else the positions).
    thresholds : float or sequence of float
        IoU thresholds of ``map`` (default 0.5, 0.55, ..., 0.95); the lowest is the
        reference threshold of ``tp``, ``fp``, ``fn`` and the object statuses.
    strict : bool
        Match with ``IoU > t`` instead of ``IoU >= t``.
    segment_options : mapping, optional
        Keywords of :func:`..unet.predict.segment` for the U-Net models (``tta``,
        ``diameter``, ``tile_shape``, ``use_gpu``, post-processing overrides, ...).
    keep_predictions : bool
        Keep each U-Net prediction in memory so that :meth:`QAResult.arrays` and the
        gallery need no second run (label images: a few bytes per pixel and model).
    n_boot, seed, level
        The bootstrap of the summary's intervals (:func:`.bootstrap.bootstrap_mean`).
    progress : callable, optional
        ``progress(done, total)`` after each (image, model) pair; ``total`` is the number
        of images × models.
    should_stop : callable, optional
        Polled before each pair and by the network between its batches; True raises
        :class:`..runtime.progress.Cancelled` (nothing returned).

    Returns
    -------
    QAResult
        ``per_image``, ``per_object``, ``summary``, ``arrays(image)``; see also
        :func:`.compare.compare_models` and :func:`.gallery.worst_objects`.

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        For inputs that cannot be used, before any pixel is read or model loaded (see
        :func:`.inputs.resolve_images`, :func:`.inputs.resolve_models`); while running,
        for a file that cannot be read or a prediction whose shape differs from its
        ground truth (the message names the image and model).
    Cancelled
        If ``should_stop()`` returned True.

    Examples
    --------
    >>> result = evaluate_models("validation/", models={"A": "a.keras",
    ...                                                  "B": "b.keras"})  # doctest: +SKIP
    >>> result.summary  # doctest: +SKIP
    >>> compare_models(result, "A", "B").mean_difference  # doctest: +SKIP
    """
    from ..metrics.matching import _check_thresholds

    thresholds = _check_thresholds(thresholds)
    bootstrap_mean([0.0], n_boot=n_boot, seed=seed, level=level)  # its checks, before work
    sources = resolve_images(images, truths, image_names)
    model_sources = resolve_models(models, sources, names)
    options = dict(segment_options or {})
    rows, evaluations, predictions = [], {}, {}
    total, done = len(sources) * len(model_sources), 0
    for source in sources:
        check_stop(should_stop, f"model QA cancelled after {done} of {total} evaluations.")
        image, truth = source.read_image(), source.read_truth()
        kind = modality(image)
        for model in model_sources:
            check_stop(should_stop, f"model QA cancelled after {done} of {total} evaluations.")
            try:
                labels = _predict(model, source, image, options, should_stop)
                evaluation = evaluate(truth, labels, thresholds, strict=strict)
            except (OSError, TypeError, ValueError) as error:
                raise type(error)(f"image {source.name!r}, model {model.name!r}: {error}"
                                  ) from error
            evaluations[source.name, model.name] = evaluation
            if keep_predictions and model.kind == "unet":
                predictions[source.name, model.name] = labels
            rows.append(_image_row(evaluation, source.name, model.name, kind))
            done += 1
            if progress is not None:
                progress(done, total)
    return _result(rows, evaluations, predictions, sources, model_sources, thresholds,
                   strict, n_boot=n_boot, seed=seed, level=level)


def _result(rows, evaluations, predictions, sources, model_sources, thresholds, strict, *,
            n_boot: int, seed: int, level: float) -> QAResult:
    import pandas as pd

    models = [m.name for m in model_sources]
    per_image = pd.DataFrame(rows, columns=list(PER_IMAGE_COLUMNS))
    order = {name: i for i, name in enumerate(models)}
    per_image = per_image.sort_values("model", key=lambda c: c.map(order), kind="stable")
    per_image = per_image.reset_index(drop=True)
    return QAResult(
        models=models, images=[s.name for s in sources], per_image=per_image,
        summary=summarize(per_image, models, n_boot=n_boot, seed=seed, level=level),
        thresholds=thresholds, strict=strict, n_boot=n_boot, seed=seed, level=level,
        _evaluations=evaluations, _sources={s.name: s for s in sources},
        _model_sources={m.name: m for m in model_sources}, _predictions=predictions,
    )
