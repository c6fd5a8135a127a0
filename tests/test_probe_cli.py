"""`feedtax probe ...` through the typer sub-app: JSON contract, errors on stderr with exit 2, no leftovers."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from feedtax.cli.probe import probe_app

app = typer.Typer()
app.add_typer(probe_app, name="probe")


@app.callback()
def _root() -> None:
    """Stands in for feedtax.cli's app."""


runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["probe", *args])


def test_disk_json_contract_and_no_leftovers(tmp_path):
    result = run("disk", "--path", str(tmp_path), "--size", "8M", "--time-budget-s", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("seq_read_mb_per_s_cold", "seq_read_mb_per_s_warm", "seq_write_mb_per_s", "rand_read_iops_4k",
                "read_latency_p99_s"):
        assert isinstance(data[key], float) and data[key] > 0, key
    assert isinstance(data["cache_evicted"], bool)
    assert data["block_size_bytes"] == 1 << 20 and data["size_bytes"] == 8 << 20
    assert list(tmp_path.iterdir()) == []


def test_disk_default_dir_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("disk", "--size", "8M", "--time-budget-s", "1")
    assert result.exit_code == 0, result.output
    assert "seq_read_mb_per_s_cold" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_disk_missing_path_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "nope"
    result = run("disk", "--path", str(missing), "--size", "8M", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert str(missing) in result.stderr and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_size_exit_2(tmp_path):
    result = run("disk", "--path", str(tmp_path), "--size", "12Q")
    assert result.exit_code == 2 and "--size" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_memory_json():
    result = run("memory", "--size", "16M", "--threads", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["copy_mb_per_s_one_core"] > 0 and data["copy_mb_per_s_all_cores"] > 0 and data["threads"] == 2


def test_memory_too_small_exit_2():
    result = run("memory", "--size", "1K")
    assert result.exit_code == 2 and "too small" in result.stderr


def test_energy_json_lists_absent_sources():
    result = run("energy", "--window-s", "0.01", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sources = {c["source"] for c in data["counters"]} | set(data["absent"])
    assert sources >= {"rapl", "nvml"}


def test_energy_rejects_nonpositive_window():
    assert run("energy", "--window-s", "0").exit_code == 2


def test_host_json_and_table():
    result = run("host", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cpu_logical_cores"] >= 1
    assert "cpu_model" in run("host").stdout
