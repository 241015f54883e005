"""The model QA report: one self-contained HTML file anyone can open.

:func:`report_html` lays out a :class:`.evaluate_models.QAResult` (and, with two models,
their :class:`.compare.Comparison`): what was scored, the summary per model and modality
with bootstrap intervals, the plots of :mod:`.plots`, the comparison (mean difference and
its interval, where B is better or worse, won and lost objects), the per-image table
(every image, worst first) and the gallery of the worst objects (:mod:`.gallery`). Plots
and crops are embedded as base64 PNG images and the style sheet is inline: the file
needs nothing else. :func:`write_report` writes it atomically.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .compare import compare_models
from .gallery import ERROR_KINDS, object_crops, worst_objects
from .plots import comparison_plot, per_image_plot, summary_plot

if TYPE_CHECKING:
    import pandas as pd

    from .compare import Comparison
    from .evaluate_models import QAResult

__all__ = ["report_html", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f4f4f4; } td.name, th.name { text-align: left; }
.note { color: #666; font-size: 0.85em; }
.plots img { margin: 0 1em 1em 0; border: 1px solid #eee; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; font-size: 0.75em; text-align: center; }
figure img { display: block; border: 1px solid #ccc; image-rendering: pixelated; }
.better { color: #2a7f3a; } .worse { color: #b3261e; }
"""
#: How many images "where B is better / worse" the report lists.
_TOP = 10


def _png(data: bytes, alt: str, width: int | None = None) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{encoded}">'


def _cell(value, name: bool = False) -> str:
    text = str(value)
    if isinstance(value, float):
        text = "–" if value != value else f"{value:.3f}"
    css = ' class="name"' if name else ""
    return f"<td{css}>{html.escape(text)}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence], css: str = "",
           names: int = 1, row_ids: Sequence[str] | None = None) -> str:
    """An HTML table; the first ``names`` columns left-aligned."""
    head = "".join(f'<th class="name">{html.escape(h)}</th>' if i < names
                   else f"<th>{html.escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        attribute = f' data-image="{html.escape(row_ids[r])}"' if row_ids else ""
        cells = "".join(_cell(v, i < names) for i, v in enumerate(row))
        body.append(f"<tr{attribute}>{cells}</tr>")
    return (f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table>")


def _interval(mean: float, low: float, high: float, signed: bool = False) -> str:
    form = "{:+.3f}" if signed else "{:.3f}"
    return f"{form.format(mean)} [{form.format(low)}, {form.format(high)}]"


def _summary_section(result: QAResult) -> str:
    headers = ["model", "modality", "images", f"mAP [{round(100 * result.level)} % interval]",
               "AP@0.5", "AP@0.75", "AP@0.9", "TP", "FP", "FN", "missed", "merged", "split",
               "false positives"]
    rows = [[r.model, r.modality, r.n_images, _interval(r.map, r.map_low, r.map_high),
             r.ap50, r.ap75, r.ap90, r.tp, r.fp, r.fn, r.missed, r.merged, r.split,
             r.false_positives] for r in result.summary.itertuples(index=False)]
    return ("<h2>Summary</h2>" + _table(headers, rows, "summary", names=2)
            + f'<p class="note">mAP: the mean over the images of each image\'s mean over the IoU '
            f"thresholds {', '.join(f'{t:g}' for t in result.thresholds)} of TP/(TP+FP+FN) "
            f"(DSB 2018). Interval: percentile bootstrap over the images ({result.n_boot} "
            f"resamples, seed {result.seed}). Counts at IoU {min(result.thresholds):g}; "
            "missed + merged + split = FN; false positives: predictions that are neither a "
            "merge nor a fragment of a split object (FP counts those too).</p>")


def _plots_section(result: QAResult, comparison: Comparison | None) -> str:
    plots = [summary_plot(result), per_image_plot(result)]
    if comparison is not None:
        plots.append(comparison_plot(comparison))
    images = "".join(_png(p.png, "plot", p.width) for p in plots)
    return f'<h2>Plots</h2><div class="plots">{images}</div>'


def _image_list(rows: pd.DataFrame) -> str:
    items = "".join(f"<li>{html.escape(str(r.image))}: {r.map_a:.3f} → {r.map_b:.3f} "
                    f"({r.difference:+.3f}; {r.won} objects won, {r.lost} lost)</li>"
                    for r in rows.head(_TOP).itertuples(index=False))
    return f"<ul>{items}</ul>" if items else "<p>none</p>"


def _comparison_section(comparison: Comparison) -> str:
    c = comparison
    b, a = html.escape(c.b), html.escape(c.a)
    verdict = (f"{b} is better" if c.ci_low > 0 else f"{b} is worse" if c.ci_high < 0 else
               f"the images do not tell {b} and {a} apart (the interval contains 0)")
    css = "better" if c.ci_low > 0 else "worse" if c.ci_high < 0 else ""
    headers = ["modality", "images", f"mAP {c.a}", f"mAP {c.b}", "difference [interval]",
               f"{c.b} better", f"{c.b} worse", "equal", "objects won", "objects lost"]
    rows = [[r.modality, r.n_images, r.map_a, r.map_b,
             _interval(r.mean_difference, r.ci_low, r.ci_high, signed=True), r.b_better,
             r.b_worse, r.equal, r.won, r.lost] for r in c.summary.itertuples(index=False)]
    return (f"<h2>{html.escape(c.b)} against {html.escape(c.a)}</h2>"
            f'<p>Mean difference of the per-image mAP ({html.escape(c.b)} − '
            f'{html.escape(c.a)}): <b>{_interval(c.mean_difference, c.ci_low, c.ci_high, True)}'
            f'</b> ({round(100 * c.level)} % paired bootstrap interval): '
            f'<span class="{css}">{verdict}</span>.</p>'
            + _table(headers, rows, "comparison")
            + '<p class="note">An object is won when B matches it at IoU ≥ '
            "0.5 and A does not, lost when A matches it and B does not.</p>"
            + f"<h3>Where {html.escape(c.b)} is better</h3>" + _image_list(c.b_better())
            + f"<h3>Where {html.escape(c.b)} is worse</h3>" + _image_list(c.b_worse()))


def _per_image_section(result: QAResult, comparison: Comparison | None) -> str:
    table = result.per_image.set_index(["model", "image"])
    order = result.worst_images()["image"].tolist()
    columns = ["map", "ap50", "tp", "fp", "fn", "missed", "merged", "split",
               "false_positives"]
    labels = ["mAP", "AP@0.5", "TP", "FP", "FN", "missed", "merged", "split", "FP objects"]
    headers = ["image", "modality", "objects", "median area"]
    for model in result.models:
        headers += [f"{label} ({model})" if len(result.models) > 1 else label
                    for label in labels]
    if comparison is not None:
        headers.append("difference")
        difference = comparison.per_image.set_index("image")["difference"]
    rows = []
    for name in order:
        first = table.loc[result.models[0], name]
        row = [name, first["modality"], int(first["n_true"]), float(first["median_area"])]
        for model in result.models:
            values = table.loc[model, name]
            row += [float(values[c]) if c in ("map", "ap50") else int(values[c])
                    for c in columns]
        if comparison is not None:
            row.append(float(difference[name]))
        rows.append(row)
    return (f"<h2>Per image ({len(order)} images, worst first by {html.escape(result.models[0])})"
            "</h2>" + _table(headers, rows, "per-image", names=2, row_ids=order))


def _gallery_section(result: QAResult, per_kind: int) -> str:
    if per_kind <= 0:
        return ""
    objects = worst_objects(result, per_kind=per_kind)
    crops = object_crops(result, objects)
    parts = ['<h2>Worst objects</h2><p class="note">The largest objects of each kind of error '
             "(image percentile-normalised; outlines: ground truth green, prediction magenta, "
             "the object yellow).</p>"]
    for model in result.models:
        for kind in ERROR_KINDS:
            mine = [c for c in crops if c.model == model and c.error == kind]
            if not mine:
                continue
            figures = "".join(
                f"<figure>{_png(c.png, f'{kind} {c.label} in {c.image}')}<figcaption>"
                f"{html.escape(c.image)}<br>#{c.label}, {c.area} px</figcaption></figure>"
                for c in mine)
            parts.append(f"<h3>{html.escape(model)}: {html.escape(kind)}</h3>"
                         f'<div class="gallery">{figures}</div>')
    return "".join(parts)


def _header(result: QAResult, title: str, source: str | None) -> str:
    from .. import __version__

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    models = ", ".join(html.escape(m) for m in result.models)
    data = f" from {html.escape(source)}" if source else ""
    return (f"<h1>{html.escape(title)}</h1><p>{len(result.images)} images{data}; "
            f"model(s): {models}.</p><p class=\"note\">napari-unet-weights {__version__}, "
            f"{now}.</p>")


def report_html(result: QAResult, *, comparison: Comparison | None = None,
                title: str = "Model QA report", source: str | None = None,
                per_kind: int = 6) -> str:
    """The report of ``result`` as one self-contained HTML document.

    Parameters
    ----------
    result : QAResult
    comparison : Comparison, optional
        Default: with two or more models, the second against the first.
    title : str
        The page's title.
    source : str, optional
        Where the images came from (shown under the title).
    per_kind : int
        Gallery objects per model and kind of error (0: no gallery).

    Returns
    -------
    str
        HTML: summary, plots, comparison, per-image table (one row per image, its
        ``<tr>`` carrying ``data-image``), gallery; images as base64 PNG.
    """
    if comparison is None and len(result.models) >= 2:
        comparison = compare_models(result)
    sections = [
        _header(result, title, source), _summary_section(result),
        _plots_section(result, comparison),
        _comparison_section(comparison) if comparison is not None else "",
        _per_image_section(result, comparison), _gallery_section(result, per_kind),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>\n")


def write_report(result: QAResult, path: str | os.PathLike, **options) -> Path:
    """Write :func:`report_html` of ``result`` to ``path`` (atomically); returns the path.

    Parameters
    ----------
    result : QAResult
    path : str or path-like
        The HTML file.
    **options
        Those of :func:`report_html`.
    """
    from ..io.files import atomic_output

    text = report_html(result, **options)
    path = Path(path)
    with atomic_output(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return path
