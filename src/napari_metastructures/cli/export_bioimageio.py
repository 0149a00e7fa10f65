"""``metastructures export-bioimageio MODEL.pt --out PKG.zip``: a saved model as a bioimage.io package.

The zip holds rdf.yaml, TorchScript weights that do our preprocessing themselves, a test input and
output, sample images, a cover and a README (docs/bioimageio.md). deepImageJ, ilastik and QuPath run it.
Needs the optional extra: pip install "napari-metastructures[bioimageio]".
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.validate import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-bioimageio", help="write a saved model as a bioimage.io model package",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model saved by igtt --save-model or Save model…")
    p.add_argument("--out", required=True, metavar="ZIP", help="the package to write (.zip)")
    p.add_argument("--name", help="the model's name in bioimage.io consumers")
    p.add_argument("--description", help="one sentence on what it segments")
    p.add_argument("--author", action="append", metavar="NAME", help="an author (repeat for several)")
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX license of the weights (default CC-BY-4.0)")
    p.add_argument("--sample", metavar="TIFF",
                   help="an image like the model's inputs; its centre becomes the test input "
                        "(default: a synthetic ER image)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.export_bioimageio import export_bioimageio, require_bioimageio

    require_bioimageio()  # before the model is read
    if not Path(args.model).is_file():
        raise InputError(f"{args.model}: no such model file")
    if Path(args.out).is_dir():
        raise InputError(f"--out {args.out}: is a folder; give the zip file to write")
    sample = _sample_plane(args.sample) if args.sample else None
    out = export_bioimageio(args.model, args.out, name=args.name, description=args.description,
                            authors=args.author, license=args.license, sample=sample)
    print(f"wrote {out} (bioimage.io model package, validated by bioimageio.spec)")
    return 0


def _sample_plane(path: str):
    """The middle 2D plane of a TIFF (a z-stack's middle slice, a time-lapse's middle frame)."""
    import numpy as np

    from ..io import read_image

    if not Path(path).is_file():
        raise InputError(f"--sample {path}: no such file")
    arr = np.asarray(read_image(path).data)
    while arr.ndim > 2:
        arr = arr[arr.shape[0] // 2]
    return arr
