"""What the Check labels widget and the labels warnings share: colours, words, the edit.

The problems are those of :func:`napari_unet_weights.labels.checks.check_labels`; each
has a colour (its table cells, the highlight layer, the counts), and a count of them
reads as ``"3 touching, 1 hole"``. :func:`apply_fix` writes a
:class:`~napari_unet_weights.labels.fixes.LabelFix` into a Labels layer as one edit of
its undo history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.colormaps import DirectLabelColormap

from napari_unet_weights._widgets.common.lazy_layers import LARGE_PIXELS
from napari_unet_weights.labels.checks import PROBLEMS
from napari_unet_weights.labels.fixes import label_dtype

if TYPE_CHECKING:
    from napari.layers import Labels

    from napari_unet_weights.labels.fixes import LabelFix

__all__ = [
    "PROBLEM_COLORS",
    "PROBLEM_HELP",
    "apply_fix",
    "counts_text",
    "highlight_colormap",
    "layer_labels",
]

#: One colour per problem, far from one another and readable on a dark canvas.
PROBLEM_COLORS = {
    "disconnected": "#ff4fd8",
    "small": "#ffd23f",
    "hole": "#35b6ff",
    "touching": "#ff3b30",
    "reused": "#a06bff",
}
#: What each problem means, for tooltips.
PROBLEM_HELP = {
    "disconnected": "One id painted in several separate places. Fix: the pieces other "
                    "than the largest get new ids.",
    "small": "Fewer pixels than 'min size': stray pixels of a new id. Fix: to background "
             "(or merged into the neighbour it touches most).",
    "hole": "Background enclosed by one object. Fix: filled with the object's id.",
    "touching": "Two objects share a border with no background between them. Fix: a "
                "one-pixel gap, as the 2-class training target cuts it.",
    "reused": "(Checked per 2D plane) an id that appears in several planes. Fix: new ids "
              "in the later planes.",
}


def counts_text(counts: Mapping[str, int], separator: str = ", ") -> str:
    """``"3 touching, 1 hole"``: the non-zero counts, in the order of :data:`PROBLEMS`."""
    return separator.join(f"{int(counts[name])} {name}" for name in PROBLEMS
                          if int(counts.get(name, 0)))


def highlight_colormap() -> DirectLabelColormap:
    """The colours of :meth:`~napari_unet_weights.labels.checks.LabelReport.problem_image`:
    value ``1 + PROBLEMS.index(problem)``, background transparent."""
    colors: dict[int | None, str] = {None: "transparent", 0: "transparent"}
    colors.update({code: PROBLEM_COLORS[name] for code, name in enumerate(PROBLEMS, start=1)})
    return DirectLabelColormap(color_dict=colors)


def layer_labels(layer: Labels) -> np.ndarray:
    """A copy of the layer's labels, as the core checks them (a dask or zarr array read).

    Raises
    ------
    ValueError
        For a multiscale layer, or data not in memory (dask, zarr) of more than
        :data:`~.lazy_layers.LARGE_PIXELS` pixels: not copied.
    """
    if layer.multiscale:
        raise ValueError("multiscale labels are not supported: check one level, e.g. "
                         "viewer.add_labels(layer.data[0]).")
    data = layer.data
    if not isinstance(data, np.ndarray) and int(np.prod(data.shape)) > LARGE_PIXELS:
        raise ValueError(f"labels of {int(np.prod(data.shape))} pixels not in memory are too "
                         "large to check here: use 'napari-unet-weights check' on the file.")
    return np.array(data)


def apply_fix(layer: Labels, fix: LabelFix) -> int:
    """Write ``fix`` into ``layer`` as one undoable edit (Ctrl-Z restores the old labels).

    Only the changed pixels are written, by :meth:`napari.layers.Labels.data_setitem`
    inside :meth:`~napari.layers.Labels.block_history`: the layer records their old
    values as one item of its undo history and emits one ``paint`` event.

    Parameters
    ----------
    layer : napari.layers.Labels
        The layer the fix was computed from.
    fix : LabelFix
        The fix.

    Returns
    -------
    int
        The number of pixels changed.

    Raises
    ------
    ValueError
        If the new ids do not fit in the layer's dtype (nothing is written).
    """
    indices = fix.indices
    if not len(indices[0]):
        return 0
    values = fix.values
    dtype = np.dtype(layer.data.dtype)
    if np.issubdtype(dtype, np.integer):
        label_dtype(dtype, int(values.max()), widen=False)  # the layer keeps its dtype
    with layer.block_history():
        layer.data_setitem(indices, values.astype(dtype, copy=False))
    return len(indices[0])
