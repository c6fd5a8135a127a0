"""Feeding-tax instruments: FeedingTaxGauge, MFU_vs_Ingestion_Plot, the scaling fit and the wait breakdown.

Inputs are the sweep's rows (feedtax.results.feeding.LoaderRow) and FeedingSummary objects (or their dicts
from results.json); each function returns a matplotlib Figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from feedtax.reports.common import log_axis, plain
from feedtax.vocabulary import FORMAT_COLORS  # noqa: E402

WORKER_MARKERS = {0: "o", 1: "s", 2: "^", 4: "D", 8: "v", 16: "P", 32: "X"}


def _get(obj, name):
    """A field of a model or of its dict from results.json (None where an older file lacks it)."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def feeding_tax_gauge(rows) -> plt.Figure:
    """Feeding tax (% of wall time the consumer waits) per format x worker count, one panel per track."""
    tracks = list(dict.fromkeys(_get(r, "track") for r in rows))
    fig, axes = plt.subplots(1, max(1, len(tracks)), figsize=(5.5 * max(1, len(tracks)), 3.6), squeeze=False)
    for ax, track in zip(axes[0], tracks, strict=False):
        mine = [r for r in rows if _get(r, "track") == track]
        fmts = list(dict.fromkeys(_get(r, "format") for r in mine))
        workers = sorted({_get(r, "num_workers") for r in mine})
        width = 0.8 / max(1, len(fmts))
        x = np.arange(len(workers))
        for i, fmt in enumerate(fmts):
            by_w = {_get(r, "num_workers"): r for r in mine if _get(r, "format") == fmt}
            tax = [100 * _get(by_w[w], "feeding_tax") if w in by_w else np.nan for w in workers]
            bars = ax.bar(x + (i - (len(fmts) - 1) / 2) * width, tax, width, label=plain(fmt),
                          color=FORMAT_COLORS.get(fmt, "#333333"))
            for b, w in zip(bars, workers, strict=True):
                if w in by_w and _get(by_w[w], "unstable"):
                    ax.annotate("!", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                                color="red", fontsize=8, weight="bold")
        ax.set_xticks(x, [str(w) for w in workers])
        ax.set_xlabel("DataLoader workers")
        ax.set_ylabel("feeding tax (% of wall time waiting)")
        ax.set_ylim(0, 100)
        step = _get(mine[0], "step_s")
        ax.set_title(f"{plain(track)}: feeding tax, step {step * 1e3:.1f} ms ({plain(_get(mine[0], 'consumer'))})",
                     fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("Feeding tax per format and worker count, measured (! = unstable step times) — FeedingTaxGauge",
                 fontsize=11)
    fig.tight_layout()
    return fig


def mfu_vs_ingestion(rows, summary) -> plt.Figure:
    """MFU (or AU where there is no GPU / no peak) vs the loader's ingestion rate; the consumer's
    consumption rate and each format's flow equilibrium marked."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    track = _get(summary, "track")
    mine = [r for r in rows if _get(r, "track") == track]
    use_mfu = bool(mine) and all(_get(r, "mfu") is not None for r in mine)
    label = "MFU" if use_mfu else "AU (no GPU peak: accelerator utilization)"
    eq = _get(summary, "flow_equilibrium")
    for fmt in dict.fromkeys(_get(r, "format") for r in mine):
        pts = sorted((r for r in mine if _get(r, "format") == fmt), key=lambda r: _get(r, "num_workers"))
        xs = [_get(r, "ingestion_samples_per_s") for r in pts]
        ys = [_get(r, "mfu") if use_mfu else _get(r, "au") for r in pts]
        color = FORMAT_COLORS.get(fmt, "#333333")
        ax.plot(xs, ys, "-", color=color, label=plain(fmt))
        for r, x, y in zip(pts, xs, ys, strict=True):  # the worker count as the marker: no labels to collide
            w = _get(r, "num_workers")
            ax.plot([x], [y], marker=WORKER_MARKERS.get(w, "o"), ms=7, color=color, mec="black", mew=0.5)
            if eq.get(fmt) == w:
                ax.plot([x], [y], marker="*", ms=16, color=color, mec="black", mfc="none")
    seen = sorted({_get(r, "num_workers") for r in mine})
    markers = [plt.Line2D([], [], ls="", marker=WORKER_MARKERS.get(w, "o"), color="#777777", mec="black",
                          label=f"{w} worker{'s' if w != 1 else ''}") for w in seen]
    need = _get(summary, "consumption_samples_per_s")
    if np.isfinite(need):
        ax.axvline(need, color="black", ls="--", lw=1, label=f"consumer needs {need:,.0f}/s")
    log_axis(ax, "x")
    ax.set_xlabel("ingestion rate, loader alone (samples/s, log)")
    ax.set_ylabel(label)
    ax.set_ylim(0, 1.05 if not use_mfu else None)
    ax.set_title(f"{plain(track)}: {label.split(' ')[0]} against the loader's rate (ringed star = flow equilibrium)",
                 fontsize=10)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + markers, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def scaling(rows, summary, cores: int | None = None) -> plt.Figure | None:
    """Ingestion (loader alone) vs workers, log-log (linear scaling is a straight line): the measured points with
    their 95% intervals and each format's USL fit, solid over the measured counts and dashed where extrapolated,
    drawn only where its own 95% band (shaded) is narrow enough to read; the consumer's rate, and this machine's
    core count (past it workers share cores, which no fit over fewer points can know). None without fits."""
    fits = _get(summary, "fits")
    if not fits:
        return None
    track = _get(summary, "track")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for fit in fits:
        fmt = _get(fit, "format")
        color = FORMAT_COLORS.get(fmt, "#333333")
        mine = sorted(((_get(r, "num_workers"), _get(r, "ingestion_samples_per_s"),
                        _get(r, "ingestion_samples_per_s_ci95")) for r in rows
                       if _get(r, "track") == track and _get(r, "format") == fmt and _get(r, "num_workers") >= 1),
                      key=lambda t: t[0])
        err = np.array([[x - ci[0], ci[1] - x] if ci else [0, 0] for _, x, ci in mine]).T
        ax.errorbar([w for w, _, _ in mine], [x for _, x, _ in mine], yerr=err, fmt="o", color=color, ms=4,
                    capsize=2, lw=1, label=f"{plain(fmt)} measured")
        curve = [(_get(p, "num_workers"), _get(p, "samples_per_s"), _get(p, "ci95")) for p in _get(fit, "predicted")
                 if _get(p, "informative")]
        lo, hi = min(_get(fit, "measured_workers")), max(_get(fit, "measured_workers"))
        inside = [(w, x) for w, x, _ in curve if lo <= w <= hi]
        if len(inside) > 1:
            ax.plot(*zip(*inside, strict=True), "-", color=color, lw=1)
        label = f"{plain(fmt)} USL, extrapolated" + (" (poor fit)" if "poor fit" in (_get(fit, "note") or "") else "")
        for part in ([(w, x) for w, x, _ in curve if w <= lo], [(w, x) for w, x, _ in curve if w >= hi]):
            if len(part) > 1:  # below and beyond the measured counts, each joined to the fit's end there
                ax.plot(*zip(*part, strict=True), "--", color=color, lw=1, label=label)
                label = None
        band = [(w, ci) for w, _, ci in curve if ci]
        if len(band) > 1:
            ax.fill_between([w for w, _ in band], [ci[0] for _, ci in band], [ci[1] for _, ci in band],
                            color=color, alpha=0.15, lw=0)
    need = _get(summary, "consumption_samples_per_s")
    if np.isfinite(need):
        ax.axhline(need, color="black", ls=":", lw=1, label=f"consumer needs {need:,.0f}/s")
    if cores:
        ax.axvline(cores, color="#555555", ls="-.", lw=1, label=f"{cores} cores on this machine")
    ax.set_xscale("log", base=2)
    log_axis(ax, "y")
    ax.set_xlabel("DataLoader workers (log)")
    ax.set_ylabel("ingestion, loader alone (samples/s, log)")
    ax.set_title(f"{plain(track)}: scaling (USL fit, shaded 95% band; dashed = extrapolated)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def wait_breakdown(summary) -> plt.Figure:
    """Where the wait comes from: DS-Analyzer's rates per format (fetch, prep, in-memory ceiling,
    consumer), the binding one hatched; and the per-batch transport cost as its own bar."""
    parts = _get(summary, "breakdown")
    transport = _get(summary, "transport")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1.2]})
    stages = [("fetch", "fetch_samples_per_s", "#8c564b"), ("prep", "prep_samples_per_s", "#e377c2"),
              ("transport", "in_memory_samples_per_s", "#17becf"), ("compute", "consumer_samples_per_s", "#bcbd22")]
    width = 0.2
    x = np.arange(len(parts))
    for i, (name, key, color) in enumerate(stages):
        vals = [_get(p, key) or np.nan for p in parts]
        bars = ax.bar(x + (i - 1.5) * width, vals, width, color=color, label=name)
        for b, p in zip(bars, parts, strict=True):
            if _get(p, "binding") == name:
                b.set_hatch("//")
                b.set_edgecolor("black")
            if name == "fetch" and _get(p, key) is None:  # no bar: say why, inside the axes (log scale)
                why = "hidden" if _get(p, "cache_evicted") else "not evicted"
                ax.annotate(why, (b.get_x() + width / 2, 0.02), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=8, rotation=90)
    ax.set_xticks(x, [f"{plain(_get(p, 'format'))}\n@{_get(p, 'num_workers')}w" for p in parts])
    ax.set_xlim(-0.5, len(parts) - 0.5)  # a missing (NaN) bar does not widen the axes: keep every slot
    log_axis(ax, "y")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 4)  # head room for the legend
    ax.set_ylabel("samples/s (log)")
    ax.set_title(f"{plain(_get(summary, 'track'))}: stage rates (hatched = binds)", fontsize=10)
    ax.legend(fontsize=8, ncols=4, loc="upper left")
    if transport is not None:
        worker = _get(transport, "worker_s_per_batch")
        bars = [("0 workers:\nmake batch", _get(transport, "in_process_s_per_batch"), "#aaaaaa")]
        if worker is not None:  # older results files measured only the two waits
            bars.append(("1 worker:\nfull speed", worker, "#17becf"))
        bars.append(("1 worker: wait\nper step", _get(transport, "transport_s_per_batch"), "#1f77b4"))
        ax2.bar([b[0] for b in bars], [b[1] * 1e3 for b in bars], color=[b[2] for b in bars])
        ax2.tick_params(axis="x", labelsize=8)
        ax2.set_ylabel("ms per batch")
        ax2.set_title(f"DataLoader transport, ready data\n({_get(transport, 'batch_bytes'):,} B/batch)", fontsize=10)
    else:
        ax2.set_axis_off()
    fig.tight_layout()
    return fig
