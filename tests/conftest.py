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
    for info in pkgutil.walk_packages(widgets.__path__, f"{widgets.__name__}."):
        module = importlib.import_module(info.name)  # the widgets' folders, and common/
        for kind, messages in shown.items():
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", messages.append)
    return shown


@pytest.fixture(scope="session")
def keras():
    """Keras on TensorFlow, imported as the plugin does (this process's backend, whatever
    ``KERAS_BACKEND`` says; the other backends: tests/test_unet_backend.py).

    Skips when TensorFlow is missing, except under ``CI=true``, where it fails.
    """
    from napari_unet_weights.unet.device import keras_or_error

    try:
        return keras_or_error("tensorflow")
    except ImportError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs TensorFlow: {error}")
        pytest.skip(str(error))


class FakeClock:
    """A clock that only the test moves, for training's time budgets
    (:mod:`napari_unet_weights.unet.training.budget`): pass it as ``train(..., clock=clock)``.

    ``clock()`` reads it; ``clock.advance(seconds)`` moves it on; with ``tick``, every
    reading moves it on by ``tick`` seconds after it is read.
    """

    def __init__(self, now: float = 0.0, tick: float = 0.0) -> None:
        self.now, self.tick = now, tick

    def __call__(self) -> float:
        now = self.now
        self.now += self.tick
        return now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def progress(self, events: list, batch: float = 0.0, epoch: float = 0.0):
        """A ``progress`` callback that keeps the events and moves the clock on by
        ``batch`` seconds per batch and ``epoch`` seconds per epoch (as if they took it)."""

        def report(info: dict) -> None:
            events.append(info)
            self.advance({"batch": batch, "epoch": epoch}.get(info["stage"], 0.0))

        return report


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` at 0 s that moves only when the test moves it."""
    return FakeClock()


@pytest.fixture(scope="session")
def bundled_package(tmp_path_factory):
    """The bundled model exported once for the session as a bioimage.io package
    (``export_model(None, ...)``: seconds of ONNX conversion), for tests that read one;
    none may change it or its folder."""
    from napari_unet_weights.share.export import export_model

    return export_model(None, tmp_path_factory.mktemp("bundled_package") / "nuclei.zip")


@pytest.fixture(scope="session")
def dask_cluster():
    """One running dask cluster for the whole session (``distributed.LocalCluster`` in this
    process: one worker of 2 threads), closed at the session's end.

    For tests where a cluster is incidental (a scheduler address to connect to); a test
    that checks that a command or the engine starts its own cluster (``--workers 2``)
    starts it and is marked ``cluster``.
    """
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster:
        yield cluster


def pytest_collection_modifyitems(items) -> None:
    """A test that starts a cluster (marked ``cluster``) or uses :func:`dask_cluster` is
    ``slow`` too: ``pytest -m "not slow"`` leaves every cluster out."""
    for item in items:
        if item.get_closest_marker("cluster") or "dask_cluster" in getattr(
                item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
