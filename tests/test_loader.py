"""The loader delivers every sample exactly once per epoch, whatever the format, workers and shuffling."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
import torch

from feedtax import datasets, formats
from feedtax.formats.base import ShardError
from feedtax.loader import (
    INDEX_KEY,
    STAGE_KEY,
    LoaderConfig,
    Parts,
    ShardStream,
    ShmRing,
    SyntheticBatches,
    assemble,
    make_loader,
    normalize_frames,
    spectrogram,
    stack,
    to_tensors,
    token_shift,
    transform_for,
)


def _digest(sample: dict) -> str:
    h = hashlib.sha1()
    for k in sorted(sample):
        h.update(k.encode())
        h.update(np.ascontiguousarray(sample[k]).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory, track_samples):
    samples = track_samples["mobile"][:23]  # 23 samples in shards of 5: last shard short
    out = {}
    for fmt in formats.NAMES:
        paths = formats.get(fmt).write(samples, tmp_path_factory.mktemp(fmt), samples_per_shard=5)
        out[fmt] = paths
    return samples, out


def _delivered(loader) -> tuple[Counter, Counter, int]:
    digests, ids, batches = Counter(), Counter(), 0
    for batch in loader:
        assert STAGE_KEY in batch and INDEX_KEY in batch
        fields = {k: v.numpy() for k, v in batch.items() if not k.startswith("_")}
        n = len(next(iter(fields.values())))
        for i in range(n):
            digests[_digest({k: v[i] for k, v in fields.items()})] += 1
        ids.update(map(tuple, batch[INDEX_KEY].numpy().tolist()))
        batches += 1
    return digests, ids, batches


CASES = [
    ("plain, in process", dict(num_workers=0)),
    ("2 workers, shard + sample shuffle", dict(num_workers=2, shuffle_shards=True, shuffle_samples=True, shuffle_buffer=7)),
    ("3 workers, streamed, 2 epochs", dict(num_workers=3, epochs=2)),
    ("1 worker, pickled numpy", dict(num_workers=1, transport="numpy")),
    ("2 workers, torch shared tensors", dict(num_workers=2, transport="tensor", epochs=2)),
]


DAMAGE_CASES = [
    ("in process", dict(num_workers=0)),
    ("1 worker, ring", dict(num_workers=1)),
    ("2 workers, pickled numpy", dict(num_workers=2, transport="numpy")),
    ("2 workers, torch shared tensors", dict(num_workers=2, transport="tensor")),
    ("2 workers, ring, index reads where the format allows", dict(num_workers=2, shuffle_samples=True)),
]


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("case", DAMAGE_CASES, ids=[c[0] for c in DAMAGE_CASES])
def test_a_shard_damaged_mid_run_raises_shard_error_naming_it(tmp_path, track_samples, fmt, case):
    """Whatever the workers and transport, the error is the codec's own ShardError (path, position,
    problem), not torch's RuntimeError around a worker's traceback text."""
    paths = formats.get(fmt).write(track_samples["mobile"][:23], tmp_path, samples_per_shard=5)
    loader = make_loader(fmt, paths, LoaderConfig(batch_size=4, **case[1]))  # lengths read while intact
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError) as info:
        for _ in loader:
            pass
    assert info.value.path == paths[2] and info.value.position and info.value.problem
    assert str(paths[2]) in str(info.value)


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_sample_exactly_once_per_epoch(shard_sets, fmt, case):
    samples, paths = shard_sets
    cfg = LoaderConfig(batch_size=4, seed=3, **case[1])
    digests, ids, _ = _delivered(make_loader(fmt, paths[fmt], cfg, with_index=True))
    want = Counter(_digest(s) for s in samples)
    want = Counter({k: v * cfg.epochs for k, v in want.items()})
    assert digests == want
    assert ids == Counter({(i // 5, i % 5): cfg.epochs for i in range(len(samples))})


def test_sample_shuffle_uses_index_reads_where_the_format_allows(shard_sets):
    _, paths = shard_sets
    cfg = LoaderConfig(batch_size=4, shuffle_samples=True, seed=1)
    assert make_loader("raw", paths["raw"], cfg).mode == "index"
    assert make_loader("parquet", paths["parquet"], cfg).mode == "index"
    assert make_loader("csv", paths["csv"], cfg).mode == "stream"


def test_shuffle_is_seeded_and_changes_order(shard_sets):
    _, paths = shard_sets

    def order(seed):
        cfg = LoaderConfig(batch_size=4, shuffle_shards=True, shuffle_samples=True, seed=seed)
        return [tuple(r) for b in make_loader("raw", paths["raw"], cfg, with_index=True) for r in b[INDEX_KEY].tolist()]

    assert order(5) == order(5)
    assert order(5) != order(6)
    assert sorted(order(5)) == sorted(order(6))


def test_shards_are_dealt_round_robin_and_cover_all():
    ds = ShardStream("raw", [f"s{i}" for i in range(7)], batch_size=2, shuffle_shards=True, seed=0)
    dealt = [ds.shards_of(w, 3, epoch=0) for w in range(3)]
    assert sorted(sum(dealt, [])) == list(range(7))
    assert [len(d) for d in dealt] == [3, 2, 2]


def test_batches_hold_batch_size_except_the_last(shard_sets):
    _, paths = shard_sets
    sizes = [len(b["crop"]) for b in make_loader("protobuf", paths["protobuf"], LoaderConfig(batch_size=4))]
    assert sizes == [4, 4, 4, 4, 4, 3]
    sizes = [len(b["crop"]) for b in make_loader("raw", paths["raw"], LoaderConfig(batch_size=4, drop_last=True))]
    assert sizes == [4] * 5


def test_collate_makes_tensors_sharing_memory():
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    out = to_tensors({"a": arr, STAGE_KEY: np.zeros(4)})
    assert isinstance(out["a"], torch.Tensor) and out["a"].dtype == torch.int16
    arr[0, 0] = 99
    assert out["a"][0, 0] == 99  # no copy
    assert isinstance(out[STAGE_KEY], np.ndarray)


def test_stack_matches_numpy_and_refuses_ragged_rows():
    rows = [np.arange(6, dtype=np.int16).reshape(2, 3) + i for i in range(5)]
    scalars = [np.asarray(np.float32(v)) for v in (-0.0, np.nan, np.inf, 1e-45)]
    got = stack([{"x": r, "s": s} for r, s in zip(rows, scalars)])
    assert np.array_equal(got["x"], np.stack(rows[:4])) and got["x"].dtype == np.int16
    assert got["s"].tobytes() == np.stack(scalars).tobytes()  # -0.0, NaN, inf and a subnormal bit for bit
    with pytest.raises(ValueError):  # 4 + 2 + 6 values would fill 3 rows of 4: never silently
        stack([{"x": np.zeros(n)} for n in (4, 2, 6)])


def test_transforms_known_answers(track_samples):
    rng = np.random.default_rng(0)
    shifted = token_shift({"tokens": np.array([5, 6, 7], dtype=np.int32)}, rng)
    assert shifted["input"].tolist() == [5, 6] and shifted["target"].tolist() == [6, 7]
    frame = np.full((4, 5, 3), 255, dtype=np.uint8)
    out = normalize_frames({"frame": frame}, rng)["frame"]
    assert out.shape == (3, 4, 5) and out.dtype == np.float32 and np.allclose(out, 2.0)
    tone = (10000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 16000)).astype(np.int16)  # 1 kHz
    spec = spectrogram({"audio": tone}, rng)["spec"]
    assert spec.shape == (4, 33)
    assert int(np.argmax(spec.mean(0))) == 4  # bin 4 of a 64-point FFT at 16 kHz = 1 kHz
    for track in datasets.TRACKS:
        transform_for(track)(track_samples[track][0], rng)


def test_transform_is_timed_as_its_own_stage(shard_sets):
    _, paths = shard_sets
    loader = make_loader("json", paths["json"], LoaderConfig(batch_size=4), transform=transform_for("mobile"))
    batch = next(iter(loader))
    decode_s, transform_s, collate_s, n = batch[STAGE_KEY]
    assert n == 4 and decode_s > 0 and transform_s > 0 and collate_s > 0
    assert batch["crop"].dtype == torch.float32 and batch["input"].dtype == torch.int64


def test_synthetic_batches_split_across_workers():
    batch = {"x": np.arange(8, dtype=np.float32).reshape(4, 2)}
    loader = make_loader("raw", [], LoaderConfig(num_workers=2), dataset=SyntheticBatches(batch, 5))
    got = list(loader)
    assert len(got) == 5 and all(torch.equal(b["x"], torch.from_numpy(batch["x"])) for b in got)


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
    assert [_digest({k: out[k][i] for k in samples[0]}) for i in range(4)] == [_digest(s) for s in samples[:4]]
    decode_s, _, collate_s, n = out[STAGE_KEY]
    assert n == 4 and decode_s > 0 and collate_s > 0
    second = next(items)
    other = ShmRing(batch_size=4, slots=1)
    got = other(second)  # a slot of another ring: copied out, the slot given back
    assert isinstance(got, dict) and ring.mine[2][second.slot] == 1
    assert _digest({k: got[k][0] for k in samples[0]}) == _digest(samples[4])


@pytest.mark.parametrize("fmt", ["protobuf", "raw"])
@pytest.mark.parametrize("workers", [1, 2])
def test_kept_batches_never_change_when_slots_run_out(shard_sets, fmt, workers):
    """A consumer that keeps every batch holds every slot it was lent: later batches must cross
    another way, and no kept batch may be overwritten."""
    samples, paths = shard_sets
    kept = list(make_loader(fmt, paths[fmt], LoaderConfig(batch_size=2, num_workers=workers, epochs=2)))
    rows = Counter(_digest({k: b[k][i].numpy() for k in samples[0]}) for b in kept for i in range(len(b["crop"])))
    assert rows == Counter({_digest(s): 2 for s in samples})


def test_a_dataset_reused_by_another_transport_writes_no_slots(shard_sets):
    samples, paths = shard_sets
    ds = ShardStream("protobuf", paths["protobuf"], batch_size=4)
    for transport in ("ring", "numpy", "ring"):
        loader = make_loader("protobuf", paths["protobuf"], LoaderConfig(batch_size=4, num_workers=1, transport=transport),
                             dataset=ds)
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


@pytest.mark.parametrize("fmt", ["raw", "parquet", "csv"])
def test_column_api_matches_samples(shard_sets, fmt):
    samples, paths = shard_sets
    codec = formats.get(fmt)
    assert codec.columnar
    rows = []
    for p in paths[fmt]:
        for cols in codec.iter_columns(p):
            n = len(next(iter(cols.values())))
            assert all(len(v) == n for v in cols.values())
            rows += [{k: v[i] for k, v in cols.items()} for i in range(n)]
    assert [_digest(r) for r in rows] == [_digest(s) for s in samples]


def test_non_columnar_formats_say_so(shard_sets):
    _, paths = shard_sets
    codec = formats.get("json")
    assert not codec.columnar
    with pytest.raises(NotImplementedError):
        codec.iter_columns(paths["json"][0])
