"""The "Weight map" dock widget: a live U-Net weight map of a Labels layer.

The widget reads a Labels layer, calls :class:`~napari_unet_weights.weights.exact.WeightMapCache`
and writes one Image layer, ``"<labels name> weight map"``. Slider moves that the cache
already covers render at once on the GUI thread (about 1 ms for 512²); everything else
(first computation, larger radius, new border / plane settings, painted edits) runs in a
background worker, one job at a time, the latest request winning.

A large labels layer (dask, zarr, multiscale, or more than
:data:`~..common.lazy_layers.LARGE_PIXELS` pixels, see :mod:`..common.lazy_layers`) is never copied:
the output gets a lazy map instead, one dask array per level, rebuilt in the background
on every change (the graph only) and computed by napari where it shows it
(:mod:`.lazy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSlider
from napari.layers import Image, Labels
from qtpy.QtWidgets import QHBoxLayout, QVBoxLayout

from napari_unet_weights._widgets.common.base import RunWidget, update_layer, user_message
from napari_unet_weights._widgets.common.labels_warning import LabelsWarning
from napari_unet_weights._widgets.common.lazy_layers import is_large, label_levels, layer_data
from napari_unet_weights._widgets.common.workers import Job
from napari_unet_weights._widgets.weight_map.lazy import (
    LazyInput,
    LazyOutcome,
    compute_lazy,
    lazy_status,
)
from napari_unet_weights.weights.exact import BORDER_MODES, CLASS_WEIGHT_MODES, WeightMapCache
from napari_unet_weights.weights.lazy import is_dask_array

if TYPE_CHECKING:
    import napari

__all__ = ["WeightMapWidget"]

EDIT_DEBOUNCE_MS = 150
PROGRESS_DELAY_MS = 250
OUTPUT_SUFFIX = " weight map"
# paint: brush / fill / data_setitem; data: layer.data = ...; set_data: also undo / redo
# (which fire no other event in napari 0.9), but also every refresh, e.g. a dims step:
# the job then compares the labels with the cache and renders only if they changed.
EDIT_EVENTS = ("paint", "data", "set_data")
# A large layer: not set_data, which would re-read the labels on every dims step.
LAZY_EDIT_EVENTS = ("paint", "data")
NO_LABELS = "Add or open a Labels layer to see its weight map."


@dataclass(frozen=True)
class _Settings:
    """What the controls ask for, for one labels layer."""

    w0: float
    sigma: float
    border: str
    class_weights: str
    spatial_dims: int
    spacing: tuple[float, ...]

    @property
    def cache_key(self) -> tuple:
        """The settings that a :class:`WeightMapCache` is built for (not w0, σ, w_c)."""
        return (self.border, self.spatial_dims, self.spacing)


@dataclass
class _Outcome:
    """What a background job hands back to the GUI thread."""

    cache: WeightMapCache
    image: np.ndarray | None  # None: the labels had not changed and no render was asked
    n_objects: int | None
    seconds: float


def _compute(
    settings: _Settings,
    cache: WeightMapCache | None,
    labels: np.ndarray | None,
    render: bool = True,
) -> _Outcome:
    """Worker body: build or update the cache as needed, then render.

    Parameters
    ----------
    settings : _Settings
        Parameters to render with, and to build a new cache with.
    cache : WeightMapCache or None
        The current cache of the layer (mutated in place), or None to build one.
    labels : numpy.ndarray or None
        A snapshot of the layer's labels when they may have changed, else None.
    render : bool
        If False, render only when the labels did change.
    """
    start = perf_counter()
    if cache is None or (labels is not None and labels.shape != cache.shape):
        cache = WeightMapCache(
            labels,
            border=settings.border,
            spacing=settings.spacing,
            spatial_dims=settings.spatial_dims,
        )
        render = True
    elif labels is not None and cache.update(labels) is not None:
        render = True
    if not render:
        return _Outcome(cache, None, None, perf_counter() - start)
    image = cache.render(settings.w0, settings.sigma, settings.class_weights)
    return _Outcome(cache, image, cache.n_objects, perf_counter() - start)


def _contrast_limits(image: np.ndarray, settings: _Settings) -> tuple[float, float]:
    """Display range: ``[0, w0 + 1]``, wider if ``"inverse"`` class weights exceed 1."""
    upper = settings.w0 + 1.0
    if settings.class_weights == "inverse" and image.size:
        upper = max(upper, float(image.max()))
    return 0.0, max(upper, 1e-3)


class WeightMapWidget(RunWidget):
    """Dock widget showing the U-Net weight map of a Labels layer, live while painting.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose Labels layers are offered and where the weight map is shown.

    Notes
    -----
    The output is one Image layer named ``"<labels name> weight map"``, with the
    labels' transform, colormap "magma" and additive blending; it is updated in place
    and re-created if deleted. Renaming the labels layer renames it too, unless the
    user gave it a name of their own. The labels layer is never modified. σ is in the
    layer's world units (pixels when its scale is 1): the layer's ``scale`` is passed
    to the core as ``spacing``.
    """

    TITLE = "Weight map"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, EDIT_DEBOUNCE_MS, PROGRESS_DELAY_MS)
        self._layer: Labels | None = None
        self._layer_name: str | None = None  # the labels' name the output is named after
        self._cache: WeightMapCache | None = None
        self._cache_key: tuple | None = None
        self._failed_key: tuple | None = None
        self._labels_dirty = False
        self._output: Image | None = None
        self._n_objects: int | None = None
        self._shown: _Settings | None = None
        self._large = False  # computed lazily: see ._lazy_layers.is_large
        self._events = EDIT_EVENTS  # the edit events followed
        self._counts: tuple[Any, int, Any] | None = None  # (labels data, spatial dims, counts)
        self._build_controls()
        self._build_layout()
        self._watch_viewer()
        self._refresh_choices()
        self._pick_active_labels()

    # -- construction -------------------------------------------------------------
    def _build_controls(self) -> None:
        self.layer_combo = ComboBox(label="labels", choices=self._labels_choices)
        self.w0_slider = FloatSlider(label="w0", min=0, max=100, step=0.5, value=10)
        self.sigma_slider = FloatSlider(label="σ", min=0.5, max=25, step=0.5, value=5)
        self.sigma_slider.tooltip = (
            "Width of the border term, in the layer's world units (pixels at scale 1)."
        )
        self.border_combo = ComboBox(label="border", choices=BORDER_MODES, value="background")
        self.border_combo.tooltip = (
            "background: border term on background pixels only (U-Net paper); "
            "all: on every pixel, distances to object boundaries."
        )
        self.class_weights_combo = ComboBox(
            label="class weights", choices=CLASS_WEIGHT_MODES, value="balanced"
        )
        self.per_plane_checkbox = CheckBox(text="per 2D plane", value=False, enabled=False)
        self.per_plane_checkbox.tooltip = (
            "Compute each 2D plane of the last two axes on its own (time-lapse, "
            "z-stacks annotated slice by slice). Unchecked: all axes are spatial."
        )
        self.layer_combo.changed.connect(self._set_layer)
        for control in (self.w0_slider, self.sigma_slider, self.class_weights_combo):
            control.changed.connect(self.refresh)
        for control in (self.border_combo, self.per_plane_checkbox):
            control.changed.connect(self.refresh)

    def _build_layout(self) -> None:
        self.controls = Container(
            widgets=[
                self.layer_combo,
                self.w0_slider,
                self.sigma_slider,
                self.border_combo,
                self.class_weights_combo,
                self.per_plane_checkbox,
            ]
        )
        self._build_status(cancel=self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar)
        progress_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.controls.native)
        self.labels_warning = LabelsWarning(self.viewer)  # labels with problems
        layout.addWidget(self.labels_warning)
        layout.addWidget(self.status_label)
        layout.addLayout(progress_row)
        layout.addStretch(1)
        self._set_progress_visible(False)

    def _pick_active_labels(self) -> None:
        active = self.viewer.layers.selection.active
        if isinstance(active, Labels):
            self.layer_combo.value = active
        self._set_layer(self.layer_combo.value)
        if self._layer is None:
            self._set_status(NO_LABELS)

    # -- layer list ---------------------------------------------------------------
    def _refresh_choices(self, _event=None) -> None:
        self.layer_combo.reset_choices()
        self._set_layer(self.layer_combo.value)
        self._follow_rename()

    def _follow_rename(self) -> None:
        """Rename the output after the labels, if it still has the name it was given."""
        labels, output = self._layer, self._output
        if labels is None or labels.name == self._layer_name:
            return
        old_name, self._layer_name = self._layer_name, labels.name
        named_after_labels = (
            output is not None
            and output in self.viewer.layers
            and output.name == f"{old_name}{OUTPUT_SUFFIX}"
        )
        if named_after_labels:
            output.name = f"{labels.name}{OUTPUT_SUFFIX}"

    def _forget_layer(self, layer) -> None:
        if layer is self._output:
            self._output = None

    @property
    def layer(self) -> Labels | None:
        """The Labels layer whose weight map is shown."""
        return self._layer

    def _set_layer(self, layer: Labels | None) -> None:
        """Follow ``layer``: reconnect its edit events and build a new cache for it."""
        if layer is self._layer:
            return
        self._disconnect_inputs()
        self._layer = layer
        self._large = layer is not None and is_large(layer)
        self.labels_warning.set_layer(None if self._large else layer)  # it copies the labels
        self._layer_name = None if layer is None else layer.name
        self._cache = self._cache_key = self._failed_key = self._output = self._counts = None
        self._labels_dirty = False
        self._n_objects = None
        self._shown = None
        self._problem = None
        self.per_plane_checkbox.enabled = layer is not None and layer.ndim > 2
        if layer is None:
            self._set_status(NO_LABELS)
            return
        self._events = LAZY_EDIT_EVENTS if self._large else EDIT_EVENTS
        self._follow_edits([layer], self._events)
        layer.events.scale.connect(self.refresh)
        self.refresh()

    def _disconnect_inputs(self) -> None:
        layer, self._layer = self._layer, None
        if layer is None:
            return
        self._follow_edits([layer], self._events, follow=False)
        layer.events.scale.disconnect(self.refresh)

    def _on_edit(self) -> None:
        self._labels_dirty = True

    # -- computing ----------------------------------------------------------------
    def settings(self) -> _Settings | None:
        """The parameters the controls ask for, or None without a Labels layer."""
        layer = self._layer
        if layer is None:
            return None
        spatial_dims = 2 if self.per_plane_checkbox.value and layer.ndim > 2 else layer.ndim
        return _Settings(
            w0=float(self.w0_slider.value),
            sigma=float(self.sigma_slider.value),
            border=str(self.border_combo.value),
            class_weights=str(self.class_weights_combo.value),
            spatial_dims=spatial_dims,
            spacing=tuple(float(s) for s in layer.scale[layer.ndim - spatial_dims :]),
        )

    @property
    def busy(self) -> bool:
        """Whether an update is queued, debouncing or running."""
        return super().busy or self._labels_dirty

    def refresh(self, _value: Any = None) -> None:
        """Bring the weight map up to date with the layer and the controls.

        Renders at once when the cache covers the new w0 / σ, otherwise asks the
        background runner for a job.
        """
        settings = self.settings()
        if settings is None:  # warn once, not on every slider step
            self._notify_once("add or open a Labels layer first.", "warning")
            return
        if self._can_render_now(settings):
            self._render_now(settings)
        elif not self._has_failed(settings):
            self._runner.request(self._prepare_lazy_job if self._large else self._prepare_job)

    def _can_render_now(self, settings: _Settings) -> bool:
        return (
            self._cache is not None
            and not self._runner.busy
            and not self._labels_dirty
            and self._cache_key == settings.cache_key
            and self._cache.covers(settings.w0, settings.sigma)
        )

    def _has_failed(self, settings: _Settings) -> bool:
        """Whether these labels and settings already failed (no repeated error popups)."""
        return not self._labels_dirty and self._failed_key == settings.cache_key

    def _render_now(self, settings: _Settings) -> None:
        start = perf_counter()
        image = self._cache.render(settings.w0, settings.sigma, settings.class_weights)
        self._show(image, settings, perf_counter() - start)

    def _prepare_job(self) -> Job | None:
        """Runs on the GUI thread when the runner is free: snapshot what the job needs."""
        layer, settings = self._layer, self.settings()
        if layer is None or settings is None:
            return None
        if is_large(layer):  # it got large data (layer.data = a dask array): lazy from now on
            self._large = True
            self.labels_warning.set_layer(None)
            return self._prepare_lazy_job()
        new_cache = self._cache is None or self._cache_key != settings.cache_key
        labels = None
        if new_cache or self._labels_dirty:
            labels = np.array(layer.data)  # a snapshot: painting may go on meanwhile
        self._labels_dirty = False
        cache = None if new_cache else self._cache
        if new_cache:
            self._set_status("Computing…")
        render = new_cache or settings != self._shown or self._output_layer(layer) is None
        run_id, _stop = self._begin_run()
        return Job(
            work=partial(_compute, settings, cache, labels, render),
            on_result=partial(self._on_result, run_id, layer, settings),
            on_error=partial(self._on_error, run_id, layer, settings),
        )

    def _prepare_lazy_job(self) -> Job | None:
        """As :meth:`_prepare_job`, for a large layer: its levels, its counts if known."""
        layer, settings = self._layer, self.settings()
        if layer is None or settings is None:
            return None
        known = self._counts
        same = (known is not None and not self._labels_dirty and known[0] is layer.data
                and known[1] == settings.spatial_dims)
        if same and settings == self._shown and self._output_layer(layer) is not None:
            return None
        self._labels_dirty = False
        run_id, stop = self._begin_run()
        source = LazyInput(label_levels(layer), known[2] if same else None)
        if source.counts is None:
            self._set_status("Building the lazy map…")
        return Job(
            work=partial(compute_lazy, settings, source, stop.is_set,
                         self._progress_callback(run_id)),
            on_result=partial(self._on_lazy_result, run_id, layer, settings, layer.data),
            on_error=partial(self._on_error, run_id, layer, settings),
        )

    def _on_progress(self, done: int, total: int) -> None:
        """A report of the count of a large layer's labels (tasks done of ``total``)."""
        if self._stop.is_set():
            return
        self.progress_bar.setRange(0, max(int(total), 1))
        self.progress_bar.setValue(min(int(done), int(total)))
        self._set_status(f"Counting the labels: {done} / {total}…")

    def _current(self, run_id: int, layer: Labels) -> bool:
        """Whether a job's result is for the current run and the layer still shown."""
        return self._is_current(run_id) and layer is self._layer

    def _on_lazy_result(
        self, run_id: int, layer: Labels, settings: _Settings, data: Any, outcome: LazyOutcome
    ) -> None:
        if not self._current(run_id, layer):
            return
        counted = outcome.counts is not None
        self._counts = (data, settings.spatial_dims, outcome.counts) if counted else None
        self._failed_key = None
        paintable = not (layer.multiscale or is_dask_array(layer.data))
        self._write_output(*layer_data(outcome.levels), (0.0, outcome.upper), settings)
        self._set_status(lazy_status(outcome, paintable))

    def _on_result(self, run_id: int, layer: Labels, settings: _Settings,
                   outcome: _Outcome) -> None:
        if not self._current(run_id, layer):
            return
        if outcome.cache is not self._cache and outcome.n_objects == 1:
            self._notify(
                f"'{layer.name}' holds a single object id. If it is a binary mask, give "
                "each object its own id first (e.g. skimage.measure.label).", "warning"
            )
        self._cache, self._cache_key, self._failed_key = outcome.cache, settings.cache_key, None
        if outcome.n_objects is not None:
            self._n_objects = outcome.n_objects
        if outcome.image is not None:
            self._show(outcome.image, settings, outcome.seconds)

    def _on_error(self, run_id: int, layer: Labels, settings: _Settings,
                  error: Exception) -> None:
        if self._current(run_id, layer):
            self._report_error(error, settings)

    def _report_error(self, error: Exception, settings: _Settings) -> None:
        self._failed_key = settings.cache_key
        message = user_message(error)
        self._set_status(f"Error: {message}")
        self._notify(f"'{self._layer.name}': {message}")

    def cancel(self) -> None:
        """Stop waiting for the running job; the viewer keeps showing the last result."""
        if not self._runner.waiting:
            return
        self._stop.set()
        self._runner.cancel()
        self._set_status("Cancelled: the weight map shows the previous result.")

    # -- output -------------------------------------------------------------------
    def _output_layer(self, labels: Labels) -> Image | None:
        """The output layer of ``labels``: the one shown, else one named after them."""
        tracked = self._output
        if tracked is not None and tracked in self.viewer.layers:
            return tracked
        name = f"{labels.name}{OUTPUT_SUFFIX}"
        if name in self.viewer.layers and isinstance(self.viewer.layers[name], Image):
            return self.viewer.layers[name]
        return None

    def _show(self, image: np.ndarray, settings: _Settings, seconds: float) -> None:
        """Write ``image`` into the output layer (created if missing) and the status."""
        self._write_output(image, False, _contrast_limits(image, settings), settings)
        objects = "" if self._n_objects is None else f"{self._n_objects} objects · "
        self._set_status(f"{objects}{seconds * 1000:.0f} ms")

    def _write_output(
        self, data: Any, multiscale: bool, limits: tuple[float, float], settings: _Settings
    ) -> None:
        """Write ``data`` into the output layer, added if missing or if it must change to or
        from multiscale (which napari cannot change in a layer)."""
        labels = self._layer
        output = self._output_layer(labels)
        if output is not None and output.multiscale != multiscale:
            self.viewer.layers.remove(output)
            output = None
        if output is None:
            output = self._add_output(
                self.viewer.add_image,
                data,
                labels,
                active=labels,  # keep painting on the labels
                name=f"{labels.name}{OUTPUT_SUFFIX}",
                colormap="magma",
                blending="additive",
                contrast_limits=limits,
                multiscale=multiscale,
            )
        else:
            update_layer(output, labels, data=data, contrast_limits=limits)
        self._output, self._shown = output, settings
