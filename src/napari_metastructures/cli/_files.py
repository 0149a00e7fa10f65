"""The command line's file helpers: TIFF names, folder scans, reading inputs and writing outputs."""
from __future__ import annotations

from pathlib import Path

# File names live with the batch code; re-exported for the other subcommands.
from ..batch.plan import OUTPUT_KINDS, TIFF_SUFFIXES, output_path, tiff_files, tiff_stem  # noqa: F401
from ..core import jsonsafe
from ..core.atomic import atomic_write_text
from ..core.validate import InputError


def check_folder(folder: Path | None, label: str) -> None:
    """Raise :class:`InputError` ``"<label> <folder>: no such folder."`` unless ``folder`` is one (None passes)."""
    if folder is not None and not Path(folder).is_dir():
        raise InputError(f"{label} {folder}: no such folder.")


def seed(text: str) -> int:
    """argparse type of ``--seed``: a whole number in [0, 2**64), numpy's seed range."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed {text!r}: give a whole number from 0 to 2**64 - 1") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"--seed {value}: must be from 0 to 2**64 - 1")
    return value


def int_list(minimum: int = 0):
    """argparse type: comma-separated whole numbers, each at least ``minimum`` (e.g. ``64,32,16``)."""
    import argparse

    def parse(text: str) -> tuple:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"write whole numbers separated by commas, got {text!r}") from None
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"needs whole numbers of {minimum} or more, got {text!r}")
        return values

    return parse


def check_writable(folder: Path, label: str = "--out") -> None:
    """Before any work: ``folder`` exists or can be made, is a folder, and takes a file.

    Raises :class:`InputError` ``"<label> <folder>: <why>."``; leaves a folder it made in place
    (empty) and no probe file behind.
    """
    import os
    import tempfile

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise InputError(f"{label} {folder}: a file stands where the folder should be.") from None
    except NotADirectoryError:
        raise InputError(f"{label} {folder}: part of the path is a file, not a folder.") from None
    except OSError as err:
        raise InputError(f"{label} {folder}: cannot write there ({err.strerror or err}).") from None


def check_out_file(path, inputs: list, label: str = "--out") -> None:
    """Before any work: ``path`` can be written as a file and is none of the ``inputs``."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{label} {path}: is a folder; give a file name.")
    for given in inputs:
        if given is not None and Path(given).exists() and path.exists() and path.resolve() == Path(given).resolve():
            raise InputError(f"{label} {path}: is also an input; write the result to another file.")
    check_writable(path.parent if str(path.parent) else Path("."), label)


def read_inputs(paths: list) -> list:
    """Read and check greyscale images; returns ImageFile objects with unique output stems."""
    from ..core.validate import check_image
    from ..io import read_image

    files, stems = [], set()
    for path in paths:
        f = read_image(path)
        check_image(f.data, name=Path(path).name)
        stem, k = f.name, 2
        while stem in stems:
            stem, k = f"{f.name}_{k}", k + 1
        stems.add(stem)
        f.stem = stem
        files.append(f)
    return files


def write_outputs(out: Path, files: list, probs: list, params: dict) -> list:
    """Write ``<stem>_prob.tif`` and ``<stem>_mask.tif`` for each input; returns the paths written."""
    from ..batch.segment import write_pair

    return [p for f, prob in zip(files, probs) for p in write_pair(out, f.stem, f, prob, params)]


def write_json_atomic(path: Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically; returns ``path``."""
    return atomic_write_text(path, jsonsafe.dumps(payload, indent=2))
