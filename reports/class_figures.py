"""The class report's figures: the spread of the class's submissions as boxes with every run a dot (a group of over
MAX_DOTS runs: its distribution, with dots only for the runs beyond its whiskers).

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


# Up to this many runs a group shows each as a dot; above it the dots merge into one solid bar that says nothing the
# box does not, and cost ~150 bytes of SVG each (1,000 submissions: megabytes): draw the distribution instead.
MAX_DOTS = 300


def summarized(n: int) -> bool:
    """Whether a group of n runs is drawn as its distribution (box, whiskers, density, outliers) rather than dots."""
    return n > MAX_DOTS


def marks(summary: bool, each: str, many: str) -> str:
    """What a figure's dots are, true for the groups it drew: 'each dot: a submission', or, where a group is over
    MAX_DOTS, that such groups are drawn as distributions with only the runs beyond the whiskers as dots."""
    if not summary:
        return f"each dot: {each}"
    return (f"groups of n > {MAX_DOTS}: distribution (box, whiskers at 1.5 IQR, density), dots are {many} beyond the"
            " whiskers only")


def _beyond_whiskers(vals: np.ndarray) -> np.ndarray:
    """Where vals lie outside the whiskers at 1.5 IQR (the ends ax.boxplot draws for the same values)."""
    from matplotlib.cbook import boxplot_stats

    s = boxplot_stats(vals, whis=1.5)[0]
    return (vals < s["whislo"]) | (vals > s["whishi"])


def _density(ax, x: float, vals: np.ndarray, color, log: bool, half_width: float = 0.32) -> None:
    """The group's shape between its whisker ends: a Gaussian kernel density (Scott's bandwidth) of the values, of
    their log10 on a log axis, mirrored about x and widest at half_width."""
    inside = vals[~_beyond_whiskers(vals)].astype(float)
    inside = inside[np.isfinite(inside) & (inside > 0)] if log else inside[np.isfinite(inside)]
    t = np.log10(inside) if log else inside
    if t.size < 2 or np.ptp(t) == 0:
        return
    bw = 1.06 * t.std() * t.size ** -0.2
    grid = np.linspace(t.min(), t.max(), 96)
    dens = np.exp(-0.5 * ((grid[:, None] - t[None, :]) / bw) ** 2).sum(axis=1)
    w = half_width * dens / dens.max()
    ax.fill_betweenx(10 ** grid if log else grid, x - w, x + w, color=color, alpha=0.3, linewidth=0, zorder=1)


def _box_strip(ax, groups: list[tuple[str, np.ndarray, np.ndarray, str]], log: bool = True) -> bool:
    """Boxes (median, IQR, whiskers to 1.5 IQR) per group; red diamonds are the flagged outliers, always drawn.

    A group of up to MAX_DOTS runs shows every run as a jittered dot. A larger one is its distribution: a narrow box
    in its density's shape, and as dots only the runs beyond the whiskers. Returns whether any group was drawn so."""
    rng = np.random.default_rng(0)
    dist = [summarized(g[1].size) for g in groups]
    bp = ax.boxplot([g[1] for g in groups], positions=range(len(groups)), widths=[0.2 if d else 0.6 for d in dist],
                    showfliers=False, patch_artist=True, medianprops={"color": "black"})
    for patch, g, d in zip(bp["boxes"], groups, dist, strict=True):
        patch.set_facecolor("white" if d else g[3])
        patch.set_alpha(0.9 if d else 0.35)
    for i, ((_, vals, flags, color), d) in enumerate(zip(groups, dist, strict=True)):
        if d:
            _density(ax, i, vals, color, log)
            xs = i + rng.uniform(-0.06, 0.06, vals.size)
            dots = _beyond_whiskers(vals) & ~flags
        else:
            xs = i + rng.uniform(-0.18, 0.18, vals.size)
            dots = ~flags
        ax.scatter(xs[dots], vals[dots], s=10, color=color, edgecolor="black", linewidth=0.3, zorder=3)
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
    return any(dist)


def decode_figure(rows: list[dict], flagged: set, profiles: list[str]) -> plt.Figure:
    """Per track: decode samples/s (cold cache, each run's median) per format across submissions."""
    tracks = order((r["track"] for r in rows), TRACKS)
    ncols = 2 if len(tracks) > 1 else 1
    nrows = (len(tracks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.6 * nrows + 0.6), squeeze=False)
    summary = False
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
        summary |= _box_strip(ax, groups)
        runs = len({r["run_id"] for r in mine})
        ax.set_title(f"{plain(track)}: decode, cold cache ({runs} submissions)", fontsize=10)
        ax.set_ylabel("samples/s per process (log)")
    for ax in list(axes.flat)[len(tracks):]:
        ax.set_visible(False)
    fig.suptitle("Decode rate per format across the class\n"
                 f"({marks(summary, 'a submission', 'the submissions')}; red diamonds: outliers)", fontsize=11)
    fig.tight_layout()
    return fig


def feeding_figure(rows: list[dict]) -> plt.Figure:
    """Per track: feeding tax vs DataLoader workers, median across submissions per format, IQR band, a dot per run
    (over MAX_DOTS runs at one worker count: whiskers at 1.5 IQR, and dots only beyond them)."""
    tracks = order((r["track"] for r in rows), TRACKS)
    ncols = 2 if len(tracks) > 1 else 1
    nrows = (len(tracks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.4 * nrows + 0.6), squeeze=False)
    summary = False
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
                vals = np.array(by_w[w]) * 100
                if summarized(vals.size):  # the whiskers, and as dots only the runs beyond them
                    out = _beyond_whiskers(vals)
                    ax.vlines(w, vals[~out].min(), vals[~out].max(), color=color, lw=1, alpha=0.7)
                    summary, vals = True, vals[out]
                ax.scatter([w] * vals.size, vals, s=6, color=color, alpha=0.5)
        ax.set_ylim(-2, 102)
        ax.set_xticks(sorted({int(r["num_workers"]) for r in mine}))
        ax.set_xlabel("DataLoader workers")
        ax.set_ylabel("feeding tax (% of time waiting)")
        ax.set_title(f"{plain(track)} ({len({r['run_id'] for r in mine})} submissions)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(tracks):]:
        ax.set_visible(False)
    dots = ("each dot: a submission" if not summary else
            f"groups of n > {MAX_DOTS} at one worker count: whiskers at 1.5 IQR, dots are the submissions beyond them"
            " only")
    fig.suptitle(f"Feeding tax vs workers (line: median across submissions; band: IQR;\n{dots})", fontsize=11)
    fig.tight_layout()
    return fig


def disk_figure(rows: list[dict], flagged: set, read_title: str = "sequential read, first after writing") -> plt.Figure:
    """Sequential read (each row's read_mb_per_s: the first read after writing, where the store has it) and write
    bandwidth per device kind across submissions; flagged holds (run_id, column) pairs."""
    kinds = sorted({r["kind"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4 + 0.25 * max(len(kinds) - 3, 0)))
    palette = plt.get_cmap("tab10")
    columns = (("read_mb_per_s", read_title), ("seq_write_mb_per_s", "sequential write (fsync included)"))
    summary = False
    for ax, (col, title) in zip(axes, columns, strict=True):
        groups = []
        for i, kind in enumerate(kinds):
            sel = [r for r in rows if r["kind"] == kind and r[col] is not None]
            if sel:
                groups.append((plain(kind).replace(" · ", "\n"), np.array([r[col] for r in sel]),
                               np.array([(r["run_id"], col) in flagged for r in sel]), palette(i % 10)))
        summary |= _box_strip(ax, groups)
        ax.set_ylabel("MB/s (1e6 B/s, log)")
        ax.set_title(title, fontsize=10)
    fig.suptitle("Disk bandwidth by device kind (filesystem · rot=1: the kernel reports a rotational disk · VM)\n"
                 f"({marks(summary, 'a submission', 'the submissions')}; red diamonds: outliers)", fontsize=11)
    fig.tight_layout()
    return fig


def validation_figure(rows: list[dict]) -> plt.Figure:
    """Predicted minus measured feeding tax (percentage points) per track across the class."""
    tracks = order((r["track"] for r in rows), TRACKS)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    groups = [(f"{plain(t)}\n{len({r['run_id'] for r in rows if r['track'] == t})} submissions, rows:",
               np.array([r["error_pp"] for r in rows if r["track"] == t], dtype=float),
               np.zeros(sum(r["track"] == t for r in rows), dtype=bool), "#1f77b4") for t in tracks]
    summary = _box_strip(ax, groups, log=False)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("model - measured (pp)")
    ax.set_title("Model-validation error across the class\n"
                 f"({marks(summary, 'one track x format x workers row', 'the rows')})", fontsize=10)
    fig.tight_layout()
    return fig
