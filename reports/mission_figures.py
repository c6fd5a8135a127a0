"""The mission instruments: TransferTimeRadar, SneakernetCrossoverPlot, EnergyRadar, IngestionWaterfall.

Each takes a results model (feedtax.results.audits: GravityResult, Ledger; feedtax.results.projections:
Projection) and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from feedtax.reports.common import duration, human, log_axis, plain
from feedtax.results.audits import GravityResult, Ledger  # noqa: E402
from feedtax.results.projections import Projection  # noqa: E402
from feedtax.vocabulary import AXES, HALF_EARTH_KM, SECONDS_PER_HOUR  # noqa: E402

TRACK_COLORS = {"cloud": "#1f77b4", "edge": "#d62728", "mobile": "#2ca02c", "tiny": "#9467bd"}


def size_label(nbytes: int) -> str:
    """A dataset size in the largest decimal unit it reaches: 10 GB, 1 PB."""
    for unit, scale in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes} B"


def _radar_axes(fig: plt.Figure, labels: list[str]):
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False)
    ax = fig.add_subplot(111, polar=True)
    ax.set_xticks(angles, labels)
    return ax, np.append(angles, angles[0])


def transfer_time_radar(g: GravityResult) -> plt.Figure:
    """One spoke per dataset size: log10 hours by network (per link) and by sneakernet, at the audit's distance."""
    sizes = sorted({t.dataset_bytes for t in g.tiers})
    fig = plt.figure(figsize=(7, 6))
    ax, angles = _radar_axes(fig, [size_label(s) for s in sizes])
    series = {f"network {link:g} Gbit/s": [next(t.network_s for t in g.tiers
                                                if t.dataset_bytes == s and t.link_gbps == link) for s in sizes]
              for link in sorted({t.link_gbps for t in g.tiers})}
    series[f"sneakernet, {g.tiers[0].distance_km:,.0f} km"] = [
        next(t.sneakernet_s for t in g.tiers if t.dataset_bytes == s) for s in sizes]
    floor = min(min(v) for v in series.values()) / SECONDS_PER_HOUR
    for name, secs in series.items():
        r = np.log10(np.array(secs) / SECONDS_PER_HOUR) - np.log10(floor) + 0.2
        ax.plot(angles, np.append(r, r[0]), lw=2, ls="--" if name.startswith("sneakernet") else "-", label=name)
    ticks = np.arange(0, ax.get_ylim()[1] + 1)
    ax.set_yticks(ticks + 0.2, [duration(floor * 10**k * SECONDS_PER_HOUR) for k in ticks], fontsize=8)
    ax.set_title("Hours to move each dataset, network or drives (log scale) — TransferTimeRadar", fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    fig.tight_layout()
    return fig


def sneakernet_crossover(g: GravityResult) -> plt.Figure:
    """Time vs distance per dataset size: network (flat, per link) vs sneakernet (rising); crossovers marked and
    named in the legend, the distance axis ending within half the Earth's circumference."""
    speed = g.inputs["truck_speed_km_per_h"].value
    handling_s = g.inputs["shipping_handling_h"].value * SECONDS_PER_HOUR
    crossings = [t.crossover_km for t in g.tiers if t.crossover_km is not None and t.crossover_km <= HALF_EARTH_KM]
    far = min(max(3 * g.tiers[0].distance_km, 1.3 * max(crossings, default=0.0)), HALF_EARTH_KM)
    d = np.linspace(0, far, 200)
    fig, ax = plt.subplots(figsize=(9, 5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len({t.dataset_bytes for t in g.tiers})))
    for color, size in zip(colors, sorted({t.dataset_bytes for t in g.tiers}), strict=True):
        rows = [t for t in g.tiers if t.dataset_bytes == size]
        fixed = rows[0].write_s + rows[0].read_s + handling_s
        where = []
        for t, ls in zip(rows, (":", "-.", "--"), strict=False):  # one style per link
            ax.axhline(t.network_s / SECONDS_PER_HOUR, color=color, ls=ls, lw=1)
            if t.crossover_km is not None and t.crossover_km <= far:
                ax.plot([t.crossover_km], [t.network_s / SECONDS_PER_HOUR], "o", color=color)
                where.append(f"up to {t.crossover_km:,.0f} km @ {t.link_gbps:g}G")
            elif t.crossover_km is not None:
                where.append(f"anywhere on Earth @ {t.link_gbps:g}G")
        ax.plot(d, (fixed + d / speed * SECONDS_PER_HOUR) / SECONDS_PER_HOUR, color=color, lw=2,
                label=f"{size_label(size)}" + (f": drives win {', '.join(where)}" if where else ""))
    log_axis(ax, "y")
    ax.set_xlim(0, far)
    ax.set_xlabel("shipping distance (km)")
    ax.set_ylabel("hours (log)")
    ax.set_title("Hours to move a dataset by shipping distance: drives (solid) against the network (flat: dotted\n"
                 "10 Gbit/s, dash-dot 100 Gbit/s); dots = crossover — SneakernetCrossoverPlot", fontsize=9, pad=16)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def energy_radar(ledger: Ledger) -> plt.Figure:
    """Per track, log10 pJ per unit of work on each axis: compute (MAC), memory, storage, network, radio."""
    fig = plt.figure(figsize=(7, 6))
    ax, angles = _radar_axes(fig, list(AXES))
    for t in ledger.tracks:
        pj = [sum(r.joules for r in t.rows if r.axis == axis) * 1e12 for axis in AXES]
        r = np.log10(np.maximum(pj, 1.0))
        ax.plot(angles, np.append(r, r[0]), lw=2, color=TRACK_COLORS.get(t.track),
                label=f"{plain(t.track)} (move/compute {human(t.move_over_compute)})")
        ax.fill(angles, np.append(r, r[0]), color=TRACK_COLORS.get(t.track), alpha=0.08)
    ax.set_title("Energy per unit of work by axis, log10 pJ (0 = none) — EnergyRadar", fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.4, 1.1), fontsize=8)
    fig.tight_layout()
    return fig


def ingestion_waterfall(projections: Mapping[str, Projection], disk_mb_per_s: float | None = None,
                        network_mb_per_s: Mapping[str, tuple[float, str]] | None = None) -> plt.Figure:
    """Per track, in samples/s of the headline format: this machine's disk, the mission's network link (where
    its data crosses one), the target's read, decode and transform stages (the slowest one outlined), and
    the rate the target's compute consumes. The title names the verdict's binding constraint, which may be no
    stage of the pipeline (memory, energy)."""
    tracks = list(projections)
    fig, axes = plt.subplots(1, len(tracks), figsize=(3.9 * len(tracks) + 0.5, 4.8), squeeze=False)
    for ax, track in zip(axes[0], tracks, strict=True):
        p = projections[track]
        per_sample_bytes = p.inputs["sample_size"].value
        stages: dict[str, tuple[float, str | None]] = {}
        if disk_mb_per_s:
            stages["this disk"] = (disk_mb_per_s * 1e6 / per_sample_bytes, None)
        if network_mb_per_s and track in network_mb_per_s:
            rate, label = network_mb_per_s[track]
            stages[label] = (rate * 1e6 / per_sample_bytes, None)
        stages.update({"target read": (p.pipeline.read_rate_per_second, "read"),
                       "decode": (p.pipeline.decode_rate_per_second, "decode"),
                       "transform": (p.pipeline.transform_rate_per_second, "transform")})
        x = np.arange(len(stages) + 1)
        bars = ax.bar(x[:-1], [v for v, _ in stages.values()], color=TRACK_COLORS.get(track), alpha=0.6)
        ax.bar(x[-1], p.pipeline.required_rate_per_second, color="white", edgecolor="black", hatch="//")
        for bar, (_, key) in zip(bars, stages.values(), strict=True):
            if key == p.pipeline.bottleneck_stage:
                bar.set_edgecolor("black")
                bar.set_linewidth(2.5)
                ax.annotate("slowest stage", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                            va="bottom", fontsize=8, weight="bold")
        values = [v for v, _ in stages.values()] + [p.pipeline.required_rate_per_second]
        log_axis(ax, "y")
        ax.set_ylim(min(values) / 10, max(values) * 10)
        ax.set_xticks(x, [*map(plain, stages), "compute needs"], fontsize=8, rotation=90)
        ax.set_ylabel(f"samples/s ({per_sample_bytes:,.0f}-byte samples, log)", fontsize=8)
        ax.set_title(f"{plain(track)} ({plain(p.format)}): {plain(p.verdict)}\nbinding constraint: "
                     f"{plain(p.binding_constraint)}", fontsize=8)
    fig.suptitle("Each stage's rate against what compute consumes, per mission — IngestionWaterfall", fontsize=11)
    fig.tight_layout()
    return fig
