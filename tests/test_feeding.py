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

import numpy as np
import pytest

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


def test_mlperf_au_leaves_out_each_epochs_first_step_and_counts_the_nominal_step(monkeypatch):
    """On the controlled clock: per epoch, first_s before its first batch (opening files, starting workers), then
    load_s before each of its 5 batches; a step computes for longer than its nominal step_s (overhead the accelerator
    would not have)."""
    load_s, step_s, first_s, overhead_s, per_epoch = 0.020, 0.060, 0.200, 0.005, 5
    loader, consumer = _clocked(monkeypatch, wait_s=load_s, step_s=step_s + overhead_s, jitter=0.0)
    loader.per_epoch, loader.first_s = per_epoch, first_s
    consumer.last_nominal_s = step_s
    r = measure_feeding(loader, consumer, warmup_steps=1, steps=4 * per_epoch)
    starts = [s for s in r.timeline if s.epoch_start and not s.warmup]
    assert len(starts) == 4 and r.epochs_started == 5
    # MLPerf Storage / DLIO: nominal S over the kept steps' walls, (L + S + overhead) each; every epoch start left out
    assert r.mlperf_au == pytest.approx(step_s / (load_s + step_s + overhead_s))
    # feedtax's AU keeps the epoch starts and the measured compute: 20 (S + o) / (20 (L + S + o) + 4 E)
    busy = step_s + overhead_s
    assert r.au == pytest.approx(20 * busy / (20 * (load_s + busy) + 4 * first_s)) and r.au < r.mlperf_au


def test_mlperf_au_from_records():
    def rec(wall, compute, nominal, first=False):
        return StepRecord(t_s=0, wait_s=wall - compute, compute_s=compute, wall_s=wall, samples=1, bytes=1,
                          warmup=False, epoch_start=first, nominal_s=nominal)

    records = [rec(1.0, 0.55, 0.5, first=True), rec(1.0, 0.55, 0.5), rec(2.0, 0.55, 0.5)]
    assert mlperf_au(records) == pytest.approx(1.0 / 3.0)  # (0.5 + 0.5) / (1 + 2): the first step left out
    assert mlperf_au([rec(1.0, 0.6, None), rec(1.0, 0.4, None)]) == pytest.approx(0.5)  # no nominal: measured
    assert mlperf_au([rec(1.0, 0.5, 0.5, first=True)]) == 0.0  # nothing left to measure


# ---------------------------------------------------------------------------------------------
# The AU's interval and the stopping rule, on a controlled clock


class _Clock:
    """A clock only the fake loader and consumer move: every step waits `wait_s` for its batch, then computes for a
    draw of a known distribution, so the true AU is known."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _ClockedLoader:
    """Batches that take wait_s of the clock to arrive, an epoch of `per_epoch` batches per iterator, each epoch
    first_s before its first (opening files, starting workers)."""

    def __init__(self, clock: _Clock, wait_s: float, per_epoch: int = 50, first_s: float = 0.0):
        self.clock, self.wait_s, self.per_epoch, self.first_s = clock, wait_s, per_epoch, first_s

    def __iter__(self):
        self.clock.now += self.first_s
        for _ in range(self.per_epoch):
            self.clock.now += self.wait_s
            yield {"x": np.zeros((2, 3), np.float32)}


class _JitteryConsumer:
    """Computes for step_s x (1 + jitter x a standard normal draw, at least 0.1 step), seeded: known jitter."""

    flops_per_sample = None

    def __init__(self, clock: _Clock, step_s: float, jitter: float, seed: int = 0):
        self.clock, self.step_s, self.jitter = clock, step_s, jitter
        self.rng = np.random.default_rng(seed)

    def step(self, batch) -> float:
        busy = self.step_s * max(0.1, 1 + self.jitter * self.rng.standard_normal())
        self.clock.now += busy
        return busy


def _clocked(monkeypatch, wait_s: float, step_s: float, jitter: float, seed: int = 0):
    import feedtax.bench.feeding as feeding

    clock = _Clock()
    monkeypatch.setattr(feeding.time, "perf_counter", clock)
    return _ClockedLoader(clock, wait_s), _JitteryConsumer(clock, step_s, jitter, seed)


def test_deterministic_steps_give_a_zero_width_interval_at_the_au(monkeypatch):
    loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=0.0)
    r = measure_feeding(loader, consumer, warmup_steps=2, steps=16)
    assert r.au == pytest.approx(0.8)
    assert r.au_ci95 == pytest.approx((0.8, 0.8), abs=1e-12)
    assert r.feeding_tax_ci95 == pytest.approx((0.2, 0.2), abs=1e-12)
    assert not r.au_ci_wide and r.stopped_by == "steps" and r.steps == 16 and r.min_steps is None


def test_the_interval_holds_the_true_au_of_a_known_consumer(monkeypatch):
    """Steps of 2 ms wait and an 8 ms step jittered by 30%: the true AU is 0.8 (the compute's mean over the mean
    wall); over 40 seeded runs of 64 steps the interval holds it in most, as a 95% interval should."""
    covered = 0
    for seed in range(40):
        loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=0.3, seed=seed)
        r = measure_feeding(loader, consumer, warmup_steps=0, steps=64)
        lo, hi = r.au_ci95
        assert lo <= r.au <= hi and r.feeding_tax_ci95 == pytest.approx((1 - hi, 1 - lo))
        covered += lo <= 0.8 <= hi
    assert covered >= 0.85 * 40, covered


def test_the_stopping_rule_on_a_consumer_with_known_jitter(monkeypatch):
    """Low jitter: narrow at the minimum, so it stops there. More jitter: it measures more steps, until the interval
    is narrower than the target. Too much for the cap: it stops at the cap and marks the point wide."""
    from feedtax.vocabulary import StopRule

    rule = StopRule(au_ci_pp=2.0, max_steps=400, max_s=1e6, every=8)
    loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=0.02)
    low = measure_feeding(loader, consumer, warmup_steps=2, steps=16, stop=rule)
    assert low.steps == 16 and low.stopped_by == "au_ci" and not low.au_ci_wide and low.min_steps == 16
    assert (low.au_ci95[1] - low.au_ci95[0]) * 100 < 2.0

    loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=0.3)
    more = measure_feeding(loader, consumer, warmup_steps=2, steps=16, stop=rule)
    assert 16 < more.steps < 400 and (more.steps - 16) % 8 == 0 and more.stopped_by == "au_ci"
    assert (more.au_ci95[1] - more.au_ci95[0]) * 100 < 2.0 and not more.au_ci_wide
    assert more.au_ci95[0] <= 0.8 <= more.au_ci95[1]

    # the cap reached after the interval narrowed but before the next check (every 1,000 steps: one check, at 16, wide):
    # stopped on the interval all the same, so a point stopped by a cap is always one still wide
    loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=0.3)
    between = measure_feeding(loader, consumer, warmup_steps=2, steps=16,
                              stop=StopRule(au_ci_pp=2.0, max_steps=more.steps + 4, max_s=1e6, every=1000))
    assert between.steps == more.steps + 4 and between.stopped_by == "au_ci" and not between.au_ci_wide

    loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=3.0)
    capped = measure_feeding(loader, consumer, warmup_steps=2, steps=16, stop=rule)
    assert capped.steps == 400 and capped.stopped_by == "max_steps" and capped.au_ci_wide
    assert (capped.au_ci95[1] - capped.au_ci95[0]) * 100 >= 2.0
    assert capped.epochs_started > 1  # the loader ran out and was restarted, as without a rule

    loader, consumer = _clocked(monkeypatch, wait_s=0.002, step_s=0.008, jitter=3.0)
    timed = measure_feeding(loader, consumer, warmup_steps=2, steps=16,
                            stop=StopRule(au_ci_pp=2.0, max_steps=400, max_s=1.0, every=8))
    assert timed.stopped_by == "max_s" and timed.au_ci_wide and timed.wall_s >= 1.0 and timed.steps < 400


def test_a_stop_rule_below_the_minimum_is_refused():
    from feedtax.vocabulary import StopRule

    with pytest.raises(ValueError, match="below the minimum"):
        measure_feeding(_ListLoader([{"x": np.zeros((2, 3))}]), _FixedConsumer(), warmup_steps=0, steps=20,
                        stop=StopRule(max_steps=10))
    with pytest.raises(ValueError):
        StopRule(au_ci_pp=0)
