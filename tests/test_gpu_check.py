"""scripts/gpu_check.py on a machine without a GPU: says so, checks its own plumbing on the CPU, exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run the script itself")
def test_without_a_gpu_it_says_so_and_checks_its_plumbing():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "no GPU" in out.stderr
    summary = json.loads(out.stdout)
    assert summary["gpu"] is None and summary["no_gpu"] and summary["errors"] == {} and summary["ok"]
    sweep = summary["checks"]["sweep"]
    assert sweep["rows"] and all(r["device"] == "cpu" and 0 <= r["feeding_tax"] <= 1 for r in sweep["rows"])
    assert all(r["nvml_idle_fraction"] is None for r in sweep["rows"])  # absent hardware reported as absent
    assert set(sweep["flow_equilibrium"]) == {"csv", "parquet", "raw"}  # the tuned loader's summary
    known = summary["checks"]["known_answer"]
    assert abs(known["measured_feeding_tax"] - known["analytic_feeding_tax"]) < 0.03
    assert set(summary["checks"]["api"]) == {"0_workers", "2_workers"}


def test_a_bad_option_is_refused():
    out = subprocess.run([sys.executable, str(SCRIPT), "--steps", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--steps must be >= 1" in out.stderr
