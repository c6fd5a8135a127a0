"""bench.loadergap and results.loaders: feedtax's `default` loader is the DataLoader a student writes (AU within 2 pp
of a hand-written one), a gap names the cost the consumer waits on, and the fixes are the ones that can matter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from feedtax import formats
from feedtax.bench.baseline import plain_loader
from feedtax.bench.consumers import EmulatedConsumer
from feedtax.bench.feeding import measure_feeding
from feedtax.bench.loadergap import FIXES, sweep_loaders
from feedtax.loader import transform_for
from feedtax.results.feeding import ConsumerSpec
from feedtax.results.loaders import FixTrial, LoaderGap


class HandWritten(Dataset):
    """What a student writes: a list of (shard, row), one read and one transform per item."""

    def __init__(self, paths, rows_per_shard):
        self.codec = formats.get("raw")
        self.items = [(p, i) for p, n in zip(paths, rows_per_shard, strict=True) for i in range(n)]
        self.transform, self.rng = transform_for("edge"), np.random.default_rng(0)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.transform(self.codec.read_sample(*self.items[i]), self.rng)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_default_loader_is_the_one_a_student_writes(tmp_path, track_samples, workers):
    samples = track_samples["edge"] * 8
    per = len(samples) // 2
    paths = formats.get("raw").write(samples, tmp_path, samples_per_shard=per)
    rows = [per] * len(paths)
    assert len(paths) * per == len(samples)
    loaders = {
        "default": lambda: plain_loader("raw", paths, 16, num_workers=workers, transform=transform_for("edge"),
                                        persistent_workers=True),
        "hand": lambda: DataLoader(HandWritten(paths, rows), batch_size=16, num_workers=workers,
                                   persistent_workers=workers > 0),
    }
    au = {k: [] for k in loaders}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same code either way; torch's waking of idle stack threads is noise here
    try:
        _alternate(loaders, au)
    finally:
        torch.set_num_threads(threads)
    hand = np.median(au["hand"])
    assert 0.05 < hand < 0.99, "a case where loading shows, so the comparison means something"
    # each pair ran back to back: the median of their differences leaves out the machine's drift between pairs
    paired = np.median(np.subtract(au["default"], au["hand"]))
    assert abs(paired) * 100 < 2.0, (au, workers)


def _alternate(loaders, au) -> None:
    for _ in range(33):  # alternating, so a busy moment of the machine falls on both runs of a pair (one pair's AUs
        # differ by up to 6 pp on a 2-core VM either way, the loaders by about 0.6 pp: with 17 pairs the median's own
        # spread, about 0.8 pp, put it past 2 pp in about one run in 25; 33 pairs halve that spread's variance)
        for kind, make in loaders.items():
            r = measure_feeding(make(), EmulatedConsumer(0.008), warmup_steps=4, steps=48, keep_timeline=False)
            au[kind].append(r.au)


def test_sweep_loaders_measures_both_and_every_gap_is_explained(tmp_path, track_samples):
    samples = track_samples["edge"] * 4
    shards = {"parquet": formats.get("parquet").write(samples, tmp_path, samples_per_shard=len(samples) // 2)}
    rows, summaries, gaps = sweep_loaders("edge", ["parquet"], shards, [0, 1], batch_size=4,
                                          consumer=ConsumerSpec(step_s=0.003), steps=8)
    assert [(r.loader, r.num_workers) for r in rows] == [("default", 0), ("default", 1), ("tuned", 0), ("tuned", 1)]
    assert [s.loader for s in summaries] == ["default", "tuned"]
    assert summaries[0].breakdown == [] and summaries[1].breakdown  # the default's workers carry no stage clocks
    assert summaries[0].transport.batch_size == summaries[1].transport.batch_size == 4
    tuned = {r.num_workers: r.au for r in rows if r.loader == "tuned"}
    for g in gaps:
        assert (g.tuned_au - g.default_au) * 100 > 2.0 and g.tuned_au == tuned[g.num_workers]
        assert g.default_fetch_s_per_batch > 0 and g.default_collate_s_per_batch > 0
        assert (g.default_handover_s_per_batch is not None) == (g.num_workers > 0)
        names = [f.fix for f in g.fixes]
        assert ("one intra-op thread" in names) == (g.num_workers == 0 and torch.get_num_threads() > 1)
        assert ("persistent workers" in names) == (g.num_workers > 0) and "twice the batch" in names
        assert "pinned memory" not in names or torch.cuda.is_available()
        assert all(0 < f.au <= 1 for f in g.fixes)


def test_one_loader_has_no_gaps(tmp_path, track_samples):
    shards = {"raw": formats.get("raw").write(track_samples["edge"], tmp_path, samples_per_shard=8)}
    rows, summaries, gaps = sweep_loaders("edge", ["raw"], shards, [0], batch_size=4,
                                          consumer=ConsumerSpec(step_s=0.002), steps=3, loaders=["tuned"])
    assert {r.loader for r in rows} == {"tuned"} and len(summaries) == 1 and gaps == []


def _gap(workers=0, ingestion=5000.0, **costs) -> LoaderGap:
    base = dict(track="edge", format="raw", num_workers=workers, batch_size=16, default_au=0.6, tuned_au=0.9,
                default_ingestion_samples_per_s=ingestion, consumption_samples_per_s=3000.0, intra_op_threads=2)
    return LoaderGap(**base, **costs)


def test_the_main_cost_is_the_largest_difference_the_consumer_waits_for():
    costs = dict(default_fetch_s_per_batch=0.004, tuned_fetch_s_per_batch=0.001,
                 default_collate_s_per_batch=0.011, tuned_collate_s_per_batch=0.0001,
                 default_handover_s_per_batch=0.0015, tuned_handover_s_per_batch=0.0005)
    assert _gap(0, **costs).main_cost() == "collate"  # 0 workers: every stage is on the consumer's path
    assert _gap(1, **costs).main_cost() == "handover"  # keeping up: only the handover reaches the consumer
    assert _gap(1, ingestion=1000.0, **costs).main_cost() == "collate"  # loader-bound: the workers' costs show
    assert _gap(0, default_fetch_s_per_batch=0.001, tuned_fetch_s_per_batch=0.002).main_cost() is None
    assert _gap(0).costs() == {} and _gap(0).main_cost() is None  # nothing measured: no claim
    g = _gap(0, fixes=[FixTrial(fix="a", code="a", au=0.62), FixTrial(fix="b", code="b", au=0.85)])
    assert g.best_fix().fix == "b" and g.gap_pp == pytest.approx(30.0)
    assert _gap(0, fixes=[FixTrial(fix="a", code="a", au=0.61)]).best_fix() is None  # within the noise


def test_fixes_apply_where_they_can_matter():
    by_name = {f.name: f for f in FIXES}
    assert by_name["one intra-op thread"].applies(0) == (torch.get_num_threads() > 1)
    assert not by_name["one intra-op thread"].applies(2)
    assert by_name["persistent workers"].applies(1) and not by_name["persistent workers"].applies(0)
    assert by_name["pinned memory"].applies(1) == torch.cuda.is_available()
