"""Atomic file writes: write a temporary file beside the target, then move it into place.

A reader never sees a half-written file, and a failed write leaves the folder as it was: an
existing target keeps its old content and no temporary file stays behind.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The process umask, read once (reading it means setting it), so written files get the usual
# permissions rather than mkstemp's owner-only 0o600.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then replace ``path`` with it.

    Parameters
    ----------
    path : str or PathLike
        The target file; its folder is created if needed.
    write : callable
        Takes the temporary file's path (a str, in the target's folder, already created and
        empty) and writes the whole content there.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    The temporary name is unique (``.<name>.<random>.part``), so concurrent writers never share
    one. On any failure, including ``KeyboardInterrupt``, it is removed and the error re-raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); returns ``path``."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, encoded as given, newlines untranslated; returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))
