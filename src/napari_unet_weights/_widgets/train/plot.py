"""The Train U-Net widget's live plot: batch and epoch loss, validation loss and mAP.

:class:`LossPlot` draws with QPainter (no plotting library): losses on the left axis
from 0 to a round number above the largest, the validation mAP on the right axis from
0 to 1, epochs along x (epoch values at the epoch's end, batch losses in between).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from qtpy.QtWidgets import QWidget

__all__ = ["LOSS_COLOR", "MAP_COLOR", "VAL_LOSS_COLOR", "LossPlot"]

LOSS_COLOR = "#4c9be8"
VAL_LOSS_COLOR = "#f28e2b"
MAP_COLOR = "#59c26b"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (× a power of ten) ≥ ``value``."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
                if m * power >= value * (1 - 1e-9))


class LossPlot(QWidget):
    """A small live line plot: batch and epoch loss, validation loss and validation mAP.

    Losses use the left axis (from 0), the mAP the right one (0 to 1). Epoch values are
    plotted at the epoch's end (x = epoch, 1-based), batch losses in between.
    """

    MARGINS = (44, 22, 40, 22)  # left, top, right, bottom

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(170)
        self.clear()

    def clear(self, epochs: int | None = None) -> None:
        """Forget all points; ``epochs`` fixes the x range (else it follows the data)."""
        self.epochs = epochs
        self.batch_loss: list[tuple[float, float]] = []
        self.loss: list[tuple[float, float]] = []
        self.val_loss: list[tuple[float, float]] = []
        self.val_map: list[tuple[float, float]] = []
        self.update()

    def replot(self, history: Any) -> None:
        """Redraw the epoch series from a training's ``history`` table (the authoritative
        record), keeping the batch losses; without epochs nothing changes."""
        if history is None or len(history) == 0 or "epoch" not in history:
            return
        batch_loss = self.batch_loss
        self.clear(self.epochs)
        self.batch_loss = batch_loss
        for row in history.to_dict("records"):
            self.add_epoch(row["epoch"], row.get("loss"), row.get("val_loss"), row.get("val_map"))

    def add_batch(self, x: float, loss: float) -> None:
        """Add a batch loss at ``x`` epochs."""
        self._append(self.batch_loss, x, loss)
        self.update()

    def add_epoch(
        self, epoch: float, loss: Any = None, val_loss: Any = None, val_map: Any = None
    ) -> None:
        """Add the values reported at the end of ``epoch`` (missing or NaN ones are skipped)."""
        for series, value in ((self.loss, loss), (self.val_loss, val_loss),
                              (self.val_map, val_map)):
            self._append(series, epoch, value)
        self.update()

    @staticmethod
    def _append(series: list[tuple[float, float]], x: float, value: Any) -> None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            return
        if math.isfinite(value):
            series.append((float(x), value))

    @property
    def empty(self) -> bool:
        """Whether no point has been added."""
        return not (self.batch_loss or self.loss or self.val_loss or self.val_map)

    # -- drawing ------------------------------------------------------------------------
    def _ranges(self) -> tuple[float, float]:
        """Largest x and largest loss shown."""
        points = [*self.batch_loss, *self.loss, *self.val_loss, *self.val_map]
        x_max = max([self.epochs or 0, *(x for x, _ in points), 1])
        losses = [y for _, y in [*self.batch_loss, *self.loss, *self.val_loss]]
        return float(x_max), _nice_ceiling(max(losses, default=1.0))

    def paintEvent(self, _event) -> None:
        """Draw the axes, the series and a legend."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        left, top, right, bottom = self.MARGINS
        frame = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        if frame.width() < 20 or frame.height() < 20:
            return
        x_max, y_max = self._ranges()
        self._draw_axes(painter, frame, text, x_max, y_max)
        if self.empty:
            painter.setPen(text)
            painter.drawText(frame, Qt.AlignmentFlag.AlignCenter,
                             "loss and validation mAP\nappear here while training")
            return

        def loss_point(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + frame.width() * x / x_max,
                           frame.bottom() - frame.height() * min(y / y_max, 1.0))

        def map_point(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + frame.width() * x / x_max,
                           frame.bottom() - frame.height() * min(max(y, 0.0), 1.0))

        faint = QColor(LOSS_COLOR)
        faint.setAlpha(90)
        self._draw_series(painter, self.batch_loss, loss_point, faint, 1.0, dots=False)
        self._draw_series(painter, self.loss, loss_point, QColor(LOSS_COLOR), 2.0)
        self._draw_series(painter, self.val_loss, loss_point, QColor(VAL_LOSS_COLOR), 2.0)
        self._draw_series(painter, self.val_map, map_point, QColor(MAP_COLOR), 2.0,
                          style=Qt.PenStyle.DashLine)
        self._draw_legend(painter, frame, text)

    def _draw_axes(
        self, painter: QPainter, frame: QRectF, text: QColor, x_max: float, y_max: float
    ) -> None:
        grid = QColor(text)
        grid.setAlpha(60)
        painter.setPen(QPen(grid, 1.0))
        painter.drawRect(frame)
        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
        painter.setFont(font)
        for fraction in (0.0, 0.5, 1.0):
            y = frame.bottom() - frame.height() * fraction
            painter.setPen(QPen(grid, 1.0, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(frame.left(), y), QPointF(frame.right(), y))
            painter.setPen(QColor(LOSS_COLOR))
            painter.drawText(QRectF(0, y - 8, frame.left() - 4, 16),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             f"{y_max * fraction:.3g}")
            painter.setPen(QColor(MAP_COLOR))
            painter.drawText(QRectF(frame.right() + 4, y - 8, 40, 16),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"{fraction:.1f}")
        painter.setPen(text)
        for fraction in (0.0, 0.5, 1.0):
            x = frame.left() + frame.width() * fraction
            painter.drawText(QRectF(x - 30, frame.bottom() + 2, 60, 16),
                             Qt.AlignmentFlag.AlignCenter, f"{x_max * fraction:.3g}")
        painter.drawText(QRectF(frame.left() + frame.width() * 0.75 - 30, frame.bottom() + 2,
                                60, 16), Qt.AlignmentFlag.AlignCenter, "epoch")

    @staticmethod
    def _draw_series(
        painter: QPainter,
        series: list[tuple[float, float]],
        to_point: Callable[[float, float], QPointF],
        color: QColor,
        width: float,
        dots: bool = True,
        style: Qt.PenStyle = Qt.PenStyle.SolidLine,
    ) -> None:
        if not series:
            return
        points = [to_point(x, y) for x, y in series]
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        painter.setPen(QPen(color, width, style))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        if dots:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            for point in points:
                painter.drawEllipse(point, 2.5, 2.5)

    @staticmethod
    def _draw_legend(painter: QPainter, frame: QRectF, text: QColor) -> None:
        x = frame.left()
        for label, color, style in (
            ("loss", LOSS_COLOR, Qt.PenStyle.SolidLine),
            ("val loss", VAL_LOSS_COLOR, Qt.PenStyle.SolidLine),
            ("val mAP (right)", MAP_COLOR, Qt.PenStyle.DashLine),
        ):
            y = frame.top() - 11
            painter.setPen(QPen(QColor(color), 2.0, style))
            painter.drawLine(QPointF(x, y), QPointF(x + 16, y))
            painter.setPen(text)
            width = painter.fontMetrics().horizontalAdvance(label)
            painter.drawText(QRectF(x + 20, y - 8, width + 4, 16),
                             Qt.AlignmentFlag.AlignVCenter, label)
            x += 20 + width + 14
