"""The module paths of before issue 20's layout, still importable.

``import napari_unet_weights.lazy_weights`` (and the other public modules that moved into a
feature folder) gives the module at its new place: the same module object, so that its
names, and the attributes a test replaces, are the same. :func:`install` registers the moved
modules already imported and a finder that imports the others on their first use.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

_P = __package__

#: Old module path -> new module path, for the public modules that moved.
MOVED = {
    f"{_P}.{old}": f"{_P}.{new}"
    for old, new in {
        "lazy_weights": "weights.lazy",
        "label_checks": "labels.checks",
        "label_fixes": "labels.fixes",
        "label_ids": "labels.ids",
        "big_io": "io.big",
        "engine": "runtime.engine",
        "progress": "runtime.progress",
        "memory": "runtime.memory",
        "unet.big": "unet.chunked.big",
        "unet.stitch": "unet.chunked.stitch",
        "unet.zarr_labels": "unet.chunked.zarr_labels",
        "unet.lazy_stats": "unet.chunked.lazy_stats",
        "unet.train": "unet.training.train",
        "unet.run_dir": "unet.training.run_dir",
        "unet.budget": "unet.training.budget",
        "unet.augment": "unet.training.augment",
        "unet.data": "unet.training.data",
        "unet.seeding": "unet.training.seeding",
        "unet.tuning": "unet.training.tuning",
        "unet.parent": "unet.training.parent",
    }.items()
}


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new place (its own spec kept)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec):
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec  # the import machinery set the old path's spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        return None if new is None else importlib.util.spec_from_loader(fullname, _Alias(new))


def forward(module):
    """A module ``__getattr__`` that looks names up in ``module``.

    For a package that was one module before (``weights``, ``metrics``, ``io``): the names of
    that module that it does not re-export (its private helpers) stay reachable.
    """

    def __getattr__(name: str):
        try:
            return getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}") from None

    return __getattr__


def install() -> None:
    """Register the moved modules imported so far under their old paths, and the finder."""
    for old, new in MOVED.items():
        if new in sys.modules:
            sys.modules.setdefault(old, sys.modules[new])
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
