"""A read-only, sortable table of a pandas DataFrame, with copy and "Save as CSV…".

:class:`DataFrameModel` exposes the frame to Qt (display text rounded, raw values for
sorting); :class:`DataFrameTable` wraps it in a ``QTableView`` behind a sort proxy, with
"Copy" and "Save as CSV…" buttons, and emits :attr:`DataFrameTable.row_selected` with
the *frame* row (positional, whatever the sort order) when the user picks a row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from qtpy.QtGui import QBrush, QColor, QGuiApplication, QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QShortcut,
    QTableView,
    QVBoxLayout,
    QWidget,
)

__all__ = ["DataFrameModel", "DataFrameTable", "format_value"]

SORT_ROLE = Qt.ItemDataRole.UserRole
#: Colours by column, then by cell value, e.g. ``{"status": {"missed": "#f4a6a6"}}``.
CellColors = Mapping[str, Mapping[Any, str]]


def format_value(value: Any, decimals: int = 3) -> str:
    """Text of one cell: floats rounded, missing values empty.

    Parameters
    ----------
    value : Any
        The cell value.
    decimals : int
        Decimals shown for non-integral floats.

    Returns
    -------
    str
        The text to display.
    """
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return f"{value:.{decimals}f}"
    return str(value)


def _sort_key(value: Any) -> Any:
    """A value Qt can order: numbers as floats (missing first), everything else as text."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return float(value)
    if isinstance(value, float | np.floating):
        return -math.inf if math.isnan(value) else float(value)
    return "" if value is None or value is pd.NA else str(value)


class DataFrameModel(QAbstractTableModel):
    """Read-only Qt model of a DataFrame: one view column per frame column.

    Parameters
    ----------
    frame : pandas.DataFrame, optional
        The table to show; the index is not shown.
    colors : mapping, optional
        Background colours of cells by column name and value.
    parent : QObject, optional
        Qt parent.
    """

    def __init__(
        self,
        frame: pd.DataFrame | None = None,
        colors: CellColors | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self._frame = pd.DataFrame() if frame is None else frame
        self._colors = {
            column: {value: QBrush(QColor(color)) for value, color in by_value.items()}
            for column, by_value in (colors or {}).items()
        }

    @property
    def frame(self) -> pd.DataFrame:
        """The DataFrame shown (not a copy: do not modify it)."""
        return self._frame

    def set_frame(self, frame: pd.DataFrame | None) -> None:
        """Show ``frame`` instead (None: an empty table)."""
        self.beginResetModel()
        self._frame = pd.DataFrame() if frame is None else frame
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        """Number of rows (0 under a valid parent: this is a flat table)."""
        if parent is not None and parent.isValid():
            return 0
        return self._frame.shape[0]

    def columnCount(self, parent: QModelIndex | None = None) -> int:
        """Number of columns."""
        if parent is not None and parent.isValid():
            return 0
        return self._frame.shape[1]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Display text, raw value for sorting, alignment and background of a cell."""
        if not index.isValid():
            return None
        value = self._frame.iat[index.row(), index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(value)
        if role == SORT_ROLE:
            return _sort_key(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(value, int | float | np.number):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            by_value = self._colors.get(self._frame.columns[index.column()])
            if by_value:
                return by_value.get(value)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column names horizontally, 1-based row numbers vertically."""
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return str(self._frame.columns[section])
        return str(section + 1)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        """Cells are selectable, never editable."""
        return Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled


class DataFrameTable(QWidget):
    """A sortable, read-only table of a DataFrame with "Copy" and "Save as CSV…".

    Parameters
    ----------
    name : str
        Default CSV file name stem and dialog caption, e.g. ``"per_object"``.
    colors : mapping, optional
        Background colours of cells by column name and value.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    row_selected : Signal(int)
        Emitted with the frame row (position in :attr:`frame`) that became current.
    """

    row_selected = Signal(int)

    def __init__(self, name: str, colors: CellColors | None = None, parent=None) -> None:
        super().__init__(parent)
        self.name = name
        self.default_directory = Path.home()
        self.model = DataFrameModel(colors=colors, parent=self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = self._make_view()
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the selected rows (all if none), tab-separated")
        self.copy_button.clicked.connect(self.copy)
        self.save_button = QPushButton("Save as CSV…")
        self.save_button.clicked.connect(self.save_dialog)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        layout.addLayout(buttons)
        QShortcut(QKeySequence.StandardKey.Copy, self.view, activated=self.copy)
        self._update_buttons()

    def _make_view(self) -> QTableView:
        view = QTableView(self)
        view.setModel(self.proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # frame order until clicked
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.verticalHeader().setVisible(False)
        view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
        view.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        return view

    # -- data ---------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The DataFrame shown."""
        return self.model.frame

    def set_frame(self, frame: pd.DataFrame | None) -> None:
        """Show ``frame`` (None or empty: an empty table); the sort order is kept."""
        self.model.set_frame(frame)
        self.view.resizeColumnsToContents()
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_rows = not self.frame.empty
        self.copy_button.setEnabled(has_rows)
        self.save_button.setEnabled(has_rows or len(self.frame.columns) > 0)

    # -- selection ----------------------------------------------------------------
    def select_row(self, row: int) -> None:
        """Make frame row ``row`` current and selected (emits :attr:`row_selected`)."""
        proxy_index = self.proxy.mapFromSource(self.model.index(row, 0))
        if proxy_index.isValid():
            self.view.selectRow(proxy_index.row())
            self.view.scrollTo(proxy_index)

    def selected_rows(self) -> list[int]:
        """Frame rows of the selected cells, in view order, without repeats."""
        rows = {
            self.proxy.mapToSource(index).row(): None
            for index in sorted(self.view.selectionModel().selectedRows(), key=QModelIndex.row)
        }
        return list(rows)

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.row_selected.emit(self.proxy.mapToSource(current).row())

    # -- copy and save --------------------------------------------------------------
    def copy(self) -> None:
        """Copy the selected rows (or every row) with a header, tab-separated."""
        rows = self.selected_rows() or list(range(len(self.frame)))
        text = self.frame.iloc[rows].to_csv(sep="\t", index=False)
        QGuiApplication.clipboard().setText(text)

    def save(self, path: str | Path) -> Path:
        """Write the whole table (all rows, frame order) as CSV to ``path``.

        Parameters
        ----------
        path : str or pathlib.Path
            Target file; ``.csv`` is appended if it has no suffix.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".csv")
        self.frame.to_csv(path, index=False)
        self.default_directory = path.parent
        return path

    def save_dialog(self) -> Path | None:
        """Ask for a file name, then :meth:`save`; None if the dialog was cancelled."""
        suggestion = str(self.default_directory / f"{self.name}.csv")
        path, _filter = QFileDialog.getSaveFileName(
            self, f"Save {self.name} as CSV", suggestion, "CSV files (*.csv);;All files (*)"
        )
        if not path:
            return None
        try:
            return self.save(path)
        except OSError as error:
            show_error(f"Could not save {self.name}: {error}")
            return None
