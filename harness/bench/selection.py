"""The Zero-Waste experiment: many noisy samples vs few curated ones, trained to the same accuracy target.

A real, small experiment on this CPU: logistic regression (numpy, mini-batch SGD) on seeded synthetic
two-class Gaussian data whose training labels are wrong at a rate set by the label quality (systematically:
missed positives). Curation drops the `filter_ratio` share of samples a probe model (one epoch on the
pool) finds least consistent with their labels; the probe's pass is counted as work. Each row records
accuracy on clean test labels, samples and bytes processed, wall time and energy: measured by a meter
callback, or wall time x the assumed CPU power (labelled as such).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from feedtax.model.assumptions import load as load_assumptions
from feedtax.results.audits import SelectionConfig, SelectionResult, SelectionRow
from feedtax.results.projections import Assumptions

# The lab's "Label Quality (Low -> Expert)" slider as flip rates: a design choice of this experiment.
LABEL_FLIP_RATE = {"low": 0.30, "medium": 0.15, "high": 0.05, "expert": 0.01}


CONFIGS = {
    "ci": SelectionConfig(),
    "full": SelectionConfig(pool_samples=1_000_000, curated_samples=10_000, test_samples=20_000, n_features=64,
                            filter_ratios=[0.0, 0.3, 0.6, 0.9]),
}


def make_data(rng: np.random.Generator, n: int, d: int, separation: float, direction: np.ndarray):
    """n samples of two Gaussian classes whose means are `separation` apart along `direction`."""
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 1.0, (n, d)).astype(np.float32)
    x += ((y - 0.5) * separation)[:, None].astype(np.float32) * direction[None, :]
    return x, y


def flip(rng: np.random.Generator, y: np.ndarray, rate: float) -> np.ndarray:
    """Systematic label noise: `rate` of all labels wrong, every error a positive labelled negative
    (annotators missing the positive class), which biases a model where symmetric noise would cancel."""
    positive_rate = min(1.0, rate * y.size / max(1, int(y.sum())))
    mask = (y == 1) & (rng.random(y.size) < positive_rate)
    return np.where(mask, 0, y)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _epoch(w: np.ndarray, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, batch: int, lr: float) -> None:
    order = rng.permutation(len(y))
    for start in range(0, len(y), batch):
        idx = order[start:start + batch]
        xb = np.hstack([x[idx], np.ones((len(idx), 1), np.float32)])
        grad = xb.T @ (_sigmoid(xb @ w) - y[idx]) / len(idx)
        w -= lr * grad


def _accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(((x @ w[:-1] + w[-1] > 0).astype(int) == y).mean())


def train(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, cfg: SelectionConfig,
          rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """SGD until the clean test accuracy reaches the target or max_epochs; returns weights, epochs, accuracy."""
    w = np.zeros(x.shape[1] + 1)
    acc = _accuracy(w, x_test, y_test)
    epochs = 0
    while epochs < cfg.max_epochs and acc < cfg.target_accuracy:
        _epoch(w, x, y, rng, cfg.batch_size, cfg.learning_rate)
        epochs += 1
        acc = _accuracy(w, x_test, y_test)
    return w, epochs, acc


def curate(x: np.ndarray, y: np.ndarray, ratio: float, cfg: SelectionConfig, rng: np.random.Generator):
    """Drop the `ratio` share of samples with the highest loss under a one-epoch probe; returns kept x, y."""
    if ratio <= 0:
        return x, y
    w = np.zeros(x.shape[1] + 1)
    _epoch(w, x, y, rng, cfg.batch_size, cfg.learning_rate)
    p = _sigmoid(x @ w[:-1] + w[-1])
    loss = -(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
    keep = np.argsort(loss, kind="stable")[: max(1, int(round(len(y) * (1 - ratio))))]
    return x[keep], y[keep]


def run(cfg: SelectionConfig = CONFIGS["ci"], *, meter: Callable[[], float] | None = None,
        meter_name: str = "meter", assumptions: Assumptions | None = None) -> SelectionResult:
    """Every label quality x filter ratio on the noisy pool, plus the few curated (expert-labelled) samples.

    meter: returns cumulative joules (e.g. a RAPL counter); without it, energy = wall time x cpu_active_power_w.
    """
    from math import erf, sqrt

    a = assumptions or load_assumptions()
    power = a.sourced("cpu_active_power_w")
    rng = np.random.default_rng(cfg.seed)
    direction = rng.normal(size=cfg.n_features).astype(np.float32)
    direction /= np.linalg.norm(direction)
    x_pool, y_pool = make_data(rng, cfg.pool_samples, cfg.n_features, cfg.class_separation, direction)
    x_test, y_test = make_data(rng, cfg.test_samples, cfg.n_features, cfg.class_separation, direction)
    bytes_per_sample = x_pool.itemsize * cfg.n_features
    bayes = 0.5 * (1 + erf(cfg.class_separation / 2 / sqrt(2)))

    def one(scenario: str, quality: str, ratio: float, n: int) -> SelectionRow:
        r = np.random.default_rng([cfg.seed, n, int(ratio * 1000), list(LABEL_FLIP_RATE).index(quality)])
        x, y_clean = x_pool[:n], y_pool[:n]
        y = flip(r, y_clean, LABEL_FLIP_RATE[quality])
        e0, t0 = (meter() if meter else None), time.perf_counter()
        xk, yk = curate(x, y, ratio, cfg, r)
        _, epochs, acc = train(xk, yk, x_test, y_test, cfg, r)
        wall = time.perf_counter() - t0
        probe = n if ratio > 0 else 0
        processed = probe + epochs * len(yk)
        if meter:
            energy, source = meter() - e0, f"measured:{meter_name}"
        else:
            energy, source = wall * power.value, f"estimated: wall time x {power.source}"
        return SelectionRow(scenario=scenario, label_quality=quality, flip_rate=LABEL_FLIP_RATE[quality],
                            filter_ratio=ratio, pool_samples=n, kept_samples=len(yk), epochs=epochs,
                            samples_processed=processed, bytes_processed=processed * bytes_per_sample, accuracy=acc,
                            reached_target=acc >= cfg.target_accuracy, wall_s=wall, energy_j=energy,
                            energy_source=source)

    rows = [one("many noisy", q, f, cfg.pool_samples) for q in cfg.label_qualities for f in cfg.filter_ratios]
    rows.append(one("few curated", "expert", 0.0, cfg.curated_samples))
    return SelectionResult(config=cfg, bayes_accuracy=bayes, rows=rows)
