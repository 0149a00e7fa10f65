"""core.atomic: a write is all or nothing, and leaves no temporary file behind."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from napari_metastructures.core.atomic import atomic_write, atomic_write_bytes, atomic_write_text


def test_success_writes_the_whole_file(tmp_path):
    target = tmp_path / "sub" / "out.bin"  # the folder is made
    data = os.urandom(1 << 16)
    assert atomic_write_bytes(target, data) == target
    assert target.read_bytes() == data
    assert atomic_write_text(tmp_path / "a.txt", "é\nz\n").read_bytes() == "é\nz\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "sub"]
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_failing_writer_leaves_nothing(tmp_path):
    def half_then_crash(tmp: str) -> None:
        Path(tmp).write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "out.tif", half_then_crash)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_removes_the_temporary_file(tmp_path):
    def interrupted(tmp: str) -> None:
        Path(tmp).write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.json", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_existing_target_survives_a_failing_write(tmp_path):
    target = atomic_write_text(tmp_path / "summary.json", '{"old": 1}')

    def broken(tmp: str) -> None:
        Path(tmp).write_text("{partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_concurrent_writers_get_different_temporary_names(tmp_path):
    target = tmp_path / "out.csv"
    names: list[str] = []
    both_open = threading.Barrier(2, timeout=10)

    def write(tmp: str) -> None:
        names.append(tmp)
        both_open.wait()  # each temporary file exists while the other one is made
        Path(tmp).write_text(Path(tmp).name)

    threads = [threading.Thread(target=atomic_write, args=(target, write)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names) == 2 and names[0] != names[1]
    for name in names:
        base = Path(name).name
        assert base.startswith(".out.csv.") and base.endswith(".part")
    assert target.read_text() in {Path(n).name for n in names}
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_written_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    target = atomic_write_bytes(tmp_path / "out.bin", b"x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
