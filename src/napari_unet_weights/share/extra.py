"""Whether the ``[export]`` extra is installed, found without importing it."""

from __future__ import annotations

import importlib.util

from ..unet.onnx_runtime import INSTALL_HINT

__all__ = ["EXPORT_MODULES", "PIP_COMMAND", "extra_message", "is_export_module",
           "missing_export_modules"]

#: What :func:`.export.export_model` imports (the ``[export]`` extra).
EXPORT_MODULES = ("bioimageio.spec", "onnx", "tf2onnx")
#: The command that installs them.
PIP_COMMAND = INSTALL_HINT


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package missing, or a None stand-in
        return True


def missing_export_modules() -> list[str]:
    """The modules of the ``[export]`` extra that cannot be imported (none are imported)."""
    return [module for module in EXPORT_MODULES if _missing(module)]


def is_export_module(name: str | None) -> bool:
    """Whether a module that failed to import belongs to the ``[export]`` extra (onnxruntime,
    which runs the ONNX weights, included)."""
    packages = {module.split(".")[0] for module in EXPORT_MODULES} | {"onnxruntime"}
    return name is not None and name.split(".")[0] in packages


def extra_message(missing: list[str]) -> str:
    """What to install when the modules ``missing`` are."""
    return f"exporting needs the [export] extra ({', '.join(missing)} missing): {PIP_COMMAND}"
