"""Core library: numpy/torch only. Never imports napari, qtpy or magicgui."""
