"""A lazy (dask) layer is validated and frozen without reading its pixels on the GUI thread."""
import numpy as np


def test_validation_and_freezing_read_no_pixels_of_a_lazy_layer(make_napari_viewer):
    import dask.array as da

    from napari_metastructures._widgets._forms import image_problem
    from napari_metastructures._widgets._layers import FrozenLayer

    reads = []

    def block(x):
        reads.append(x.shape)
        return x

    base = np.random.default_rng(0).random((3, 96, 96)).astype(np.float32)
    lazy = da.from_array(base, chunks=(1, 96, 96)).map_blocks(block, dtype=np.float32)
    viewer = make_napari_viewer()
    layer = viewer.add_image(lazy, name="lazy", contrast_limits=(0, 1))
    reads.clear()  # napari may read a slice to draw it
    assert image_problem(layer, crop=64) == ""
    frozen = FrozenLayer.from_layer(layer)
    assert reads == [] and frozen.data is layer.data and frozen.data.shape == (3, 96, 96)
    # an in-memory layer is still copied, so later edits cannot reach a run
    mem = viewer.add_image(base.copy(), name="mem")
    copy = FrozenLayer.from_layer(mem)
    mem.data[0, 0, 0] = 5.0
    assert copy.data[0, 0, 0] != 5.0
    # layout problems are still found without pixels
    import pytest

    from napari_metastructures.core.validate import InputError, check_image_layout

    empty = da.zeros((0, 96, 96), dtype=np.float32).map_blocks(block)
    flags = da.zeros((4, 96, 96), dtype=bool).map_blocks(block)
    reads.clear()  # dask calls the function on empty blocks to learn its output type
    with pytest.raises(InputError, match="empty"):
        check_image_layout(empty, "lazy")
    with pytest.raises(InputError, match="real-valued"):
        check_image_layout(flags, "lazy")
    assert reads == []
