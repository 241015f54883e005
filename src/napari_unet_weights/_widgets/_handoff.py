"""Opening one of the plugin's widgets from another (Segment → Weight map, → Evaluate).

A widget that hands a layer to another one finds that widget docked in the viewer, or
docks it as Plugins → U-Net Weights does, and raises it. Display names are the
widgets' ``TITLE``, the names of their contributions in ``napari.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import napari
    from qtpy.QtWidgets import QWidget

__all__ = ["PLUGIN", "dock_plugin_widget"]

#: The plugin's name in its npe2 manifest.
PLUGIN = "napari-unet-weights"

W = TypeVar("W", bound="QWidget")


def dock_plugin_widget(viewer: napari.viewer.Viewer, name: str, widget_class: type[W]) -> W:
    """The plugin's widget ``name`` in ``viewer``: the docked one, or a new one; raised.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.
    name : str
        The widget's display name in the manifest, e.g. ``"Weight map"``.
    widget_class : type
        Its class: a docked instance is reused; without the plugin registered (a
        source tree), a new instance is docked directly.

    Returns
    -------
    QWidget
        The widget.
    """
    window = viewer.window
    widget = next((w for w in window.dock_widgets.values() if isinstance(w, widget_class)),
                  None)
    if widget is None:
        try:
            _, widget = window.add_plugin_dock_widget(PLUGIN, name)
        except (KeyError, ValueError):  # the plugin is not registered with npe2
            widget = widget_class(viewer)
            window.add_dock_widget(widget, name=name, area="right")
    dock = widget.parent()
    if dock is not None:
        dock.show()
        dock.raise_()
    return widget
