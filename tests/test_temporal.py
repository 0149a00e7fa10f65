"""Smoothing over time (core.temporal) and the synthetic time-lapse (core.synthetic_timelapse)."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures.core.synthetic_timelapse import timelapse
from napari_metastructures.core.temporal import smooth_over_time


class CountingArray:
    """An array-like that counts frame reads and remembers how many frames were held at once."""

    def __init__(self, data: np.ndarray, t_axis: int) -> None:
        self.data, self.t_axis = data, t_axis
        self.shape, self.ndim, self.reads = data.shape, data.ndim, []

    def __getitem__(self, index):
        t = index[self.t_axis]
        assert isinstance(t, int), "reads one frame at a time"
        self.reads.append(t)
        return self.data[index].copy()


class RecordingOut:
    """An ``out=`` array-like that records the frames written into it."""

    def __init__(self, shape, t_axis: int) -> None:
        self.data, self.t_axis, self.shape, self.written = np.zeros(shape, np.float32), t_axis, shape, []

    def __setitem__(self, index, value) -> None:
        self.written.append(index[self.t_axis])
        self.data[index] = value


def _noisy(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape)


@pytest.mark.parametrize("t_axis", [0, 1, 2, -1])
def test_window_one_is_an_unchanged_float32_copy(t_axis):
    prob = _noisy((5, 6, 7))
    out = smooth_over_time(prob, t_axis, 1)
    assert out.dtype == np.float32 and out.shape == prob.shape
    np.testing.assert_array_equal(out, prob.astype(np.float32))
    assert not np.shares_memory(out, prob)


@pytest.mark.parametrize("t_axis", [0, 1, 2, 3])
def test_time_axis_in_any_position_gives_the_same_result(t_axis):
    tyx = _noisy((7, 3, 8, 9))  # T first, then moved
    want = smooth_over_time(tyx, 0, 3)
    moved = np.moveaxis(tyx, 0, t_axis)
    got = smooth_over_time(moved, t_axis, 3)
    np.testing.assert_allclose(np.moveaxis(got, t_axis, 0), want, rtol=1e-6)
    # the average is over time, not another axis: frame 3 is the mean of frames 2-4
    np.testing.assert_allclose(want[3], tyx[2:5].mean(0), rtol=1e-5)


@pytest.mark.parametrize("how", ["mean", "median"])
def test_constant_in_time_is_unchanged(how):
    frame = _noisy((12, 13))
    prob = np.repeat(frame[None], 6, axis=0)
    for window in (3, 5, 7, 9):
        np.testing.assert_allclose(smooth_over_time(prob, 0, window, how), prob, rtol=1e-6)
    np.testing.assert_allclose(smooth_over_time(prob, 0, 5, reach=2), prob, rtol=1e-6)


@pytest.mark.parametrize("how", ["mean", "median"])
def test_noise_variance_falls_with_the_window(how):
    prob = 0.5 + 0.1 * np.random.default_rng(1).standard_normal((40, 32, 32))
    var = [smooth_over_time(prob, 0, w, how)[5:-5].var() for w in (1, 3, 5, 9)]
    assert var[0] > var[1] > var[2] > var[3]
    if how == "mean":  # independent noise: variance / window
        assert var[1] == pytest.approx(var[0] / 3, rel=0.15)


def test_edges_keep_the_shape_and_average_the_frames_that_exist():
    prob = np.arange(4, dtype=np.float64)[:, None, None] * np.ones((4, 2, 3))
    out = smooth_over_time(prob, 0, 5)
    assert out.shape == prob.shape
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 1.5, 1.5, 2.0])  # 0-2, 0-3, 0-3, 1-3
    # a window longer than the film averages everything
    np.testing.assert_allclose(smooth_over_time(prob, 0, 99)[:, 0, 0], [1.5] * 4)


def test_input_is_not_modified():
    prob = _noisy((6, 10, 10))
    before = prob.copy()
    for kwargs in ({"window": 3}, {"window": 5, "how": "median"}, {"window": 3, "reach": 2}):
        smooth_over_time(prob, 0, **kwargs)
    np.testing.assert_array_equal(prob, before)


@pytest.mark.parametrize("t_axis", [0, 2])
def test_out_receives_every_frame_and_reads_stay_bounded(t_axis):
    data = np.moveaxis(_noisy((9, 8, 8)), 0, t_axis)
    src, out = CountingArray(data, t_axis), RecordingOut(data.shape, t_axis)
    got = smooth_over_time(src, t_axis, 5, out=out)
    assert got is out
    assert out.written == list(range(9))
    assert sorted(src.reads) == list(range(9)), "every frame read exactly once"
    np.testing.assert_allclose(out.data, smooth_over_time(data, t_axis, 5), rtol=1e-6)
    # before frame t is written, no frame later than t + 2 has been read
    order = []
    src2 = CountingArray(data, t_axis)

    class Watch(RecordingOut):
        def __setitem__(self, index, value):
            order.append((index[t_axis], max(src2.reads)))
            super().__setitem__(index, value)

    smooth_over_time(src2, t_axis, 5, out=Watch(data.shape, t_axis))
    assert all(latest <= t + 2 for t, latest in order)


def test_reach_tolerates_motion_and_never_thickens():
    # a bar moving 1 px per frame: plain averaging weakens it, reach 1 keeps it
    prob = np.zeros((5, 20, 20))
    for t in range(5):
        prob[t, 5:15, 8 + t] = 0.9
    plain = smooth_over_time(prob, 0, 3)
    moved = smooth_over_time(prob, 0, 3, reach=1)
    assert (plain[2] > 0.5).sum() < (prob[2] > 0.5).sum()
    np.testing.assert_array_equal(moved[2] > 0.5, prob[2] > 0.5)
    assert (moved <= prob.astype(np.float32) + 1e-7).all()
    # a blob in one frame only (flicker) is removed
    flicker = np.zeros((3, 20, 20))
    flicker[1, 9:11, 9:11] = 0.9
    assert (smooth_over_time(flicker, 0, 3, reach=1)[1] < 0.5).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 2}, "odd"), ({"window": 0}, "odd"), ({"window": 2.5}, "odd"), ({"window": "3"}, "odd"),
    ({"window": True}, "odd"), ({"t_axis": 3}, "out of range"), ({"t_axis": -4}, "out of range"),
    ({"t_axis": 0.0}, "integer"), ({"how": "max"}, "mean, median"), ({"reach": -1}, "reach"),
    ({"reach": 1.5}, "reach"), ({"out": np.zeros((2, 2))}, "out has shape"),
])
def test_bad_arguments_give_clear_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        smooth_over_time(_noisy((4, 5, 6)), **kwargs)


def test_reach_needs_two_image_axes():
    with pytest.raises(ValueError, match="two image axes"):
        smooth_over_time(_noisy((4, 5)), 0, 3, reach=1)


# ---------------------------------------------------------------- the synthetic time-lapse

@pytest.mark.parametrize("kind", ["er", "mito"])
def test_timelapse_is_reproducible_with_a_seed(kind):
    a, b = (timelapse(kind, (64, 64), 4, seed=3, speed=1.0, bleach=0.05) for _ in range(2))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    c = timelapse(kind, (64, 64), 4, seed=4, speed=1.0, bleach=0.05)
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == a.mask.shape == a.cell.shape == (4, 64, 64) and a.image.dtype == np.uint16


@pytest.mark.parametrize("kind", ["er", "mito"])
def test_masks_move_between_frames_and_faster_moves_more(kind):
    def change(speed):
        m = timelapse(kind, (96, 96), 5, seed=1, speed=speed).mask.astype(bool)
        return 1 - (m[0] & m[-1]).sum() / (m[0] | m[-1]).sum()

    still, slow, fast = change(0.0), change(0.5), change(2.0)
    assert still == 0
    assert 0 < slow < fast


def test_still_cell_has_fresh_noise_each_frame():
    tl = timelapse("er", (64, 64), 3, seed=0, speed=0.0)
    np.testing.assert_array_equal(tl.mask[0], tl.mask[2])
    assert not np.array_equal(tl.image[0], tl.image[1])
    assert np.allclose(tl.signal[0], tl.signal[2])


def test_bleaching_lowers_intensity():
    tl = timelapse("mito", (64, 64), 6, seed=2, speed=0.5, bleach=0.1)
    fg = [tl.signal[t][tl.mask[t] > 0].mean() - 100 for t in range(6)]
    assert all(later < earlier for earlier, later in zip(fg, fg[1:]))
    assert fg[-1] / fg[0] == pytest.approx(np.exp(-0.5), rel=0.1)
    none = timelapse("mito", (64, 64), 6, seed=2, speed=0.5, bleach=0.0)
    assert none.image[-1].mean() > tl.image[-1].mean()


def test_timelapse_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        timelapse("golgi")
    with pytest.raises(ValueError, match="frames"):
        timelapse("er", frames=0)
    with pytest.raises(ValueError, match="margin"):
        timelapse("er", (64, 64), 40, speed=3.0)
