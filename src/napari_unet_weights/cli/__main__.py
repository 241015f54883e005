"""``python -m napari_unet_weights.cli``: the ``napari-unet-weights`` command."""

import sys

from . import main

sys.exit(main())
