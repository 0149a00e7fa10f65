"""Batch prediction on Dask: a local cluster, a running scheduler with two worker processes, a killed worker.

Each test starts real worker processes (each imports PyTorch), so they are marked slow.
"""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from napari_metastructures.batch import output_files
from napari_metastructures.batch.distributed import FAULT_ENV
from napari_metastructures.cli import main
from napari_metastructures.io import write_tiff

pytestmark = pytest.mark.slow
STEMS = [f"img{i:02d}" for i in range(4)]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A tiny model, four images, and the serial run's outputs to compare with."""
    from napari_metastructures.core.training.model import TrainedModel, build_model

    tmp = tmp_path_factory.mktemp("dist")
    net = build_model(encoder_depth=3, decoder_channels=(16, 8, 8)).eval()
    config = {"kind": "supervised", "preprocess": {},
              "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1, "classes": 1,
                        "decoder_channels": [16, 8, 8]}}
    model = TrainedModel(net, config).save(tmp / "tiny.pt")
    rng = np.random.default_rng(3)
    (tmp / "in").mkdir()
    for stem in STEMS:
        write_tiff(tmp / "in" / f"{stem}.tif", rng.integers(0, 4000, (2, 80, 72)).astype(np.uint16),
                   scale=(0.5, 0.1, 0.1), axes="ZYX")
    assert _predict(model, tmp / "in", tmp / "serial") == 0
    return model, tmp


def _predict(model, folder, out, *extra):
    return main(["predict", "--model", str(model), str(folder), "--out", str(out), "--tile", "64",
                 "--device", "cpu", *extra])


def _same_masks(serial, other):
    for stem in STEMS:
        for kind in ("mask", "prob"):
            a, b = (serial / f"{stem}_{kind}.tif").read_bytes(), (other / f"{stem}_{kind}.tif").read_bytes()
            assert a == b, f"{stem}_{kind}.tif differs from the serial run"


def test_local_workers_give_byte_identical_outputs(batch):
    model, tmp = batch
    assert _predict(model, tmp / "in", tmp / "w2", "--workers", "2") == 0
    _same_masks(tmp / "serial", tmp / "w2")
    report = json.loads((tmp / "w2" / "run.json").read_text())
    assert report["finished"] and report["summary"]["done"] == 4


def test_a_killed_worker_is_retried_and_the_batch_finishes(batch, monkeypatch):
    model, tmp = batch
    marker = tmp / "killed.marker"
    monkeypatch.setenv(FAULT_ENV, f"{marker}:img02")
    assert _predict(model, tmp / "in", tmp / "killed", "--workers", "2") == 0
    assert marker.is_file()  # a worker did die on img02
    _same_masks(tmp / "serial", tmp / "killed")
    assert not list((tmp / "killed").glob(".*part"))


def test_a_task_the_cluster_cancels_is_submitted_once_more(batch, monkeypatch):
    """A lost worker can cancel a task whose input died with it (seen once in CI): it runs again."""
    from distributed import Client

    model, tmp = batch
    real, cancelled = Client.submit, []

    def submit(self, *args, key=None, **kwargs):
        future = real(self, *args, key=key, **kwargs)
        if key.startswith("segment-img01-") and not cancelled:
            cancelled.append(key)
            self.cancel([future])
        return future

    monkeypatch.setattr(Client, "submit", submit)
    assert _predict(model, tmp / "in", tmp / "cancelled", "--workers", "2") == 0
    assert cancelled  # img01's first task was cancelled, and its retry wrote the same masks
    _same_masks(tmp / "serial", tmp / "cancelled")


def _address_from(sched_file, limit_s=60):
    """The scheduler's address, once its file is written whole (polled: the file is the signal)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            return json.loads(sched_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise AssertionError(f"the scheduler wrote no address to {sched_file} in {limit_s} s")


def test_a_running_scheduler_with_two_worker_processes(batch, tmp_path):
    model, tmp = batch
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        address = _address_from(sched_file)
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--nthreads", "1", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
            assert len(client.scheduler_info()["workers"]) == 2
        assert _predict(model, tmp / "in", tmp_path / "sched", "--scheduler", address) == 0
        _same_masks(tmp / "serial", tmp_path / "sched")
        assert all(p.is_file() for s in STEMS for p in output_files(tmp_path / "sched", s))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
