"""checks: a value against its limit with headroom, per-worker service, and the best format binding."""

from __future__ import annotations

import math

import pytest

from feedtax.model import checks
from feedtax.model.inputs import FormatMeasure
from feedtax.model.sources import measured


def test_max_and_min_checks_headroom():
    under = checks.check("x", 2, 8, "cores", "max", "")
    assert under.ok and under.headroom == pytest.approx(4)
    over = checks.check("x", 16, 8, "cores", "max", "")
    assert not over.ok and over.headroom == pytest.approx(0.5)
    short = checks.check("rate", 50, 200, "samples/s", "min", "")
    assert not short.ok and short.headroom == pytest.approx(0.25)
    assert checks.check("x", 0, 8, "cores", "max", "").headroom == math.inf


def test_per_core_service_is_decode_then_transform_in_series():
    fm = FormatMeasure(track="edge", format="raw", bytes_per_sample=1, raw_bytes_per_sample=1, decode_samples_per_s=50)
    assert checks.per_core_service(fm, 1000) == pytest.approx(1 / (1 / 50 + 1 / 1000))
    cores_needed = checks.cores_check("c", 200, fm, 1000, measured(8), measured(0.5))
    assert cores_needed.value == pytest.approx(200 / (checks.per_core_service(fm, 1000) * 0.5))
