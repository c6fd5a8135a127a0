"""`feedtax sweep --dataset` under torchrun: 2 gloo ranks on the CPU, each measuring every point of the user's Dataset
(tests/pipeline_fixture.py) through a DistributedSampler; rank 1's samples are slower, so it is known to be the
slowest. Rank 0 alone saves and prints; a loader factory without a DistributedSampler and a rank that fails are each
said in one line, and nothing hangs (hard subprocess timeouts)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from feedtax import results

HERE = Path(__file__).parent
HARD_TIMEOUT_S = 90  # the whole torchrun, should anything hang regardless


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node 2 -m feedtax sweep ARGS` from the fixture's folder (as a user runs it)."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(port), "-m", "feedtax", "sweep", *args]
    proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=HARD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its ranks
        proc.communicate()
        pytest.fail(f"torchrun still running after {HARD_TIMEOUT_S} s: a rank hung")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _feedtax_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("feedtax:")]


def test_every_rank_measures_every_point_and_rank_0_saves_the_slowest(tmp_path):
    out = tmp_path / "run"
    done = _torchrun("--dataset", "pipeline_fixture:rank_skewed_dataset", "--workers", "0,1", "--batch-size", "4",
                     "--steps", "6", "--step-ms", "1", "--rank-timeout-s", "30", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)  # one document: rank 1 printed nothing
    assert _feedtax_lines(done.stderr) == []
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]
    res = results.load(out / "results.json")
    p = res.pipeline
    assert res.status == "complete" and p.world_size == 2 and res.config.sweep["world_size"] == 2
    assert doc["pipeline"]["world_size"] == 2 and len(doc["pipeline"]["ranks"]) == 2
    assert [(x.batch_size, x.num_workers) for x in p.ranks] == [(4, 0), (4, 1)]
    for point, row in zip(p.ranks, p.rows, strict=True):
        assert [r.rank for r in point.ranks] == [0, 1] and {r.world_size for r in point.ranks} == {2}
        assert point.slowest_rank == 1  # its samples sleep, rank 0's do not
        slowest = point.ranks[1]
        # the point's row carries the slowest rank's figures: the job's pace
        assert (row.samples_per_s, row.feeding_tax, row.wait_s) == (slowest.samples_per_s, slowest.feeding_tax,
                                                                     slowest.wait_s)
        assert row.num_workers == point.num_workers
        # a DistributedSampler: each rank took its own share, every step a full batch
        assert all(r.samples == 6 * 4 for r in point.ranks)
        longest = max(r.wall_s for r in point.ranks)
        assert point.world_samples_per_s == pytest.approx(sum(r.samples for r in point.ranks) / longest)
    html = (out / "report.html").read_text()
    assert "slowest rank: 1" in html and html.count(">rank</th>") == 2


def test_a_loader_factory_without_a_distributed_sampler_is_refused_in_one_line(tmp_path):
    done = _torchrun("--dataset", "pipeline_fixture:fast_loader", "--workers", "0", "--steps", "2",
                     "--rank-timeout-s", "30", "--out", str(tmp_path / "run"))
    assert done.returncode != 0
    lines = _feedtax_lines(done.stderr)
    assert sorted(line.split(":")[1].strip() for line in lines) == ["rank 0 of 2", "rank 1 of 2"], done.stderr[-3000:]
    assert all("without a DistributedSampler" in line for line in lines)
    assert not (tmp_path / "run" / "results.json").exists()  # refused before anything was measured


def test_a_rank_that_fails_stops_every_rank_and_rank_0_keeps_what_was_measured(tmp_path):
    out = tmp_path / "run"
    done = _torchrun("--dataset", "pipeline_fixture:rank_broken_dataset", "--workers", "0", "--batch-size", "2,4",
                     "--steps", "6", "--step-ms", "1", "--rank-timeout-s", "20", "--out", str(out))
    assert done.returncode != 0
    lines = _feedtax_lines(done.stderr)
    assert len(lines) == 2, done.stderr[-3000:]  # one line per rank, each naming rank 1 and what it raised
    assert all(line.startswith("feedtax: rank 1 of 2") and "sample 49 is missing on rank 1" in line
               for line in lines)
    assert sum(str(out / "results.json") in line for line in lines) == 1  # rank 0's says where its results are
    res = results.load(out / "results.json")
    assert res.status != "complete"
    assert [(r.batch_size, r.num_workers) for r in res.pipeline.rows] == [(2, 0)]
    assert [r.rank for r in res.pipeline.ranks[0].ranks] == [0, 1]
