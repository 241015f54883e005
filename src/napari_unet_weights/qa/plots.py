"""The model QA's plots as PNG images, drawn by hand (Pillow), for the widget and the report.

The Train widget's live plot draws its axes and points itself (QPainter, no plotting
library); these plots do the same with Pillow's ``ImageDraw``, so the core needs neither
Qt nor matplotlib, and the widget and the HTML report show the same pictures. Same
palette as the Train plot, mAP always on a 0 to 1 axis.

Each function returns a :class:`Plot`: the PNG bytes, its size, and the pixel position of
every point (``points``: ``image, model, x, y``), so that a click on the picture can be
mapped to a row (:meth:`Plot.point_at`).

- :func:`per_image_plot`: each image's mAP, images sorted worst first (by the first
  model), one colour per model;
- :func:`comparison_plot`: model B's mAP against model A's per image, with the diagonal,
  coloured by modality;
- :func:`summary_plot`: each model's mean mAP with its bootstrap interval, overall and
  per modality.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .compare import Comparison
    from .evaluate_models import QAResult

__all__ = ["MODALITY_COLOURS", "MODEL_COLOURS", "Plot", "comparison_plot", "per_image_plot",
           "summary_plot"]

#: One colour per model, in order (the Train plot's palette).
MODEL_COLOURS = ("#4c9be8", "#f28e2b", "#59c26b", "#b07aa1")
#: One colour per modality.
MODALITY_COLOURS = {"fluorescence": "#59c26b", "brightfield": "#f28e2b", "he": "#b07aa1",
                    "other": "#888888"}
_AXIS, _GRID, _TEXT = "#444444", "#e4e4e4", "#222222"
_MAP_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class Plot:
    """A rendered plot and where its points are.

    Attributes
    ----------
    png : bytes
        The picture.
    width, height : int
        Its size in pixels.
    points : pandas.DataFrame
        One row per point: ``image``, ``model`` (or the two models' names joined by
        " vs "), ``x``, ``y`` (pixels from the top-left corner of the PNG).
    """

    png: bytes = field(repr=False)
    width: int
    height: int
    points: pd.DataFrame = field(repr=False)

    def point_at(self, x: float, y: float, radius: float = 8.0) -> dict | None:
        """The point nearest to pixel ``(x, y)`` within ``radius``, as a dict; else None."""
        if self.points.empty:
            return None
        distance = np.hypot(self.points["x"].to_numpy() - x, self.points["y"].to_numpy() - y)
        nearest = int(np.argmin(distance))
        return self.points.iloc[nearest].to_dict() if distance[nearest] <= radius else None


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 or without FreeType: the small bitmap font
        return ImageFont.load_default()


class _Canvas:
    """A white picture with a plot area mapping data ranges to pixels."""

    def __init__(self, width: int, height: int, x_range: tuple[float, float],
                 y_range: tuple[float, float], scale: float = 1.0,
                 margins: tuple[int, int, int, int] = (56, 44, 18, 44)) -> None:
        from PIL import Image, ImageDraw

        self.scale = scale
        self.width, self.height = round(width * scale), round(height * scale)
        self.image = Image.new("RGB", (self.width, self.height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = _font(round(12 * scale))
        left, top, right, bottom = (round(m * scale) for m in margins)
        self.box = (left, top, self.width - right, self.height - bottom)
        self.x_range, self.y_range = x_range, y_range

    def px(self, x: float, y: float) -> tuple[float, float]:
        """The pixel of data point ``(x, y)``."""
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return (left + (x - x0) / ((x1 - x0) or 1) * (right - left),
                bottom - (y - y0) / ((y1 - y0) or 1) * (bottom - top))

    def text(self, xy: tuple[float, float], text: str, anchor: str = "la",
             fill: str = _TEXT) -> None:
        self.draw.text(xy, text, fill=fill, font=self.font, anchor=anchor)

    def y_axis(self, ticks: Sequence[float], label: str) -> None:
        left, top, right, bottom = self.box
        for tick in ticks:
            _, y = self.px(self.x_range[0], tick)
            self.draw.line([(left, y), (right, y)], fill=_GRID, width=1)
            self.text((left - 6 * self.scale, y), f"{tick:g}", anchor="rm")
        self.draw.line([(left, top), (left, bottom), (right, bottom)], fill=_AXIS,
                       width=max(1, round(self.scale)))
        self.text((6 * self.scale, top - 18 * self.scale), label)

    def x_ticks(self, ticks: Sequence[float], label: str) -> None:
        _, _, _, bottom = self.box
        for tick in ticks:
            x, _ = self.px(tick, self.y_range[0])
            self.draw.line([(x, bottom), (x, bottom + 4 * self.scale)], fill=_AXIS)
            self.text((x, bottom + 6 * self.scale), f"{tick:g}", anchor="ma")
        self.text(((self.box[0] + self.box[2]) / 2, self.height - 4 * self.scale), label,
                  anchor="md")

    def title(self, text: str) -> None:
        self.text(((self.box[0] + self.box[2]) / 2, 6 * self.scale), text, anchor="ma")

    def dot(self, x: float, y: float, colour: str, radius: float = 3.0) -> tuple[float, float]:
        cx, cy = self.px(x, y)
        r = radius * self.scale
        self.draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        return cx, cy

    def legend(self, items: Sequence[tuple[str, str]], corner: str = "top-left") -> None:
        left, top, _, bottom = self.box
        step = 16 * self.scale
        x = left + 8 * self.scale
        y = top + 6 * self.scale if corner == "top-left" else bottom - step * len(items)
        for name, colour in items:
            r = 4 * self.scale
            self.draw.ellipse([x, y + step / 2 - r, x + 2 * r, y + step / 2 + r], fill=colour)
            self.text((x + 3 * r, y + step / 2), name, anchor="lm")
            y += step

    def plot(self, points: list[dict]) -> Plot:
        import pandas as pd

        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        table = pd.DataFrame(points, columns=["image", "model", "x", "y"])
        return Plot(buffer.getvalue(), self.width, self.height, table)


def _image_ticks(n: int) -> list[int]:
    """About five round tick positions in 1..n."""
    if n <= 1:
        return [1] if n else []
    step = 10 ** math.floor(math.log10(max(n / 5, 1)))
    step *= next(m for m in (1, 2, 5, 10) if n / (step * m) <= 6)
    return [1, *range(step, n + 1, step)] if step > 1 else list(range(1, n + 1))


def per_image_plot(result: QAResult, models: Sequence[str] | None = None, *,
                   width: int = 640, height: int = 300, scale: float = 1.0) -> Plot:
    """Each image's mAP, worst first (sorted by the first model), one colour per model.

    Parameters
    ----------
    result : QAResult
    models : sequence of str, optional
        Which models (default: all, in order; colours by position in ``result.models``).
    width, height : int
        Size in points; the PNG is ``scale`` times larger.
    scale : float
        Pixels per point (2 for high-DPI screens).

    Returns
    -------
    Plot
        ``points``: one per image and model.
    """
    models = list(result.models if models is None else models)
    order = result.worst_images(models[0])["image"].tolist()
    rank = {name: i + 1 for i, name in enumerate(order)}
    canvas = _Canvas(width, height, (0.5, len(order) + 0.5), (0.0, 1.0), scale)
    canvas.title(f"mAP per image, worst first (by {models[0]})")
    canvas.y_axis(_MAP_TICKS, "mAP")
    canvas.x_ticks(_image_ticks(len(order)), "images, worst first")
    table = result.per_image.set_index(["model", "image"])["map"]
    if len(models) == 2:  # a thin line joins the two models' points of an image
        for name in order:
            a, b = (canvas.px(rank[name], table[m, name]) for m in models)
            canvas.draw.line([a, b], fill=_GRID, width=max(1, round(scale)))
    points = []
    for model in models:
        colour = MODEL_COLOURS[result.models.index(model) % len(MODEL_COLOURS)]
        for name in order:
            x, y = canvas.dot(rank[name], float(table[model, name]), colour)
            points.append({"image": name, "model": model, "x": x, "y": y})
    canvas.legend([(m, MODEL_COLOURS[result.models.index(m) % len(MODEL_COLOURS)])
                   for m in models])
    return canvas.plot(points)


def comparison_plot(comparison: Comparison, *, size: int = 360, scale: float = 1.0) -> Plot:
    """Model B's mAP against model A's, one point per image, with the diagonal.

    Points above the diagonal are images where B is better. Colours: the modality.

    Parameters
    ----------
    comparison : Comparison
    size : int
        Width and height in points.
    scale : float
        Pixels per point.

    Returns
    -------
    Plot
        ``points``: one per image (``model`` is ``"A vs B"``).
    """
    canvas = _Canvas(size, size, (0.0, 1.0), (0.0, 1.0), scale)
    canvas.title(f"mAP per image: {comparison.b} against {comparison.a}")
    canvas.y_axis(_MAP_TICKS, comparison.b)
    canvas.x_ticks(_MAP_TICKS, comparison.a)
    canvas.draw.line([canvas.px(0, 0), canvas.px(1, 1)], fill="#999999",
                     width=max(1, round(scale)))
    points, present = [], []
    for row in comparison.per_image.itertuples(index=False):
        colour = MODALITY_COLOURS.get(row.modality, MODALITY_COLOURS["other"])
        present.append(row.modality)
        x, y = canvas.dot(float(row.map_a), float(row.map_b), colour)
        points.append({"image": row.image, "model": f"{comparison.a} vs {comparison.b}",
                       "x": x, "y": y})
    canvas.legend([(m, MODALITY_COLOURS.get(m, MODALITY_COLOURS["other"]))
                   for m in dict.fromkeys(present)])
    canvas.text((canvas.box[2] - 4 * scale, canvas.box[3] - 6 * scale),
                f"mean difference {comparison.mean_difference:+.3f} "
                f"[{comparison.ci_low:+.3f}, {comparison.ci_high:+.3f}]", anchor="rd")
    return canvas.plot(points)


def summary_plot(result: QAResult, *, width: int = 480, height: int = 260,
                 scale: float = 1.0) -> Plot:
    """Each model's mean mAP with its bootstrap interval: all images, then per modality.

    Parameters
    ----------
    result : QAResult
    width, height : int
        Size in points.
    scale : float
        Pixels per point.

    Returns
    -------
    Plot
        ``points``: one per model and group (``image`` holds the group: ``"all"`` or a
        modality), at the bar's top.
    """
    summary = result.summary
    groups = list(dict.fromkeys(summary["modality"]))
    canvas = _Canvas(width, height, (0.0, float(len(groups))), (0.0, 1.0), scale)
    canvas.title(f"mean mAP with {round(100 * result.level)} % interval")
    canvas.y_axis(_MAP_TICKS, "mAP")
    bar = 0.7 / max(len(result.models), 1)
    points = []
    for g, group in enumerate(groups):
        rows = summary[summary["modality"] == group]
        count = int(rows["n_images"].iloc[0])
        canvas.text((canvas.px(g + 0.5, 0)[0], canvas.box[3] + 6 * scale),
                    f"{group} ({count})", anchor="ma")
        for m, model in enumerate(result.models):
            row = rows[rows["model"] == model].iloc[0]
            colour = MODEL_COLOURS[m % len(MODEL_COLOURS)]
            x0 = g + 0.15 + m * bar
            left, top = canvas.px(x0, row["map"])
            right, bottom = canvas.px(x0 + bar * 0.9, 0.0)
            canvas.draw.rectangle([left, top, right, bottom], fill=colour)
            centre = (left + right) / 2
            _, low = canvas.px(0, row["map_low"])
            _, high = canvas.px(0, row["map_high"])
            canvas.draw.line([(centre, low), (centre, high)], fill=_AXIS,
                             width=max(1, round(scale)))
            points.append({"image": group, "model": model, "x": centre, "y": top})
    canvas.legend([(m, MODEL_COLOURS[i % len(MODEL_COLOURS)])
                   for i, m in enumerate(result.models)])
    return canvas.plot(points)
