"""How ingestion scales with workers: the flow equilibrium and Gunther's Universal Scalability Law fit.

- flow equilibrium: the smallest measured worker count whose ingestion rate >= the consumer's
  consumption rate (batch / step time); None when no measured count reaches it.
- scaling fit: X(N) = lam N / (1 + sigma (N-1) + kappa N (N-1)) over the measured worker counts >= 1
  (grid over sigma, kappa; lam by least squares), predicted up to MAX_FIT_WORKERS workers, every point
  outside the measured counts marked extrapolated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedtax.results.feeding import ScalingFit, ScalingPoint

MAX_FIT_WORKERS = 32
MAX_FIT_REL_RMSE = 0.10  # a fit further than this from its own points predicts nothing


def flow_equilibrium(ingestion: dict[int, float], consumption_per_s: float) -> int | None:
    """Smallest worker count >= 1 whose ingestion rate >= the consumption rate, or None. With 0 workers
    the main process loads in series with the consumer, so it pays load / (load + step) whatever its rate."""
    ok = [w for w, rate in sorted(ingestion.items()) if w >= 1 and rate >= consumption_per_s]
    return ok[0] if ok else None


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray | float:
    """The Universal Scalability Law's throughput at n workers."""
    n = np.asarray(n, dtype=np.float64)
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def fit_usl(workers: Sequence[int], rates: Sequence[float]) -> tuple[float, float, float, float]:
    """(lam, sigma, kappa, relative RMSE) minimizing relative squared error over a (sigma, kappa)
    grid with lam in closed form; with two points kappa is held at 0 (Amdahl)."""
    n = np.asarray(workers, dtype=np.float64)
    x = np.asarray(rates, dtype=np.float64)
    if n.size < 2 or np.any(n < 1) or np.any(x <= 0):
        raise ValueError("need >= 2 positive rates at worker counts >= 1")
    sigmas = np.concatenate([np.linspace(0, 0.2, 81), np.linspace(0.2, 1, 81)[1:]])
    kappas = np.concatenate([[0.0], np.geomspace(1e-5, 0.5, 80)]) if n.size >= 3 else np.array([0.0])
    s, k = np.meshgrid(sigmas, kappas, indexing="ij")
    f = n / (1 + s[..., None] * (n - 1) + k[..., None] * n * (n - 1))  # [S, K, points]
    g = f / x  # relative: minimize sum((lam f - x)/x)^2 -> lam = sum(g)/sum(g^2)
    lam = g.sum(-1) / (g * g).sum(-1)
    err = ((lam[..., None] * g - 1) ** 2).mean(-1)
    i, j = np.unravel_index(np.argmin(err), err.shape)
    return float(lam[i, j]), float(s[i, j]), float(k[i, j]), float(np.sqrt(err[i, j]))


def scaling_fit(track: str, fmt: str, ingestion: dict[int, float], consumption_per_s: float,
                max_workers: int = MAX_FIT_WORKERS) -> ScalingFit | None:
    """USL fit over worker counts >= 1; None with fewer than two such counts."""
    pts = {w: r for w, r in ingestion.items() if w >= 1 and r > 0}
    if len(pts) < 2:
        return None
    ws = sorted(pts)
    lam, sigma, kappa, rmse = fit_usl(ws, [pts[w] for w in ws])
    grid = range(1, max_workers + 1)
    predicted = [ScalingPoint(num_workers=w, samples_per_s=float(usl(w, lam, sigma, kappa)),
                              extrapolated=not min(ws) <= w <= max(ws)) for w in grid]
    # within the measured range the measurements themselves say where the equilibrium is: the fit
    # only predicts beyond it, and only when no measured count reached it
    measured_reach = any(r >= consumption_per_s for r in pts.values())
    poor = rmse > MAX_FIT_REL_RMSE  # e.g. a slowdown two points cannot follow with kappa held at 0
    beyond = [p.num_workers for p in predicted if p.num_workers > max(ws) and p.samples_per_s >= consumption_per_s]
    reach = beyond if not (measured_reach or poor) else []
    notes = (["kappa held at 0 (two points)"] if len(ws) == 2 else []) + (
        [f"poor fit (relative RMSE {rmse:.0%}): no equilibrium predicted from it"] if poor else [])
    return ScalingFit(
        track=track, format=fmt, lam_per_s=lam, sigma=sigma, kappa=kappa, measured_workers=ws, rel_rmse=rmse,
        note="; ".join(notes) or None, predicted=predicted, flow_equilibrium_predicted=reach[0] if reach else None,
    )
