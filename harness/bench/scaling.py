"""How ingestion scales with workers: the flow equilibrium and Gunther's Universal Scalability Law fit.

- flow equilibrium: the smallest measured worker count whose ingestion rate >= the consumer's
  consumption rate (batch / step time); None when no measured count reaches it.
- scaling fit: X(N) = lam N / (1 + sigma (N-1) + kappa N (N-1)) over the measured worker counts >= 1
  (grid over sigma, kappa; lam by least squares), predicted up to twice the largest measured count (at most
  MAX_FIT_WORKERS), every point outside the measured counts marked extrapolated. Its uncertainty: the fit redone
  over FIT_REPLICATES draws of the measured rates, each within its own 95% interval (log-normal), giving every
  parameter and prediction a 95% interval; a prediction is informative where that interval is at most
  MAX_REL_CI_WIDTH of its value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedtax.results.feeding import ScalingFit, ScalingPoint
from feedtax.stats import interval

MAX_FIT_WORKERS = 32
MAX_FIT_REL_RMSE = 0.10  # a fit further than this from its own points predicts nothing
EXTRAPOLATE_FACTOR = 2  # predict up to this multiple of the largest measured count, no further
FIT_REPLICATES = 300
MAX_REL_CI_WIDTH = 0.5  # a prediction whose 95% interval is wider than half its value says nothing
_Z95 = 1.959964  # the normal quantile of stats.CI_LEVEL (95%): an interval's half-width in standard deviations


def flow_equilibrium(ingestion: dict[int, float], consumption_per_s: float) -> int | None:
    """Smallest worker count >= 1 whose ingestion rate >= the consumption rate, or None. With 0 workers
    the main process loads in series with the consumer, so it pays load / (load + step) whatever its rate."""
    ok = [w for w, rate in sorted(ingestion.items()) if w >= 1 and rate >= consumption_per_s]
    return ok[0] if ok else None


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray | float:
    """The Universal Scalability Law's throughput at n workers."""
    n = np.asarray(n, dtype=np.float64)
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def _grid(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (sigma, kappa) grid and each grid point's USL shape at n: f[S, K, points]."""
    sigmas = np.concatenate([np.linspace(0, 0.2, 81), np.linspace(0.2, 1, 81)[1:]])
    kappas = np.concatenate([[0.0], np.geomspace(1e-5, 0.5, 80)]) if n.size >= 3 else np.array([0.0])
    s, k = np.meshgrid(sigmas, kappas, indexing="ij")
    return s, k, n / (1 + s[..., None] * (n - 1) + k[..., None] * n * (n - 1))


def _fit_many(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Best (lam, sigma, kappa, relative RMSE) per row of rates x[R, points] over the grid, minimizing the mean
    relative squared error: with g = f/x, lam = sum(g)/sum(g^2) and the error is then 1 - sum(g)^2/(P sum(g^2)),
    two matrix products over all rows at once."""
    s, k, f = _grid(n)
    f = f.reshape(-1, n.size)
    sum_g, sum_g2 = f @ (1 / x).T, (f * f) @ (1 / (x * x)).T  # [grid, R]
    err = np.clip(1 - sum_g ** 2 / (n.size * sum_g2), 0, None)
    best = err.argmin(0)
    rows = np.arange(x.shape[0])
    return np.stack([sum_g[best, rows] / sum_g2[best, rows], s.ravel()[best], k.ravel()[best],
                     np.sqrt(err[best, rows])], -1)


def fit_usl(workers: Sequence[int], rates: Sequence[float]) -> tuple[float, float, float, float]:
    """(lam, sigma, kappa, relative RMSE) minimizing relative squared error over a (sigma, kappa)
    grid with lam in closed form; with two points kappa is held at 0 (Amdahl)."""
    n = np.asarray(workers, dtype=np.float64)
    x = np.asarray(rates, dtype=np.float64)
    if n.size < 2 or np.any(n < 1) or np.any(x <= 0):
        raise ValueError("need >= 2 positive rates at worker counts >= 1")
    lam, sigma, kappa, rmse = _fit_many(n, x[None])[0]
    return float(lam), float(sigma), float(kappa), float(rmse)


def _replicates(ws: list[int], pts: dict[int, float], intervals: dict[int, tuple[float, float]],
                seed: int = 0) -> np.ndarray | None:
    """FIT_REPLICATES fits over the measured rates redrawn within their 95% intervals (log-normal, each point
    independent: they are separate runs); None where no point has an interval."""
    sd = np.array([(np.log(intervals[w][1]) - np.log(intervals[w][0])) / (2 * _Z95)
                   if w in intervals and 0 < intervals[w][0] <= intervals[w][1] else 0.0 for w in ws])
    if not sd.any():
        return None
    x = np.array([pts[w] for w in ws]) * np.exp(np.random.default_rng(seed).normal(size=(FIT_REPLICATES, len(ws))) * sd)
    return _fit_many(np.asarray(ws, dtype=np.float64), x)


def scaling_fit(track: str, fmt: str, ingestion: dict[int, float], consumption_per_s: float,
                max_workers: int = MAX_FIT_WORKERS,
                intervals: dict[int, tuple[float, float]] | None = None) -> ScalingFit | None:
    """USL fit over worker counts >= 1, with 95% intervals where the measured rates carry theirs (intervals: worker
    count -> the rate's 95% interval); None with fewer than two such counts."""
    pts = {w: r for w, r in ingestion.items() if w >= 1 and r > 0}
    if len(pts) < 2:
        return None
    ws = sorted(pts)
    lam, sigma, kappa, rmse = fit_usl(ws, [pts[w] for w in ws])
    boot = _replicates(ws, pts, intervals or {})
    grid = np.arange(1, min(max_workers, EXTRAPOLATE_FACTOR * max(ws)) + 1)
    curves = None if boot is None else usl(grid[None], boot[:, :1], boot[:, 1:2], boot[:, 2:3])
    predicted = []
    for i, w in enumerate(grid):
        x = float(usl(w, lam, sigma, kappa))
        ci = None if curves is None else interval(curves[:, i])
        predicted.append(ScalingPoint(num_workers=int(w), samples_per_s=x, extrapolated=not min(ws) <= w <= max(ws),
                                      ci95=ci, informative=ci is None or (ci[1] - ci[0]) <= MAX_REL_CI_WIDTH * x))
    # within the measured range the measurements themselves say where the equilibrium is: the fit
    # only predicts beyond it, and only when no measured count reached it
    measured_reach = any(r >= consumption_per_s for r in pts.values())
    poor = rmse > MAX_FIT_REL_RMSE  # e.g. a slowdown two points cannot follow with kappa held at 0
    beyond = [p.num_workers for p in predicted if p.num_workers > max(ws) and p.informative
              and (p.ci95[0] if p.ci95 else p.samples_per_s) >= consumption_per_s]
    reach = beyond if not (measured_reach or poor) else []
    notes = (["kappa held at 0 (two points)"] if len(ws) == 2 else []) + (
        [f"poor fit (relative RMSE {rmse:.0%}): no equilibrium predicted from it"] if poor else [])
    return ScalingFit(
        track=track, format=fmt, lam_per_s=lam, sigma=sigma, kappa=kappa, measured_workers=ws, rel_rmse=rmse,
        lam_ci95=None if boot is None else interval(boot[:, 0]),
        sigma_ci95=None if boot is None else interval(boot[:, 1]),
        kappa_ci95=None if boot is None else interval(boot[:, 2]),
        note="; ".join(notes) or None, predicted=predicted, flow_equilibrium_predicted=reach[0] if reach else None,
    )
