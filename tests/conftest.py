"""Fixtures shared by the tests: a napari viewer, dock widgets docked in it, notifications."""

from __future__ import annotations

import importlib
import os
import pkgutil

import pytest

#: How long a dock widget may take to finish its background work in the tests.
WIDGET_TIMEOUT_MS = 10_000


@pytest.fixture
def viewer(make_napari_viewer):
    """A napari viewer, closed after the test."""
    return make_napari_viewer()


@pytest.fixture
def wait_idle(qtbot):
    """``wait_idle(widget)``: process Qt events until ``widget.busy`` is False."""

    def wait(widget) -> None:
        qtbot.waitUntil(lambda: not widget.busy, timeout=WIDGET_TIMEOUT_MS)

    return wait


@pytest.fixture
def dock_widget(viewer, wait_idle):
    """``dock_widget(widget_class, name)``: make a widget of ``viewer``, dock it, wait.

    The widget is built as ``widget_class(viewer)``, docked under ``name`` and
    returned once its first computation is done.
    """

    def dock(widget_class, name: str):
        widget = widget_class(viewer)
        viewer.window.add_dock_widget(widget, name=name)
        wait_idle(widget)
        return widget

    return dock


@pytest.fixture
def notifications(monkeypatch) -> dict[str, list[str]]:
    """The napari notifications the plugin's widgets show, by kind, instead of showing them.

    Every widget module that imported ``show_error``, ``show_warning`` or ``show_info``
    gets a stand-in that appends the message to ``notifications["error"]``,
    ``["warning"]`` or ``["info"]``, whichever module of the widgets notifies.
    """
    import napari_unet_weights._widgets as widgets

    shown: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    for info in pkgutil.iter_modules(widgets.__path__):
        module = importlib.import_module(f"{widgets.__name__}.{info.name}")
        for kind, messages in shown.items():
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", messages.append)
    return shown


@pytest.fixture(scope="session")
def keras():
    """Keras on TensorFlow, imported as the plugin does.

    Skips when TensorFlow is missing, except under ``CI=true``, where it fails.
    """
    from napari_unet_weights.unet.device import keras_or_error

    try:
        return keras_or_error()
    except ImportError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs TensorFlow: {error}")
        pytest.skip(str(error))
