"""The Model QA widget's pictures: the clickable plot and the gallery of the worst objects.

:class:`PlotView` shows a :class:`~napari_unet_weights.qa.plots.Plot`, the PNG the core
draws by hand (Pillow, as the Train widget's plot draws with QPainter: no plotting
library), and maps a click to the image of the nearest point
(:meth:`~napari_unet_weights.qa.plots.Plot.point_at`). :class:`Gallery` shows the worst
objects' crops (:class:`~napari_unet_weights.qa.ObjectCrop`) as clickable thumbnails,
one row per model and kind of error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QPoint, QSize, Qt, Signal
from qtpy.QtGui import QIcon, QPixmap
from qtpy.QtWidgets import (
    QGridLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_unet_weights.qa import ERROR_KINDS

if TYPE_CHECKING:
    from napari_unet_weights.qa import ObjectCrop
    from napari_unet_weights.qa.plots import Plot

__all__ = ["Gallery", "PlotView", "pixmap"]

#: How far (in the plot's pixels) a click may be from a point.
CLICK_RADIUS = 10.0
#: Thumbnails per gallery row.
COLUMNS = 5


def pixmap(png: bytes, ratio: float = 1.0) -> QPixmap:
    """A ``QPixmap`` of PNG bytes, ``ratio`` pixels per point."""
    picture = QPixmap()
    picture.loadFromData(png, "PNG")
    picture.setDevicePixelRatio(ratio)
    return picture


class PlotView(QLabel):
    """A plot picture; a click on a point emits ``point_clicked(image, model)``.

    Parameters
    ----------
    parent : QWidget, optional
        Qt parent.
    """

    point_clicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot: Plot | None = None
        self._ratio = 1.0
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setToolTip("Click a point to open its image")
        self.set_plot(None)

    def set_plot(self, plot: Plot | None, ratio: float = 1.0) -> None:
        """Show ``plot`` (drawn at ``ratio`` pixels per point); None: a hint instead."""
        self.plot, self._ratio = plot, ratio
        if plot is None:
            self.clear()
            self.setText("The per-image mAP (or model B against model A) appears here.")
            self.setMinimumHeight(0)
            return
        picture = pixmap(plot.png, ratio)
        self.setPixmap(picture)
        self.setMinimumHeight(round(plot.height / ratio))

    def point_at(self, position: QPoint) -> dict | None:
        """The plot's point under ``position`` (widget coordinates), or None."""
        if self.plot is None:
            return None
        return self.plot.point_at(position.x() * self._ratio, position.y() * self._ratio,
                                  CLICK_RADIUS * self._ratio)

    def position_of(self, image: str) -> QPoint:
        """Where the (first) point of ``image`` is, in widget coordinates (for tests)."""
        points = self.plot.points
        row = points[points["image"] == image].iloc[0]
        return QPoint(round(row["x"] / self._ratio), round(row["y"] / self._ratio))

    def mousePressEvent(self, event) -> None:
        """Emit ``point_clicked`` for the point under the mouse."""
        point = self.point_at(event.pos())
        if point is not None:
            self.point_clicked.emit(str(point["image"]), str(point["model"]))
        super().mousePressEvent(event)


class Gallery(QScrollArea):
    """The worst objects' crops as thumbnails; a click emits ``crop_clicked(crop)``.

    Parameters
    ----------
    thumbnail : int
        The thumbnails' size in points (crops are shown within that square).
    parent : QWidget, optional
        Qt parent.
    """

    crop_clicked = Signal(object)

    def __init__(self, thumbnail: int = 72, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnail = thumbnail
        self.setWidgetResizable(True)
        self.buttons: list[QToolButton] = []
        self.set_crops([], [])

    def set_crops(self, crops: list[ObjectCrop], models: list[str]) -> None:
        """Show ``crops``: a heading and a row of thumbnails per model and kind of error."""
        page = QWidget()
        layout = QVBoxLayout(page)
        self.buttons = []
        if not crops:
            layout.addWidget(QLabel("The worst missed, merged, split and false-positive "
                                    "objects appear here after a run."))
        for model in models:
            for kind in ERROR_KINDS:
                mine = [crop for crop in crops if crop.model == model and crop.error == kind]
                if mine:
                    heading = f"{model}: {kind}" if len(models) > 1 else kind
                    layout.addWidget(QLabel(f"<b>{heading}</b> ({len(mine)} largest)"))
                    layout.addLayout(self._row(mine))
        layout.addStretch(1)
        self.setWidget(page)

    def _row(self, crops: list[ObjectCrop]) -> QGridLayout:
        grid = QGridLayout()
        grid.setAlignment(Qt.AlignmentFlag.AlignLeft)
        for i, crop in enumerate(crops):
            button = QToolButton()
            button.setIcon(QIcon(pixmap(crop.png)))
            button.setIconSize(QSize(self.thumbnail, self.thumbnail))  # one size for all
            button.setText(f"#{crop.label}")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setToolTip(f"{crop.error} object #{crop.label} ({crop.area} px) in "
                              f"{crop.image} ({crop.model}): click to centre the viewer on it")
            button.clicked.connect(lambda _checked=False, c=crop: self.crop_clicked.emit(c))
            grid.addWidget(button, i // COLUMNS, i % COLUMNS)
            self.buttons.append(button)
        return grid
