"""Nellie (Lefebvre et al., Nat Methods 2025) as an optional peer in benchmarks.

:func:`nellie_mask` gives Nellie's semantic (foreground) mask of one 2D image: the image goes to a
temporary OME-TIFF with axes ``YX`` and the true pixel size, then Nellie's own steps run with their
defaults on the CPU: ``ImInfo`` (its copy of the file), ``Filter`` (multiscale Frangi "preprocessing",
scales from its 0.25-1 um radius range) and ``Label`` (triangle/Otsu threshold on the log Frangi
response, small objects removed, instance labels). Foreground is instance label > 0; the tracking and
feature steps of ``nellie.run`` are skipped. No GPU and no network are needed.

Nellie is never a dependency of the project (``pip install -e .[compare]`` adds it). Without it
:func:`nellie_mask` returns None and :data:`NELLIE_STATUS` says why. If it is not importable here,
a Python named by ``NELLIE_PYTHON`` (or ``<repo>/.venv-compare/bin/python``) that has Nellie is used
through a subprocess running this file.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: Why the last :func:`nellie_mask` call returned None, or which Nellie it used.
NELLIE_STATUS = "not run yet"

_OTHER_PYTHON = Path(__file__).resolve().parents[1] / ".venv-compare" / "bin" / "python"


def nellie_version() -> str | None:
    """Version of the Nellie importable here, else None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nellie")
    except PackageNotFoundError:
        return None


def _other_python() -> str | None:
    path = os.environ.get("NELLIE_PYTHON") or (str(_OTHER_PYTHON) if _OTHER_PYTHON.is_file() else "")
    return path or None


def _write_ome(path: Path, image: np.ndarray, pixel_size_um: float) -> None:
    import tifffile

    tifffile.imwrite(path, image, ome=True, photometric="minisblack",
                     metadata={"axes": "YX", "PhysicalSizeX": pixel_size_um, "PhysicalSizeY": pixel_size_um,
                               "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})


def _segment_file(path: Path, out_dir: Path) -> np.ndarray:
    """Nellie's ImInfo -> Filter -> Label on an OME-TIFF; bool foreground of its first frame."""
    root = logging.getLogger()
    level = root.level
    try:
        from nellie.im_info.verifier import FileInfo, ImInfo
        from nellie.segmentation.filtering import Filter
        from nellie.segmentation.labelling import Label

        root.setLevel(logging.WARNING)  # Nellie logs every step at INFO on the root logger
        info = FileInfo(str(path), output_dir=str(out_dir))
        info.find_metadata()
        info.load_metadata()
        if not (info.good_axes and info.good_dims):
            raise ValueError(f"Nellie rejected the file's metadata: {info.validation_errors}")
        im_info = ImInfo(info)
        Filter(im_info, device="cpu").run()
        Label(im_info, device="cpu").run()
        labels = np.asarray(im_info.get_memmap(im_info.pipeline_paths["im_instance_label"], read_mode="r"))
    finally:
        root.setLevel(level)
    return labels.reshape(labels.shape[-2:]) > 0  # (T=1, Y, X) -> (Y, X)


def nellie_mask(image: np.ndarray, pixel_size_um: float, workdir: str | None = None) -> np.ndarray | None:
    """Nellie's semantic mask (bool, same shape) of a 2D image with square pixels of ``pixel_size_um``.

    Returns None when Nellie is not available or fails; :data:`NELLIE_STATUS` says why. Files go to a
    temporary folder (inside ``workdir`` if given), removed afterwards.
    """
    global NELLIE_STATUS
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"nellie_mask needs a 2D image, got shape {image.shape}")
    if not pixel_size_um > 0:
        raise ValueError(f"pixel_size_um must be positive, got {pixel_size_um}")
    version, other = nellie_version(), None
    if version is None:
        other = _other_python()
        if other is None:
            NELLIE_STATUS = "not installed (pip install -e .[compare], or set NELLIE_PYTHON)"
            return None
    tmp = Path(tempfile.mkdtemp(prefix="nellie-", dir=workdir))
    try:
        src = tmp / "image.ome.tif"
        _write_ome(src, image, float(pixel_size_um))
        if other is None:
            mask = _segment_file(src, tmp / "out")
            NELLIE_STATUS = f"nellie {version}"
        else:
            done = subprocess.run([other, __file__, str(src), str(tmp / "out")],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                NELLIE_STATUS = f"error ({other}): {last}"
                return None
            mask = np.load(tmp / "out" / "mask.npy")
            NELLIE_STATUS = f"nellie {done.stdout.strip()} via {other}"
    except Exception as err:  # a peer that fails is reported, not fatal to the benchmark
        NELLIE_STATUS = f"error: {type(err).__name__}: {err}"
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if mask.shape != image.shape:
        NELLIE_STATUS = f"error: Nellie's mask has shape {mask.shape}, the image {image.shape}"
        return None
    return mask


if __name__ == "__main__":  # worker for another interpreter: _nellie.py IMAGE.ome.tif OUT_DIR
    out_dir = Path(sys.argv[2])
    np.save(out_dir / "mask.npy", _segment_file(Path(sys.argv[1]), out_dir))
    print(nellie_version())
