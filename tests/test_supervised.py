"""Supervised training: generator protocol, ignore value, multi-class, scribbles, stop within a batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_metastructures.core.model import TrainedModel
from napari_metastructures.core.noise import make_noisy
from napari_metastructures.core.progress import EpochResult, drain
from napari_metastructures.core.supervised import (
    SupervisedConfig,
    labels_from_probability,
    prepare_labels,
    train_supervised,
)
from napari_metastructures.core.training import TrainResult
from napari_metastructures.core.validate import InputError

pytestmark = pytest.mark.slow


def tiny(**kw) -> SupervisedConfig:
    base = dict(encoder_depth=3, crop=64, batch=2, epochs=2, steps_per_epoch=2, preview_every=1, tile=64)
    base.update(kw)
    return SupervisedConfig(**base)


def disk_image(seed: int = 0, size: int = 64):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(4):
        cy, cx, r = rng.integers(8, size - 8, 2).tolist() + [int(rng.integers(4, 8))]
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    image = (mask * 100 + rng.normal(20, 5, mask.shape)).astype(np.float32)
    return image, mask


def run(gen):
    """(records, model) of a run; the TrainResult's model."""
    results = []
    result = drain(gen, results.append)
    assert isinstance(result, TrainResult) and result.history is result.model.history
    return results, result.model


def test_generator_protocol_binary():
    image, mask = disk_image()
    results, model = run(train_supervised(image, mask, tiny(), seed=0, device="cpu"))
    assert [r.epoch for r in results] == [1, 2]
    assert all(isinstance(r, EpochResult) and r.n_epochs == 2 for r in results)
    assert all(np.isfinite(r.loss) and 0 <= r.foreground_fraction <= 1 for r in results)
    assert all(len(r.extra["step_losses"]) == 2 for r in results)
    assert results[-1].preview[0].shape == image.shape
    assert results[-1].preview[0].dtype == np.float32
    assert isinstance(model, TrainedModel)
    assert model.classes == 1 and model.config["loss"] == "bce"
    assert model.config["class_values"] == [0, 1]
    assert [h["epoch"] for h in model.history] == [1, 2]
    assert "step_losses" not in model.history[0]
    prob = model.predict(image, device="cpu", tile=64)
    assert prob.shape == image.shape and 0 <= prob.min() and prob.max() <= 1


def test_preview_every_and_evaluate_hook():
    image, mask = disk_image()
    calls = []

    def evaluate(model):
        calls.append(model)
        return {"score": len(calls)}

    results, _ = run(train_supervised(image, mask, tiny(epochs=3, preview_every=2), device="cpu",
                                      evaluate=evaluate))
    assert [r.preview is not None for r in results] == [False, True, True]
    assert [r.extra["score"] for r in results] == [1, 2, 3]


def test_same_seed_same_training_and_nd_input():
    image, mask = disk_image(1)
    stack, mstack = np.stack([image, image[::-1]]), np.stack([mask, mask[::-1]])
    a, ma = run(train_supervised(stack, mstack, tiny(epochs=1), seed=3, device="cpu"))
    b, _ = run(train_supervised(stack, mstack, tiny(epochs=1), seed=3, device="cpu"))
    c, _ = run(train_supervised(stack, mstack, tiny(epochs=1), seed=4, device="cpu"))
    assert a[0].extra["step_losses"] == b[0].extra["step_losses"]
    assert a[0].extra["step_losses"] != c[0].extra["step_losses"]
    assert a[0].preview[0].shape == stack.shape


def test_ignore_value_is_left_out():
    image, mask = disk_image(2)
    noisy, _ = make_noisy(mask, "sample", seed=0, p=0.3)
    assert (noisy == 255).mean() > 0.5
    prepared = prepare_labels([noisy])
    assert prepared.n_outputs == 1 and prepared.class_values == [0, 1]
    assert np.array_equal(prepared.targets[0] == -1, noisy == 255)
    # the ignore value is configurable and never a class: 255 -> 254 trains identically
    other = np.where(noisy == 255, 254, noisy).astype(np.uint8)
    a, _ = run(train_supervised(image, noisy, tiny(epochs=1), seed=1, device="cpu"))
    b, _ = run(train_supervised(image, other, tiny(epochs=1, ignore_value=254), seed=1, device="cpu"))
    assert a[0].extra["step_losses"] == pytest.approx(b[0].extra["step_losses"], rel=1e-6)
    # without an ignore value, 255 would be a class: refused as instance-like labels
    with pytest.raises(InputError, match="instance"):
        run(train_supervised(image, noisy, tiny(ignore_value=None), device="cpu"))


def test_multiclass_uses_cross_entropy():
    image, mask = disk_image(3)
    labels = mask.copy()
    labels[:, 32:] *= 2  # classes 0, 1, 2
    results, model = run(train_supervised(image, labels, tiny(epochs=1), device="cpu"))
    assert model.classes == 3 and model.config["loss"] == "ce"
    prob = results[-1].preview[0]
    assert prob.shape == (3,) + image.shape
    assert np.allclose(prob.sum(axis=0), 1, atol=1e-4)
    out = labels_from_probability(prob, model.config)
    assert out.shape == image.shape and set(np.unique(out)) <= {0, 1, 2}
    with pytest.raises(InputError, match="binary labels only"):
        run(train_supervised(image, labels, tiny(loss="weighted-bce"), device="cpu"))
    # bootstrapping works with several classes
    _, boot = run(train_supervised(image, labels, tiny(epochs=1, loss="bootstrap-soft"), device="cpu"))
    assert boot.config["loss"] == "bootstrap-soft" and boot.classes == 3


def test_scribbles_unlabelled_is_ignore():
    image, mask = disk_image(4)
    scribbles = np.zeros_like(mask)
    scribbles[mask.astype(bool) & (np.arange(64)[None, :] % 4 == 0)] = 2  # foreground strokes
    scribbles[:3, :] = 1  # background stroke
    prepared = prepare_labels([scribbles], unlabelled_is_ignore=True)
    assert prepared.class_values == [1, 2] and prepared.n_outputs == 2
    assert np.array_equal(prepared.targets[0] == -1, scribbles == 0)
    results, model = run(train_supervised(image, scribbles, tiny(epochs=1, unlabelled_is_ignore=True),
                                          device="cpu"))
    out = labels_from_probability(results[-1].preview[0], model.config)
    assert set(np.unique(out)) <= {1, 2}
    only_one = (mask * 1).astype(np.uint8)
    with pytest.raises(InputError, match="two classes"):
        run(train_supervised(image, only_one, tiny(unlabelled_is_ignore=True), device="cpu"))


def test_stop_within_one_batch_keeps_last_completed_batch():
    image, mask = disk_image(5)
    polls = []

    def stop():
        polls.append(1)
        return len(polls) >= 3  # after two completed batches

    results, stopped = run(train_supervised(image, mask, tiny(epochs=2, steps_per_epoch=4), seed=2,
                                            device="cpu", stop=stop))
    assert results == [] and len(polls) == 3
    assert stopped.config["stopped"] == {"epoch": 1, "completed_steps": 2}
    # the stopped model equals a run of exactly two batches with the same seed
    _, two = run(train_supervised(image, mask, tiny(epochs=1, steps_per_epoch=2), seed=2, device="cpu"))
    for (k, a), b in zip(stopped.net.state_dict().items(), two.net.state_dict().values()):
        assert torch.equal(a, b), k
    # and differs from two batches with another seed
    _, other = run(train_supervised(image, mask, tiny(epochs=1, steps_per_epoch=2), seed=3, device="cpu"))
    assert not all(torch.equal(a, b) for a, b in zip(stopped.net.state_dict().values(),
                                                     other.net.state_dict().values()))


def test_stop_during_the_preview_prediction():
    image, mask = disk_image(8, size=64)
    image = np.tile(image, (1, 4))  # 64 x 256: four 64-px tiles, one per batch below
    mask = np.tile(mask, (1, 4))
    polls = []

    def stop():
        polls.append(1)
        return len(polls) >= 4  # after epoch 1's two training batches and one tile batch

    config = tiny(epochs=2, steps_per_epoch=2)
    results, stopped = run(train_supervised(image, mask, config, device="cpu", stop=stop))
    assert results == [] and len(polls) == 4
    assert stopped.config["stopped"] == {"epoch": 1, "completed_steps": 2}


def test_stop_between_epochs():
    image, mask = disk_image(6)
    seen = []
    gen = train_supervised(image, mask, tiny(epochs=3), device="cpu", stop=lambda: len(seen) >= 1)
    results = []
    with pytest.raises(StopIteration) as done:
        while True:
            r = next(gen)
            results.append(r)
            seen.append(r)
    assert len(results) == 1
    assert done.value.value.stopped == {"epoch": 2, "completed_steps": 0}
    assert done.value.value.model.config["stopped"]["epoch"] == 2
    assert len(done.value.value.history) == 1 and done.value.value.outputs is None


def test_bad_inputs_say_what_is_wrong():
    image, mask = disk_image(7)
    with pytest.raises(InputError, match="float"):
        run(train_supervised(image, mask.astype(np.float32), tiny(), device="cpu"))
    with pytest.raises(InputError, match="does not match"):
        run(train_supervised(image, mask[:32], tiny(), device="cpu"))
    with pytest.raises(InputError, match="no foreground"):
        run(train_supervised(image, np.zeros_like(mask), tiny(), device="cpu"))
    with pytest.raises(InputError, match="multiple of 8"):
        run(train_supervised(image, mask, tiny(crop=60), device="cpu"))
    with pytest.raises(InputError, match="2 label arrays|label arrays"):
        run(train_supervised([image], [mask, mask], tiny(), device="cpu"))
    with pytest.raises(ValueError, match="unknown loss"):
        run(train_supervised(image, mask, tiny(loss="focal"), device="cpu"))
