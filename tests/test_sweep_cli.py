"""`feedtax sweep` as a user runs it: the JSON contract, and bad options refused with exit 2 and one message; with
--dataset, a user's own pipeline (tests/pipeline_fixture.py) swept, saved, reported, each error said in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pipeline_fixture as fixture
import pytest
import torch
from conftest import terminal_signals
from typer.testing import CliRunner

from feedtax import results
from feedtax.cli import app

runner = CliRunner()


def test_sweep_json_rows_and_summary():
    res = runner.invoke(app, ["sweep", "--format", "raw", "--workers", "0,1", "--steps", "5", "--max-s", "0.5",
                              "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [(r["loader"], r["format"], r["num_workers"]) for r in doc["loader"]] == [
        ("default", "raw", 0), ("default", "raw", 1), ("tuned", "raw", 0), ("tuned", "raw", 1)]
    for r in doc["loader"]:
        assert r["track"] == "edge" and r["batch_size"] == 16 and r["consumer"] == "emulated"
        assert 0 <= r["feeding_tax"] <= 1 and r["au"] == pytest.approx(1 - r["feeding_tax"])
        assert r["step_s"] >= 0.005 and r["samples_per_s"] > 0  # the emulated step sleeps at least 5 ms
        assert 0 <= r["mlperf_au"] <= 1
        assert r["dataset_access"] == ("index" if r["loader"] == "default" else None)
        lo, hi = r["au_ci95"]  # every AU and feeding tax with its interval, measured until narrow or 0.5 s
        assert lo <= r["au"] <= hi and r["feeding_tax_ci95"] == pytest.approx([1 - hi, 1 - lo])
        assert r["steps"] >= 5 and r["au_ci_target_pp"] == 2.0 and r["au_ci_wide"] == ((hi - lo) * 100 >= 2.0)
        assert r["stopped_by"] in ("au_ci", "max_s") and (r["au_ci_wide"] or r["stopped_by"] == "au_ci")
    default, tuned = doc["feeding"]["summaries"]
    assert (default["loader"], tuned["loader"]) == ("default", "tuned")
    assert set(tuned["flow_equilibrium"]) == {"raw"} and tuned["flow_equilibrium"]["raw"] in (None, 1)
    assert [b["format"] for b in tuned["breakdown"]] == ["raw"] and default["breakdown"] == []
    for gap in doc["feeding"]["loader_gaps"]:  # a point where the default trails: its costs and fixes, measured
        assert gap["tuned_au"] - gap["default_au"] > 0.02 and gap["fixes"]


def test_sweep_one_loader():
    res = runner.invoke(app, ["sweep", "--format", "raw", "--workers", "0", "--steps", "3", "--max-steps", "3",
                              "--loader", "default", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {r["loader"] for r in doc["loader"]} == {"default"} and doc["feeding"]["loader_gaps"] == []


@pytest.mark.parametrize("args, message", [
    (["--format", "xml"], "unknown format xml"),
    (["--workers", "1,x"], "--workers: 'x' is not a whole number"),
    (["--workers", "-1"], "--workers: -1 is under the limit 0"),
    (["--workers", "0,1,1000"], "--workers: 1000 is over the limit"),  # never hundreds of processes
    (["--track", "mars"], "unknown track 'mars'"),
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--step-ms", "-1"], "--step-ms: -1 is under the limit 0 (use 0..10000)"),
    (["--step-ms", "inf"], "--step-ms: inf is not a finite number"),
    (["--step-ms", "nan"], "--step-ms: nan is not a finite number"),
    (["--batch-size", "0"], "--batch-size: 0 is under the limit 1"),
    (["--batch-size", "1000000000000"], "--batch-size: 1000000000000 is over the limit 65536"),
    (["--steps", "0"], "--steps: 0 is under the limit 1"),
    (["--steps", "1e9"], "--steps: '1e9' is not a whole number (use 1..100000)"),
    (["--steps", "1000000000"], "--steps: 1000000000 is over the limit 100000 (use 1..100000)"),
    (["--seed", "-1"], "--seed: -1 is under the limit 0 (use 0..4294967295)"),
    (["--loader", "fast"], "unknown loader fast"),
    (["--device", "tpu"], "cpu or cuda"),
    (["--model", "--step-ms", "3"], "not both"),
    (["--peak-tflops", "0"], "--peak-tflops: 0 is not over 0"),
    (["--rank-timeout-s", "inf"], "--rank-timeout-s: inf is not a finite number"),
    (["--au-ci-pp", "0"], "--au-ci-pp: 0 is not over 0"),
    (["--au-ci-pp", "101"], "--au-ci-pp: 101 is over the limit 100"),
    (["--max-s", "0"], "--max-s: 0 is not over 0"),
    (["--max-steps", "0"], "--max-steps: 0 is under the limit 1"),
    (["--steps", "30", "--max-steps", "20"], "--max-steps (20) is below --steps (30), the minimum"),
])
def test_bad_options_exit_2_with_one_message(feedtax_cli, args, message):
    res = feedtax_cli("sweep", *args)
    assert res.exit_code == 2 and res.stderr.startswith("feedtax: ") and message in res.stderr, res.output
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_asked_for_without_a_gpu_is_reported_absent():
    res = runner.invoke(app, ["sweep", "--model", "--device", "cuda", "--format", "raw", "--workers", "0"])
    assert res.exit_code == 2 and "no CUDA device (absent)" in res.output


# ---------------------------------------------------------------------------------------------
# --dataset: a user's own pipeline (tests/pipeline_fixture.py, imported from the current directory)

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def in_tests(monkeypatch):
    """Run from the tests folder, where the user's module pipeline_fixture.py lies."""
    monkeypatch.chdir(TESTS)


def test_sweep_of_your_own_dataset_finds_the_equilibrium_and_reports_it(tmp_path):
    """A batch takes one worker 40 ms, the step 25 ms: 1 worker cannot keep up, 2 can. Run as a user runs it, in the
    folder holding their module; results.json loads, the report renders from it."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "feedtax", "sweep", "--dataset", "pipeline_fixture:slow_dataset", "--workers", "1,2",
         "--batch-size", str(fixture.BATCH), "--step-ms", str(fixture.STEP_S * 1e3), "--steps", "8", "--max-steps", "8",
         "--json", "--out", str(out)], cwd=TESTS, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)["pipeline"]
    res = results.load(out / "results.json")
    assert res.status == "complete" and [(s.name, s.status) for s in res.stages] == [("pipeline", "complete")]
    p = res.pipeline
    assert p.model_dump(mode="json") == printed
    assert (p.factory, p.kind, p.name, p.dataset_len) == ("pipeline_fixture:slow_dataset", "dataset", "slow_dataset",
                                                         10_000)
    assert [(r.batch_size, r.num_workers) for r in p.rows] == [(4, 1), (4, 2)]
    assert all(r.track == "pipeline" and r.format == "slow_dataset" and r.consumer == "emulated" for r in p.rows)
    (s,) = p.summaries
    assert s.flow_equilibrium == {"slow_dataset": 2}
    assert s.fits and s.fits[0].measured_workers == [1, 2]
    assert s.breakdown[0].num_workers == 2 and s.breakdown[0].consumer_samples_per_s == s.consumption_samples_per_s
    assert s.transport is not None and s.transport.batch_size == 4
    # __getitem__ timed in the workers: a batch is 4 sleeps of 10 ms. A sleep never returns early; it overshoots by
    # the timer's slack and the scheduler's delay, well under 2.5 ms a sleep even on a busy 2-core machine
    g, batch_s = s.getitem, fixture.BATCH * fixture.SAMPLE_S
    assert g.first_read and g.num_workers == 2 and g.n_samples == 32
    for measured in (g.first_getitem_s_per_batch, g.warm_getitem_s_per_batch):
        assert batch_s <= measured <= batch_s * 1.25
    page = (out / "report.html").read_text()
    assert "Your pipeline" in page and page.count("<svg") >= 4 and "1. Format costs" not in page
    again = runner.invoke(app, ["report", str(out / "results.json"), "--out", str(tmp_path / "again.html")])
    assert again.exit_code == 0, again.output
    assert "Your pipeline" in (tmp_path / "again.html").read_text()


def test_a_loader_factory_is_swept_over_batch_sizes(in_tests):
    res = runner.invoke(app, ["sweep", "--dataset", "pipeline_fixture:fast_loader", "--workers", "0,1",
                              "--batch-size", "2,4", "--step-ms", "2", "--steps", "4", "--max-steps", "4", "--json"])
    assert res.exit_code == 0, res.output
    p = json.loads(res.stdout)["pipeline"]
    assert (p["kind"], p["dataset_len"], p["batch_sizes"], p["worker_counts"]) == ("loader", 400, [2, 4], [0, 1])
    assert p["consumer"] == {"kind": "emulated", "step_s": 0.002, "train_step": None, "device": "emulated"}
    assert [(r["batch_size"], r["num_workers"]) for r in p["rows"]] == [(2, 0), (2, 1), (4, 0), (4, 1)]
    assert [s["batch_size"] for s in p["summaries"]] == [2, 4]
    for s in p["summaries"]:
        assert s["transport"]["batch_size"] == s["batch_size"] and s["breakdown"][0]["num_workers"] == 1
        assert s["consumption_samples_per_s"] == pytest.approx(
            s["batch_size"] / np.median([r["step_s"] for r in p["rows"] if r["batch_size"] == s["batch_size"]]))
    # the second breakdown cannot know which samples the shuffling loader read before it
    assert [s["getitem"]["first_read"] for s in p["summaries"]] == [True, False]


def test_a_plain_train_step_is_the_consumer(in_tests):
    res = runner.invoke(app, ["sweep", "--dataset", "pipeline_fixture:fast_dataset", "--train-step",
                              "pipeline_fixture:train_step", "--workers", "0", "--batch-size", "4", "--steps", "4",
                              "--max-steps", "4", "--json"])
    assert res.exit_code == 0, res.output
    p = json.loads(res.stdout)["pipeline"]
    assert p["consumer"]["kind"] == "train_step" and p["consumer"]["train_step"] == "pipeline_fixture:train_step"
    (row,) = p["rows"]
    assert row["consumer"] == "train_step" and row["step_s"] >= 0.002  # the step sleeps 2 ms, timed by feedtax


@pytest.mark.parametrize("args, message", [
    (["--dataset", "no_such_module:make"], "--dataset no_such_module:make: no module named 'no_such_module'"),
    (["--dataset", "pipeline_fixture:nope"], "module pipeline_fixture has no attribute 'nope'"),
    (["--dataset", "pipeline_fixture"], "'pipeline_fixture': expected package.module:function"),
    (["--dataset", "pipeline_fixture:a:b"], "expected package.module:function"),
    (["--dataset", "pipeline_fixture:not_a_dataset"], "not_a_dataset returned int, not a torch Dataset"),
    (["--dataset", "pipeline_fixture:needs_a_path"], "pipeline_fixture:needs_a_path takes (path)"),
    (["--dataset", "pipeline_fixture:stubborn_loader"], "was asked for num_workers=1, batch_size=4 and returned a "
                                                        "DataLoader with num_workers=0"),
    (["--dataset", "pipeline_fixture:empty_dataset"], "batch size 4, 1 workers, loader alone: the loader yields no "
                                                      "batches"),
    (["--dataset", "pipeline_fixture:words_dataset"], "batch 1 holds no tensor"),
    (["--dataset", "pipeline_fixture:broken_dataset"], "the loader raised at batch 2: KeyError: 'sample 5 is missing'"),
    (["--dataset", "pipeline_fixture:fast_dataset", "--train-step", "pipeline_fixture:nan_step"],
     "train_step pipeline_fixture:nan_step raised at step 1 (pipeline_fixture:fast_dataset, batch size 4, 1 workers): "
     "FloatingPointError: loss is nan"),
    (["--dataset", "pipeline_fixture:fast_dataset", "--train-step", "pipeline_fixture:nope"],
     "--train-step pipeline_fixture:nope: module pipeline_fixture has no attribute 'nope'"),
    (["--dataset", "pipeline_fixture:fast_dataset", "--format", "raw"], "--format is for feedtax's own formats"),
    (["--dataset", "pipeline_fixture:fast_dataset", "--step-ms", "3", "--train-step", "pipeline_fixture:train_step"],
     "not both"),
    (["--dataset", "pipeline_fixture:fast_dataset", "--batch-size", "4,0"], "--batch-size"),
    (["--train-step", "pipeline_fixture:train_step"], "go with --dataset"),
    (["--rank-timeout-s", "30"], "--rank-timeout-s go with --dataset"),
    (["--batch-size", "4,8"], "several batch sizes are swept with --dataset only"),
])
def test_a_pipeline_that_cannot_be_swept_exits_2_with_one_line(feedtax_cli, in_tests, args, message):
    res = feedtax_cli("sweep", "--workers", "1", "--batch-size", "4", "--steps", "2", "--max-steps", "2", *args)
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.output


def test_what_was_measured_before_an_error_is_kept(in_tests, tmp_path):
    """The train_step fails at the second batch size: the first one's rows and summary stay in results.json, the
    stage and the run say failed and why, and the report renders what there is."""
    res = runner.invoke(app, ["sweep", "--dataset", "pipeline_fixture:fast_dataset", "--train-step",
                              "pipeline_fixture:fails_on_three", "--workers", "0", "--batch-size", "2,3", "--steps",
                              "3", "--max-steps", "3", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "train_step pipeline_fixture:fails_on_three raised at step 1" in res.output and "batch size 3" in res.output
    assert f"what was measured is in {tmp_path / 'results.json'}" in res.output
    saved = results.load(tmp_path / "results.json")
    assert saved.status == "failed" and saved.stages[0].status == "failed"
    assert "fails_on_three" in saved.stages[0].error
    assert [(r.batch_size, r.num_workers) for r in saved.pipeline.rows] == [(2, 0)]
    assert [s.batch_size for s in saved.pipeline.summaries] == [2]
    assert "Your pipeline" in (tmp_path / "report.html").read_text()


def test_tables_keep_their_headers_in_a_log():
    res = runner.invoke(app, ["sweep", "--format", "raw", "--workers", "0", "--steps", "3", "--max-steps", "3",
                              "--loader", "tuned"])
    assert res.exit_code == 0, res.output
    header = next(line for line in res.stdout.splitlines() if line.startswith("format "))
    for name in ("loader alone/s", "feeding tax", "AU (MLPerf)", "step ms", "wait s"):
        assert name in header, header  # not cut ("feedi…") nor wrapped when output is not a terminal
    assert "±: half the width of the 95% interval of the feeding tax" in res.stdout  # with its interval, under it
    assert any(line.strip().startswith("±") for line in res.stdout.splitlines())


def test_tables_fit_an_80_column_terminal_without_cutting_a_header():
    from rich.console import Console

    from feedtax.cli.options import make_table

    table = make_table(title="nine columns")
    names = ("format", "workers", "loader alone/s", "fed/s", "feeding tax", "AU", "AU (MLPerf)", "step ms", "wait s")
    for name in names:
        table.add_column(name)
    table.add_row("protobuf", "1 *", "24,521", "2,654", "15.8% !\n±12.3 ~", "84.2%", "82.9%", "10.16", "0.029")
    console = Console(width=80, record=True)
    console.print(table)
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for word in " ".join(names).replace("(", "").replace(")", "").split():
        assert word in text


# ---------------------------------------------------------------------------------------------
# --disk-tier: feedtax's tuned loader at emulated storage tiers


@pytest.mark.parametrize("args, line", [
    (["--disk-tier", "floppy"], "feedtax: --disk-tier: unknown tier floppy; known: hdd, sata, nvme"),
    (["--disk-tier", "hdd,tape", "--disk-tier", "floppy"],
     "feedtax: --disk-tier: unknown tier tape, floppy; known: hdd, sata, nvme"),
    (["--disk-tier", "hdd", "--loader", "default"],
     "feedtax: --disk-tier sweeps feedtax's tuned loader only: leave out --loader, or give --loader tuned"),
])
def test_bad_disk_tiers_exit_2_with_one_line(feedtax_cli, args, line):
    res = feedtax_cli("sweep", *args)
    assert res.exit_code == 2 and res.output.strip().splitlines() == [line]


def test_disk_tiers_are_not_for_your_own_dataset():
    res = runner.invoke(app, ["sweep", "--dataset", "pipeline_fixture:dataset", "--disk-tier", "hdd"])
    assert res.exit_code == 2 and "--disk-tier is for feedtax's own formats, not --dataset" in res.output


def test_a_disk_tier_sweep_prints_each_tier_and_the_answer_and_saves_it(tmp_path):
    res = runner.invoke(app, ["sweep", "--disk-tier", "hdd,sata", "--disk-tier", "nvme", "--workers", "0",
                              "--steps", "3", "--max-steps", "3", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    saved = results.load(tmp_path / "results.json")
    tiers = saved.disk_tiers
    assert saved.status == "complete" and tiers is not None and saved.loader == []
    assert [t.tier.name for t in tiers.tiers] == ["hdd", "sata", "nvme"] and tiers.disk_seq_read_mb_per_s > 0
    for t in tiers.tiers:
        assert f"edge at {t.tier.name} (" in res.stdout
        if t.reachable:
            assert [(r.format, r.num_workers, r.disk_tier) for r in t.rows] == [("json", 0, t.tier.name),
                                                                                ("protobuf", 0, t.tier.name)]
        else:
            assert t.reason == f"not reachable here (this disk reads {tiers.disk_seq_read_mb_per_s:,.0f} MB/s)"
            assert t.reason in res.stdout and not t.rows
    for answer in tiers.lock2:
        assert (f"At 0 workers, on {answer.slow_tier} with JSON" if answer.measured else "could not be measured") \
            in " ".join(res.stdout.split())
    assert "Disk tiers, measured" in (tmp_path / "report.html").read_text()


def test_a_disk_tier_sweep_as_json_is_the_disk_tier_result():
    from feedtax.results.tiers import DiskTierResult

    res = runner.invoke(app, ["sweep", "--disk-tier", "hdd", "--format", "protobuf", "--workers", "0", "--steps", "2",
                              "--max-steps", "2", "--json"])
    assert res.exit_code == 0, res.output
    result = DiskTierResult.model_validate_json(res.stdout)
    assert [t.tier.name for t in result.tiers] == ["hdd"] and result.track == "edge" and result.batch_size == 16
    assert [r.format for t in result.reachable() for r in t.rows] in ([], ["protobuf"])
    (answer,) = result.lock2
    assert not answer.measured and "two disk tiers" in answer.reason


# ---------------------------------------------------------------------------------------------
# SIGTERM and SIGHUP (`kill`, `timeout`, a closed terminal) stop a sweep as Ctrl-C does


def _stop_when(proc: subprocess.Popen, ready, signum: int) -> tuple[int, str]:
    """Send signum once ready() holds (within 60 s); (exit code, stderr)."""
    deadline = time.monotonic() + 60
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_stops_the_formats_sweep_in_one_line_and_leaves_no_shards(tmp_path, signum):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "feedtax", "sweep", "--format", "raw", "--workers", "0",
                             "--steps", "100000", "--loader", "tuned"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
                            preexec_fn=terminal_signals)
    code, err = _stop_when(proc, lambda: any(tmp.glob("feedtax-sweep-*/raw/*")), signum)
    name = signal.Signals(signum).name
    assert code == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"feedtax: interrupted by {name}", err
    assert "Traceback" not in err and not list(tmp.glob("feedtax-sweep-*")), "the shards are removed"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_your_pipelines_sweep_keeping_what_it_measured(tmp_path, signum):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "feedtax", "sweep", "--dataset", "pipeline_fixture:fast_dataset",
                             "--workers", "0,1", "--batch-size", "4", "--steps", "100000", "--out", str(out)],
                            cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=terminal_signals)
    code, err = _stop_when(proc, (out / "results.json").exists, signum)
    name = signal.Signals(signum).name
    assert code == 128 + signum, err
    assert err.strip().splitlines()[-1] == (f"feedtax: interrupted by {name}: what was measured is in "
                                            f"{out / 'results.json'}"), err
    assert "Traceback" not in err, "no worker's traceback: the signal waits for the batch being handed over"
    saved = results.load(out / "results.json")
    assert saved.status == "interrupted" and saved.stages[-1].status == "interrupted"
