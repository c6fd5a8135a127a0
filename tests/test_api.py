"""feedtax.measure on user-style pipelines: any batch structure, known answers, and every failure said clearly.

The controlled cases use the analytic model of tests/test_feeding.py (docs/measurement.md derives it): a
Dataset whose __getitem__ sleeps a known time per sample, so one worker makes a batch in L seconds, and a
consumer busy S seconds per batch; t is the wait per step for ready batches of the same structure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from test_feeding import analytic_tax
from torch.utils.data import DataLoader, Dataset

import feedtax
from feedtax.bench.consumers import EmulatedConsumer

B = 4


class Slow(Dataset):
    """Samples of a given structure; each __getitem__ takes sample_s."""

    def __init__(self, structure: str, sample_s: float, n: int = 10_000):
        self.structure, self.sample_s, self.n = structure, sample_s, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if self.sample_s:
            time.sleep(self.sample_s)
        x = torch.full((16,), float(i))
        y = torch.tensor(i % 3)
        return {
            "tensor": x,
            "tuple": (x, y),
            "dict": {"x": x, "label": y},
            "nested": {"inputs": {"x": x, "mask": torch.ones(16, dtype=torch.bool)}, "label": y, "id": f"s{i}"},
        }[self.structure]


def _loader(structure: str, sample_s: float, workers: int) -> DataLoader:
    return DataLoader(Slow(structure, sample_s), batch_size=B, num_workers=workers)


REGIMES = [  # name, workers, batch load L, step S
    ("serial", 0, 0.040, 0.040),
    ("loader-bound, 1 worker", 1, 0.080, 0.040),
    ("consumer-bound, 2 workers", 2, 0.040, 0.060),
]


@pytest.mark.parametrize("structure", ["tensor", "tuple", "dict", "nested"])
@pytest.mark.parametrize("name,workers,load_s,step_s", REGIMES, ids=[r[0] for r in REGIMES])
def test_feeding_tax_of_a_user_pipeline_matches_analytic_within_3_points(structure, name, workers, load_s, step_s):
    ready = feedtax.measure(_loader(structure, 0.0, workers), step_s, warmup_steps=6, steps=16)
    t = statistics.median(s.wait_s for s in ready.timeline if not s.warmup)  # a moment descheduled, not the mean's
    steps, warm = 16, 2 + 2 * max(workers, 1)
    r = feedtax.measure(_loader(structure, load_s / B, workers), EmulatedConsumer(step_s), warmup_steps=warm,
                        steps=steps)
    expected = analytic_tax(load_s, step_s, workers, t)
    print(f"{structure}, {name}: measured {r.feeding_tax:.4f}, analytic {expected:.4f} (t = {t * 1e3:.2f} ms, mean "
          f"{ready.wait_s / ready.steps * 1e3:.2f} ms)")
    assert abs(r.feeding_tax - expected) < 0.03
    assert r.samples_per_s == pytest.approx(B * steps / r.wall_s)
    assert r.wall_s == pytest.approx(r.wait_s + r.compute_s, rel=0.03)


def test_a_plain_train_step_is_timed_by_feedtax():
    seen = []

    def train_step(batch):
        seen.append(batch)
        time.sleep(0.02)

    r = feedtax.measure(_loader("tuple", 0.0, 0), train_step, warmup_steps=1, steps=5)
    assert len(seen) == 6 and isinstance(seen[0], list)  # default_collate keeps a tuple sample as a list
    assert r.compute_s >= 5 * 0.02 and r.compute_s == pytest.approx(5 * 0.02, abs=0.02)
    assert r.samples_per_s > 0 and len(r.timeline) == 6


@dataclass
class Batch:
    """A user's batch object: tensors as attributes, moved with .to() (as a custom collate may return)."""

    pixels: torch.Tensor
    labels: torch.Tensor

    def to(self, device):
        return Batch(self.pixels.to(device), self.labels.to(device))


class Holder:
    def __init__(self, x):
        self.x = x


@pytest.mark.parametrize("batch,samples,nbytes", [
    (np.zeros((5, 3), np.float32), 5, 60),
    (Batch(torch.zeros(6, 2, dtype=torch.float64), torch.zeros(6, dtype=torch.int64)), 6, 6 * 2 * 8 + 6 * 8),
    (Holder(torch.zeros(7, 4, dtype=torch.uint8)), 7, 28),
    ([{"a": torch.zeros(3, 1)}, ("text",)], 3, 12),
])
def test_batches_of_any_structure_count_samples_and_bytes(batch, samples, nbytes):
    r = feedtax.measure([batch] * 3, 0.0, warmup_steps=0, steps=3)
    assert r.samples_per_s * r.wall_s == pytest.approx(3 * samples)
    assert r.mb_per_s * r.wall_s * 1e6 == pytest.approx(3 * nbytes)


def test_batch_size_of_counts_what_the_leading_dimension_does_not():
    batches = [{"tokens": torch.zeros(128, 8)}] * 4  # sequence-first: 8 samples of 128 tokens
    r = feedtax.measure(batches, 0.0, warmup_steps=0, steps=4, batch_size_of=lambda b: b["tokens"].shape[1])
    assert r.samples_per_s * r.wall_s == pytest.approx(32)


def test_a_batch_without_a_tensor_is_refused_naming_the_way_out():
    with pytest.raises(feedtax.FeedingError, match="batch 1 holds no tensor.*batch_size_of"):
        feedtax.measure([{"text": ["a", "b"]}] * 3, 0.0, warmup_steps=0, steps=2)


def test_a_loader_that_yields_nothing_says_so():
    with pytest.raises(feedtax.FeedingError, match="the loader yields no batches"):
        feedtax.measure([], 0.01, steps=3)


def test_a_consumer_that_raises_is_named_with_its_step():
    def train_step(batch):
        if len(calls) == 2:
            raise ValueError("shapes do not match")
        calls.append(batch)

    calls = []
    with pytest.raises(feedtax.FeedingError, match=r"the consumer raised at step 3: ValueError: shapes do not match"):
        feedtax.measure([torch.zeros(2, 2)] * 5, train_step, warmup_steps=0, steps=5)


def test_a_loader_that_raises_is_named_with_its_batch():
    def batches():
        yield torch.zeros(2)
        yield torch.zeros(2)
        raise OSError("disk went away")

    class Restartable:
        def __iter__(self):
            return batches()

    with pytest.raises(feedtax.FeedingError, match=r"the loader raised at batch 3: OSError: disk went away"):
        feedtax.measure(Restartable(), 0.0, warmup_steps=0, steps=5)


@pytest.mark.parametrize("consumer,error", [(-0.01, ValueError), ("fast", TypeError), (None, TypeError)])
def test_a_consumer_that_is_not_one_is_refused(consumer, error):
    with pytest.raises(error, match="step|seconds"):
        feedtax.measure([torch.zeros(2)], consumer, steps=1)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"steps": 2.5}, {"warmup_steps": -1}])
def test_out_of_range_steps_are_refused(kwargs):
    with pytest.raises(ValueError, match="steps"):
        feedtax.measure([torch.zeros(2)], 0.0, **kwargs)


def test_a_consumer_step_must_return_seconds():
    class Bad:
        def step(self, batch):
            return "done"

    with pytest.raises(feedtax.FeedingError, match="returned 'done', not the seconds"):
        feedtax.measure([torch.zeros(2)] * 2, Bad(), warmup_steps=0, steps=2)


def test_importing_feedtax_does_not_import_torch():
    code = "import sys, feedtax; assert callable(feedtax.measure) or True; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", "import sys, feedtax; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", code
    assert "measure" in dir(feedtax) and feedtax.measure is feedtax.api.measure


def test_the_au_comes_with_its_interval_and_a_stop_rule_measures_until_it_is_narrow():
    from feedtax.vocabulary import StopRule

    batches = [{"x": torch.zeros(4, 2)}] * 8
    fixed = feedtax.measure(batches, 0.002, warmup_steps=1, steps=8)
    lo, hi = fixed.au_ci95
    assert lo <= fixed.au <= hi and fixed.feeding_tax_ci95 == pytest.approx((1 - hi, 1 - lo))
    assert fixed.steps == 8 and fixed.stopped_by == "steps"
    ruled = feedtax.measure(batches, 0.002, warmup_steps=1, steps=8, stop=StopRule(au_ci_pp=50, max_steps=16))
    assert ruled.stopped_by == "au_ci" and ruled.steps == 8 and not ruled.au_ci_wide and ruled.min_steps == 8
