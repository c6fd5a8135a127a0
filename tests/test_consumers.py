"""Consumers: the emulated step's length and draws, the real models' step and FLOP count."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from feedtax import datasets
from feedtax.bench.consumers import EmulatedConsumer, ModelConsumer, make_consumer
from feedtax.loader import stack, to_tensors, transform_for
from feedtax.results.feeding import ConsumerSpec


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
    c = make_consumer(ConsumerSpec(kind="model", device="cpu"), track)
    assert isinstance(c, ModelConsumer) and c.device == "cpu"
    before = [p.detach().clone() for p in c.model.parameters()]
    busy = c.step(batch)
    assert busy > 0 and c.flops_per_sample > 0 and c.flops_batch_size == 8
    assert any(not torch.equal(a, b) for a, b in zip(before, c.model.parameters(), strict=True))  # it trained


def test_flops_scale_with_the_batch(track_samples):
    c = ModelConsumer("edge", device="cpu")
    small = to_tensors(stack(track_samples["edge"][:4]))
    big = to_tensors(stack(track_samples["edge"][:8]))
    per_small = c.count_flops(small)
    per_big = c.count_flops(big)
    assert per_small == pytest.approx(per_big, rel=0.01)  # per sample: independent of batch size


def _slowed(fn, delay_s):
    """fn that first sleeps delay_s: a stand-in for slow work at a chosen place."""

    def slow(*args, **kwargs):
        time.sleep(delay_s)
        return fn(*args, **kwargs)

    return slow


def test_first_step_reports_the_counting_step_as_busy(track_samples, monkeypatch):
    # The first step counts FLOPs; its time is device work, so the caller must not see it as waiting.
    c = ModelConsumer("edge", device="cpu")
    monkeypatch.setattr(c, "_train_step", _slowed(c._train_step, 0.05))
    batch = to_tensors(stack(track_samples["edge"][:4]))
    t0 = time.perf_counter()
    busy_s = c.step(batch)
    wall_s = time.perf_counter() - t0
    assert c.flops_per_sample > 0 and busy_s >= 0.05
    assert wall_s - busy_s < 0.04, f"{wall_s - busy_s:.3f} s of step() not reported as busy"


@pytest.mark.parametrize("track, prep", [("tiny", "_spec"), ("edge", "_frames")])
def test_host_input_preparation_is_not_timed(track_samples, monkeypatch, track, prep):
    # Spectrogram / uint8->float on the host happen before the timed step: they show up as the
    # caller's wait (step's wall minus busy), not as device busy.
    import feedtax.bench.consumers as consumer

    monkeypatch.setattr(consumer, prep, _slowed(getattr(consumer, prep), 0.05))
    c = ModelConsumer(track, device="cpu")
    batch = to_tensors(stack(track_samples[track][:4]))  # untransformed: audio / uint8 frames
    for _ in range(2):  # the counting step, then a plain one
        t0 = time.perf_counter()
        busy_s = c.step(batch)
        assert time.perf_counter() - t0 - busy_s >= 0.05, "host preparation was timed as busy"


def test_cloud_flops_count_attention(track_samples):
    # Per sample over L positions of width d (vocab V): every weight matmul is 2*L*w flops forward
    # (w = weight entries: in_proj 3d^2, out_proj d^2, MLP 8d^2, head dV); attention is two matmuls
    # (QK^T and PV) of 2*L*L*d each over all heads. Backward doubles each (grads of both operands): x3.
    c = ModelConsumer("cloud", device="cpu")
    batch = to_tensors(stack(track_samples["cloud"][:4]))
    L, d = c.model.context, c.model.pos.embedding_dim
    assert batch["tokens"].shape[1] - 1 >= L  # every sample fills the context
    weights = sum(m.weight.numel() for m in c.model.modules() if isinstance(m, torch.nn.Linear))
    weights += sum(m.in_proj_weight.numel() for m in c.model.modules() if isinstance(m, torch.nn.MultiheadAttention))
    linear_only = 3 * 2 * L * weights
    attention = 3 * 2 * (2 * L * L * d)
    counted = c.count_flops(batch)
    assert counted > linear_only
    assert counted == pytest.approx(linear_only + attention, rel=1e-9)
