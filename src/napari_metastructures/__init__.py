"""napari-metastructures: learn from noisy labels, see meta-structures, segment without ground truth."""

__version__ = "0.1.0"
