"""A one-line warning, in the Weight map and Train U-Net widgets, when their labels have problems.

A weight map, or a model, is only as good as the labels it is made from. The widgets
that read labels show a :class:`LabelsWarning` (Weight map: its layer) or a
:class:`TrainLabelsWarning` (Train U-Net: the labels of the layer pairs, or of the
training set): :func:`~napari_unet_weights.labels.checks.check_labels` runs in a
background worker when the labels change (debounced; labels equal to those checked last
are not checked again) and the line reads ``⚠ 4 label problems · Check labels`` (the
labels and their counts per problem in its tooltip); the link docks the Check labels widget on that
layer. Clean labels: no line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QLabel, QWidget

from napari_unet_weights._widgets.common.base import connect_events
from napari_unet_weights._widgets.common.handoff import dock_plugin_widget
from napari_unet_weights._widgets.common.label_problems import counts_text, layer_labels
from napari_unet_weights._widgets.common.workers import Job, LatestWinsRunner
from napari_unet_weights.labels.checks import check_labels

if TYPE_CHECKING:
    import napari

    from napari_unet_weights._widgets.common.train_data import DataSource

__all__ = ["CHECK_LABELS", "LabelsWarning", "Source", "TrainLabelsWarning", "training_sources"]

#: The Check labels widget's name in the manifest.
CHECK_LABELS = "Check labels"
DEBOUNCE_MS = 300
#: As in the Check labels widget: paint, ``layer.data = ...``, undo / redo (set_data).
EDIT_EVENTS = ("paint", "data", "set_data")
WARNING_COLOR = "#f0a030"
LINK_COLOR = "#6ab7ff"
COPIES_NOTE = ("Training-set pairs are copies: fix the labels layer they came from, then "
               "add the pair again.")


@dataclass(frozen=True, eq=False)
class Source:
    """Labels to check: a layer's (``labels`` None) or a fixed array (a training-set pair)."""

    name: str
    layer: Labels | None = None
    labels: np.ndarray | None = None

    @property
    def key(self) -> int:
        """What identifies it across checks."""
        return id(self.layer) if self.layer is not None else id(self.labels)


@dataclass(frozen=True)
class Finding:
    """Labels with problems: their source and the count of each problem."""

    source: Source
    counts: dict[str, int]


def _check(items: list[tuple[Source, np.ndarray]], cache: dict[int, tuple]) -> tuple:
    """Worker body: the findings, and the new cache ``key -> (labels, counts)``."""
    findings, new_cache = [], {}
    for source, labels in items:
        cached = cache.get(source.key)
        if cached is not None and cached[0].shape == labels.shape \
                and np.array_equal(cached[0], labels):
            counts = cached[1]
        else:
            try:
                counts = {name: int(n) for name, n in check_labels(labels).summary.items()}
            except (TypeError, ValueError):  # not labels: the widget itself says so
                counts = {}
        new_cache[source.key] = (labels, counts)
        if any(counts.values()):
            findings.append(Finding(source, counts))
    return findings, new_cache


class _Connections:
    """Napari event connections, dropped when the warning's Qt object is destroyed."""

    def __init__(self) -> None:
        self.layers: list[Labels] = []
        self.slot: Any = None

    def follow(self, layers: Sequence[Labels], slot: Any) -> None:
        self.clear()
        self.layers, self.slot = list(layers), slot
        connect_events(self.layers, EDIT_EVENTS, slot)

    def clear(self, *_args: Any) -> None:
        if self.slot is not None:
            connect_events(self.layers, EDIT_EVENTS, self.slot, connect=False)
        self.layers, self.slot = [], None


class LabelsWarning(QLabel):
    """One line saying which labels have problems, with a link to Check labels.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer the Check labels widget is docked in.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    findings : list of Finding
        The sources with problems, in order, after the last check.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.findings: list[Finding] = []
        self._sources: list[Source] = []
        self._cache: dict[int, tuple] = {}
        self._connections = _Connections()
        self._runner = LatestWinsRunner()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.recheck)
        self.destroyed.connect(self._runner.close)
        self.destroyed.connect(self._connections.clear)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.setWordWrap(True)
        self.linkActivated.connect(self.open_check_labels)
        self.setVisible(False)

    @property
    def busy(self) -> bool:
        """Whether a check is queued, debouncing or running."""
        return self._runner.waiting or self._timer.isActive()

    def set_layer(self, layer: Labels | None) -> None:
        """Warn about ``layer``'s labels (None: about nothing)."""
        self.set_sources([] if layer is None else [Source(layer.name, layer)])

    def set_sources(self, sources: Sequence[Source]) -> None:
        """Warn about these labels: follow the layers' edits, check them now."""
        self._sources = list(sources)
        self._connections.follow([s.layer for s in self._sources if s.layer is not None],
                                 self._on_edit)
        self.recheck()

    def _on_edit(self, _event: Any = None) -> None:
        self._timer.start()

    def recheck(self) -> None:
        """Check the labels again, in the background."""
        self._timer.stop()
        self._runner.request(self._prepare)

    def _prepare(self) -> Job | None:
        items = []
        for source in self._sources:
            if source.layer is None:
                items.append((source, source.labels))
                continue
            try:
                items.append((source, layer_labels(source.layer)))
            except ValueError:  # multiscale: not checked
                continue
        sources = self._sources
        return Job(partial(_check, items, self._cache), partial(self._show, sources),
                   lambda _error: None)

    def _show(self, sources: list[Source], outcome: tuple) -> None:
        if sources is not self._sources:
            return  # the sources changed meanwhile: a newer check follows
        self.findings, self._cache = outcome
        if not self.findings:
            self.setText("")
            self.setToolTip("")
            self.setVisible(False)
            return
        link = f"<a href='check' style='color:{LINK_COLOR}'>{CHECK_LABELS}</a>"
        warn = f"<span style='color:{WARNING_COLOR}'>⚠</span>"
        if len(self._sources) == 1:  # the tooltip names the labels
            n = sum(self.findings[0].counts.values())
            what = f"{n} label problem{'s' * (n != 1)}"
        else:
            what = f"problems in {len(self.findings)} of {len(self._sources)} labels"
        self.setText(f"{warn} {what} · {link}")
        lines = [f"{f.source.name}: {counts_text(f.counts)}" for f in self.findings]
        if any(f.source.layer is None for f in self.findings):
            lines.append(COPIES_NOTE)
        self.setToolTip("\n".join(lines))
        self.setVisible(True)

    def open_check_labels(self, _link: str = "") -> QWidget:
        """Dock (or raise) the Check labels widget, on the first layer with problems."""
        widget = dock_plugin_widget(self.viewer, CHECK_LABELS)
        layer = next((f.source.layer for f in self.findings
                      if f.source.layer is not None and f.source.layer in self.viewer.layers),
                     None)
        if layer is not None:
            widget.set_layer(layer)
        return widget


def training_sources(data_source: DataSource) -> list[Source]:
    """The labels the Train U-Net widget would train on: those of the layer pairs (Labels
    layers only, each once) or of the training set; none for a folder (not read)."""
    if data_source.use_training_set:
        return [Source(snapshot.name, labels=snapshot.labels)
                for snapshot in data_source.training_set.snapshots]
    if data_source.use_folder:
        return []
    layers = {id(labels): labels for _, labels in data_source.pair_list.pairs
              if isinstance(labels, Labels)}
    return [Source(layer.name, layer) for layer in layers.values()]


class TrainLabelsWarning(LabelsWarning):
    """The warning of the Train U-Net widget: about the labels its data source holds.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.
    data_source : DataSource
        The widget's data box; the warning follows its ``changed`` signal.
    parent : QWidget, optional
        Qt parent.
    """

    def __init__(self, viewer: napari.viewer.Viewer, data_source: DataSource,
                 parent: QWidget | None = None) -> None:
        super().__init__(viewer, parent)
        self.data_source = data_source
        data_source.changed.connect(self._on_data_changed)
        self._on_data_changed()

    def _on_data_changed(self) -> None:
        self.set_sources(training_sources(self.data_source))
