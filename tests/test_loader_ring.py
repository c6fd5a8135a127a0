"""The shared-memory ring transport (feedtax.loader.ring): a slot is lent to the main process until the batch
is garbage, batches are written or assembled into slots, and whatever cannot use a slot crosses as numpy."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import digest

from feedtax.loader import STAGE_KEY, LoaderConfig, make_loader
from feedtax.loader.batches import Parts, assemble, to_tensors
from feedtax.loader.datasets import ShardStream
from feedtax.loader.ring import ShmRing


def _ring_batch(n: int = 4) -> dict:
    return {"x": np.arange(n * 6, dtype=np.int16).reshape(n, 2, 3), "t": np.arange(n, dtype=np.float64),
            STAGE_KEY: np.array([0.1, 0.0, 0.0, n])}


def test_ring_message_lends_the_slot_until_the_batch_is_garbage():
    import gc
    import pickle
    from multiprocessing.reduction import ForkingPickler  # as the DataLoader's queues pickle

    ring = ShmRing(batch_size=4, slots=2)
    batch = _ring_batch()
    msg = ring(batch)
    assert not isinstance(msg, dict) and ring.mine[2].tolist() == [0, 1]  # slot 0 taken
    out = to_tensors(pickle.loads(ForkingPickler.dumps(msg)))  # in the main process: no copy
    assert torch.equal(out["x"], torch.from_numpy(batch["x"])) and torch.equal(out["t"], torch.from_numpy(batch["t"]))
    assert out[STAGE_KEY][2] > 0 and out[STAGE_KEY][0] == 0.1  # the slot copy counts as collate
    view = out["x"][1:]  # a view of a field keeps the slot lent, as the tensor itself does
    del out
    gc.collect()
    assert ring.mine[2].tolist() == [0, 1]
    assert ring(_ring_batch()).args[2] == 1  # the worker takes the other slot, never the lent one
    del view
    gc.collect()
    assert ring.mine[2].tolist() == [1, 0]  # slot 0 free again once nothing refers to it
    second = ForkingPickler.dumps(ring(_ring_batch(3)))  # a short batch fits; only (slot, rows) crosses now
    assert len(second) < 1000 and len(pickle.loads(second)["t"]) == 3


def test_ring_assembles_parts_in_the_slot():
    import pickle
    from multiprocessing.reduction import ForkingPickler

    blocks = Parts({"x": [np.zeros((1, 2, 3), np.int16), np.ones((2, 2, 3), np.int16)], "t": [np.zeros(1), np.ones(2)]},
                   3, {STAGE_KEY: np.array([0.1, 0.0, 0.0, 3])})
    ring = ShmRing(batch_size=4, slots=2)
    out = pickle.loads(ForkingPickler.dumps(ring(blocks)))
    assert out["x"].shape == (3, 2, 3) and out["x"][1:].min() == 1 and out["t"].tolist() == [0, 1, 1]
    assert out[STAGE_KEY][2] > 0 and blocks.extra[STAGE_KEY][2] == 0  # timed, on a copy
    assert assemble(blocks)["x"].shape == (3, 2, 3)


def test_batches_of_samples_are_written_into_a_reserved_slot(shard_sets):
    import pickle
    from multiprocessing.reduction import ForkingPickler

    samples, paths = shard_sets
    ring = ShmRing(batch_size=4, slots=3)
    ds = ShardStream("protobuf", paths["protobuf"], batch_size=4)
    ds.sink = ring
    items = iter(ds)
    first = next(items)
    assert first.ring is ring and ring.mine[2].tolist() == [0, 1, 1]  # written in place, slot 0 taken
    out = pickle.loads(ForkingPickler.dumps(ring(first)))
    assert [digest({k: out[k][i] for k in samples[0]}) for i in range(4)] == [digest(s) for s in samples[:4]]
    decode_s, _, collate_s, n = out[STAGE_KEY]
    assert n == 4 and decode_s > 0 and collate_s > 0
    second = next(items)
    other = ShmRing(batch_size=4, slots=1)
    got = other(second)  # a slot of another ring: copied out, the slot given back
    assert isinstance(got, dict) and ring.mine[2][second.slot] == 1
    assert digest({k: got[k][0] for k in samples[0]}) == digest(samples[4])


@pytest.mark.parametrize("fmt", ["protobuf", "raw"])
@pytest.mark.parametrize("workers", [1, 2])
def test_kept_batches_never_change_when_slots_run_out(shard_sets, fmt, workers):
    """A consumer that keeps every batch holds every slot it was lent: later batches must cross
    another way, and no kept batch may be overwritten."""
    samples, paths = shard_sets
    kept = list(make_loader(fmt, paths[fmt], LoaderConfig(batch_size=2, num_workers=workers, epochs=2)))
    rows = Counter(digest({k: b[k][i].numpy() for k in samples[0]}) for b in kept for i in range(len(b["crop"])))
    assert rows == Counter({digest(s): 2 for s in samples})


def test_a_dataset_reused_by_another_transport_writes_no_slots(shard_sets):
    samples, paths = shard_sets
    ds = ShardStream("protobuf", paths["protobuf"], batch_size=4)
    for transport in ("ring", "numpy", "ring"):
        cfg = LoaderConfig(batch_size=4, num_workers=1, transport=transport)
        loader = make_loader("protobuf", paths["protobuf"], cfg, dataset=ds)
        assert (ds.sink is None) == (transport != "ring")
        assert sum(len(b["crop"]) for b in loader) == len(samples)


def test_ring_falls_back_to_the_plain_batch_when_full_or_mismatched():
    ring = ShmRing(batch_size=4, slots=1)
    first = ring(_ring_batch())
    assert not isinstance(first, dict)
    assert isinstance(ring(_ring_batch()), dict)  # no free slot: crosses as numpy
    assert isinstance(ring(_ring_batch(5)), dict)  # more rows than a slot holds
    assert isinstance(ring({"y": np.zeros(4)}), dict)  # other fields


def test_ring_is_used_by_workers_and_forgotten_between_passes(shard_sets):
    _, paths = shard_sets
    loader = make_loader("raw", paths["raw"], LoaderConfig(batch_size=4, num_workers=1))
    assert loader.ring is not None
    assert sum(len(b["crop"]) for b in loader) == 23 and len(loader.ring.received) == 1
    assert sum(len(b["crop"]) for b in loader) == 23 and len(loader.ring.received) == 1  # new worker, old ring gone
