"""The npe2 manifest (``napari.yaml``), checked by npe2 itself rather than read as text."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name
from qtpy.QtWidgets import QWidget

import napari_unet_weights
from napari_unet_weights._widgets.common.handoff import PLUGIN

MANIFEST = Path(napari_unet_weights.__file__).with_name("napari.yaml")


@pytest.fixture(scope="module")
def manifest() -> PluginManifest:
    """The manifest of the source tree, parsed and schema-validated by npe2."""
    return PluginManifest.from_file(MANIFEST)


def _commands(manifest: PluginManifest) -> dict[str, object]:
    return {command.id: command for command in manifest.contributions.commands}


def test_every_python_name_imports(manifest):
    """What ``npe2 validate --imports`` checks, and each command is a callable."""
    manifest.validate_imports()  # raises a ValidationError naming each bad python_name
    for command in manifest.contributions.commands:
        assert callable(import_python_name(command.python_name)), command.id


def test_the_installed_plugin_is_this_manifest(manifest):
    """napari finds the plugin through its entry point, and it is this file."""
    installed = PluginManifest.from_distribution(PLUGIN)
    assert installed.name == manifest.name == PLUGIN
    assert installed.contributions == manifest.contributions


def test_widgets_are_dock_widgets_with_the_names_the_code_uses(manifest):
    """Each widget takes the viewer, and its TITLE (hand-offs, notifications) is its name."""
    commands = _commands(manifest)
    widgets = manifest.contributions.widgets
    assert [widget.display_name for widget in widgets] == [
        "Weight map", "Check labels", "Evaluate", "Train U-Net", "Segment", "Model QA"]
    for widget in widgets:
        widget_class = import_python_name(commands[widget.command].python_name)
        assert issubclass(widget_class, QWidget), widget.command
        assert "napari_viewer" in inspect.signature(widget_class).parameters
        assert widget.display_name == widget_class.TITLE


def test_sample_data_commands_need_no_arguments(manifest):
    commands = _commands(manifest)
    samples = manifest.contributions.sample_data
    assert len(samples) == 4
    for sample in samples:
        function = import_python_name(commands[sample.command].python_name)
        required = [p for p in inspect.signature(function).parameters.values()
                    if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        assert required == [], sample.key
