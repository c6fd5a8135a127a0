"""The lab's own instrument: the FeedingTaxGauge of one point, measured or modelled (the report's figures draw whole
sweeps; the lab's sliders pick one point)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from feedtax.reports.common import plain  # noqa: E402


def au_gauge(point) -> plt.Figure:
    """A half-dial from 0 to 100% AU, the feeding tax shaded, the needle at this point's AU; hatched when modelled."""
    fig, ax = plt.subplots(figsize=(3.6, 2.4), subplot_kw={"aspect": "equal"})
    theta = np.linspace(np.pi, 0, 200)
    split = np.pi * (1 - point.au)
    for lo, hi, color in ((np.pi, split, "#2ca02c"), (split, 0, "#d62728")):
        t = np.linspace(lo, hi, 100)
        ax.fill(np.r_[np.cos(t), 0.6 * np.cos(t[::-1])], np.r_[np.sin(t), 0.6 * np.sin(t[::-1])], color=color,
                alpha=0.8 if point.measured else 0.35, hatch=None if point.measured else "//", lw=0)
    ax.plot(np.cos(theta), np.sin(theta), color="black", lw=0.8)
    ax.plot([0, 0.9 * np.cos(split)], [0, 0.9 * np.sin(split)], color="black", lw=2)
    ax.text(0, -0.18, f"AU {point.au:.0%}, feeding tax {point.feeding_tax:.0%}", ha="center", fontsize=9)
    ax.text(0, -0.38, "measured" if point.measured else "modelled (hatched)", ha="center", fontsize=8,
            color="black" if point.measured else "#555555")
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-0.5, 1.1)
    ax.axis("off")
    ax.set_title(f"{plain(point.format)}, {point.num_workers} worker{'s' * (point.num_workers != 1)} — FeedingTaxGauge",
                 fontsize=9)
    fig.tight_layout()
    return fig
