"""The run panel's plot is painted in napari's theme and follows a change of it."""
import numpy as np
from napari.utils.theme import get_theme

from napari_metastructures._widgets.igtt import IgttWidget


def _rgb(hex_colour: str) -> list:
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


def _shown(plot) -> list:
    colour = plot.view.grab().toImage().pixelColor(2, 2)
    return [colour.red(), colour.green(), colour.blue()]


def _near(shown: list, hex_colour: str) -> bool:
    """Within a few levels: the display's colour depth may round (a 16-bit Xvfb screen)."""
    return int(np.abs(np.subtract(shown, _rgb(hex_colour))).max()) <= 8


def _hex(rgba_pixel) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba_pixel[:3])


def test_plot_follows_the_viewer_theme(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.theme = "dark"
    plot = IgttWidget(viewer).panel.plot
    dark, light = get_theme("dark").background.as_hex(), get_theme("light").background.as_hex()
    assert dark != light
    assert plot.figure is None  # matplotlib waits for the first epoch (it took 1-2 s when docking)
    assert _near(_shown(plot), dark)  # the empty box is in the theme's colours
    viewer.theme = "light"
    assert plot.colours[0] == light and _near(_shown(plot), light)
    assert _hex(plot.render([])[0, 0]) == light
    points = [(1, -0.5, 0.1), (2, -0.7, 0.12)]
    plot.show(plot.render(points), points)  # as after an epoch
    viewer.theme = "dark"  # redrawn with the points, in the new colours
    assert _near(_shown(plot), dark) and not _near(_shown(plot), light)
    viewer.theme = "light"
    assert _hex(plot.render(points)[0, 0]) == light
    assert _near(_shown(plot), light) and not _near(_shown(plot), dark)
    assert np.ptp(plot.render([])[..., 0]) > 0  # not a blank box: text and axes are drawn
