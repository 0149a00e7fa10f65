"""``metastructures baseline``: segment images with Otsu, local Gaussian, Sato or Frangi + Otsu, or DFC.

Each ``IMAGE`` gives ``DIR/<stem>_mask.tif`` (uint8, 1 = foreground, the image's pixel size kept) and
its parameters beside it.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ..core.validate import InputError
from ._files import check_writable, output_path, seed, tiff_stem


def _sigmas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sigmas: write numbers separated by commas, got {text!r}") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"--sigmas: needs positive numbers, got {text!r}")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="segment images with a classical or unsupervised baseline",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="greyscale TIFF images")
    p.add_argument("--method", required=True, choices=["otsu", "local", "sato", "frangi", "dfc"],
                   help="otsu: global Otsu; local: local Gaussian threshold; sato: Sato ridges + Otsu; "
                        "frangi: Frangi vesselness + Otsu; "
                        "dfc: differentiable feature clustering (Kim et al. 2020)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for <stem>_mask.tif files")
    # defaults (None) come from the core functions, so there is one copy of each
    p.add_argument("--unit", choices=["auto", "um", "px"], default="auto",
                   help="unit of --block-size and --sigmas: auto (default) is µm for a file with a pixel size "
                        "(the px defaults at 65 nm pixels: block 3.3 µm, sigmas 0.065,0.13 µm), else px")
    p.add_argument("--block-size", type=float, help="local: neighbourhood width (default 51 px; odd in px)")
    p.add_argument("--offset", type=float,
                   help="local: subtracted from the local mean, as a fraction of the intensity range "
                        "(default -0.05)")
    p.add_argument("--sigmas", type=_sigmas,
                   help="sato, frangi: ridge scales, e.g. 1,2 (default 1,2 px for sato, 1,2,3 px for frangi)")
    p.add_argument("--max-iter", type=int, help="dfc: most iterations per image (default 1000)")
    p.add_argument("--n-channels", type=int, help="dfc: feature channels / initial clusters (default 100)")
    p.add_argument("--lr", type=float, help="dfc: SGD learning rate (default 0.1)")
    p.add_argument("--min-labels", type=int, help="dfc: stop at this many clusters (default 2)")
    p.add_argument("--seed", type=seed, help="dfc: seed for the network weights (default 0)")
    p.add_argument("--device", help="dfc: auto, cpu, cuda[:i] or mps (default auto)")
    p.set_defaults(func=run)


#: Which command-line options each method takes.
OPTIONS = {
    "otsu": [],
    "local": ["block_size", "offset"],
    "sato": ["sigmas"],
    "frangi": ["sigmas"],
    "dfc": ["n_channels", "lr", "max_iter", "min_labels", "seed", "device"],
}


def method_params(args: argparse.Namespace, unit=None) -> dict:
    """All parameters of the chosen baseline, sizes in px: those given on the command line (in
    ``unit``, a :class:`~..core.units.UnitChoice`; None: px), else the core defaults (px, made for
    65 nm pixels, so rescaled to the file's pixel size when the unit is µm)."""
    import inspect

    from ..core.baselines import METHODS
    from ..core.units import REFERENCE_UM

    signature = inspect.signature(METHODS[args.method]).parameters
    um = unit is not None and unit.unit == "um"
    params = {}
    for name in OPTIONS[args.method]:
        given = getattr(args, name, None)
        value = signature[name].default if given is None else given
        if name in SIZES and um:  # µm to px; a default (px at 65 nm) is first made µm
            factor = (1.0 if given is not None else REFERENCE_UM) / unit.pixel_size
            value = ([round(float(v) * factor, 3) for v in value] if name == "sigmas"
                     else max(3, int(round((float(value) * factor - 1) / 2)) * 2 + 1))  # odd px, >= 3
        params[name] = value
    if "sigmas" in params:
        params["sigmas"] = list(params["sigmas"])
    if "block_size" in params and float(params["block_size"]) == int(params["block_size"]):
        params["block_size"] = int(params["block_size"])
    return params


#: Options that are structure sizes (µm or px, see ``--unit``).
SIZES = ("block_size", "sigmas")


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..core.baselines import METHODS
    from ..core.units import choose_unit
    from ..core.validate import check_image
    from ..io import read_image, write_tiff

    out = Path(args.out)
    check_writable(out)  # before any reading
    paths = [Path(p) for p in args.images]
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file.")
        if tiff_stem(path.name) is None:
            raise InputError(f"{path}: expected a TIFF image (.tif or .tiff).")
    stems = [tiff_stem(p.name) for p in paths]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise InputError(f"several images share the name {clash[0]!r}; their masks would overwrite each other.")
    ignored = sorted({n for opts in OPTIONS.values() for n in opts} - set(OPTIONS[args.method]))
    ignored = ["--" + n.replace("_", "-") for n in ignored if getattr(args, n, None) is not None]
    if ignored:
        print(f"note: {', '.join(ignored)} do not apply to --method {args.method}; ignored.", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    method_params(args)  # bad options fail before any reading
    fn = METHODS[args.method]
    for path in paths:
        layer = read_image(path)
        data = check_image(layer.data, name=str(path))
        unit = choose_unit(args.unit, [layer.pixel_size_um], [path.name])
        params = method_params(args, unit)
        extra = {}
        if args.method == "dfc":
            extra["progress"] = _dfc_progress(path.name)
        t0 = time.perf_counter()
        mask = fn(data, **params, **extra)
        seconds = time.perf_counter() - t0
        target = output_path(out, tiff_stem(path.name), "mask")
        write_tiff(target, mask, scale=layer.scale, translate=layer.translate, layer_type="labels", params={
            "method": args.method, **params, "size_unit": unit.unit, "pixel_size_um": unit.pixel_size,
            "source": str(path), "seconds": round(seconds, 3),
            "napari_metastructures": __version__,
        })
        sizes = ", ".join(f"{k} {v} px" for k, v in params.items() if k in SIZES)
        sizes = f"; {sizes} ({unit.reason})" if sizes else ""
        print(f"{path.name}: {args.method} -> {target} ({mask.mean():.1%} foreground, {seconds:.2f} s{sizes})")
    return 0


def _dfc_progress(name: str):
    def report(step) -> None:
        if step.iteration == 1 or step.iteration % 50 == 0:
            print(f"  {name}: iteration {step.iteration}, loss {step.loss:.3f}, {step.n_labels} clusters",
                  file=sys.stderr)

    return report
