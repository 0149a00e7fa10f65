"""``metastructures noise``: make noisy labels from clean ones.

Writes a TIFF of the same shape (pixel size kept, parameters in a JSON sidecar) and prints
the empirical noise transition matrix, its rank and the pixel error rate as JSON.
"""
from __future__ import annotations

import argparse
import sys

from ..core import jsonsafe
from ..core.validate import IGNORE_VALUE, InputError
from ._files import check_out_file, seed

#: option -> core parameter name
OPTIONS = {
    "p": "p", "p_fg_to_bg": "p_fg_to_bg", "p_bg_to_fg": "p_bg_to_fg", "iterations": "iterations",
    "ops": "ops", "exact": "exact", "ignore_value": "ignore_value", "n_classes": "n_classes",
    "target": "target", "instances": "instances", "spatial_ndim": "spatial_ndim",
}


def register(sub: argparse._SubParsersAction) -> None:
    from ..core.noise import KINDS

    p = sub.add_parser("noise", help="make noisy labels (sampling, flipping, morphology, random, instances)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("labels", metavar="LABELS", help="clean label TIFF (0 = background, 1..M-1 = classes)")
    p.add_argument("--kind", required=True, choices=KINDS, help="noise family")
    p.add_argument("--out", required=True, metavar="FILE", help="noisy label TIFF to write")
    # defaults (None) come from the core functions
    p.add_argument("--p", type=float, help="keep / flip / foreground / drop / change probability in [0, 1]")
    p.add_argument("--p-fg-to-bg", type=float, metavar="P", help="flip, binary: rate of 1 -> 0 (default --p)")
    p.add_argument("--p-bg-to-fg", type=float, metavar="P", help="flip, binary: rate of 0 -> 1 (default --p)")
    p.add_argument("--seed", type=seed, metavar="S", help="random seed (default: drawn and recorded in the sidecar)")
    p.add_argument("--iterations", type=int, metavar="N", help="dilate / erode / morph: 3x3 steps (default 1)")
    p.add_argument("--ops", metavar="OPS", help="morph: 'd' and 'e' in order, e.g. de = dilate then erode")
    p.add_argument("--exact", action=argparse.BooleanOptionalAction, default=None,
                   help="exact counts instead of Bernoulli draws (sample, flip, drop-instances; "
                        "sample-to-background is exact unless --no-exact)")
    p.add_argument("--ignore-value", type=int, metavar="V",
                   help=f"value of unlabelled pixels (default {IGNORE_VALUE})")
    p.add_argument("--n-classes", type=int, metavar="M", help="number of classes M (default max label + 1)")
    p.add_argument("--target", type=int, metavar="C", help="misannotate: the target class (default 1)")
    p.add_argument("--instances", metavar="FILE", help="instance-label TIFF for the instance kinds "
                                                       "(default: connected components)")
    p.add_argument("--spatial-ndim", type=int, metavar="N",
                   help="work on the last N axes only, e.g. 2 for a (T, Y, X) stack")
    p.add_argument("--tol", type=float, metavar="TOL", default=1e-2,
                   help="singular-value tolerance for the rank (default 0.01)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.noise import kind_parameters, make_noisy, noise_summary
    from ..core.validate import check_labels
    from ..io import read_image, write_tiff

    takes = kind_parameters(args.kind)
    params = {}
    for option, name in OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if name not in takes:
            raise InputError(f"--{option.replace('_', '-')} does not apply to --kind {args.kind}.")
        params[name] = value
    check_out_file(args.out, [args.labels, params.get("instances")])  # before any reading
    src = read_image(args.labels)
    labels = check_labels(src.data, name=args.labels)
    if "instances" in params:
        inst = read_image(params["instances"]).data
        params["instances"] = check_labels(inst, name=params["instances"])
    try:
        noisy, record = make_noisy(labels, args.kind, seed=args.seed, **params)
    except InputError as err:
        raise InputError(f"{args.labels}: {err}") from None
    record["source"] = str(args.labels)
    if "instances" in params:
        record["instances"] = str(args.instances)
    ignore = params.get("ignore_value", IGNORE_VALUE)
    # everything that can fail comes before the write: a failed run leaves no output
    summary = noise_summary(labels, noisy, n_classes=params.get("n_classes"), ignore_value=ignore, tol=args.tol)
    out = write_tiff(args.out, noisy, scale=src.scale, translate=src.translate, params=record,
                     layer_type="labels")
    report = {"out": str(out), "shape": list(noisy.shape), "dtype": str(noisy.dtype), "params": record, **summary}
    jsonsafe.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0
