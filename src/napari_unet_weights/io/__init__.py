"""Files: images, labels and tables (:mod:`.files`); large images, zarr stores and their
pyramids (:mod:`.big`). ``napari_unet_weights.io`` re-exports what it exported as a module.
"""

from .._moved import forward
from . import files
from .files import *  # noqa: F403

__all__ = list(dict.fromkeys([*files.__all__]))
__getattr__ = forward(files)  # the other names of the module it was
