"""Feeding tax against analytic values: a loader of known per-sample cost (a deliberate sleep) and an
EmulatedConsumer of known step time, in five regimes.

The model (docs/measurement.md derives it):
per step the consumer waits for a batch, then computes S. Let L = per-sample cost x batch size
(one worker's time to make a batch), W workers, t = the measured per-batch transport cost seen by
the consumer (wait per step with ready data behind a consumer of step S).
- W = 0 (serial): wall/step = L + t + S  ->  tax = (L + t) / (L + t + S)
- W >= 1: workers make W batches per L, the consumer takes one per S + t:
  wall/step = max(L / W, S + t)  ->  tax = 1 - S / max(L / W, S + t)
  loader-bound (L/W > S + t): tax = 1 - S W / L; consumer-bound or balanced: tax = t / (S + t).
Steps of 40-120 ms keep scheduler noise well inside the 2-point bound; measured windows are whole
multiples of W steps so the round-robin delivery averages out.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from feedtax.bench.consumers import EmulatedConsumer
from feedtax.bench.feeding import StepRecord, measure_feeding, mlperf_au
from feedtax.loader import LoaderConfig, SyntheticBatches, make_loader

B = 4
BATCH = {"x": np.arange(B * 16, dtype=np.float32).reshape(B, 16)}


def _ready_wait(workers: int, step_s: float) -> float:
    """Mean wait per step for ready data (no load cost): the transport cost t at this worker count."""
    loader = make_loader("raw", [], LoaderConfig(num_workers=workers), dataset=SyntheticBatches(BATCH, 40))
    r = measure_feeding(loader, EmulatedConsumer(step_s), warmup_steps=6, steps=24)
    return r.wait_s / r.steps


def analytic_tax(load_s: float, step_s: float, workers: int, transport_s: float) -> float:
    if workers == 0:
        return (load_s + transport_s) / (load_s + transport_s + step_s)
    return 1 - step_s / max(load_s / workers, step_s + transport_s)


REGIMES = [  # name, workers, batch load L, step S
    ("serial", 0, 0.040, 0.040),
    ("loader-bound, 1 worker", 1, 0.080, 0.040),
    ("loader-bound, 2 workers", 2, 0.120, 0.040),
    ("balanced, 2 workers", 2, 0.080, 0.040),
    ("consumer-bound, 2 workers", 2, 0.040, 0.060),
]


@pytest.mark.parametrize("name,workers,load_s,step_s", REGIMES, ids=[r[0] for r in REGIMES])
def test_feeding_tax_matches_analytic_within_2_points(name, workers, load_s, step_s):
    t = _ready_wait(workers, step_s)
    steps, warm = 16, 2 + 2 * max(workers, 1)
    ds = SyntheticBatches(BATCH, steps + warm + 2 * max(workers, 1), load_s_per_sample=load_s / B)
    loader = make_loader("raw", [], LoaderConfig(num_workers=workers, prefetch_factor=2), dataset=ds)
    r = measure_feeding(loader, EmulatedConsumer(step_s), warmup_steps=warm, steps=steps)
    expected = analytic_tax(load_s, step_s, workers, t)
    print(f"{name}: measured {r.feeding_tax:.4f}, analytic {expected:.4f} (t = {t * 1e3:.2f} ms)")
    assert abs(r.feeding_tax - expected) < 0.02
    assert r.wall_s == pytest.approx(r.wait_s + r.compute_s, rel=0.02)


class _ListLoader:
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter([dict(b) for b in self.batches])


class _FixedConsumer:
    flops_per_sample = 1e6

    def __init__(self, busy_s: float = 0.5):
        self.busy_s = busy_s

    def step(self, batch):
        return self.busy_s  # reports busy_s seconds busy, returns at once


def test_accounting_with_a_controlled_clock(monkeypatch):
    """Waits and steps from a fake clock: AU excludes warm-up steps, epochs restart, MFU from peak."""
    import feedtax.bench.feeding as feeding

    clock = iter(np.arange(0, 100, 0.25))  # every clock read advances 0.25 s
    monkeypatch.setattr(feeding.time, "perf_counter", lambda: float(next(clock)))
    batches = [{"x": np.zeros((2, 3), np.float32)}] * 3
    r = measure_feeding(_ListLoader(batches), _FixedConsumer(0.6), warmup_steps=1, steps=4, peak_flop_per_s=8e6)
    # each step: t0, t1 (wait 0.25 s), end of step (wall 0.5 s); compute reported 0.6 s
    assert r.epochs_started == 2
    assert r.wait_s == pytest.approx(4 * 0.25) and r.wall_s == pytest.approx(4 * 0.5)
    assert r.compute_s == pytest.approx(4 * 0.6)
    assert r.au == 1.0 and r.feeding_tax == 0.0  # reported compute exceeds the host's wall: clipped
    assert r.samples_per_s == pytest.approx(8 / 2.0)
    assert r.mb_per_s == pytest.approx(4 * 24 / 2.0 / 1e6)
    assert r.achieved_flop_per_s == pytest.approx(4e6) and r.mfu == pytest.approx(0.5)
    assert len(r.timeline) == 5 and r.timeline[0].warmup and isinstance(r.timeline[1], StepRecord)


def test_step_walls_tile_the_timeline_but_for_the_progress_callback():
    """Each step's wall runs from asking for its batch to the end of its bookkeeping, so consecutive
    steps leave no gap, except the time spent in on_step (a progress bar is not the pipeline's)."""
    import time

    batches = [{"x": np.zeros((2, 3), np.float32)}] * 5
    for pause_s in (0.0, 0.004):
        r = measure_feeding(_ListLoader(batches), EmulatedConsumer(0.002), warmup_steps=0, steps=12,
                            on_step=(lambda i, p=pause_s: time.sleep(p)) if pause_s else None)
        gaps = [b.t_s - (a.t_s + a.wall_s) for a, b in zip(r.timeline, r.timeline[1:], strict=False)]
        # a loop turn takes microseconds, a sleep overshoots by well under a millisecond (docs/measurement.md)
        assert min(gaps) >= pause_s and np.median(gaps) < (pause_s + 1e-3 if pause_s else 15e-6), gaps
        assert r.wall_s >= r.wait_s + r.compute_s


class _FailingLoader:
    def __iter__(self):
        yield {"x": np.zeros((2, 3), np.float32)}
        raise OSError("disk gone")


class _CountingSampler:
    def __init__(self):
        self.started = self.stopped = 0

    def start(self):
        self.started += 1

    def stop(self):
        self.stopped += 1


def test_the_sampler_is_stopped_when_the_loader_fails():
    sampler = _CountingSampler()
    with pytest.raises(OSError, match="disk gone"):
        measure_feeding(_FailingLoader(), _FixedConsumer(), warmup_steps=0, steps=3, sampler=sampler)
    assert sampler.started == 1 and sampler.stopped == 1


def test_a_one_shot_loader_that_runs_out_says_so():
    one_shot = iter([{"x": np.zeros((2, 3), np.float32)}] * 3)
    with pytest.raises(RuntimeError, match="ran out after 3 batches"):
        measure_feeding(one_shot, _FixedConsumer(), warmup_steps=0, steps=5)
    with pytest.raises(RuntimeError, match="yields no batches"):
        measure_feeding(_ListLoader([]), _FixedConsumer(), warmup_steps=0, steps=1)


def test_mfu_absent_without_peak():
    r = measure_feeding(_ListLoader([{"x": np.zeros((2, 3))}]), _FixedConsumer(), warmup_steps=0, steps=1)
    assert r.mfu is None and r.peak_flop_per_s is None


class _EpochsWithSlowStart:
    """A loader of known costs: per epoch, `first_s` before its first batch (opening files, starting workers), then
    `load_s` before each of `batches` batches of B samples."""

    def __init__(self, batches: int, load_s: float, first_s: float):
        self.batches, self.load_s, self.first_s = batches, load_s, first_s

    def __iter__(self):
        _sleep(self.first_s)
        for _ in range(self.batches):
            _sleep(self.load_s)
            yield {"x": torch.zeros(B, 2)}


def _sleep(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        time.sleep(left)


def test_mlperf_au_leaves_out_each_epochs_first_step_and_counts_the_nominal_step():
    load_s, step_s, first_s, per_epoch = 0.020, 0.060, 0.200, 5  # long enough that sleep overshoot stays small
    r = measure_feeding(_EpochsWithSlowStart(per_epoch, load_s, first_s), EmulatedConsumer(step_s),
                        warmup_steps=1, steps=4 * per_epoch)
    starts = [s for s in r.timeline if s.epoch_start and not s.warmup]
    assert len(starts) == 4 and r.epochs_started == 5
    # MLPerf Storage / DLIO: nominal S over (L + S) per kept step; every epoch start is left out
    assert abs(r.mlperf_au - step_s / (load_s + step_s)) * 100 < 1.0, r.mlperf_au
    # feedtax's AU keeps the epoch starts: (20 S) / (20 (L + S) + 4 E), measured compute in place of S
    analytic = 20 * step_s / (20 * (load_s + step_s) + 4 * first_s)
    assert abs(r.au - analytic) * 100 < 1.0 and r.au < r.mlperf_au


def test_mlperf_au_from_records():
    def rec(wall, compute, nominal, first=False):
        return StepRecord(t_s=0, wait_s=wall - compute, compute_s=compute, wall_s=wall, samples=1, bytes=1,
                          warmup=False, epoch_start=first, nominal_s=nominal)

    records = [rec(1.0, 0.55, 0.5, first=True), rec(1.0, 0.55, 0.5), rec(2.0, 0.55, 0.5)]
    assert mlperf_au(records) == pytest.approx(1.0 / 3.0)  # (0.5 + 0.5) / (1 + 2): the first step left out
    assert mlperf_au([rec(1.0, 0.6, None), rec(1.0, 0.4, None)]) == pytest.approx(0.5)  # no nominal: measured
    assert mlperf_au([rec(1.0, 0.5, 0.5, first=True)]) == 0.0  # nothing left to measure
