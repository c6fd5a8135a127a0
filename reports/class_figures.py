"""The class report's figures: the spread of the class's submissions as boxes with every run a dot.

Each function takes rows queried from the class database (dicts) and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from feedtax.reports.common import log_axis, plain
from feedtax.vocabulary import FORMAT_COLORS, FORMATS, TRACKS  # noqa: E402


def order(values, known) -> list:
    """The distinct values, known ones first in their canonical order, then the rest sorted."""
    present = list(dict.fromkeys(values))
    return [v for v in known if v in present] + sorted(v for v in present if v not in known)


def _box_strip(ax, groups: list[tuple[str, np.ndarray, np.ndarray, str]], log: bool = True) -> None:
    """Boxes (median, IQR, whiskers to 1.5 IQR) with every submission as a jittered dot; red dots are outliers."""
    rng = np.random.default_rng(0)
    data = [g[1] for g in groups]
    bp = ax.boxplot(data, positions=range(len(groups)), widths=0.6, showfliers=False, patch_artist=True,
                    medianprops={"color": "black"})
    for patch, g in zip(bp["boxes"], groups, strict=True):
        patch.set_facecolor(g[3])
        patch.set_alpha(0.35)
    for i, (_, vals, flags, color) in enumerate(groups):
        xs = i + rng.uniform(-0.18, 0.18, vals.size)
        ax.scatter(xs[~flags], vals[~flags], s=10, color=color, edgecolor="black", linewidth=0.3, zorder=3)
        ax.scatter(xs[flags], vals[flags], s=30, color="red", marker="D", edgecolor="black", linewidth=0.5, zorder=4)
    ax.set_xticks(range(len(groups)), [f"{g[0]}\nn={g[1].size}" for g in groups], fontsize=8)
    if log:
        log_axis(ax, "y")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        lo, hi = ax.get_ylim()
        if hi / max(lo, 1e-300) < 30:  # under ~1.5 decades: label the 2s and 5s too
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if f"{v:.0e}"[0] in "25" else ""))
        else:
            ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="y", alpha=0.3)


def decode_figure(rows: list[dict], flagged: set, profiles: list[str]) -> plt.Figure:
    """Per track: decode samples/s (cold cache, each run's median) per format across submissions."""
    tracks = order((r["track"] for r in rows), TRACKS)
    ncols = 2 if len(tracks) > 1 else 1
    nrows = (len(tracks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.6 * nrows + 0.6), squeeze=False)
    for ax, track in zip(axes.flat, tracks, strict=False):
        groups = []
        mine = [r for r in rows if r["track"] == track]
        for fmt in order((r["format"] for r in mine), FORMATS):
            for prof in profiles:
                sel = [r for r in mine if r["format"] == fmt and r["profile"] == prof]
                if sel:
                    label = plain(fmt) if len(profiles) == 1 else f"{plain(fmt)}\n({plain(prof)})"
                    groups.append((label, np.array([r["value"] for r in sel]),
                                   np.array([(r["run_id"], track, fmt) in flagged for r in sel]),
                                   FORMAT_COLORS.get(fmt, "#555555")))
        _box_strip(ax, groups)
        runs = len({r["run_id"] for r in mine})
        ax.set_title(f"{plain(track)}: decode, cold cache ({runs} submissions)", fontsize=10)
        ax.set_ylabel("samples/s per process (log)")
    for ax in list(axes.flat)[len(tracks):]:
        ax.set_visible(False)
    fig.suptitle("Decode rate per format across the class (dots: submissions; red diamonds: outliers)", fontsize=11)
    fig.tight_layout()
    return fig


def feeding_figure(rows: list[dict]) -> plt.Figure:
    """Per track: feeding tax vs DataLoader workers, median across submissions per format, IQR band, dots per run."""
    tracks = order((r["track"] for r in rows), TRACKS)
    ncols = 2 if len(tracks) > 1 else 1
    nrows = (len(tracks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.4 * nrows + 0.6), squeeze=False)
    for ax, track in zip(axes.flat, tracks, strict=False):
        mine = [r for r in rows if r["track"] == track]
        for fmt in order((r["format"] for r in mine), FORMATS):
            by_w: dict[int, list[float]] = defaultdict(list)
            for r in mine:
                if r["format"] == fmt:
                    by_w[int(r["num_workers"])].append(float(r["feeding_tax"]))
            ws = sorted(by_w)
            color = FORMAT_COLORS.get(fmt, "#555555")
            q = np.array([np.percentile(by_w[w], [25, 50, 75]) for w in ws])
            ax.plot(ws, q[:, 1] * 100, "-o", color=color, label=plain(fmt), ms=4)
            ax.fill_between(ws, q[:, 0] * 100, q[:, 2] * 100, color=color, alpha=0.15)
            for w in ws:
                ax.scatter([w] * len(by_w[w]), np.array(by_w[w]) * 100, s=6, color=color, alpha=0.5)
        ax.set_ylim(-2, 102)
        ax.set_xticks(sorted({int(r["num_workers"]) for r in mine}))
        ax.set_xlabel("DataLoader workers")
        ax.set_ylabel("feeding tax (% of time waiting)")
        ax.set_title(f"{plain(track)} ({len({r['run_id'] for r in mine})} submissions)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(tracks):]:
        ax.set_visible(False)
    fig.suptitle("Feeding tax vs workers (line: median across submissions; band: IQR)", fontsize=11)
    fig.tight_layout()
    return fig


def disk_figure(rows: list[dict], flagged: set) -> plt.Figure:
    """Sequential read (cold) and write bandwidth per device kind across submissions."""
    kinds = sorted({r["kind"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2 + 0.25 * max(len(kinds) - 3, 0)))
    palette = plt.get_cmap("tab10")
    columns = (("seq_read_mb_per_s_cold", "sequential read, cold cache"),
               ("seq_write_mb_per_s", "sequential write (fsync included)"))
    for ax, (col, title) in zip(axes, columns, strict=True):
        groups = []
        for i, kind in enumerate(kinds):
            sel = [r for r in rows if r["kind"] == kind and r[col] is not None]
            if sel:
                groups.append((plain(kind).replace(" · ", "\n"), np.array([r[col] for r in sel]),
                               np.array([(r["run_id"], col) in flagged for r in sel]), palette(i % 10)))
        _box_strip(ax, groups)
        ax.set_ylabel("MB/s (1e6 B/s, log)")
        ax.set_title(title, fontsize=10)
    fig.suptitle("Disk bandwidth by device kind (filesystem · rot=1: the kernel reports a rotational disk · VM)",
                 fontsize=11)
    fig.tight_layout()
    return fig


def validation_figure(rows: list[dict]) -> plt.Figure:
    """Predicted minus measured feeding tax (percentage points) per track across the class."""
    tracks = order((r["track"] for r in rows), TRACKS)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    groups = [(f"{plain(t)}\n{len({r['run_id'] for r in rows if r['track'] == t})} submissions, rows:",
               np.array([r["error_pp"] for r in rows if r["track"] == t], dtype=float),
               np.zeros(sum(r["track"] == t for r in rows), dtype=bool), "#1f77b4") for t in tracks]
    _box_strip(ax, groups, log=False)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("model - measured (pp)")
    ax.set_title("Model-validation error across the class (each dot: one track x format x workers row)", fontsize=10)
    fig.tight_layout()
    return fig
