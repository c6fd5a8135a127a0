"""Benchmark data: each track at laptop-profile sizes, plus 256 float32 values per sample (a plain vector, the
reference shape for comparing each library's fast path with the naive one)."""

from __future__ import annotations

import numpy as np
import pytest

from feedtax import datasets
from feedtax.bench.profiles import get

N = 500


@pytest.fixture(scope="session")
def bench_samples() -> dict[str, list[dict]]:
    out = {t: list(datasets.generate(t, N, seed=0, sizes=get("laptop").sizes)) for t in datasets.TRACKS}
    rng = np.random.default_rng(0)
    out["vector256"] = [{"x": rng.standard_normal(256).astype(np.float32)} for _ in range(N)]
    return out
