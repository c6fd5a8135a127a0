"""bench.tiers and model.tiers: the tuned loader swept at two tiers made here (no mlsysim), each point read at its
tier's pace; a tier faster than the disk reported, not swept; the Lock's arithmetic on constructed rows; one point
measured alone; the tiers read from mlsysim with their sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedtax import formats
from feedtax.bench.tiers import lock2_answers, measure_point, sweep_tiers, unreachable_reason
from feedtax.model.assumptions import load as load_assumptions
from feedtax.model.tiers import TIER_NAMES, storage_tiers
from feedtax.results.feeding import ConsumerSpec
from feedtax.results.tiers import Lock2Answer, StorageTier, TierRow, TierSweep
from feedtax.vocabulary import GAP_PP

SLOW = StorageTier(name="slow", bandwidth_bytes_per_s=5e6, latency_s=0.0, source="test")
FAST = StorageTier(name="fast", bandwidth_bytes_per_s=50e6, latency_s=0.001, source="test")
STEP = ConsumerSpec(kind="emulated", step_s=0.002)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, track_samples):
    """24 edge samples in shards of 8, as json and protobuf."""
    root = tmp_path_factory.mktemp("tiers")
    return {f: formats.get(f).write(track_samples["edge"], root / f, samples_per_shard=8) for f in ("json", "protobuf")}


def _row(fmt: str, tier: str, w: int, au: float) -> TierRow:
    return TierRow(track="edge", format=fmt, num_workers=w, batch_size=8, samples_per_s=100.0, feeding_tax=1 - au,
                   au=au, step_s=0.005, ingestion_samples_per_s=200.0, ingestion_mb_per_s=1.0, mb_per_s=1.0,
                   wait_s=0.1, compute_s=0.1, wall_s=0.2, step_wall_s_iqr=0.0, unstable=False, consumer="emulated",
                   device="emulated", disk_tier=tier)


def test_two_tiers_swept_each_read_at_its_pace(shards):
    result = sweep_tiers("edge", ["json", "protobuf"], shards, [0, 1], [FAST, SLOW], batch_size=8, consumer=STEP,
                         steps=4, disk_seq_read_mb_per_s=1000.0)
    assert [t.tier.name for t in result.tiers] == ["slow", "fast"] and all(t.reachable for t in result.tiers)
    assert result.disk_source == "given by the caller" and result.elapsed_s > 0
    for sweep in result.tiers:
        assert [(r.format, r.num_workers) for r in sweep.rows] == [("json", 0), ("json", 1), ("protobuf", 0),
                                                                   ("protobuf", 1)]
        for r in sweep.rows:
            assert r.disk_tier == sweep.tier.name and r.loader == "tuned" and r.read_requests >= 1
            assert r.read_bytes >= sum(p.stat().st_size for p in shards[r.format])  # every shard, at least once
            assert 0 < r.read_bytes_per_s <= sweep.tier.bandwidth_bytes_per_s * 1.10  # never faster than the tier
    assert [a.num_workers for a in result.lock2] == [0, 1]
    slow, fast = result.tiers
    for a in result.lock2:
        assert (a.slow_tier, a.fast_tier) == ("slow", "fast") and a.measured
        assert a.json_au == slow.row("json", a.num_workers).au
        assert a.format_gain_pp == pytest.approx((slow.row("protobuf", a.num_workers).au - a.json_au) * 100)
        assert a.disk_gain_pp == pytest.approx((fast.row("json", a.num_workers).au - a.json_au) * 100)


def test_a_tier_faster_than_this_disk_is_reported_not_swept(shards):
    result = sweep_tiers("edge", ["json", "protobuf"], shards, [0], [SLOW, FAST], batch_size=8, consumer=STEP,
                         steps=2, disk_seq_read_mb_per_s=20.0, disk_source="a run's disk result")
    slow, fast = result.tiers
    assert slow.reachable and len(slow.rows) == 2
    assert not fast.reachable and fast.rows == [] and fast.reason == "not reachable here (this disk reads 20 MB/s)"
    assert [t.tier.name for t in result.unreachable()] == ["fast"]
    (answer,) = result.lock2
    assert not answer.measured and answer.json_au is None
    assert "two disk tiers" in answer.reason and "fast is not reachable here (this disk reads 20 MB/s)" in answer.reason
    assert "could not be measured" in answer.sentence()


def test_unreachable_only_above_the_disk():
    assert unreachable_reason(SLOW, 5.0) is None and unreachable_reason(SLOW, None) is None
    assert unreachable_reason(SLOW, 4.9) == "not reachable here (this disk reads 5 MB/s)"


@pytest.mark.parametrize("json_au, protobuf_au, upgraded_au, winner, beats", [
    (0.50, 0.80, 0.60, "format", True),
    (0.50, 0.55, 0.90, "disk", True),
    (0.50, 0.70, 0.70 - (GAP_PP - 0.5) / 100, "format", False),  # within a rerun's noise
    (0.50, 0.60, 0.60, None, False),
])
def test_lock_answer_arithmetic(json_au, protobuf_au, upgraded_au, winner, beats):
    a = Lock2Answer.of(2, _row("json", "hdd", 2, json_au), _row("protobuf", "hdd", 2, protobuf_au),
                       _row("json", "sata", 2, upgraded_au))
    assert (a.num_workers, a.slow_tier, a.fast_tier) == (2, "hdd", "sata")
    assert a.format_gain_pp == pytest.approx((protobuf_au - json_au) * 100)
    assert a.disk_gain_pp == pytest.approx((upgraded_au - json_au) * 100)
    assert (a.winner, a.beats_noise) == (winner, beats)
    said = a.sentence()
    assert f"{a.format_gain_pp:+.1f} pp" in said and f"{a.disk_gain_pp:+.1f} pp" in said
    assert ("neither wins" in said) == (not beats)


def test_lock_answers_from_sweeps_pick_the_slowest_and_fastest_tier():
    hdd = StorageTier(name="hdd", bandwidth_bytes_per_s=1e8, latency_s=0.01, source="t")
    sata = hdd.model_copy(update={"name": "sata", "bandwidth_bytes_per_s": 5e8})
    mid = hdd.model_copy(update={"name": "mid", "bandwidth_bytes_per_s": 3e8})
    sweeps = [TierSweep(tier=t, reachable=True, rows=[_row(f, t.name, w, au + 0.1 * w) for f, au in
                                                       (("json", base), ("protobuf", base + 0.2)) for w in (0, 1)])
              for t, base in ((sata, 0.6), (hdd, 0.3), (mid, 0.4))]
    answers = lock2_answers(sweeps, [0, 1])
    assert [(a.num_workers, a.slow_tier, a.fast_tier) for a in answers] == [(0, "hdd", "sata"), (1, "hdd", "sata")]
    assert answers[1].json_au == pytest.approx(0.4) and answers[1].upgraded_au == pytest.approx(0.7)
    assert answers[0].winner == "disk" and answers[0].disk_gain_pp == pytest.approx(30)


def test_lock_answer_needs_json_and_protobuf():
    sweeps = [TierSweep(tier=t, reachable=True, rows=[_row("raw", t.name, 0, 0.5)]) for t in (SLOW, FAST)]
    (answer,) = lock2_answers(sweeps, [0])
    assert answer.reason == "it needs json and protobuf swept; swept: raw"


def test_lock_answer_needs_two_tiers():
    (answer,) = lock2_answers([TierSweep(tier=SLOW, reachable=True, rows=[])], [0])
    assert answer.reason == "it needs two disk tiers swept; only slow asked for"


def test_one_point_measured_alone(shards):
    row = measure_point("edge", "protobuf", 0, SLOW, shards, batch_size=8, step_s=0.002, steps=3)
    assert isinstance(row, TierRow) and row.disk_tier == "slow" and row.format == "protobuf"
    assert row.read_bytes >= sum(p.stat().st_size for p in shards["protobuf"]) and 0 < row.au <= 1
    plain = measure_point("edge", "json", 1, None, shards["json"], batch_size=8, step_s=0.002, steps=3)
    assert plain.disk_tier is None and plain.read_bytes == 0 and plain.read_bytes_per_s is None
    with pytest.raises(ValueError, match="disk tier fast: not reachable here"):
        measure_point("edge", "json", 0, FAST, shards, batch_size=8, step_s=0.002, steps=3,
                      disk_seq_read_mb_per_s=10.0)


def test_storage_tiers_come_from_mlsysim_with_their_sources():
    tiers = storage_tiers()
    assert list(tiers) == ["hdd", "sata", "nvme"] == list(TIER_NAMES)
    speeds = [t.bandwidth_bytes_per_s for t in tiers.values()]
    assert speeds == sorted(speeds) and speeds[0] > 0
    assumed = load_assumptions()
    for name, tier in tiers.items():
        assert tier.name == name and tier.source.startswith("mlsysim:Systems.Storage.") and tier.label
        if tier.latency_source.startswith("assumption:"):
            assert tier.latency_s == assumed.value(tier.latency_source.split(":", 1)[1])
        else:
            assert tier.latency_source.startswith("mlsysim:Systems.Storage.") and tier.latency_s > 0
    overridden = storage_tiers(load_assumptions(overrides={"hdd_request_latency_s": 0.02}))
    assert overridden["hdd"].latency_s == 0.02 or not overridden["hdd"].latency_source.startswith("assumption:")


def test_shards_given_as_a_path_list_or_a_dict_give_one_point(shards):
    paths = [Path(p) for p in shards["json"]]
    row = measure_point("edge", "json", 0, FAST, paths, batch_size=8, step_s=0.002, steps=2)
    assert row.format == "json" and row.disk_tier == "fast" and row.read_requests >= len(paths)
