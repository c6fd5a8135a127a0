"""bench.pipeline_passes: __getitem__ timed inside the workers against a known sleep, the breakdown's samples chosen
unread, a worker's error said in one line, and an error's DataLoader workers released at once."""

from __future__ import annotations

import multiprocessing

import pipeline_fixture as fixture
import pytest
from torch.utils.data import DataLoader

from feedtax.bench import pipeline_passes as passes

SLEEP_S = 0.005


@pytest.mark.parametrize("workers", [0, 2])
def test_getitem_seconds_and_calls_add_up_across_workers(workers):
    timed = passes.TimedDataset(fixture.SleepyDataset(SLEEP_S, n=16))
    seconds, n = passes.one_pass(DataLoader(timed, batch_size=4, num_workers=workers))
    calls_s, calls = timed.take()
    assert n == calls == 16
    # each sleep lasts at least SLEEP_S (a sleep never returns early) and overshoots by the timer's slack and the
    # scheduler's delay: well under half of it on a busy 2-core machine
    assert 16 * SLEEP_S <= calls_s <= 16 * SLEEP_S * 1.5
    assert timed.take() == (0.0, 0)  # taken: the next pass starts from zero


def test_a_pass_reads_the_indices_it_is_given():
    timed = passes.TimedDataset(fixture.SleepyDataset(0.0, n=100))
    order = passes.Indices()
    loader = DataLoader(timed, batch_size=4, sampler=order, **passes.loader_kwargs({}, 1, persistent=True))
    assert passes.one_pass(loader, order, range(90, 100))[1] == 10
    assert passes.one_pass(loader, order, range(3))[1] == 3 and timed.take()[1] == 13


@pytest.mark.parametrize("length, k, reach, expected", [
    (100, 0, 0, (range(84, 100), True)),  # from the end, clear of the head
    (100, 1, 50, (range(68, 84), True)),  # the next block back, clear of what the rows read
    (100, 1, 90, (range(84, 100), False)),  # no unread block left: read again, so warm
    (10, 0, 0, (range(0, 10), False)),  # a small dataset: the head is in the block
])
def test_the_breakdown_reads_samples_not_read_before(length, k, reach, expected):
    assert passes.block(length, 16, k, 5, reach) == expected


def test_worker_settings_are_dropped_without_workers():
    settings = {"collate_fn": list, "prefetch_factor": 4, "timeout": 3, "multiprocessing_context": "spawn"}
    assert passes.loader_kwargs(settings, 0) == {"collate_fn": list, "num_workers": 0, "persistent_workers": False}
    assert passes.loader_kwargs(settings, 2, persistent=True) == {**settings, "num_workers": 2,
                                                                   "persistent_workers": True}


def test_a_worker_error_is_one_line_and_released_its_workers_go_at_once():
    before = set(multiprocessing.active_children())
    loader = passes.Guard(DataLoader(fixture.Broken(0.0, n=100), batch_size=4, num_workers=1), "my pipeline")
    with pytest.raises(passes.PipelineError) as caught:
        list(loader)
    assert str(caught.value) == "my pipeline: the loader raised at batch 2: KeyError: 'sample 5 is missing'"
    # the error's frames hold the DataLoader's iterator, and so its worker, in a reference cycle (a re-raised
    # worker error): left to the garbage collector, torch's join of the worker times out (5 s)
    assert set(multiprocessing.active_children()) - before
    passes.release(caught.value)
    assert not set(multiprocessing.active_children()) - before
