"""Label images: their checks (:mod:`.checks`), fixes (:mod:`.fixes`), ids and dtype
(:mod:`.ids`); :mod:`._runs` finds the runs of pixels the checks and fixes share.
"""

from . import checks, fixes, ids
from .checks import *  # noqa: F403
from .fixes import *  # noqa: F403
from .ids import *  # noqa: F403

__all__ = list(dict.fromkeys([*checks.__all__, *fixes.__all__, *ids.__all__]))
