"""write_atomic: the path holds the old bytes or the new ones, never half, no temp file left; durable fsyncs."""

from __future__ import annotations

import errno
import os

import pytest

from feedtax.atomic import write_atomic


@pytest.mark.parametrize("durable", [False, True])
def test_replaces_whole_and_leaves_no_temp(tmp_path, durable):
    path = tmp_path / "out.json"
    write_atomic(path, b"first", durable=durable)
    write_atomic(path, b"second, longer", durable=durable)
    assert path.read_bytes() == b"second, longer"
    assert os.listdir(tmp_path) == ["out.json"]


@pytest.mark.parametrize("durable", [False, True])
def test_full_disk_keeps_the_old_file_and_removes_the_temp(tmp_path, durable, full_disk):
    path = tmp_path / "out.json"
    with open(path, "wb") as f:  # not a .tmp: the disk is full only for the writer's temp file
        f.write(b"old")
    with pytest.raises(OSError) as info:
        write_atomic(path, b"new bytes", durable=durable)
    assert info.value.errno == errno.ENOSPC  # the error itself, unwrapped: callers name what they were writing
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_missing_folder_raises_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "nowhere" / "out.json", b"x", durable=False)
    assert os.listdir(tmp_path) == []


def test_durable_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real_fsync(fd)))
    write_atomic(tmp_path / "a.json", b"x", durable=False)
    assert synced == []
    write_atomic(tmp_path / "b.json", b"x", durable=True)
    # the file (fsynced before its rename, so by inode), then the folder
    assert synced == [(tmp_path / "b.json").stat().st_ino, tmp_path.stat().st_ino]
