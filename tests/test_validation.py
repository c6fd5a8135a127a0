"""validation: the feeding tax mlsysim predicts from measured stage rates vs the measured one, hand-checked."""

from __future__ import annotations

import pytest

from feedtax.model import validation
from feedtax.model.validation import StageRates

RATES = StageRates(track="edge", format="raw", bytes_per_sample=1000, raw_bytes_per_sample=1000,
                   decode_samples_per_s_per_worker=50, transform_samples_per_s_per_worker=1000, read_mb_per_s=1000)


def test_model_validation_hand_checked():
    rows = [
        {"track": "edge", "format": "raw", "num_workers": 2, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.5},
        {"track": "edge", "format": "raw", "num_workers": 2, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.2},
        {"track": "edge", "format": "raw", "num_workers": 0, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.8},
        {"track": "edge", "format": "json", "num_workers": 1, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.8},
    ]
    # a worker decodes (50/s) then transforms (1000/s) in series: 2 x 47.6 = 95.2 samples/s against
    # 10 / 0.05 s = 200 demanded: the consumer waits 52.4% of the time
    expected = 1 - 2 / (1 / 50 + 1 / 1000) / 200
    rows[0]["feeding_tax"] = expected
    out = validation.model_validation(rows, [RATES])
    assert len(out) == 3  # no stage rates for json: skipped
    assert out[0].predicted_feeding_tax == pytest.approx(expected) and abs(out[0].error_pp) < 1e-6
    assert out[0].likely_reason is None
    assert out[1].error_pp == pytest.approx((expected - 0.2) * 100) and out[1].likely_reason
    # workers = 0: in series, per batch 10 x (1/50 + 1/1000 + 1000 B / 1e9 B/s) s of loading + 0.05 s compute
    io = 10 * (1 / 50 + 1 / 1000 + 1000 / 1e9)
    assert out[2].predicted_feeding_tax == pytest.approx(io / (io + 0.05))
    assert "DataStallModel" in out[2].model


def test_model_validation_adds_the_transport_and_collate_per_batch():
    rates = RATES.model_copy(update={"transport_s_per_batch": 0.02, "decode_samples_per_s_per_worker": 1000})
    row = {"track": "edge", "format": "raw", "num_workers": 2, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.6}
    (v,) = validation.model_validation([row], [rates])
    # workers keep up (2 x 500/s > 200/s); each step still waits 20 ms to receive its batch
    assert v.predicted_feeding_tax == pytest.approx(0.02 / 0.07)
    assert v.error_pp < -10 and "transport" in v.likely_reason
    (noisy,) = validation.model_validation([{**row, "unstable": True}], [rates])
    assert noisy.error_pp == v.error_pp and "noisy" in noisy.likely_reason
    slow_collate = rates.model_copy(update={"collate_s_per_batch": 0.1})  # 10 ms per sample: 2 x 83/s < 200/s
    (c,) = validation.model_validation([row], [slow_collate])
    per_worker = 1 / (1 / 1000 + 1 / 1000 + 0.1 / 10)
    assert c.predicted_feeding_tax == pytest.approx(1 - (2 * per_worker / 200) * 0.05 / 0.07)


def test_a_point_with_its_own_stage_clocks_is_predicted_at_the_rates_its_workers_ran():
    """4 workers sharing 2 cores: each decodes at a fraction of the 1-worker rate. The point's own clocks (per batch,
    from the loader alone) give the rate; the prediction is the hand-checked pipeline at that rate."""
    row = {"track": "edge", "format": "raw", "num_workers": 4, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.5}
    shared = {**row, "decode_s_per_batch": 10 / 12.5, "transform_s_per_batch": 10 / 1000, "collate_s_per_batch": 0.0}
    (alone,) = validation.model_validation([row], [RATES])  # no clocks at the point: the 1-worker rates
    (here,) = validation.model_validation([shared], [RATES])
    assert alone.predicted_feeding_tax == pytest.approx(max(0.05, 1 - 4 / (1 / 50 + 1 / 1000) / 200), abs=0.01)
    expected = 1 - 4 / (1 / 12.5 + 1 / 1000) / 200  # 4 x 12.3 samples/s against 200 demanded
    assert here.predicted_feeding_tax == pytest.approx(expected)
    assert (here.rates_at, alone.rates_at) == ("point", "one_worker") and here.model == alone.model
    (zero,) = validation.model_validation([{**shared, "num_workers": 0}], [RATES])  # in-process: the stage rates
    assert "DataStallModel" in zero.model and zero.rates_at == "one_worker"
