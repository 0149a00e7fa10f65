"""``metastructures density``: meta-structure density maps of a label image.

Writes a float32 TIFF, one map per class along a leading axis when there are several
classes (pixel size kept, parameters in a JSON sidecar), and prints a JSON summary.
"""
from __future__ import annotations

import argparse
import math
import sys

from ..core import jsonsafe
from ..core.validate import IGNORE_VALUE
from ._files import check_out_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("density", help="per-class density maps (meta-structures) of a label image",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("labels", metavar="LABELS", help="label TIFF (0 = background, 1..M-1 = classes)")
    p.add_argument("--bandwidth", "-H", type=float, required=True, metavar="H",
                   help="box half-width / Gaussian sigma, in --unit")
    p.add_argument("--unit", choices=["auto", "um", "px"], default="auto",
                   help="unit of --bandwidth: auto (default) is µm when the file has a pixel size, else px "
                        "(rounded to whole px)")
    p.add_argument("--kernel", choices=("box", "gaussian"), default="box", help="kernel (default box)")
    p.add_argument("--classes", type=int, nargs="+", metavar="C",
                   help="classes to map (default: 0..max label, without the ignore value)")
    p.add_argument("--normalize", choices=("fraction", "paper"), default="fraction",
                   help="fraction of the window (default) or the paper's 1/(2Nh)")
    p.add_argument("--ignore-value", type=int, default=IGNORE_VALUE,
                   help=f"value of unlabelled pixels (default {IGNORE_VALUE})")
    p.add_argument("--out", required=True, metavar="FILE", help="float32 TIFF to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.density import density_map, label_classes
    from ..core.units import choose_unit, to_pixels
    from ..core.validate import InputError, check_labels
    from ..io import read_image, write_tiff

    check_out_file(args.out, [args.labels])  # before any reading
    src = read_image(args.labels)
    labels = check_labels(src.data, name=args.labels)
    classes = args.classes if args.classes else label_classes(labels, args.ignore_value, name=args.labels)
    if not (math.isfinite(args.bandwidth) and args.bandwidth >= 0):
        raise InputError(f"--bandwidth {args.bandwidth:g}: use a number, 0 or more.")
    unit = choose_unit(args.unit, [src.pixel_size_um], [str(args.labels)])
    h = int(round(to_pixels(args.bandwidth, unit.pixel_size)))
    maps = density_map(labels, h, kernel=args.kernel, classes=classes,
                       normalize=args.normalize, ignore_value=args.ignore_value, name=args.labels)
    params = {"kind": "density", "source": str(args.labels), "bandwidth": h, "bandwidth_set": args.bandwidth,
              "size_unit": unit.unit, "pixel_size_um": unit.pixel_size,
              "kernel": args.kernel, "classes": list(map(int, classes)), "normalize": args.normalize,
              "ignore_value": args.ignore_value}
    scale, translate = tuple(src.scale), tuple(src.translate)
    if len(classes) == 1:
        data = maps[0]
    else:  # the class axis has no physical size
        data, scale, translate = maps, (1.0, *scale), (0.0, *translate)
    out = write_tiff(args.out, data, scale=scale, translate=translate, params=params, layer_type="image")
    report = {"out": str(out), "shape": list(data.shape), "dtype": str(data.dtype), "params": params,
              "mean_density": [round(float(m.mean()), 6) for m in maps]}
    jsonsafe.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0
