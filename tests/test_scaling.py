"""The flow equilibrium and the USL scaling fit on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from feedtax.bench.scaling import fit_usl, flow_equilibrium, scaling_fit, usl


def test_flow_equilibrium_is_the_smallest_count_keeping_up():
    assert flow_equilibrium({0: 50, 1: 90, 2: 180, 4: 300}, 150) == 2
    assert flow_equilibrium({0: 50, 1: 90}, 150) is None
    assert flow_equilibrium({4: 300, 2: 150}, 150) == 2  # equal counts as keeping up
    # 0 workers load in series with the consumer: never an equilibrium, however fast
    assert flow_equilibrium({0: 10_000, 1: 90, 2: 180}, 150) == 2
    assert flow_equilibrium({0: 10_000}, 150) is None


def test_usl_fit_recovers_known_parameters():
    n = np.array([1, 2, 4, 8, 16])
    x = usl(n, 1000.0, 0.05, 0.002)
    lam, sigma, kappa, rmse = fit_usl(n, x)
    assert lam == pytest.approx(1000, rel=0.02) and sigma == pytest.approx(0.05, abs=0.01)
    assert kappa == pytest.approx(0.002, rel=0.3) and rmse < 0.01


def test_scaling_fit_marks_extrapolation_and_predicts_equilibrium():
    ingestion = {0: 400.0, 1: 500.0, 2: 950.0, 4: 1800.0}
    fit = scaling_fit("edge", "csv", ingestion, consumption_per_s=3000.0)
    assert fit.measured_workers == [1, 2, 4]
    assert [p.extrapolated for p in fit.predicted[:5]] == [False, False, False, False, True]
    assert len(fit.predicted) == 8 and fit.flow_equilibrium_predicted is not None  # twice the largest measured count
    assert fit.flow_equilibrium_predicted > 4


def test_scaling_fit_never_contradicts_the_measured_counts():
    """A prediction only beyond the measured range, and only when no measured count kept up; a point
    below the measured range is as extrapolated as one above it."""
    fit = scaling_fit("edge", "csv", {1: 1000.0, 2: 2100.0, 4: 2450.0}, consumption_per_s=2500.0)
    assert fit.flow_equilibrium_predicted is None or fit.flow_equilibrium_predicted > 4
    assert scaling_fit("edge", "csv", {1: 1000.0, 2: 2100.0, 4: 3000.0}, 2500.0).flow_equilibrium_predicted is None
    fit = scaling_fit("edge", "csv", {2: 900.0, 4: 1700.0, 8: 3000.0}, 1e9)
    assert [p.num_workers for p in fit.predicted if not p.extrapolated] == [2, 3, 4, 5, 6, 7, 8]
    # two points that slow down: kappa held at 0 cannot follow, so the fit says so and predicts nothing
    fit = scaling_fit("edge", "csv", {1: 1000.0, 2: 600.0}, 5000.0)
    assert fit.rel_rmse > 0.1 and "poor fit" in fit.note and fit.flow_equilibrium_predicted is None
    assert scaling_fit("edge", "csv", {0: 1.0, 1: 2.0}, 10.0) is None


def test_fit_intervals_cover_the_true_curve():
    """Rates drawn around a known USL curve with a known spread, each given its 95% interval: the fit's interval
    at a count beyond the measured ones covers the true rate in most trials, and the parameters' intervals
    hold their point estimates."""
    n, truth, sd = np.array([1, 2, 4, 8]), usl(np.arange(1, 17), 1000.0, 0.05, 0.002), 0.05
    covered = 0
    for seed in range(40):
        x = usl(n, 1000.0, 0.05, 0.002) * np.exp(np.random.default_rng(seed).normal(size=n.size) * sd)
        intervals = {int(w): (r * np.exp(-1.96 * sd), r * np.exp(1.96 * sd)) for w, r in zip(n, x, strict=True)}
        fit = scaling_fit("edge", "csv", dict(zip(n.tolist(), x, strict=True)), 1e9, intervals=intervals)
        at12 = fit.predicted[11]
        covered += at12.ci95[0] <= truth[11] <= at12.ci95[1]
        assert fit.lam_ci95[0] <= fit.lam_per_s <= fit.lam_ci95[1]
        assert fit.sigma_ci95[0] <= fit.sigma <= fit.sigma_ci95[1]
    assert covered >= 0.8 * 40


def test_wide_intervals_predict_nothing_beyond_the_measured_counts():
    """The same rates with tight and with wide intervals: tight ones leave the extrapolation informative and
    predict an equilibrium; wide ones mark it uninformative and predict none."""
    ingestion = {1: 500.0, 2: 950.0, 4: 1800.0}

    def fit(rel):
        return scaling_fit("edge", "csv", ingestion, 2500.0,
                           intervals={w: (r * (1 - rel), r * (1 + rel)) for w, r in ingestion.items()})

    tight, wide = fit(0.01), fit(0.4)
    first_above = next(p.num_workers for p in tight.predicted if p.extrapolated and p.ci95[0] >= 2500.0)
    assert all(p.informative for p in tight.predicted) and tight.flow_equilibrium_predicted == first_above
    assert [p.informative for p in wide.predicted if p.extrapolated] == [False] * 4
    assert wide.flow_equilibrium_predicted is None
    assert tight.reach().num_workers == 8 and (wide.reach() is None or not wide.reach().extrapolated)
    for p in tight.predicted:  # the prediction lies within its own interval, and the interval widens beyond the data
        assert p.ci95[0] <= p.samples_per_s <= p.ci95[1]
    width = [(p.ci95[1] - p.ci95[0]) / p.samples_per_s for p in tight.predicted]
    assert width[-1] > width[3]
