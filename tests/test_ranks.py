"""feedtax.measure across ranks: 2 gloo ranks on the CPU under torchrun, each feeding its own DataLoader through a
DistributedSampler; rank 1's loader is slower by a per-sample sleep, so it is known to be the slowest. A rank that
raises, hangs or dies: the other reports it within the process group's timeout, and nothing hangs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import feedtax
from feedtax.bench.ranks import world_fields
from feedtax.results.feeding import RankFeeding

TIMEOUT_S = 4  # the process group's timeout in the script: it bounds every wait for a missing rank
HARD_TIMEOUT_S = 90  # the whole torchrun, should anything hang regardless

SCRIPT = """
import datetime, json, os, sys, time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import feedtax


class Tiny(Dataset):
    def __init__(self, sample_s):
        self.sample_s = sample_s

    def __len__(self):
        return 128

    def __getitem__(self, i):
        if self.sample_s:
            time.sleep(self.sample_s)
        return torch.full((4,), float(i))


mode, out, timeout_s = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout_s))
rank = dist.get_rank()
data = Tiny(0.005 if rank == 1 else 0.0)  # rank 1's loader: 20 ms a batch of 4, against a 10 ms step
loader = DataLoader(data, batch_size=4, sampler=DistributedSampler(data, shuffle=False))
seen, released = [], out / "released"


def train_step(batch):
    seen.extend(int(v) for v in batch[:, 0])
    if rank == 1 and len(seen) > 8:
        if mode == "dies":
            os._exit(0)
        if mode == "hangs":  # until rank 0 has given up on it
            deadline = time.monotonic() + 60
            while not released.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    time.sleep(0.01)


def breaks(batch):  # the second measurement: rank 1's train_step raises at its third step
    if rank == 1 and len(seen) == 2:
        raise ValueError("rank one broke")
    seen.append(-1)


report = {"rank": rank}
try:
    r = feedtax.measure(loader, train_step, warmup_steps=2, steps=10, device="cpu")
    report.update(result=r.model_dump(mode="json", exclude={"timeline"}), seen=list(seen))
    seen.clear()
    try:
        feedtax.measure(loader, breaks, warmup_steps=0, steps=5, device="cpu")
    except feedtax.FeedingError as exc:
        report["raised"] = str(exc)
    alone = feedtax.measure(loader, 0.0, warmup_steps=0, steps=2, distributed=False)
    report["alone"] = [alone.ranks, alone.slowest_rank, alone.world_samples_per_s]
except feedtax.FeedingError as exc:
    report["error"] = str(exc)
(out / f"rank{rank}.json").write_text(json.dumps(report))
if rank == 0:
    released.touch()
if "error" not in report:
    dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path: Path, mode: str) -> dict[int, dict]:
    """Run the script on 2 ranks; each rank's report (a rank that died leaves none)."""
    script = tmp_path / "ranks_script.py"
    script.write_text(SCRIPT)
    port = _free_port()
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(port), str(script), mode, str(tmp_path), str(TIMEOUT_S)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=HARD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its ranks
        proc.communicate()
        pytest.fail(f"torchrun ({mode}) still running after {HARD_TIMEOUT_S} s: a rank hung")
    reports = {r: json.loads(p.read_text()) for r in (0, 1) if (p := tmp_path / f"rank{r}.json").exists()}
    assert reports, f"no rank reported (torchrun exited {proc.returncode}): {err[-2000:]}"
    return reports


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict[int, dict]:
    """One torchrun: a measurement where every rank succeeds, then one where rank 1 raises, then one not gathered."""
    return _torchrun(tmp_path_factory.mktemp("ranks"), "ok")


def test_every_rank_gets_every_ranks_figures_and_the_slow_loader_is_the_slowest_rank(two_ranks):
    reports = two_ranks
    assert set(reports) == {0, 1}, reports
    assert all("error" not in r for r in reports.values()), reports
    results = {k: r["result"] for k, r in reports.items()}
    assert results[0]["ranks"] == results[1]["ranks"]  # all_gather_object: every rank has them all
    rows = [RankFeeding(**row) for row in results[0]["ranks"]]
    assert [r.rank for r in rows] == [0, 1] and all(r.world_size == 2 for r in rows)
    assert all(r.samples == 10 * 4 and r.steps == 10 and r.device == "cpu" and r.hostname for r in rows)
    for k in (0, 1):  # each rank's row is the figures that rank measured
        own = results[k]
        assert rows[k].feeding_tax == own["feeding_tax"] and rows[k].wall_s == own["wall_s"]
        assert rows[k].median_step_wall_s == own["step_wall_s"]["median"]
    assert results[0]["slowest_rank"] == results[1]["slowest_rank"] == 1
    assert rows[1].feeding_tax > rows[0].feeding_tax and rows[1].wait_s > rows[0].wait_s
    assert results[0]["world_samples_per_s"] == pytest.approx(80 / rows[1].wall_s)
    seen = {k: set(r["seen"]) for k, r in reports.items()}
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # the DistributedSampler split the data
    assert all(r["alone"] == [None, None, None] for r in reports.values())  # distributed=False: no gathering


def test_a_rank_that_raises_is_named_by_every_rank(two_ranks):
    assert set(two_ranks) == {0, 1}, two_ranks
    for r in two_ranks.values():
        assert r["raised"].startswith("rank 1 of 2 (host ")
        assert "failed: the consumer raised at step 3: ValueError: rank one broke" in r["raised"]
        assert "\n" not in r["raised"]


@pytest.mark.parametrize("mode", ["hangs", "dies"])
def test_a_rank_that_hangs_or_dies_is_named_on_rank_0_within_the_timeout(tmp_path, mode):
    reports = _torchrun(tmp_path, mode)  # a hung rank 1 waits until rank 0 has reported: rank 0 gave up on it
    assert reports[0]["error"].startswith("rank 0 of 2: rank 1 did not reach the end of the measurement "
                                          f"within {TIMEOUT_S} s")
    assert "init_process_group(timeout=...)" in reports[0]["error"] and "\n" not in reports[0]["error"]
    if mode == "hangs":  # it learns, on its side, that the others did not wait for it
        assert reports[1]["error"].startswith("rank 1 of 2: ")
    else:
        assert 1 not in reports


@pytest.fixture(params=["gloo", "cpu:gloo,cuda:gloo"])
def one_rank(request):
    """A process group of this process alone: gloo, or a backend that is not plain gloo (as nccl is not), where the
    ranks are gathered over a gloo group made beside it."""
    dist.init_process_group(request.param, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                            timeout=timedelta(seconds=30))
    try:
        yield request.param
    finally:
        dist.destroy_process_group()


def test_one_rank_gathers_itself_over_gloo_or_a_gloo_group_beside_another_backend(one_rank):
    for distributed in (None, True):
        r = feedtax.measure([torch.zeros(2, 3)] * 4, 0.0, warmup_steps=1, steps=3, distributed=distributed)
        assert [x.rank for x in r.ranks] == [0] and r.ranks[0].samples == 6 and r.ranks[0].world_size == 1
        assert r.slowest_rank == 0 and r.world_samples_per_s == pytest.approx(r.samples_per_s)
    r = feedtax.measure([torch.zeros(2, 3)] * 4, 0.0, warmup_steps=1, steps=3, distributed=False)
    assert r.ranks is None and r.slowest_rank is None and r.world_samples_per_s is None


def test_the_ranks_figures_travel_through_the_store_or_all_gather_where_torch_gives_no_store(one_rank, monkeypatch):
    from feedtax.bench import ranks

    assert ranks.gather({"a": [1, 2]}, "a payload") == [{"a": [1, 2]}]  # through the store
    with_store = feedtax.measure([torch.zeros(2, 3)] * 4, 0.0, warmup_steps=1, steps=3)
    monkeypatch.setattr(ranks, "_store", lambda: None)
    assert ranks.gather({"b": 3}, "a payload") == [{"b": 3}]
    without = feedtax.measure([torch.zeros(2, 3)] * 4, 0.0, warmup_steps=1, steps=3)
    assert [r.samples for r in with_store.ranks] == [r.samples for r in without.ranks] == [6]


def test_outside_a_process_group_nothing_is_gathered():
    r = feedtax.measure([torch.zeros(2, 3)] * 3, 0.0, warmup_steps=0, steps=3)
    assert r.ranks is None and r.slowest_rank is None and r.world_samples_per_s is None


def test_distributed_true_without_a_process_group_is_refused():
    with pytest.raises(ValueError, match="distributed=True needs an initialised process group"):
        feedtax.measure([torch.zeros(2, 3)] * 3, 0.0, steps=3, distributed=True)
    with pytest.raises(TypeError, match="distributed must be True, False or None"):
        feedtax.measure([torch.zeros(2, 3)] * 3, 0.0, steps=3, distributed="yes")


def _row(rank: int, samples: int, wall_s: float) -> RankFeeding:
    return RankFeeding(rank=rank, world_size=3, hostname="h", device="cpu", steps=4, samples=samples,
                       feeding_tax=0.5, au=0.5, samples_per_s=samples / wall_s, wait_s=wall_s / 2,
                       compute_s=wall_s / 2, wall_s=wall_s, median_step_wall_s=wall_s / 4)


def test_the_slowest_rank_sets_what_the_job_delivers():
    rows = [_row(0, 40, 2.0), _row(1, 40, 4.0), _row(2, 20, 1.0)]
    fields = world_fields(rows)
    assert fields["slowest_rank"] == 1 and fields["ranks"] == rows
    assert fields["world_samples_per_s"] == pytest.approx(100 / 4.0)  # every sample, at the slowest rank's pace
    assert world_fields([_row(0, 8, 1.0), _row(1, 8, 1.0)])["slowest_rank"] == 0  # a tie: the first rank
