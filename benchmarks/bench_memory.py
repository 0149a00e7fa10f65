"""Peak memory of ``metastructures predict`` on a stack larger than its in-memory limit (issue 12, item 1).

A TZYX uint16 stack (2 GiB; 512 MiB with ``--quick``) is written to a zarr store in a temporary
folder, one plane per chunk, each plane an ER network (core.synthetic.er_network, tiled) with its
own Poisson noise. Each measurement is a fresh subprocess; its peak RSS is ``VmHWM`` from
/proc/self/status at exit:

- floor: import the package and torch, load the model, predict nothing;
- lazy: ``metastructures predict`` on the zarr store; the 4 GiB float32 probability map and the
  1 GiB mask go to zarr stores (``--zarr-above`` 1 GiB, the default);
- in memory (baseline): the same command on a 256 MiB TIFF of the same planes, outputs below the
  limit, so the whole input and both outputs are in memory;
- real network: the lazy path with the U-Net itself on a small stack (the rows above replace the
  network's forward pass, see below).

The model is the smallest this package builds: U-Net, resnet18 encoder at depth 3, decoder
(16, 8, 8), random weights, preprocessing = percentile normalisation only; tiles 1024 px, overlap
16, batch 1, ``--volume slices``. On this 2-core CPU that network takes about 6 s per megapixel,
so 1 Gpx would take hours: in the floor, lazy and in-memory rows, ``tiling.predict_tiled`` is
replaced (in the subprocess only) by a per-pixel sigmoid of the normalised plane that returns the
same float32 plane. Everything else is the real command: reading blocks, preprocessing, writing
into the zarr store, the mask pass, sidecars and run.json. The network's own memory per tile is
measured by the last row.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import Row

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3

# The subprocess: optionally swap the network for a sigmoid, run the command, print VmHWM (bytes).
RUNNER = r"""
import json, sys
import numpy as np
args = json.loads(sys.argv[1])
if args["stand_in"]:
    from napari_metastructures.core.training import tiling
    def predict_tiled(net, image, tile=256, overlap=32, batch_size=4, device="cpu", stop=None):
        x = np.asarray(image, np.float32)
        return (1.0 / (1.0 + np.exp(-8.0 * (x - 0.5)))).astype(np.float32)
    tiling.predict_tiled = predict_tiled
from napari_metastructures.cli import main
import torch  # noqa: F401
if args["argv"]:
    code = main(args["argv"])
else:
    from napari_metastructures.core import load_model
    load_model(args["model"])
    code = 0
hwm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print("PEAK", json.dumps({"code": code, "peak": hwm}))
"""


def _model(path: Path) -> Path:
    from napari_metastructures.core.training.model import TrainedModel, build_model

    net = build_model(encoder_depth=3, decoder_channels=(16, 8, 8)).eval()
    config = {"kind": "supervised", "preprocess": {},
              "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "in_channels": 1, "classes": 1,
                        "decoder_channels": [16, 8, 8]}}
    return TrainedModel(net, config).save(path)


def _planes(shape: tuple, seed: int = 0):
    """Yield (index, plane) for every plane of a TZYX uint16 stack: a tiled ER network with Poisson noise."""
    from napari_metastructures.core.synthetic import er_network

    h, w = shape[-2:]
    base = er_network((512, 512), seed=seed)
    base = np.asarray(base[0] if isinstance(base, tuple) else base, np.float32)
    base = (base - base.min()) / max(float(np.ptp(base)), 1e-6)
    tiled = np.tile(base, (h // 512 + 1, w // 512 + 1))[:h, :w]
    rng = np.random.default_rng(seed)
    for idx in np.ndindex(*shape[:-2]):
        shift = rng.integers(0, 512, 2)
        mean = 100.0 + 400.0 * np.roll(tiled, tuple(shift), axis=(0, 1))
        yield idx, rng.poisson(mean).astype(np.uint16)


def _zarr_stack(path: Path, shape: tuple) -> Path:
    from napari_metastructures.core.lazy import output_array

    z = output_array(shape, np.uint16, limit=-1, store=path, chunks=(1, 1) + shape[-2:])
    for idx, plane in _planes(shape):
        z[idx] = plane
    z.attrs.update({"axes": "TZYX", "scale": [1.0, 0.2, 0.065, 0.065]})
    from napari_metastructures.core.lazy import finish_store

    return finish_store(z)


def _tiff_stack(path: Path, shape: tuple) -> Path:
    from napari_metastructures.io import write_tiff

    data = np.empty(shape, np.uint16)
    for idx, plane in _planes(shape):
        data[idx] = plane
    return write_tiff(path, data, scale=(1.0, 0.2, 0.065, 0.065), axes="TZYX")


def _peak(model: Path, argv: list[str] | None, stand_in: bool = True) -> int:
    payload = json.dumps({"argv": argv, "model": str(model), "stand_in": stand_in})
    done = subprocess.run([sys.executable, "-c", RUNNER, payload], capture_output=True, text=True, cwd=ROOT)
    line = [s for s in done.stdout.splitlines() if s.startswith("PEAK ")]
    if done.returncode != 0 or not line:
        raise RuntimeError(f"subprocess failed ({done.returncode}): {done.stderr[-2000:]}")
    got = json.loads(line[-1][5:])
    if got["code"] != 0:
        raise RuntimeError(f"predict exited {got['code']}: {done.stderr[-2000:]}")
    return int(got["peak"])


def _predict_argv(model: Path, src: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", "--model", str(model), str(src), "--out", str(out), "--device", "cpu", "--tile", "1024",
            "--overlap", "16", "--batch-size", "1", "--volume", "slices", *extra]


def run(quick: bool = False) -> list[Row]:
    big = (8, 16, 2048, 4096) if not quick else (4, 8, 2048, 4096)  # 2 GiB (512 MiB) of uint16
    small = (4, 4, 2048, 4096)  # 256 MiB
    tiny = (2, 2, 1024, 1024)  # 8 MiB, for the real network
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        model = _model(tmp / "tiny.pt")
        big_zarr = _zarr_stack(tmp / "big.zarr", big)
        small_tif = _tiff_stack(tmp / "small.tif", small)
        tiny_zarr = _zarr_stack(tmp / "tiny.zarr", tiny)
        in_big, in_small = int(np.prod(big)) * 2, int(np.prod(small)) * 2
        out_big, out_small = in_big * 2 + in_big // 2, in_small * 2 + in_small // 2  # float32 prob + uint8 mask

        floor = _peak(model, None)
        lazy = _peak(model, _predict_argv(model, big_zarr, tmp / "out_big"))
        made = sorted(p.name for p in (tmp / "out_big").iterdir())
        assert "big_prob.zarr" in made and "big_mask.zarr" in made, made
        memory = _peak(model, _predict_argv(model, small_tif, tmp / "out_small", "--zarr-above", "100"))
        assert (tmp / "out_small" / "small_prob.tif").is_file()
        real = _peak(model, _predict_argv(model, tiny_zarr, tmp / "out_tiny", "--zarr-above", "0"), stand_in=False)
        real_floor = _peak(model, None, stand_in=False)
    mib = 1024**2
    note = (f"stand-in network (sigmoid per pixel) except 'real'; floor {floor / mib:.0f} MiB; model U-Net resnet18 "
            f"depth 3, decoder 16-8-8; tile 1024, overlap 16, batch 1; slices")
    return [
        Row(f"lazy predict {in_big / GIB:.2g} GiB zarr: peak-floor vs outputs", (lazy - floor) / mib, "MiB",
            f"outputs ({out_big / GIB:.2g} GiB, zarr)", out_big / mib, goal="<< 1", note=note),
        Row(f"lazy predict {in_big / GIB:.2g} GiB zarr: peak-floor vs input", (lazy - floor) / mib, "MiB",
            f"input ({in_big / GIB:.2g} GiB)", in_big / mib, goal="<< 1", note=note),
        Row("lazy predict: peak RSS vs floor", lazy / mib, "MiB", "floor (model loaded)", floor / mib,
            goal="about 1", note=note),
        Row(f"in-memory predict {in_small / GIB:.2g} GiB TIFF: peak-floor vs in+out", (memory - floor) / mib, "MiB",
            "input + outputs", (in_small + out_small) / mib, goal="about 1 (baseline)", note=note),
        Row("real U-Net lazy predict 8 MiB zarr: peak-floor", (real - real_floor) / mib, "MiB",
            "floor (model loaded)", real_floor / mib, goal="small", note="real network, per-tile memory"),
    ]


if __name__ == "__main__":
    from _common import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
