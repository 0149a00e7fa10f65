"""``python -m napari_metastructures.cli``: the same as ``metastructures``."""
import sys

from . import main

sys.exit(main())
