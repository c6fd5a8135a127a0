"""Eviction really empties the page cache for a file on disk, and says so when it cannot (tmpfs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedtax.probes import pagecache


def test_evict_drops_pages_and_reading_brings_them_back(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4 << 20))
    path.read_bytes()
    resident, total = pagecache.resident_pages(path)
    if pagecache.resident_fraction([path]) < 0.9:
        pytest.skip("this filesystem does not keep written pages resident")
    result = pagecache.evict([path])
    assert total == (4 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert result.evicted and result.resident_fraction == 0.0
    path.read_bytes()
    assert pagecache.resident_fraction([path]) > 0.9


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm tmpfs here")
def test_tmpfs_cannot_be_evicted_and_says_so():
    path = Path("/dev/shm") / f"feedtax-test-{os.getpid()}"
    try:
        path.write_bytes(os.urandom(1 << 20))
        result = pagecache.evict([path])
        assert not result.evicted and result.resident_fraction == 1.0
    finally:
        path.unlink(missing_ok=True)


def test_empty_file_has_no_pages(tmp_path):
    (tmp_path / "e").write_bytes(b"")
    assert pagecache.resident_pages(tmp_path / "e") == (0, 0)
