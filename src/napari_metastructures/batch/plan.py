"""Which files a batch segments and where each one's outputs go.

Inputs are files, folders (their TIFF files and ``*.zarr`` stores, in name order) and glob patterns. Every input becomes
a :class:`Job` with a unique output stem, worked out from the names alone, so a resumed batch
names its outputs as the first one did. An input that names nothing is a job with a ``problem``:
it is reported as failed and the batch goes on.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

#: Suffixes a TIFF input may have, longest first (``a.ome.tif`` -> ``a``).
TIFF_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif")
#: Output kinds: ``<stem>_mask.tif`` (uint8 0/1) and ``<stem>_prob.tif`` (float32 in [0, 1]);
#: ``.zarr`` stores instead of TIFFs for outputs above the size limit (``PredictSettings.zarr_above``).
OUTPUT_KINDS = ("mask", "prob")
OUTPUT_SUFFIXES = (".tif", ".zarr")
_GLOB_CHARS = set("*?[")


def tiff_stem(name: str) -> str | None:
    """File name without its TIFF suffix (``a.ome.tif`` -> ``a``), or None if it is not a TIFF."""
    lower = name.lower()
    for suffix in TIFF_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def input_stem(name: str) -> str | None:
    """:func:`tiff_stem`, or the name without ``.zarr`` for a zarr store; None for anything else."""
    stem = tiff_stem(name)
    if stem is None and name.lower().endswith(".zarr") and len(name) > 5:
        stem = name[:-5]
    return stem


def output_path(out: Path, stem: str, kind: str, suffix: str = ".tif") -> Path:
    """``out/<stem>_<kind>.tif`` (or ``.zarr``) for a kind of :data:`OUTPUT_KINDS`."""
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"output kind {kind!r}: use one of {', '.join(OUTPUT_KINDS)}")
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output suffix {suffix!r}: use one of {', '.join(OUTPUT_SUFFIXES)}")
    return Path(out) / f"{stem}_{kind}{suffix}"


def output_files(out: Path, stem: str) -> list[Path]:
    """Every file one input's outputs make, in the order they are written (the mask's sidecar last):
    the TIFF pair, or the zarr pair when either zarr store of ``stem`` is there. Sidecars
    (``<stem>_<kind>.json``) are the same for both."""
    big = any(output_path(out, stem, k, ".zarr").exists() for k in OUTPUT_KINDS)
    files = []
    for kind in ("prob", "mask"):
        data = output_path(out, stem, kind, ".zarr" if big else ".tif")
        files += [data, data.with_suffix(".json")]
    return files


def is_complete(out: Path, stem: str) -> bool:
    """True when all of one input's outputs are in ``out``.

    Each file (and zarr store) is written atomically (complete or absent), and the mask's sidecar
    comes last, so all four present means a finished input.
    """
    return all(p.exists() for p in output_files(out, stem))


def zarr_stores(folder: Path) -> dict[str, Path]:
    """The ``*.zarr`` directories of ``folder`` by stem, in name order (hidden ones skipped)."""
    return {p.name[:-5]: p for p in sorted(Path(folder).iterdir())
            if p.is_dir() and p.name.lower().endswith(".zarr") and not p.name.startswith(".")}


def tiff_files(folder: Path) -> dict[str, Path]:
    """The TIFF files of ``folder`` by stem, in name order; hidden files are skipped and the
    first of two files with one stem (``a.tif``, ``a.tiff``) wins."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        stem = tiff_stem(path.name)
        if stem is not None and path.is_file() and not path.name.startswith("."):
            found.setdefault(stem, path)
    return found


@dataclass
class Job:
    """One input of a batch: the file, its unique output stem, and a problem known before reading."""

    source: Path
    stem: str
    problem: str | None = None

    def as_dict(self) -> dict:
        return {"path": str(self.source), "stem": self.stem}


def expand_inputs(items) -> list[Job]:
    """One :class:`Job` per input file, in the order given, each file once.

    Parameters
    ----------
    items : iterable of str or Path
        Files, folders (their TIFF files, in name order, not recursive) and glob patterns
        (``"data/*.tif"``, ``"**/*.tif"`` recursive), e.g. straight from the command line.

    Returns
    -------
    list of Job
        Output stems are the file names without their TIFF suffix, made unique in order
        (``a``, ``a_2``...). A folder without TIFF files or a pattern that matches none gives one
        job whose ``problem`` says so. A named file that does not exist is left for the reader
        to report, like any unreadable file.
    """
    jobs: list[Job] = []
    seen: set[Path] = set()
    stems: set[str] = set()

    def add(path: Path, problem: str | None = None) -> None:
        key = path.resolve() if problem is None and path.exists() else path
        if key in seen:
            return
        seen.add(key)
        base = input_stem(path.name) or path.name
        stem, k = base, 2
        while stem in stems:
            stem, k = f"{base}_{k}", k + 1
        stems.add(stem)
        jobs.append(Job(Path(path), stem, problem))

    for item in items:
        text = str(item)
        path = Path(text)
        if path.is_dir() and input_stem(path.name) is None:
            found = sorted([*tiff_files(path).values(), *zarr_stores(path).values()], key=lambda f: f.name)
            if not found:
                add(path, f"{path}: the folder holds no TIFF files or zarr stores")
            for p in found:
                add(p)
        elif not path.exists() and _GLOB_CHARS & set(text):
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True))
                     if (tiff_stem(Path(p).name) is not None and Path(p).is_file())
                     or (input_stem(Path(p).name) is not None and Path(p).is_dir())]
            if not found:
                add(path, f"{text}: the pattern matches no TIFF file")
            for p in found:
                add(p)
        else:
            add(path)
    return jobs
