"""The Train U-Net widget's training set: (image, corrected labels) snapshots, listed.

The Segment widget's "Add to training set" hands a :class:`~..common.snapshots.Snapshot` to
:class:`TrainingSetList`, the "Training set" tab of the Train widget's data box: one
:class:`SnapshotRow` per pair, with its name, its size, its role (train or validation)
and a remove button, and a line saying what the run will validate on. The list is only
changed by the user: a training, finished, failed or cancelled, leaves it as it was.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QPainter
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_unet_weights._widgets.common.controls import push_button
from napari_unet_weights._widgets.common.snapshots import ROLES, Snapshot
from napari_unet_weights._widgets.common.train_data import BadInput, TrainingData
from napari_unet_weights.unet.training.parent import FEW_SAMPLES

__all__ = ["EMPTY_TEXT", "HOW_TO_ADD", "SnapshotRow", "TrainingSetList", "validation_hint"]

#: How pairs get into the training set.
HOW_TO_ADD = ("Segment an image, correct the labels (paint, fill, erase), then press “Add to "
              "training set” in the Segment widget.")
EMPTY_TEXT = f"Empty. {HOW_TO_ADD}"
ROW_SPACING = 2
#: The list shows this many rows before it scrolls.
VISIBLE_ROWS = 3


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def validation_hint(n_train: int, n_validation: int, fine_tuning: bool) -> str:
    """One line saying what a run on the training set will validate on.

    Parameters
    ----------
    n_train, n_validation : int
        The pairs marked train and validation.
    fine_tuning : bool
        Whether the run starts from a model (few pairs then validate on themselves).
    """
    if n_validation:
        return f"Validated on the {_plural(n_validation, 'pair')} marked validation."
    if fine_tuning and n_train <= FEW_SAMPLES:
        return ("Validated on the training pairs themselves: mark pairs “validation” for "
                "an independent score.")
    if not fine_tuning and n_train < 2:
        return ("From scratch: add a second pair (for a held-out split) or mark one "
                "“validation”.")
    return "Validated on a held-out split of the pairs (or mark pairs “validation”)."


class ElidedLabel(QLabel):
    """A one-line label that shortens its text in the middle (…) when it is too narrow."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setToolTip(text)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("M" * 6))

    def paintEvent(self, _event) -> None:
        """Draw the text, elided to the label's width."""
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle,
                                              self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), shown)


class SnapshotRow(QWidget):
    """One pair of the training set: its name, size, role and a remove button."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, snapshot: Snapshot, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshot = snapshot
        self.name_label = ElidedLabel(snapshot.name)
        self.size_label = QLabel("{} × {}".format(*snapshot.shape))
        self.role_combo = QComboBox()
        self.role_combo.addItems(ROLES)
        self.role_combo.setCurrentText(snapshot.role)
        self.role_combo.setToolTip("Train on this pair, or validate on it")
        self.role_combo.currentTextChanged.connect(self._set_role)
        self.remove_button = push_button(
            "✕", lambda: self.remove_requested.emit(self), "Remove this pair")
        self.remove_button.setFixedWidth(28)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.name_label, 1)
        layout.addWidget(self.size_label)
        layout.addWidget(self.role_combo)
        layout.addWidget(self.remove_button)

    @property
    def role(self) -> str:
        """``"train"`` or ``"validation"``."""
        return self.snapshot.role

    @role.setter
    def role(self, role: str) -> None:
        self.role_combo.setCurrentText(role)

    def _set_role(self, role: str) -> None:
        self.snapshot.role = role
        self.changed.emit()


class TrainingSetList(QWidget):
    """The training set's pairs, listed; what ``train`` gets from them.

    Notes
    -----
    ``changed`` is emitted when a pair is added, removed or changes role.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[SnapshotRow] = []
        self._fine_tuning = False
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setWordWrap(True)
        self.hint_label = QLabel("")
        self.hint_label.setWordWrap(True)
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(ROW_SPACING)
        self.rows_layout.addWidget(self.empty_label)
        self.rows_layout.addStretch(1)
        content = QWidget()
        content.setLayout(self.rows_layout)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        row_height = QComboBox().sizeHint().height() + ROW_SPACING
        scroll.setMinimumHeight(VISIBLE_ROWS * row_height)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.hint_label)
        self.changed.connect(self._update_hint)
        self._update_hint()

    # -- the pairs ---------------------------------------------------------------------------
    @property
    def snapshots(self) -> list[Snapshot]:
        """The pairs, in the order they were added."""
        return [row.snapshot for row in self.rows]

    @property
    def last_source(self):
        """The image layer the newest pair was taken from (None if none)."""
        return self.rows[-1].snapshot.source if self.rows else None

    def add(self, snapshot: Snapshot) -> SnapshotRow:
        """Add a pair at the end of the list; a name already listed gets a number."""
        names = {row.snapshot.name for row in self.rows}
        base, n = snapshot.name, 2
        while snapshot.name in names:
            snapshot.name, n = f"{base} ({n})", n + 1
        row = SnapshotRow(snapshot)
        row.changed.connect(self.changed)
        row.remove_requested.connect(self.remove)
        self.rows.append(row)
        self.rows_layout.insertWidget(self.rows_layout.count() - 1, row)
        self.changed.emit()
        return row

    def remove(self, row: SnapshotRow | int) -> None:
        """Remove a pair (its row widget, or its index)."""
        row = self.rows[row] if isinstance(row, int) else row
        self.rows.remove(row)
        self.rows_layout.removeWidget(row)
        row.deleteLater()
        self.changed.emit()

    def _by_role(self, role: str) -> list[Snapshot]:
        return [snapshot for snapshot in self.snapshots if snapshot.role == role]

    # -- what training gets ---------------------------------------------------------------------
    def set_fine_tuning(self, fine_tuning: bool) -> None:
        """Say whether the run starts from a model (the validation hint depends on it)."""
        self._fine_tuning = fine_tuning
        self._update_hint()

    def _update_hint(self) -> None:
        self.empty_label.setVisible(not self.rows)
        self.hint_label.setVisible(bool(self.rows))
        self.hint_label.setText(validation_hint(len(self._by_role("train")),
                                                len(self._by_role("validation")),
                                                self._fine_tuning))

    def training_data(self) -> TrainingData:
        """The pairs marked train, and those marked validation as the validation set.

        Raises
        ------
        BadInput
            If no pair is marked train.
        """
        train, validation = self._by_role("train"), self._by_role("validation")
        if not train:
            raise BadInput("Mark at least one pair of the training set “train”." if self.rows
                           else f"The training set is empty. {HOW_TO_ADD}")
        explicit = None
        if validation:
            explicit = ([s.image for s in validation], [s.labels for s in validation])
        described = _plural(len(train), "pair") + " of the training set" + (
            f" ({len(validation)} more to validate on)" if validation else "")
        return TrainingData([s.image for s in train], [s.labels for s in train], described,
                            validation=explicit)

    def first_labels(self) -> tuple:
        """The first training pair's labels and name, for the weight preview."""
        return self.training_data().labels[0], self._by_role("train")[0].name, None
