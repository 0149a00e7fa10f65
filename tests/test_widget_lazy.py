"""Issue 12 item 1, "lazy all the way", in the iGTT widget: an 8 GiB dask layer trains on a sample
of planes read in the worker, never on the GUI thread; previews and predictions of large layers
have no full-size arrays in memory; multiscale layers use the level the user picks.

Chunk reads are counted by the chunk function itself, with dask's synchronous scheduler, so a
chunk runs on the thread that asked for it (the GUI thread, or the run's worker).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_metastructures._widgets import _large
from napari_metastructures._widgets.igtt import IgttWidget

TIMEOUT = 240_000  # ms; the test machine is shared and slow
PLANE = 512
N_PLANES = 8192  # 8192 x 512 x 512 float32 = 8 GiB


def tiny(widget: IgttWidget, epochs: int = 1) -> IgttWidget:
    widget.encoder_depth.value, widget.crop.value, widget.batch.value = 3, 64, 2
    widget.steps.value, widget.epochs.value, widget.preview_every.value = 1, epochs, 1
    widget.early_stop.value = False
    widget.budget.value = 1  # 1 Mpx: 4 planes of 512 x 512
    return widget


def counted_stack(reads: list, n: int = N_PLANES, size: int = PLANE):
    """A virtual float32 ``(n, size, size)`` dask array, one chunk per plane, made on demand: seeded
    noise plus bright lines (something for iGTT to segment). Each computed chunk is recorded as
    ``(thread, plane)``."""
    import dask.array as da

    def plane(block_id=None):
        i = int(block_id[0])
        reads.append((threading.current_thread(), i))
        rng = np.random.default_rng(i)
        img = rng.normal(100.0, 10.0, (size, size)).astype(np.float32)
        img[rng.integers(0, size, 10), :] += 150.0
        img[:, rng.integers(0, size, 10)] += 150.0
        return img[None]

    return da.map_blocks(plane, dtype=np.float32, chunks=((1,) * n, (size,), (size,)),
                         meta=np.empty((0, 0, 0), np.float32), name="counted-stack")


@pytest.fixture
def synchronous_dask():
    import dask

    with dask.config.set(scheduler="synchronous"):  # a chunk runs on the thread that computes it
        yield


def test_training_blocks_follow_the_budget_the_slices_and_the_seed():
    shape = (N_PLANES, PLANE, PLANE)
    blocks = _large.training_blocks(shape, False, None, 1 << 20, seed=0)
    assert len(blocks) == 4 and blocks == _large.training_blocks(shape, False, None, 1 << 20, seed=0)
    assert blocks != _large.training_blocks(shape, False, None, 1 << 20, seed=1)
    leads = [b.lead[0] for b in blocks]
    assert leads == sorted(leads) and leads[-1] - leads[0] > N_PLANES / 2  # spread over the stack
    assert [b.lead for b in _large.training_blocks(shape, False, [3, 9], 1 << 30, 0)] == [(3,), (9,)]
    assert _large.describe(blocks, shape).startswith("4 of 8192 planes (")
    # a volume over the budget trains on a centred slab of its planes; TZYX volumes by T
    (slab,) = _large.training_blocks((2, 60, PLANE, PLANE), True, None, 3 * PLANE * PLANE, 0)
    assert slab.planes == (28, 29, 30) and slab.record() == [slab.lead[0], "28-30"]
    assert len(_large.training_blocks((4, 60, 64, 64), True, None, 1 << 30, 0)) == 4


def test_large_previews_are_lazy_planes_and_small_ones_numpy():
    import dask.array as da

    def split(prob, shape):
        return (prob > 0.5).astype(np.uint8), prob

    big = (N_PLANES, PLANE, PLANE)
    blocks = _large.training_blocks(big, False, None, 1 << 20, 0)
    previews = [np.full((PLANE, PLANE), 0.75, np.float32)] * len(blocks)
    mask, prob = _large.place_previews(big, blocks, previews, split)
    assert isinstance(mask, da.Array) and isinstance(prob, da.Array) and mask.shape == big
    assert mask.numblocks == (N_PLANES, 1, 1)
    t = blocks[0].lead[0]
    assert int(mask[t].sum().compute()) == PLANE * PLANE and float(prob[t + 1].max().compute()) == 0.0
    again, _ = _large.place_previews(big, blocks, previews, split)
    assert again.name != mask.name  # a new graph per epoch: napari's chunk cache cannot show an old one
    small = (10, 64, 64)
    mask, prob = _large.place_previews(small, _large.training_blocks(small, False, [2, 5], 1 << 20, 0),
                                       [np.full((64, 64), 0.75, np.float32)] * 2, split)
    assert isinstance(mask, np.ndarray) and mask.sum(axis=(1, 2)).nonzero()[0].tolist() == [2, 5]


def test_an_8_gib_dask_layer_trains_without_a_read_on_the_gui_thread(make_napari_viewer, qtbot, synchronous_dask):
    import dask.array as da

    reads: list = []
    lazy = counted_stack(reads)
    assert lazy.nbytes == 8 * 1024**3
    viewer = make_napari_viewer()
    widget = tiny(IgttWidget(viewer))
    viewer.window.add_dock_widget(widget, name="iGTT segmentation")
    layer = viewer.add_image(lazy, name="big", contrast_limits=(0.0, 400.0), metadata={"axes": "TYX"})
    drawn = [plane for thread, plane in reads if thread is threading.main_thread()]
    # napari drew the layer (its first plane, then the viewer's middle one); the widget's checks read nothing
    assert len(drawn) <= 2
    reads.clear()
    widget.images.value = [layer]
    panel = widget.panel
    assert panel.run_button.enabled, panel.run_button.tooltip
    data = layer.data
    shown = []
    panel.epoch_done.connect(lambda r: shown.append(type(viewer.layers["big_igtt"].data)))
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        panel.run()
        # the placeholders are lazy (no 8 GiB of zeros) and the status line names the planes
        assert isinstance(viewer.layers["big_igtt_prob"].data, da.Array)
        assert "sample of 'big': 4 of 8192 planes" in panel.timing.value
    assert blocker.args == ["finished"], panel.timing.value
    assert "sample of 'big': 4 of 8192 planes" in panel.timing.value  # still said when it has finished
    on_gui = [plane for thread, plane in reads if thread is threading.main_thread()]
    assert on_gui == []  # every chunk of the input was computed in the worker
    planes = sorted({plane for _, plane in reads})
    meta = viewer.layers["big_igtt"].metadata
    assert [[p] for p in planes] == meta["params"]["trained_blocks"]["big"]
    assert len(planes) == 4 and len(reads) == 4  # 4 of 8192 chunks, each read once
    assert layer.data is data and viewer.layers["big"].data is data  # the input is untouched
    assert shown == [da.Array]  # the epoch preview streamed as a lazy layer
    mask, prob = viewer.layers["big_igtt"], viewer.layers["big_igtt_prob"]
    assert isinstance(mask.data, da.Array) and mask.data.shape == lazy.shape
    assert prob.data[planes[0]].max().compute() > 0.0 and prob.data[planes[0] + 1].max().compute() == 0.0
    assert meta["params"]["train_budget_px"] == 1 << 20 and meta["status"] == "finished"


def _stack(n=4, size=96, seed=0):
    from napari_metastructures.core.synthetic import er_network

    return np.stack([er_network((size, size), seed=seed + i)[0] for i in range(n)]).astype(np.float32)


def test_predict_of_a_large_layer_writes_zarr_beside_its_file_or_a_temporary_store(
        make_napari_viewer, qtbot, tmp_path, monkeypatch):
    import dask.array as da
    from napari.layers._source import layer_source

    from napari_metastructures.core.lazy import PARTIAL

    monkeypatch.setattr(_large, "OUTPUT_LIMIT", 1024)  # every output counts as large
    stack = _stack()
    viewer = make_napari_viewer()
    with layer_source(path=str(tmp_path / "cell.ome.tif")):
        layer = viewer.add_image(da.from_array(stack, chunks=(1, 96, 96)), name="cell", scale=(2.0, 0.5, 0.5),
                                 metadata={"axes": "TYX"})
    widget = tiny(IgttWidget(viewer))
    viewer.window.add_dock_widget(widget)
    panel = widget.panel
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
        panel.run()
    trained = [b[0] for b in viewer.layers["cell_igtt"].metadata["params"]["trained_blocks"]["cell"]]
    assert isinstance(viewer.layers["cell_igtt"].data, da.Array) and len(trained) == 4  # 4 x 96 x 96 < 1 Mpx
    panel.predict_on.value = layer
    with qtbot.waitSignal(panel.predicted, timeout=TIMEOUT) as blocker:
        panel.predict()
    mask = blocker.args[0]
    meta, prob = mask.metadata, viewer.layers["cell_igtt_prob"]
    assert meta["mask_store"] == str(tmp_path / "cell_igtt.zarr") and not meta["temporary"]
    assert meta["prob_store"] == str(tmp_path / "cell_igtt_prob.zarr")
    assert not list(tmp_path.glob(f"*{PARTIAL}"))  # finished stores only
    assert isinstance(mask.data, da.Array) and isinstance(prob.data, da.Array) and mask.data.shape == stack.shape
    np.testing.assert_allclose(mask.scale, (2.0, 0.5, 0.5))
    expected = panel.model.predict(stack, device="cpu", axes="TYX")  # a time-lapse: plane by plane
    np.testing.assert_allclose(prob.data.compute(), expected, atol=1e-6)
    np.testing.assert_array_equal(mask.data.compute(), (expected > 0.5).astype(np.uint8))
    assert "cell_igtt.zarr" in panel.timing.value
    # without a source file: a temporary store, named on the status line and in the metadata
    other = viewer.add_image(da.from_array(stack[:2], chunks=(1, 96, 96)), name="other")
    panel.predict_on.value = other
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT)  # the first prediction's worker has ended
    with qtbot.waitSignal(panel.predicted, timeout=TIMEOUT) as blocker:
        panel.predict()
    meta = blocker.args[0].metadata
    assert meta["temporary"] and "temporary" in panel.timing.value and meta["mask_store"] in panel.timing.value


def test_multiscale_layer_trains_at_the_level_picked_with_that_levels_scale(make_napari_viewer, qtbot):
    import dask.array as da

    full = _stack(n=2, size=128)
    levels = [da.from_array(full, chunks=(1, 128, 128)), da.from_array(full[:, ::2, ::2], chunks=(1, 64, 64))]
    viewer = make_napari_viewer()
    plain = viewer.add_image(full, name="plain")
    widget = tiny(IgttWidget(viewer))
    viewer.window.add_dock_widget(widget)
    assert widget.level.native.isHidden()  # only for multiscale layers (the viewer is not shown)
    layer = viewer.add_image(levels, name="pyramid", multiscale=True, scale=(3.0, 0.5, 0.5),
                             translate=(0.0, 10.0, 20.0), contrast_limits=(0.0, 1.0))
    widget.images.value = [layer]
    assert not widget.level.native.isHidden() and list(widget.level.choices) == [0, 1]
    widget.level.value = 1
    assert widget.panel.run_button.enabled, widget.panel.run_button.tooltip
    with qtbot.waitSignal(widget.panel.run_finished, timeout=TIMEOUT):
        widget.panel.run()
    mask = viewer.layers["pyramid_igtt"]
    assert mask.data.shape == (2, 64, 64)
    np.testing.assert_allclose(mask.scale, (3.0, 1.0, 1.0))
    np.testing.assert_allclose(mask.translate, (0.0, 10.0, 20.0))
    assert mask.metadata["params"]["levels"] == {"pyramid": {"level": 1, "scale": [3.0, 1.0, 1.0]}}
    widget.images.value = [plain]
    assert widget.level.native.isHidden()


def test_axes_row_and_z_stack_choice_reach_predict_and_are_recorded(make_napari_viewer, qtbot):
    from napari_metastructures.core.igtt.config import IgttConfig
    from napari_metastructures.core.igtt.engine import run

    stack = _stack(n=4, size=96)
    viewer = make_napari_viewer()
    layer = viewer.add_image(stack, name="zstack", scale=(0.3, 0.1, 0.1), metadata={"axes": "ZYX"})
    widget = tiny(IgttWidget(viewer))
    viewer.window.add_dock_widget(widget)
    assert widget.axes.value == "ZYX" and widget.zstacks.value == "auto"
    frozen = widget.freeze(layer)
    assert widget.predict_options(frozen) == {"volume_mode": "ortho", "anisotropy": pytest.approx(3.0)}
    widget.zstacks.value = "slices"
    assert widget.predict_options(frozen) == {"volume_mode": "slices"}
    widget.zstacks.value = "auto"
    widget.axes.value = "TYX"  # the user corrects the guess: a time-lapse, predicted plane by plane
    corrected = widget.freeze(layer)
    assert corrected.axes == "TYX" and widget.predict_options(corrected)["volume_mode"] == "slices"
    assert layer.metadata["axes"] == "ZYX"  # the input layer is not changed
    widget.axes.value = "QYX"
    assert not widget.panel.run_button.enabled and "axes of 'zstack'" in widget.panel.run_button.tooltip
    widget.axes.value = "ZYX"
    assert widget.panel.run_button.enabled, widget.panel.run_button.tooltip

    cfg = IgttConfig.preset("fast", encoder_depth=3, crop=64, batch_size=2, steps_per_epoch=1, epochs=1)
    model = run([stack[0]], cfg, device="cpu").model
    widget.panel.models.set_model(model)
    calls, real = [], model.predict

    def spy(*args, **kwargs):
        calls.append({k: kwargs.get(k) for k in ("axes", "volume_mode", "anisotropy")})
        return real(*args, **kwargs)

    model.predict = spy
    widget.panel.predict_on.value = layer
    with qtbot.waitSignal(widget.panel.predicted, timeout=TIMEOUT) as blocker:
        widget.panel.predict()
    assert calls == [{"axes": "ZYX", "volume_mode": "ortho", "anisotropy": pytest.approx(3.0)}]
    assert blocker.args[0].metadata["predict_options"]["volume_mode"] == "ortho"
    assert isinstance(blocker.args[0].data, np.ndarray)  # a small result stays in memory
