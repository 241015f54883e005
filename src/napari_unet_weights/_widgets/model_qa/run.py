"""What the Model QA widget runs off the GUI thread, and how it words the outcome.

:func:`run_qa` is the worker's body: :func:`~napari_unet_weights.qa.evaluate_models`
on the request, then what the widget shows, built in the same thread: the comparison of
the two models (:func:`~napari_unet_weights.qa.compare_models`), the plot
(:mod:`napari_unet_weights.qa.plots`: per-image mAP, or B against A) and the gallery's
crops (:func:`~napari_unet_weights.qa.worst_objects`, :func:`~napari_unet_weights.qa.
object_crops`). :func:`save_report` writes the HTML report and its CSV. The widget's
per-image table (:func:`image_table`) and summary line (:func:`summary_text`) are built
from the result's tables; nothing here scores anything itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_unet_weights.qa import compare_models, evaluate_models, object_crops, worst_objects
from napari_unet_weights.qa.plots import comparison_plot, per_image_plot
from napari_unet_weights.qa.report import write_report

if TYPE_CHECKING:
    import pandas as pd

    from napari_unet_weights.qa import Comparison, ObjectCrop, QAResult
    from napari_unet_weights.qa.plots import Plot
    from napari_unet_weights.runtime.progress import Progress, ShouldStop

__all__ = ["QARequest", "QARun", "image_table", "run_qa", "save_report", "summary_text"]

#: Gallery objects per model and kind of error.
GALLERY_PER_KIND = 4
#: The gallery's thumbnails: longer side in pixels.
THUMBNAIL = 72
#: The plots' size in points (about the dock's width): per-image mAP, the A-vs-B square.
PLOT_WIDTH, PLOT_HEIGHT, SCATTER_SIZE = 560, 260, 400
#: Per-image columns shown for each model, and their headers.
MODEL_COLUMNS = {"map": "mAP", "ap50": "AP@0.5", "tp": "TP", "fp": "FP", "fn": "FN",
                 "missed": "missed", "merged": "merged", "split": "split",
                 "false_positives": "FP objects"}
#: With two models, the columns shown for each (the table stays narrow enough to dock).
PAIR_COLUMNS = ("map", "fn", "fp")


@dataclass
class QARequest:
    """What a run scores: ``evaluate_models``' arguments, snapshotted on the GUI thread.

    Attributes
    ----------
    images, truths
        A folder with ``images/`` and ``labels/`` (``truths`` None), or lists of arrays.
    image_names : list of str or None
        The images' names (the layers' names), None for a folder.
    models : dict of str to model
        ``{name: "bundled" | model file | labels folder}``.
    tta : bool
        Test-time augmentation for the U-Net models.
    source : str
        Where the images came from, for the status line and the report.
    """

    images: Any = field(repr=False)
    truths: Any = field(repr=False)
    image_names: list[str] | None
    models: dict[str, Any]
    tta: bool
    source: str


@dataclass
class QARun:
    """What a run hands back to the widget.

    Attributes
    ----------
    request : QARequest
    result : QAResult
    comparison : Comparison or None
        The second model against the first (two models only).
    plot : Plot
        Per-image mAP (one model), or B against A (two).
    crops : list of ObjectCrop
        The gallery: the worst objects of each model and kind of error.
    """

    request: QARequest
    result: QAResult = field(repr=False)
    comparison: Comparison | None = field(repr=False)
    plot: Plot = field(repr=False)
    crops: list[ObjectCrop] = field(repr=False)


def run_qa(request: QARequest, progress: Progress | None = None,
           should_stop: ShouldStop | None = None, scale: float = 1.0) -> QARun:
    """The worker's body: score the models, compare them, draw the plot, crop the worst objects.

    Parameters
    ----------
    request : QARequest
    progress : callable, optional
        ``progress(done, total)`` after each (image, model) pair.
    should_stop : callable, optional
        True stops the run (:class:`~napari_unet_weights.runtime.progress.Cancelled`).
    scale : float
        Pixels per point of the plot (the screen's device pixel ratio).

    Returns
    -------
    QARun
    """
    options: Mapping[str, Any] = {"tta": True} if request.tta else {}
    result = evaluate_models(request.images, request.truths, request.models,
                             image_names=request.image_names, segment_options=options,
                             progress=progress, should_stop=should_stop)
    comparison = compare_models(result) if len(result.models) == 2 else None
    if comparison is not None:
        plot = comparison_plot(comparison, size=SCATTER_SIZE, scale=scale)
    else:
        plot = per_image_plot(result, width=PLOT_WIDTH, height=PLOT_HEIGHT, scale=scale)
    crops = object_crops(result, worst_objects(result, per_kind=GALLERY_PER_KIND),
                         size=THUMBNAIL)
    return QARun(request, result, comparison, plot, crops)


def save_report(run: QARun, path: str | Path) -> tuple[Path, Path]:
    """Write the HTML report of ``run`` to ``path`` and its per-image CSV beside it.

    Parameters
    ----------
    run : QARun
    path : str or pathlib.Path
        The HTML file (``.html`` appended if it has no suffix).

    Returns
    -------
    html, csv : pathlib.Path
        The files written (the CSV: the same name with ``.csv``).
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".html")
    html = write_report(run.result, path, comparison=run.comparison, source=run.request.source)
    return html, run.result.to_csv(path.with_suffix(".csv"))


def image_table(result: QAResult, comparison: Comparison | None = None) -> pd.DataFrame:
    """The widget's per-image table: one row per image, worst first (by the first model).

    Parameters
    ----------
    result : QAResult
    comparison : Comparison, optional
        With two models: their mAP, FN and FP side by side, the difference and the
        objects won and lost.

    Returns
    -------
    pandas.DataFrame
        ``image``, then the scores (one model: ``mAP, AP@0.5, TP, FP, FN, missed, merged,
        split, FP objects``; two: ``mAP <A>, mAP <B>, B − A, won, lost, FN <A>, ...``),
        ``modality, objects, median area``.
    """
    first = result.worst_images()
    frame = first[["image"]].copy()
    if comparison is None:
        for column, header in MODEL_COLUMNS.items():
            frame[header] = first[column].to_numpy()
    else:
        by_image = result.per_image.set_index(["model", "image"])
        pairs = comparison.per_image.set_index("image").loc[frame["image"]]
        for column in PAIR_COLUMNS:
            for model in (comparison.a, comparison.b):
                frame[f"{MODEL_COLUMNS[column]} {model}"] = [
                    by_image.loc[(model, name), column] for name in frame["image"]]
            if column == "map":
                frame[f"{comparison.b} − {comparison.a}"] = pairs["difference"].to_numpy()
                frame["won"] = pairs["won"].to_numpy()
                frame["lost"] = pairs["lost"].to_numpy()
    frame["modality"] = first["modality"].to_numpy()
    frame["objects"] = first["n_true"].to_numpy()
    frame["median area"] = first["median_area"].to_numpy()
    return frame.reset_index(drop=True)


def _verdict(comparison: Comparison) -> str:
    if comparison.ci_low > 0:
        return f"{comparison.b} is better"
    if comparison.ci_high < 0:
        return f"{comparison.b} is worse"
    return "the images do not tell them apart"


def summary_text(result: QAResult, comparison: Comparison | None = None) -> str:
    """One line per model: its mean mAP with the interval; then B − A with its verdict.

    Parameters
    ----------
    result : QAResult
    comparison : Comparison, optional

    Returns
    -------
    str
        Rich text (lines joined by ``<br>``).
    """
    percent = round(100 * result.level)
    overall = result.summary[result.summary["modality"] == "all"]
    lines = [f"<b>{escape(row.model)}</b>: mAP {row.map:.3f} [{row.map_low:.3f}, "
             f"{row.map_high:.3f}] ({percent} % interval, {row.n_images} images)"
             for row in overall.itertuples(index=False)]
    if comparison is not None:
        c = comparison
        lines.append(escape(f"{c.b} − {c.a}: {c.mean_difference:+.3f} [{c.ci_low:+.3f}, "
                            f"{c.ci_high:+.3f}]: {_verdict(c)}"))
    return "<br>".join(lines)
