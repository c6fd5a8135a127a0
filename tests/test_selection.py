"""The selection experiment: reproducible with its seed, inside the ci budget, curated data wins on bytes."""

from __future__ import annotations

import time

import pytest

from feedtax.bench import selection


@pytest.fixture(scope="module")
def ci():
    t0 = time.perf_counter()
    result = selection.run(selection.CONFIGS["ci"])
    return result, time.perf_counter() - t0


def _deterministic(rows):
    return [r.model_dump(exclude={"wall_s", "energy_j"}) for r in rows]


def test_ci_config_is_fast(ci):
    assert ci[1] < 5.0


def test_reproduces_with_the_seed(ci):
    again = selection.run(selection.CONFIGS["ci"])
    assert _deterministic(again.rows) == _deterministic(ci[0].rows)


def test_other_seed_differs(ci):
    other = selection.run(selection.CONFIGS["ci"].model_copy(update={"seed": 1}))
    assert [r.accuracy for r in other.rows] != [r.accuracy for r in ci[0].rows]


def test_grid_and_accounting(ci):
    result, _ = ci
    cfg = result.config
    assert len(result.rows) == len(cfg.label_qualities) * len(cfg.filter_ratios) + 1
    for r in result.rows:
        assert r.kept_samples == round(r.pool_samples * (1 - r.filter_ratio))
        probe = r.pool_samples if r.filter_ratio > 0 else 0
        assert r.samples_processed == probe + r.epochs * r.kept_samples
        assert r.bytes_processed == r.samples_processed * cfg.n_features * 4  # float32 features
        assert r.energy_source.startswith("estimated: wall time x assumption:cpu_active_power_w")
        assert r.accuracy <= 1.0


def test_curated_reaches_target_with_fewer_bytes_than_noisy(ci):
    result, _ = ci
    curated = next(r for r in result.rows if r.scenario == "few curated")
    noisy = next(r for r in result.rows if r.label_quality == "low" and r.filter_ratio == 0)
    assert curated.reached_target and not noisy.reached_target
    assert curated.bytes_processed < noisy.bytes_processed


def test_label_noise_rate():
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100_000)
    flipped = selection.flip(rng, y, 0.15)
    assert (flipped != y).mean() == pytest.approx(0.15, abs=0.01)
    assert ((flipped != y) & (y == 0)).sum() == 0  # errors are missed positives only


def test_meter_is_used():
    ticks = iter(range(0, 1000, 2))
    result = selection.run(selection.SelectionConfig(pool_samples=2000, curated_samples=200, test_samples=500,
                                                     label_qualities=["high"], filter_ratios=[0.0]),
                           meter=lambda: float(next(ticks)), meter_name="rapl")
    assert all(r.energy_j == 2.0 and r.energy_source == "measured:rapl" for r in result.rows)
