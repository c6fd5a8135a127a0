"""scripts/fio_compare.py: fio's JSON is read right, the gate follows the ratios, and (with fio installed)
the script runs end to end and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import fio_compare  # noqa: E402

FIO_OUTPUT = """note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth will be capped at 1
{
  "fio version" : "fio-3.33",
  "jobs" : [
    {
      "jobname" : "feedtax-compare",
      "read" : {
        "io_bytes" : 33554432, "bw_bytes" : 80003587, "iops" : 19532.13,
        "clat_ns" : {"percentile" : {"50.000000" : 48384, "99.000000" : 113152}}
      }
    }
  ]
}
"""


def test_parse_fio_json_skips_notes_and_converts_units():
    got = fio_compare.parse_fio_json(FIO_OUTPUT)
    assert got["mb_per_s"] == pytest.approx(80.003587)
    assert got["iops"] == pytest.approx(19532.13)
    assert got["latency_p50_s"] == pytest.approx(48.384e-6)
    assert got["latency_p99_s"] == pytest.approx(113.152e-6)


def test_compare_gates_direct_and_random_and_reports_buffered():
    ours = {"seq_read_direct": [100, 110, 90], "seq_read_cold": [300], "rand_read_4k": [1000, 1200]}
    theirs = {"seq_read_direct": [100], "seq_read_cold": [100], "rand_read_4k": [1000]}
    r = fio_compare.compare(ours, theirs, 0.15)
    assert r["seq_read_direct"]["ratio"] == pytest.approx(1.0) and r["seq_read_direct"]["within"]
    assert r["rand_read_4k"]["ratio"] == pytest.approx(1.10) and r["rand_read_4k"]["within"]
    assert r["seq_read_cold"]["within"] is False and r["seq_read_cold"]["gated"] is False
    # without O_DIRECT the buffered cold read is the one gated
    r = fio_compare.compare({**ours, "seq_read_direct": []}, theirs, 0.15)
    assert r["seq_read_cold"]["gated"] is True and r["seq_read_direct"]["ratio"] is None
    r = fio_compare.compare({**ours, "rand_read_4k": [1200]}, theirs, 0.15)
    assert r["rand_read_4k"]["within"] is False


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed (Debian: apt-get install fio)")
def test_script_runs_against_fio(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "fio_compare.py"), "--path", str(tmp_path),
                           "--size", "16M", "--rounds", "2", "--rand-ops", "512"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    gated = [c for c in report["comparisons"].values() if c["gated"]]
    assert {"seq_read_cold", "rand_read_4k"} <= report["comparisons"].keys() and gated
    for c in report["comparisons"].values():
        if c["ratio"] is not None:
            assert c["ratio"] > 0 and len(c["feedtax_rounds"]) == len(c["fio_rounds"]) == 2
    assert report["agree"] == all(c["within"] for c in gated)
    assert done.returncode == (0 if report["agree"] else 1)
    assert "feedtax vs fio" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_script_missing_path_exit_2(tmp_path):
    if shutil.which("fio") is None:
        pytest.skip("fio is not installed")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "fio_compare.py"), "--path", str(tmp_path / "nope"),
                           "--size", "16M", "--rounds", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and str(tmp_path / "nope") in done.stderr
