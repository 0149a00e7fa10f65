"""The run panel's plot is painted in napari's theme and follows a change of it."""
import numpy as np
from napari.utils.theme import get_theme

from napari_metastructures._widgets.igtt import IgttWidget


def _hex(rgba_pixel) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba_pixel[:3])


def test_plot_follows_the_viewer_theme(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.theme = "dark"
    plot = IgttWidget(viewer).panel.plot
    dark, light = get_theme("dark").background.as_hex(), get_theme("light").background.as_hex()
    assert dark != light
    assert plot.colours[0] == dark and _hex(plot.render([])[0, 0]) == dark
    viewer.theme = "light"
    assert plot.colours[0] == light
    corner = plot.render([(1, -0.5, 0.1), (2, -0.7, 0.12)])[0, 0]
    assert _hex(corner) == light
    image = plot.view.pixmap().toImage()  # what is on screen was redrawn too
    shown = image.pixelColor(0, 0)
    want = [int(light[i:i + 2], 16) for i in (1, 3, 5)]
    # within a few levels: the display's colour depth may round (a 16-bit Xvfb screen)
    assert np.abs(np.subtract([shown.red(), shown.green(), shown.blue()], want)).max() <= 8
    dark_rgb = [int(dark[i:i + 2], 16) for i in (1, 3, 5)]
    assert np.abs(np.subtract([shown.red(), shown.green(), shown.blue()], dark_rgb)).max() > 100
    assert np.ptp(plot.render([])[..., 0]) > 0  # not a blank box: text and axes are drawn
