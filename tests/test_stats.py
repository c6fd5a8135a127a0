"""Timing distributions: summaries of known values, the stability flag, warm-ups and loop calibration."""

from __future__ import annotations

import numpy as np
import pytest

from feedtax import stats
from feedtax.stats import ratio_ci


def test_summary_of_known_values():
    d = stats.summarize([1.0, 2.0, 3.0, 4.0, 100.0], "s")
    assert (d.median, d.q1, d.q3, d.iqr, d.n, d.min, d.max) == (3.0, 2.0, 4.0, 2.0, 5, 1.0, 100.0)
    assert d.mean == pytest.approx(22.0)
    assert d.unstable and "standard deviation" in d.note and "IQR" in d.note


def test_tight_values_are_stable():
    d = stats.summarize([10.0, 10.1, 9.9, 10.05, 9.95], "samples/s")
    assert not d.unstable and d.note is None and d.unit == "samples/s"


def test_summary_needs_values():
    with pytest.raises(ValueError):
        stats.summarize([], "s")


def test_rates():
    assert stats.rates([0.5, 2.0], 100) == [200.0, 50.0]


def test_time_repeats_excludes_warmups_runs_setup_untimed_and_calibrates_loops(monkeypatch):
    clock = {"t": 0.0}
    calls = {"fn": 0, "setup": 0, "repeat": 0}
    monkeypatch.setattr(stats.time, "perf_counter", lambda: clock["t"])

    def setup():
        calls["setup"] += 1
        clock["t"] += 5.0  # untimed: must not appear in the values

    def fn():
        calls["fn"] += 1
        # the warm-up is slow (cold code paths); timed calls take 0.01 s
        clock["t"] += 1.0 if calls["fn"] == 1 else 0.01

    values = stats.time_repeats(fn, setup=setup, warmups=1, repeats=4, min_time_s=3.0,
                                on_repeat=lambda: calls.__setitem__("repeat", calls["repeat"] + 1))
    assert values == pytest.approx([0.01] * 4)
    # loops per repeat = ceil(min_time / fastest warm-up) = ceil(3.0 / 1.0) = 3
    assert calls == {"fn": 1 + 4 * 3, "setup": 1 + 4 * 3, "repeat": 4}


def test_time_repeats_needs_a_repeat():
    with pytest.raises(ValueError):
        stats.time_repeats(lambda: None, warmups=0, repeats=0, min_time_s=0)


def test_ratio_ci_of_identical_steps_is_the_rate_itself():
    lo, hi = ratio_ci([32] * 20, [0.01] * 20)
    assert lo == pytest.approx(3200) and hi == pytest.approx(3200)


def test_ratio_ci_covers_the_true_rate_and_narrows_with_more_steps():
    """Steps of 32 samples with walls drawn around 10 ms: the interval holds 3,200 samples/s in most runs, and
    forty times the steps give an interval several times narrower."""
    rng, covered, widths = np.random.default_rng(1), 0, {}
    for n in (25, 1000):
        for _ in range(40):
            lo, hi = ratio_ci([32] * n, rng.gamma(25, 0.01 / 25, size=n), seed=int(rng.integers(1 << 30)))
            covered += n == 25 and lo <= 3200 <= hi
            widths.setdefault(n, []).append(hi - lo)
    assert covered >= 0.85 * 40
    assert np.median(widths[25]) > 4 * np.median(widths[1000])


def test_ratio_ci_refuses_mismatched_steps():
    with pytest.raises(ValueError):
        ratio_ci([1, 2], [1.0])
