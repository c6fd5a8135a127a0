"""Consumers: the emulated step's length and draws, the real models' step and FLOP count."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from harness import datasets
from harness.consumer import EmulatedConsumer, ModelConsumer, make_consumer
from harness.loader import stack, to_tensors, transform_for


def test_emulated_step_sleeps_its_step():
    c = EmulatedConsumer(0.02)
    t0 = time.perf_counter()
    busy = c.step({})
    assert busy >= 0.02 and time.perf_counter() - t0 >= 0.02


def test_emulated_draws_are_seeded_and_shaped():
    a = [EmulatedConsumer(0.01, jitter_s=0.002, seed=4).draw() for _ in range(1)]
    c1, c2 = EmulatedConsumer(0.01, jitter_s=0.002, seed=4), EmulatedConsumer(0.01, jitter_s=0.002, seed=4)
    d1, d2 = [c1.draw() for _ in range(500)], [c2.draw() for _ in range(500)]
    assert d1 == d2 and d1[0] == a[0]
    assert np.mean(d1) == pytest.approx(0.01, rel=0.05) and np.std(d1) == pytest.approx(0.002, rel=0.15)
    u = EmulatedConsumer(0.01, jitter_s=0.004, distribution="uniform")
    draws = [u.draw() for _ in range(500)]
    assert min(draws) >= 0.006 and max(draws) <= 0.014
    assert all(x >= 0 for x in (EmulatedConsumer(0.001, jitter_s=0.01).draw() for _ in range(200)))
    with pytest.raises(ValueError):
        EmulatedConsumer(-1.0)


@pytest.mark.parametrize("track", datasets.TRACKS)
@pytest.mark.parametrize("transformed", [True, False])
def test_model_trains_a_step_and_counts_flops(track_samples, track, transformed):
    rng = np.random.default_rng(0)
    samples = track_samples[track][:8]
    if transformed:
        samples = [transform_for(track)(s, rng) for s in samples]
    batch = to_tensors(stack(samples))
    c = make_consumer("model", track=track, device="cpu")
    assert isinstance(c, ModelConsumer) and c.device == "cpu"
    before = [p.detach().clone() for p in c.model.parameters()]
    busy = c.step(batch)
    assert busy > 0 and c.flops_per_sample > 0 and c.flops_batch_size == 8
    assert any(not torch.equal(a, b) for a, b in zip(before, c.model.parameters()))  # it trained


def test_flops_scale_with_the_batch(track_samples):
    c = ModelConsumer("edge", device="cpu")
    small = to_tensors(stack(track_samples["edge"][:4]))
    big = to_tensors(stack(track_samples["edge"][:8]))
    per_small = c.count_flops(small)
    per_big = c.count_flops(big)
    assert per_small == pytest.approx(per_big, rel=0.01)  # per sample: independent of batch size
