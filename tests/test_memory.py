"""feedtax.probes.memory: copy bandwidth is measured with the stated convention, and bad sizes are refused."""

from __future__ import annotations

import pytest

from feedtax.probes.memory import LLC_MULTIPLE, last_level_cache_bytes, measure_memory

MIB = 1 << 20


def test_measure_memory_one_and_all_cores():
    r = measure_memory(16 * MIB, threads=2, repeats=2, min_time_s=0.01)
    assert r.copy_mb_per_s_one_core > 0 and r.copy_mb_per_s_all_cores > 0
    assert r.threads == 2 and r.size_bytes == 16 * MIB
    assert "read + bytes written" in r.convention and "1e6" in r.convention
    for key in ("copy_mb_per_s_one_core", "copy_mb_per_s_all_cores"):
        assert r.distributions[key].n == 2 and r.distributions[key].median == getattr(r, key)
    in_cache = r.last_level_cache_bytes is not None and 16 * MIB < LLC_MULTIPLE * r.last_level_cache_bytes
    assert any("last-level cache" in w for w in r.warnings) == in_cache


def test_sizes_that_cannot_measure_are_refused():
    with pytest.raises(ValueError, match="too small"):
        measure_memory(1000)
    with pytest.raises(ValueError, match="do not fit"):
        measure_memory(1 << 50)


def test_last_level_cache_from_sysfs(tmp_path):
    for name, level, size in (("index0", 1, "32K"), ("index2", 2, "512K"), ("index3", 3, "32768K")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "level").write_text(f"{level}\n")
        (tmp_path / name / "size").write_text(f"{size}\n")
    assert last_level_cache_bytes(tmp_path) == 32 * MIB
    assert last_level_cache_bytes(tmp_path / "absent") is None
