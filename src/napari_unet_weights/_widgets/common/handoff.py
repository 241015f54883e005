"""Opening one of the plugin's widgets from another (Segment → Weight map, → Evaluate).

A widget that hands a layer to another one finds that widget docked in the viewer, or
docks it as Plugins → U-Net Weights does, and raises it. Display names are the
widgets' ``TITLE``, the names of their contributions in ``napari.yaml``. Two widgets
that hand work to each other (Segment → Train U-Net with a training pair, Train U-Net
→ Segment with the new model) name each other only: the manifest gives the class
(:func:`plugin_widget_class`), as it does to napari, so neither module imports the other.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import napari
    from qtpy.QtWidgets import QWidget

__all__ = ["MANIFEST", "PLUGIN", "dock_plugin_widget", "plugin_widget_class"]

#: The plugin's name in its npe2 manifest.
PLUGIN = "napari-unet-weights"
#: The plugin's npe2 manifest.
MANIFEST = Path(__file__).parents[2] / "napari.yaml"  # _widgets/common/ -> the package

W = TypeVar("W", bound="QWidget")


@cache
def plugin_widget_class(name: str) -> Any:
    """The class of the plugin's widget ``name``, as its manifest names it (imported).

    Raises
    ------
    KeyError
        If the manifest has no widget of that display name.
    """
    from npe2 import PluginManifest
    from npe2.manifest.utils import import_python_name

    contributions = PluginManifest.from_file(MANIFEST).contributions
    commands = {command.id: command.python_name for command in contributions.commands}
    for widget in contributions.widgets:
        if widget.display_name == name:
            return import_python_name(commands[widget.command])
    raise KeyError(f"{PLUGIN} has no widget named {name!r}")


def dock_plugin_widget(viewer: napari.viewer.Viewer, name: str,
                       widget_class: type[W] | None = None) -> W:
    """The plugin's widget ``name`` in ``viewer``: the docked one, or a new one; raised.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.
    name : str
        The widget's display name in the manifest, e.g. ``"Weight map"``.
    widget_class : type, optional
        Its class (default: the manifest's, :func:`plugin_widget_class`): a docked
        instance is reused; without the plugin registered (a source tree), a new
        instance is docked directly.

    Returns
    -------
    QWidget
        The widget.
    """
    widget_class = widget_class or plugin_widget_class(name)
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
