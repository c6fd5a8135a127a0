"""Shared fixtures: small track samples sized like the ci profile, their shards in every format, a full disk."""

from __future__ import annotations

import builtins
import errno
import hashlib

import numpy as np
import pytest

from feedtax import datasets, formats
from feedtax.bench.profiles import get

CI_SIZES = get("ci").sizes


@pytest.fixture(scope="session")
def track_samples() -> dict[str, list[dict]]:
    return {t: list(datasets.generate(t, 24, seed=7, sizes=CI_SIZES)) for t in datasets.TRACKS}


def digest(sample: dict) -> str:
    """A sample's identity: its field names and bytes, so delivered samples can be counted against written ones."""
    h = hashlib.sha1()
    for k in sorted(sample):
        h.update(k.encode())
        h.update(np.ascontiguousarray(sample[k]).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def sample_digest():
    return digest


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory, track_samples):
    """23 mobile samples in shards of 5 (the last one short), written in every format."""
    samples = track_samples["mobile"][:23]
    out = {fmt: formats.get(fmt).write(samples, tmp_path_factory.mktemp(fmt), samples_per_shard=5)
           for fmt in formats.NAMES}
    return samples, out


@pytest.fixture
def full_disk(monkeypatch):
    """Writes to a *.tmp file fail half-way with ENOSPC, as on a full disk (the atomic writer's temp files)."""
    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return FullFile(f) if "w" in mode and str(path).endswith(".tmp") else f

    monkeypatch.setattr(builtins, "open", fake_open)
