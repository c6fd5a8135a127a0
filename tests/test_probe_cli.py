"""`feedtax probe ...` as the console script runs it: JSON contract, every error one line on stderr with exit 2, no
leftovers."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def run(feedtax_cli):
    """`feedtax probe ARGS...`, in this process."""
    return lambda *args: feedtax_cli("probe", *args)


def test_disk_json_contract_and_no_leftovers(run, tmp_path):
    result = run("disk", "--path", str(tmp_path), "--size", "8M", "--time-budget-s", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("seq_read_mb_per_s_cold", "seq_read_mb_per_s_warm", "seq_write_mb_per_s", "rand_read_iops_4k",
                "read_latency_p99_s"):
        assert isinstance(data[key], float) and data[key] > 0, key
    assert isinstance(data["cache_evicted"], bool)
    assert data["block_size_bytes"] == 1 << 20 and data["size_bytes"] == 8 << 20
    assert list(tmp_path.iterdir()) == []


def test_disk_default_dir_is_removed(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("disk", "--size", "8M", "--time-budget-s", "1")
    assert result.exit_code == 0, result.output
    assert "seq_read_mb_per_s_cold" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_disk_missing_path_is_one_line_exit_2(run, tmp_path):
    missing = tmp_path / "nope"
    result = run("disk", "--path", str(missing), "--size", "8M", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert str(missing) in result.stderr and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_size_exit_2(run, tmp_path):
    result = run("disk", "--path", str(tmp_path), "--size", "12Q")
    assert result.exit_code == 2 and "--size" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_memory_json(run):
    result = run("memory", "--size", "16M", "--threads", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["copy_mb_per_s_one_core"] > 0 and data["copy_mb_per_s_all_cores"] > 0 and data["threads"] == 2


def test_memory_too_small_exit_2(run):
    result = run("memory", "--size", "1K")
    assert result.exit_code == 2
    assert result.stderr == "feedtax: --size: 1K is under the limit 1 MiB (use 1 MiB..1 TiB)\n"


def test_energy_json_lists_absent_sources(run):
    result = run("energy", "--window-s", "0.01", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sources = {c["source"] for c in data["counters"]} | set(data["absent"])
    assert sources >= {"rapl", "nvml"}


@pytest.mark.parametrize("args, line", [
    (["energy", "--window-s", "0"], "--window-s: 0 is not over 0 (use over 0, up to 3600)"),
    (["energy", "--window-s", "nan"], "--window-s: nan is not a finite number"),
    (["disk", "--time-budget-s", "inf"], "--time-budget-s: inf is not a finite number"),
    (["disk", "--time-budget-s", "-1"], "--time-budget-s: -1 is not over 0"),
    (["disk", "--block-size", "1"], "--block-size: 1 is under the limit 4 KiB"),
    (["memory", "--threads", "0"], "--threads: 0 is under the limit 1"),
    (["memory", "--threads", "100000"], "--threads: 100000 is over the limit"),
])
def test_numbers_out_of_range_are_refused_in_one_line(run, tmp_path, args, line):
    result = run(*args, "--size", "8M") if args[0] != "energy" else run(*args)
    assert result.exit_code == 2 and result.stderr.startswith(f"feedtax: {line}") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_memory_that_does_not_fit_is_one_line(run):
    result = run("memory", "--size", "1T")
    assert result.exit_code == 2 and "do not fit" in result.stderr and result.stderr.count("\n") == 1


def test_a_hostile_cpu_model_reaches_the_terminal_escaped(run, monkeypatch):
    """Text the machine reports (here a CPU model with rich markup, an escape sequence and a bidi override) is shown as
    text: no markup is applied, no escape character or override is printed."""
    from feedtax.probes import host

    real = host.collect

    def collect():
        info = real()
        return info.model_copy(update={"cpu_model": "[/][link=https://x.example]cpu\x1b[31m\u202eevil"})

    monkeypatch.setattr(host, "collect", collect)
    table = run("host")
    assert table.exit_code == 0, table.output
    assert "[/][link=https://x.example]cpu\\x1b[31m\\u202eevil" in table.stdout.replace("\n", "")
    as_json = run("host", "--json")
    assert json.loads(as_json.stdout)["cpu_model"].endswith("cpu\x1b[31m\u202eevil")
    for out in (table.stdout, as_json.stdout):
        assert "\x1b" not in out and "\u202e" not in out


def test_host_json_and_table(run):
    result = run("host", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cpu_logical_cores"] >= 1
    assert "cpu_model" in run("host").stdout
