"""Shared fixtures: small track samples, sized like the ci profile."""

from __future__ import annotations

import pytest

from feedtax import datasets
from feedtax.measure.profiles import get

CI_SIZES = get("ci").sizes


@pytest.fixture(scope="session")
def track_samples() -> dict[str, list[dict]]:
    return {t: list(datasets.generate(t, 24, seed=7, sizes=CI_SIZES)) for t in datasets.TRACKS}
