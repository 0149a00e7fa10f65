"""The shared training loop on a toy task: records, stop record, non-finite guard, private seeding."""
import numpy as np
import pytest
import torch

from napari_metastructures.core.progress import EpochResult
from napari_metastructures.core.training.loop import (
    Schedule,
    TorchRandom,
    TrainingDiverged,
    make_optimizer,
    run_epochs,
)


class ToyTask:
    """Fit a 1x1 convolution to y = 2 x; ``bad_at`` makes one batch's loss NaN."""

    def __init__(self, bad_at=None, epochs=3):
        self.rng = np.random.default_rng(0)
        self.bad_at, self.calls, self.started, self.epochs = bad_at, 0, [], epochs

    def start_epoch(self, epoch):
        self.started.append(epoch)

    def batch(self):
        x = torch.from_numpy(self.rng.normal(size=(2, 1, 8, 8)).astype(np.float32))
        return x, 2 * x

    def loss(self, logits, y, epoch):
        self.calls += 1
        loss = ((logits - y) ** 2).mean()
        return loss * float("nan") if self.calls == self.bad_at else loss

    def finish_epoch(self, epoch, losses, started, stop):
        return EpochResult(epoch, self.epochs, float(np.mean(losses)), 0.0, 0.01), epoch == self.epochs


def _net(seed=0):
    random = TorchRandom(seed, torch.device("cpu"))
    with random.active():
        net = torch.nn.Conv2d(1, 1, 1)
    return net, random


def _drain(gen):
    records = []
    while True:
        try:
            records.append(next(gen))
        except StopIteration as done:
            return records, done.value


def test_loop_trains_and_returns_no_stop_record():
    net, random = _net()
    task = ToyTask()
    records, stopped = _drain(run_epochs(net, task, Schedule(3, 5, 2, 8, {"name": "adam", "lr": 0.05}),
                                         torch.device("cpu"), random))
    assert stopped is None and [r.epoch for r in records] == [1, 2, 3] == task.started
    assert records[-1].loss < records[0].loss  # it learns
    assert task.calls == 15 and not net.training


def test_stop_record_counts_the_completed_batches():
    net, random = _net()
    polls = []

    def stop():
        polls.append(1)
        return len(polls) > 7  # 5 batches of epoch 1, 2 of epoch 2

    records, stopped = _drain(run_epochs(net, ToyTask(), Schedule(3, 5, 2, 8), torch.device("cpu"), random, stop))
    assert len(records) == 1 and stopped == {"epoch": 2, "completed_steps": 2}


def test_a_non_finite_loss_stops_training_before_the_weights_change():
    net, random = _net()
    before = [p.detach().clone() for p in net.parameters()]
    gen = run_epochs(net, ToyTask(bad_at=1), Schedule(2, 3, 2, 8, {"lr": 0.1}), torch.device("cpu"), random)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1.*lower the learning rate"):
        next(gen)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_private_random_state_is_reproducible_and_leaves_the_global_one_alone():
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    a, _ = _net(seed=1)
    b, _ = _net(seed=1)
    c, _ = _net(seed=2)
    assert torch.equal(torch.rand(4), expected)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    # draws inside active() continue from where the last one stopped
    random = TorchRandom(3, torch.device("cpu"))
    with random.active():
        first = torch.rand(2)
    with random.active():
        second = torch.rand(2)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        assert torch.equal(torch.rand(4), torch.cat([first, second]))


def test_optimizer_factory_schedules():
    net = torch.nn.Conv2d(1, 1, 1)
    opt, sched = make_optimizer(net, 10, "sgd", lr=0.1, schedule="cosine", lr_floor=0.1)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    opt, sched = make_optimizer(net, 10, "adam", lr=0.1, schedule="step", lr_step=2, lr_gamma=0.5)
    for _ in range(4):
        opt.step()
        sched.step()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == pytest.approx(0.025)
    assert make_optimizer(net, 10)[1] is None
