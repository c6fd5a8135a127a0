"""feedtax.probes.disk: figures come out, the cache really is evicted, and bad places fail clearly and cleanly."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import small_tmpfs

from feedtax import results
from feedtax.probes import disk
from feedtax.probes.disk import IN_MEMORY_FS, ProbeError, measure_disk
from feedtax.probes.diskio import segment_iops
from feedtax.probes.host import fs_type
from feedtax.probes.pagecache import evict, resident_fraction

MIB = 1 << 20
CONTRACT = ("seq_read_mb_per_s_cold", "seq_read_mb_per_s_warm", "seq_write_mb_per_s", "rand_read_iops_4k",
            "read_latency_p99_s", "read_latency_p50_s", "cache_evicted", "block_size_bytes", "size_bytes", "path",
            "fs_type", "o_direct", "warnings")

def small(path: Path, size: int = 8 * MIB, **kw):
    return measure_disk(path, size, block_size_bytes=MIB, time_budget_s=1.0, rand_ops=512, **kw)


def test_measure_disk_reports_the_contract_and_leaves_nothing(tmp_path):
    r = small(tmp_path)
    data = r.model_dump()
    assert set(CONTRACT) <= data.keys()
    for key in ("seq_read_mb_per_s_cold", "seq_read_mb_per_s_warm", "seq_write_mb_per_s", "rand_read_iops_4k"):
        assert isinstance(data[key], float) and data[key] > 0, key
        assert r.distributions[key].median == data[key]
    assert 0 < r.read_latency_p50_s <= r.read_latency_p99_s
    assert r.size_bytes == 8 * MIB and r.block_size_bytes == MIB
    assert [b.block_size_bytes for b in r.block_sizes] == [4096, 16384, 65536, 262144, 1048576, 4194304]
    assert all(b.bytes_read > 0 and b.seq_read_mb_per_s > 0 for b in r.block_sizes)
    assert list(tmp_path.iterdir()) == []


def test_cold_reads_really_were_evicted(tmp_path):
    if fs_type(tmp_path) in IN_MEMORY_FS:
        pytest.skip(f"{tmp_path} is on {fs_type(tmp_path)}: pages cannot be evicted")
    r = small(tmp_path)
    assert r.cache_evicted is True
    assert r.cache_resident_fraction_max is not None and r.cache_resident_fraction_max < 0.05
    # and the mechanism the probe relies on, seen directly with mincore
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(4 * MIB))
    f.read_bytes()
    assert resident_fraction([f]) > 0.9
    evict([f])
    assert resident_fraction([f]) < 0.05


def test_in_memory_filesystem_is_said_not_hidden(tmp_path):
    with small_tmpfs(tmp_path / "mnt", "size=64M") as mnt:
        r = small(mnt)
        assert r.fs_type == "tmpfs"
        assert r.cache_evicted is False
        assert any("tmpfs keeps files in memory" in w for w in r.warnings)
        assert any("eviction not confirmed" in w for w in r.warnings)
        assert list(mnt.iterdir()) == []


def test_missing_path(tmp_path):
    with pytest.raises(ProbeError, match="does not exist") as err:
        small(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)


def test_not_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProbeError, match="not a directory"):
        small(tmp_path / "file")


def test_read_only_filesystem_mounted(tmp_path):
    with small_tmpfs(tmp_path / "ro", "ro,size=1M") as ro:
        with pytest.raises(ProbeError, match="read-only") as err:
            small(ro)
        assert str(ro) in str(err.value)
        assert list(ro.iterdir()) == []


def test_read_only_directory_injected(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args, **kw):
        if flags & os.O_CREAT and str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ProbeError, match="read-only filesystem") as err:
        small(tmp_path)
    assert str(tmp_path) in str(err.value)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_full_disk_on_a_small_filesystem(tmp_path):
    with small_tmpfs(tmp_path / "tiny", "size=1M") as tiny:
        with pytest.raises(ProbeError, match="disk full") as err:
            small(tiny)
        assert "bytes free" in str(err.value) and str(tiny) in str(err.value)
        assert list(tiny.iterdir()) == []


def test_enospc_mid_write_removes_the_partial_file(tmp_path, monkeypatch):
    real_write, calls = os.write, []

    def fill(fd, data):
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", fill)
    with pytest.raises(ProbeError, match=r"disk full \(ENOSPC\) after writing 2097152 of 8388608 bytes") as err:
        small(tmp_path)
    assert "bytes were free" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_mid_probe_removes_the_test_file(tmp_path, monkeypatch):
    """Ctrl-C, SIGTERM or SIGHUP (a KeyboardInterrupt inside a run) leaves no hidden 'disk' file behind."""
    def stopped(*a, **kw):
        assert len(disk.leftover_test_files(tmp_path)) == 1, "the test file exists while the probe reads"
        raise KeyboardInterrupt

    monkeypatch.setattr(disk, "seq_read", stopped)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_leftover_test_files_are_the_probes_own(tmp_path):
    """What a probe killed outright leaves: found by its name, and nothing else in the folder."""
    (tmp_path / "data.bin").write_bytes(b"x")
    (tmp_path / ".feedtax-disk-x.txt").write_bytes(b"x")
    left = tmp_path / f"{disk.TEST_FILE_PREFIX}abc123{disk.TEST_FILE_SUFFIX}"
    left.write_bytes(b"x")
    assert disk.leftover_test_files(tmp_path) == [left]
    assert disk.leftover_test_files(tmp_path / "absent") == []


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ProbeError, match="multiple of 4096"):
        measure_disk(tmp_path, 8 * MIB, block_size_bytes=1000)
    with pytest.raises(ProbeError, match="smaller than one block"):
        measure_disk(tmp_path, 4096, block_size_bytes=MIB)
    assert list(tmp_path.iterdir()) == []


def test_segment_iops_counts_wall_time_per_segment():
    ends = np.array([0.1, 0.2, 0.3, 0.4, 1.4, 2.4])  # three segments of two reads
    assert segment_iops(ends, 3) == pytest.approx([2 / 0.2, 2 / 0.2, 2 / 2.0])


def test_random_offsets_are_distinct_and_aligned():
    offs = disk.random_offsets(8 * MIB, 1000, seed=1)
    assert len(set(offs.tolist())) == 1000
    assert all(o % 4096 == 0 and 0 <= o < 8 * MIB for o in offs.tolist())
    assert len(disk.random_offsets(64 * 1024, 1000)) == 16  # never more reads than pages


def _reads_served(monkeypatch, first_mb_per_s: float, again_mb_per_s: float) -> list[str]:
    """Every sequential read returns at a set speed: the first after each write at one, every re-read at another."""
    real_write, fresh, seen = disk.write_test_file, [False], []

    def write(*a, **kw):
        fresh[0] = True
        return real_write(*a, **kw)

    def read(path, size, block, *, direct, until=None):
        seen.append("first" if fresh[0] else "again")
        rate, fresh[0] = (first_mb_per_s if fresh[0] else again_mb_per_s), False
        return size / (rate * 1e6), size

    monkeypatch.setattr(disk, "write_test_file", write)
    monkeypatch.setattr(disk, "seq_read", read)
    return seen


@pytest.mark.parametrize("first, again, cached", [(500.0, 1000.0, True), (800.0, 800.0, False),
                                                  (1000.0, 1150.0, False)])
def test_the_first_read_after_writing_is_told_from_the_re_reads(tmp_path, monkeypatch, first, again, cached):
    """A cache below the OS (a hypervisor's) serves re-reads of one file faster than its first read: the first read
    is the model's figure, the speed-up is reported, and flagged above 1.2x."""
    if fs_type(tmp_path) in IN_MEMORY_FS:
        pytest.skip(f"{tmp_path} is on {fs_type(tmp_path)}: nothing sits below its cache")
    seen = _reads_served(monkeypatch, first, again)
    r = measure_disk(tmp_path, 8 * MIB, block_size_bytes=MIB, time_budget_s=5.0, repeats=3, rand_ops=64)
    assert seen.count("first") == r.distributions["seq_write_mb_per_s"].n == 3, "one first read per write"
    assert r.seq_read_mb_per_s_first == pytest.approx(first)
    assert r.seq_read_mb_per_s_cold == pytest.approx(again)
    assert r.repeat_read_speedup == pytest.approx(again / first)
    assert r.repeats_cached_below_os is cached
    assert any("a cache below this OS" in w and "the model uses the first read" in w for w in r.warnings) is cached


def test_the_model_reads_the_disk_at_its_first_read():
    """The projections read the dataset at the first read after writing, not at the re-reads' speed."""
    from feedtax.model.project import project_results

    stored = results.load(Path(__file__).parent / "data" / "results-v4.json")
    read_s = {}
    for first, cold in ((100.0, 100.0), (100.0, 900.0), (200.0, 100.0)):
        res = stored.model_copy(deep=True)
        res.disk = res.disk.model_copy(update={"seq_read_mb_per_s_first": first, "seq_read_mb_per_s_cold": cold})
        project_results(res)
        read_s[first, cold] = [t.read_s for t in res.gravity.tiers]
    assert read_s[100.0, 100.0] == read_s[100.0, 900.0], "the re-reads do not enter the model"
    assert read_s[200.0, 100.0] == pytest.approx([s / 2 for s in read_s[100.0, 100.0]], rel=1e-6)
