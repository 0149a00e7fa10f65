"""Both engines on CUDA: a 2-epoch run of a tiny network (skipped without a CUDA GPU, see conftest.py)."""
from __future__ import annotations

import numpy as np
import pytest

from napari_metastructures.core.igtt.engine import IgttConfig, run, train
from napari_metastructures.core.progress import drain
from napari_metastructures.core.supervised import SupervisedConfig, train_supervised
from napari_metastructures.core.synthetic import er_network

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

SHAPE = (96, 80)


def _images():
    return [er_network(SHAPE, seed=s, noise_level="low") for s in (0, 1)]


def _finish(gen):
    records = []
    result = drain(gen, records.append)
    return records, result


def _on_cuda(net) -> None:
    devices = {p.device.type for p in net.parameters()}
    assert devices == {"cuda"}, devices


def test_igtt_trains_on_cuda():
    images = [image for image, _ in _images()]
    config = IgttConfig.preset("fast", encoder_depth=3, crop=64, batch_size=2, epochs=2, max_steps=2, tile=64,
                               overlap=16, early_stop=False, preview_every=1)
    records, result = _finish(train(images, config, seed=0, device="cuda"))
    assert [r.epoch for r in records] == [1, 2]
    assert all(np.isfinite(r.loss) for r in records)
    assert records[-1].preview is not None and [p.shape for p in records[-1].preview] == [SHAPE, SHAPE]
    assert result.stopped is None
    _on_cuda(result.model.net)
    assert len(result.history) == 2 and result.model.history is result.history
    assert [o.shape for o in result.outputs] == [SHAPE, SHAPE]
    assert all(np.isfinite(o).all() and 0.0 <= o.min() and o.max() <= 1.0 for o in result.outputs)
    assert [m.shape for m in result.masks] == [SHAPE, SHAPE]
    for mask, out in zip(result.masks, result.outputs):
        np.testing.assert_array_equal(mask, (out > 0.5).astype(np.uint8))
    # run() drives the same generator to the end and returns the same kind of result
    seen = []
    again = run(images, config, seed=1, device="cuda", on_epoch=seen.append)
    assert [r.epoch for r in seen] == [1, 2] and all(np.isfinite(r["loss"]) for r in again.history)
    assert again.stopped is None and [o.shape for o in again.outputs] == [SHAPE, SHAPE]
    _on_cuda(again.model.net)


def test_supervised_trains_on_cuda():
    data = _images()
    config = SupervisedConfig(encoder_depth=3, crop=64, batch=2, epochs=2, steps_per_epoch=2, tile=64,
                              preview_every=1)
    records, result = _finish(train_supervised([d[0] for d in data], [d[1] for d in data], config, seed=0,
                                               device="cuda"))
    assert [r.epoch for r in records] == [1, 2]
    assert all(np.isfinite(r.loss) for r in records)
    assert all(np.isfinite(loss) for r in records for loss in r.extra["step_losses"])
    assert result.stopped is None
    _on_cuda(result.model.net)
    assert len(result.history) == 2
    assert [o.shape for o in result.outputs] == [SHAPE, SHAPE]
    assert all(np.isfinite(o).all() and 0.0 <= o.min() and o.max() <= 1.0 for o in result.outputs)
