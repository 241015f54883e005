"""Fixtures shared by the tests: a napari viewer and dock widgets docked in it."""

from __future__ import annotations

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


def _load_opengl_first(qapp) -> None:
    """Open (and close) a napari viewer so that Mesa's OpenGL is loaded before TensorFlow.

    TensorFlow >= 2.20 and Mesa's libLLVM crash each other in one process unless
    TensorFlow comes second and is imported through ``keras_or_error`` (RTLD_DEEPBIND).
    In napari the viewer always comes first; the test session must do the same.
    """
    try:
        import napari
    except ImportError:
        return
    napari.Viewer(show=False).close()


@pytest.fixture(scope="session")
def keras(qapp):
    """Keras on TensorFlow, imported as the plugin does; skips when TensorFlow is missing."""
    from napari_unet_weights.unet.model import keras_or_error

    _load_opengl_first(qapp)
    try:
        return keras_or_error()
    except ImportError as error:
        pytest.skip(str(error))
