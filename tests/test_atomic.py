"""write_atomic: the path holds the old bytes or the new ones, never half, no temp file left; durable fsyncs.
exclusive_lock: one holder at a time, named to the others, released even by a killed process."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from feedtax.atomic import LockHeld, exclusive_lock, write_atomic


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


def test_an_interrupt_mid_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    """A signal's exception (KeyboardInterrupt, feedtax's Interrupted) during the write, as a SIGTERM mid-save."""
    path = tmp_path / "out.json"
    path.write_bytes(b"old")

    def stopped(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, b"new bytes", durable=True)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.json"]


def test_a_held_lock_names_its_holder_and_is_removed_on_release(tmp_path):
    lock_path = tmp_path / ".lock"
    with exclusive_lock(lock_path, "pid 1, run A") as held:
        with pytest.raises(LockHeld) as info, exclusive_lock(lock_path, "pid 2"):
            pass
        assert info.value.holder == "pid 1, run A"
        held.describe("pid 1, run A, started now")
        with pytest.raises(LockHeld, match="started now"), exclusive_lock(lock_path, "pid 2"):
            pass
    assert not lock_path.exists()
    with exclusive_lock(lock_path, "pid 2"):  # free again
        assert lock_path.read_text() == "pid 2"


def test_a_lock_held_by_a_killed_process_is_taken_over(tmp_path):
    """The kernel drops a flock when its process dies, even by SIGKILL; the stale file it leaves is reused."""
    lock_path = tmp_path / ".lock"
    code = ("import sys, time; from feedtax.atomic import exclusive_lock\n"
            f"with exclusive_lock({str(lock_path)!r}, 'the child'):\n    print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match="the child"), exclusive_lock(lock_path, "me"):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert lock_path.read_text() == "the child", "a killed holder cannot remove its file"
    with exclusive_lock(lock_path, "me"):  # the child is reaped: its files, and so its lock, are closed
        assert lock_path.read_text() == "me"
    assert not lock_path.exists()
