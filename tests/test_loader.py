"""The loader end to end (feedtax.loader, make_loader): every sample exactly once per epoch whatever the
format, workers, transport and shuffling; a damaged shard raises its ShardError; importing the loader changes
no global state, and torch's oversubscription warning is silenced only where the loader is made and run."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections import Counter

import numpy as np
import psutil
import pytest
import torch
from conftest import digest
from torch.utils.data import DataLoader

from feedtax import formats
from feedtax.formats.base import ShardError
from feedtax.loader import INDEX_KEY, STAGE_KEY, LoaderConfig, SyntheticBatches, make_loader, transform_for
from feedtax.loader.build import OVERSUBSCRIBED


def _delivered(loader) -> tuple[Counter, Counter, int]:
    digests, ids, batches = Counter(), Counter(), 0
    for batch in loader:
        assert STAGE_KEY in batch and INDEX_KEY in batch
        fields = {k: v.numpy() for k, v in batch.items() if not k.startswith("_")}
        n = len(next(iter(fields.values())))
        for i in range(n):
            digests[digest({k: v[i] for k, v in fields.items()})] += 1
        ids.update(map(tuple, batch[INDEX_KEY].numpy().tolist()))
        batches += 1
    return digests, ids, batches


CASES = [
    ("plain, in process", dict(num_workers=0)),
    ("2 workers, shard + sample shuffle",
     dict(num_workers=2, shuffle_shards=True, shuffle_samples=True, shuffle_buffer=7)),
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


def test_workers_stop_when_a_damaged_shard_is_raised(tmp_path, track_samples):
    """The error a caller holds (its traceback keeps the loader's frame) must not keep the workers running."""
    before = {c.pid for c in psutil.Process().children()}
    paths = formats.get("raw").write(track_samples["mobile"][:23], tmp_path, samples_per_shard=5)
    loader = make_loader("raw", paths, LoaderConfig(batch_size=4, num_workers=2))
    paths[2].write_bytes(paths[2].read_bytes()[:100])
    with pytest.raises(ShardError) as info:
        for _ in loader:
            pass
    workers = [c for c in psutil.Process().children() if c.pid not in before]
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert info.value.path == paths[2] and not alive, f"{len(alive)} worker(s) still running after the error"


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_sample_exactly_once_per_epoch(shard_sets, fmt, case):
    samples, paths = shard_sets
    cfg = LoaderConfig(batch_size=4, seed=3, **case[1])
    digests, ids, _ = _delivered(make_loader(fmt, paths[fmt], cfg, with_index=True))
    want = Counter(digest(s) for s in samples)
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


def test_batches_hold_batch_size_except_the_last(shard_sets):
    _, paths = shard_sets
    sizes = [len(b["crop"]) for b in make_loader("protobuf", paths["protobuf"], LoaderConfig(batch_size=4))]
    assert sizes == [4, 4, 4, 4, 4, 3]
    sizes = [len(b["crop"]) for b in make_loader("raw", paths["raw"], LoaderConfig(batch_size=4, drop_last=True))]
    assert sizes == [4] * 5


def test_transform_is_timed_as_its_own_stage(shard_sets):
    _, paths = shard_sets
    loader = make_loader("json", paths["json"], LoaderConfig(batch_size=4), transform=transform_for("mobile"))
    batch = next(iter(loader))
    decode_s, transform_s, collate_s, n = batch[STAGE_KEY]
    assert n == 4 and decode_s > 0 and transform_s > 0 and collate_s > 0
    assert batch["crop"].dtype == torch.float32 and batch["input"].dtype == torch.int64


# What the rest of feedtax imports from feedtax.loader (measure, tests, benchmarks): re-exported by the package.
PUBLIC = ["INDEX_KEY", "STAGE_KEY", "LoaderConfig", "make_loader", "ring_slots", "shard_lengths", "transform_for",
          "spectrogram", "SyntheticBatches", "ShardStream", "ShmRing", "Parts", "assemble", "stack", "to_tensors",
          "normalize_frames", "token_shift"]


def test_the_package_re_exports_what_the_rest_of_feedtax_imports():
    import feedtax.loader

    missing = [name for name in PUBLIC if not hasattr(feedtax.loader, name)]
    assert not missing and set(PUBLIC) <= set(feedtax.loader.__all__)


IMPORT_CHECK = """
import sys, warnings
import numpy, torch, torch.utils.data, feedtax.formats, feedtax.formats.base  # what the loader imports itself
before = list(warnings.filters)
assert "feedtax.loader" not in sys.modules
import feedtax.loader, feedtax.loader.build
print(list(warnings.filters) == before)
"""


def test_importing_the_loader_changes_no_warning_filter():
    """In a fresh interpreter: the loader's own import installs no global filter."""
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def _oversubscribed(monkeypatch) -> None:
    """One usable core as torch counts them, so 2 workers oversubscribe it."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)


def test_oversubscription_warning_is_silenced_only_where_the_loader_is_made_and_run(monkeypatch):
    _oversubscribed(monkeypatch)
    batch = {"x": np.arange(8, dtype=np.float32).reshape(4, 2)}
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        DataLoader(SyntheticBatches(batch, 1), batch_size=None, num_workers=2)  # torch warns, as the loader sees
        assert any(OVERSUBSCRIBED in str(w.message) for w in seen)
        seen.clear()
        loader = make_loader("raw", [], LoaderConfig(num_workers=2), dataset=SyntheticBatches(batch, 4))
        assert len(list(loader)) == 4
        assert not [w for w in seen if OVERSUBSCRIBED in str(w.message)]
    assert warnings.filters == before
