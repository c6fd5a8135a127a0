"""`feedtax sweep` as a user runs it: the JSON contract, and bad options refused with exit 2 and one message."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from feedtax.cli import app

runner = CliRunner()


def test_sweep_json_rows_and_summary():
    res = runner.invoke(app, ["sweep", "--format", "raw", "--workers", "0,1", "--steps", "5", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [(r["format"], r["num_workers"]) for r in doc["loader"]] == [("raw", 0), ("raw", 1)]
    for r in doc["loader"]:
        assert r["track"] == "edge" and r["batch_size"] == 16 and r["consumer"] == "emulated"
        assert 0 <= r["feeding_tax"] <= 1 and r["au"] == pytest.approx(1 - r["feeding_tax"])
        assert r["step_s"] >= 0.005 and r["samples_per_s"] > 0  # the emulated step sleeps at least 5 ms
    feeding = doc["feeding"]
    assert set(feeding["flow_equilibrium"]) == {"raw"} and feeding["flow_equilibrium"]["raw"] in (None, 1)
    assert [b["format"] for b in feeding["breakdown"]] == ["raw"]


@pytest.mark.parametrize("args, message", [
    (["--format", "xml"], "unknown format xml"),
    (["--workers", "1,x"], "comma-separated integers"),
    (["--workers", "-1"], "at least one count >= 0"),
    (["--track", "mars"], "unknown track 'mars'"),
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--step-ms", "-1"], "--step-ms"),
    (["--batch-size", "0"], "--batch-size"),
    (["--steps", "0"], "--steps"),
    (["--device", "tpu"], "cpu or cuda"),
    (["--model", "--step-ms", "3"], "not both"),
    (["--peak-tflops", "0"], "--peak-tflops must be > 0"),
])
def test_bad_options_exit_2_with_one_message(args, message):
    res = runner.invoke(app, ["sweep", *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_asked_for_without_a_gpu_is_reported_absent():
    res = runner.invoke(app, ["sweep", "--model", "--device", "cuda", "--format", "raw", "--workers", "0"])
    assert res.exit_code == 2 and "no CUDA device (absent)" in res.output
