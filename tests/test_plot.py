"""The live training plot: whole epochs on the x axis from the first point on."""
import numpy as np


def test_x_axis_shows_whole_epochs_from_the_first_point(qtbot):
    from napari_metastructures._widgets._plot import EpochPlot

    plot = EpochPlot("fg %")
    for points in ([(1, 0.5, 0.1)], [(1, 0.5, 0.1), (2, 0.4, 0.12), (3, 0.35, 0.13)]):
        rgba = plot.render(points)
        assert rgba.ndim == 3 and rgba.shape[2] == 4
        low, high = plot.ax.get_xlim()
        assert low < 1 and high > len(points)
        ticks = [t for t in plot.ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert np.array(plot.render([])).shape == rgba.shape
