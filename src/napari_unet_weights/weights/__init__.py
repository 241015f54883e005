"""Weight maps: the exact one of a labels array (:mod:`.exact`) and the lazy, chunked one of a
large image (:mod:`.lazy`). ``napari_unet_weights.weights`` re-exports both.
"""

from .._moved import forward
from . import exact, lazy
from .exact import *  # noqa: F403
from .lazy import *  # noqa: F403

__all__ = list(dict.fromkeys([*exact.__all__, *lazy.__all__]))
__getattr__ = forward(exact)  # the other names of the module it was
