"""Training speed of the widgets' worker thread at several nicenesses, idle and with the CPU busy.

The run panels train in a thread whose niceness is ``$METASTRUCTURES_WORKER_NICE`` (default 2, see
``_widgets._workers.lower_thread_priority``). Each row runs in a fresh process: a thread sets the
niceness, then times 10 training steps of a U-Net (resnet18, 2 x 1 x 128 x 128, after 2 warm-up
steps), first on an idle machine, then with one busy-looping process per core at niceness 0 (what
a browser or another analysis does to a user's machine). Baseline: niceness 0 in the same run.
The viewer's side (the longest GUI stall while training) is ``widget_responsiveness``.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys

from _common import Row

NICENESSES = (0, 2, 4, 10)

_CHILD = """
import sys, threading, time
from napari_metastructures._widgets._workers import lower_thread_priority

def work(out):
    lower_thread_priority(int(sys.argv[1]))
    import segmentation_models_pytorch as smp
    import torch
    torch.manual_seed(0)
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(2, 1, 128, 128)
    for i in range(12):
        if i == 2:
            t0 = time.perf_counter()
        opt.zero_grad()
        model(x).mean().backward()
        opt.step()
    out.append((time.perf_counter() - t0) / 10)

out = []
thread = threading.Thread(target=work, args=(out,))
thread.start()
thread.join()
print(out[0])
"""


def step_seconds(niceness: int) -> float:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(niceness)], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(repeats: int) -> dict:
    out = {}
    for load in ("idle", "busy"):
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)] \
            if load == "busy" else []
        try:
            for n in NICENESSES:
                out[(load, n)] = statistics.median(step_seconds(n) for _ in range(repeats))
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    return out


def run(quick: bool = False) -> list[Row]:
    r = measure(1 if quick else 3)
    rows = []
    for load in ("idle", "busy"):
        for n in NICENESSES:
            rows.append(Row(name=f"training step, CPU {load}, niceness {n}", figure=1e3 * r[(load, n)], unit="ms",
                            baseline_name="niceness 0, same load", baseline=1e3 * r[(load, 0)],
                            goal="report" if load == "idle" else "default within 1.5x of niceness 0"))
    return rows


if __name__ == "__main__":
    from _common import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
