"""Timing distributions: summaries of known values, the stability flag, warm-ups and loop calibration."""

from __future__ import annotations

import pytest

from feedtax import stats


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
