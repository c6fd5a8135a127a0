"""One plot function per instrument. Each takes the run's Results and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from feedtax.reports.common import log_axis, plain
from feedtax.results.schema import Results  # noqa: E402
from feedtax.vocabulary import FORMAT_COLORS  # noqa: E402


def format_costs(results: Results) -> plt.Figure:
    """Per track: bytes on disk per sample, and decode samples/s cold and warm (median, IQR bars)."""
    tracks = list(dict.fromkeys(r.track for r in results.formats))
    fig, axes = plt.subplots(len(tracks), 2, figsize=(11, 2.6 * len(tracks) + 0.6), squeeze=False)
    for row, track in zip(axes, tracks, strict=True):
        rows = [r for r in results.formats if r.track == track]
        names = [r.format for r in rows]
        labels = [plain(n) for n in names]
        x = np.arange(len(rows))
        colors = [FORMAT_COLORS.get(n, "#333333") for n in names]

        ax = row[0]
        ax.bar(x, [r.bytes_per_sample for r in rows], color=colors)
        ax.axhline(rows[0].raw_bytes_per_sample, color="black", lw=1, ls="--", label="in-memory size")
        for xi, r in zip(x, rows, strict=True):
            ax.annotate(f"{r.compression_ratio:.2f}x", (xi, r.bytes_per_sample), ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, max(max(r.bytes_per_sample for r in rows), rows[0].raw_bytes_per_sample) * 1.3)
        ax.set_xticks(x, labels)
        ax.set_ylabel("bytes on disk / sample")
        ax.set_title(f"{plain(track)}: size on disk (label: in-memory size / size on disk)", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")

        ax = row[1]
        width = 0.38
        for offset, label, key, alpha in ((-width / 2, "cold cache", "decode_samples_per_s_cold", 1.0),
                                          (width / 2, "warm cache", "decode_samples_per_s_warm", 0.55)):
            dists = [getattr(r, key) for r in rows]
            med = np.array([d.median for d in dists])
            err = np.array([[d.median - d.q1 for d in dists], [d.q3 - d.median for d in dists]])
            ax.bar(x + offset, med, width, yerr=err, color=colors, alpha=alpha, capsize=2,
                   edgecolor="black", linewidth=0.5, label=label)
            for xi, d in zip(x + offset, dists, strict=True):
                if d.unstable:
                    ax.annotate("!", (xi, d.median), ha="center", va="bottom", color="red", fontsize=9, weight="bold")
        log_axis(ax, "y")
        top = max(max(r.decode_samples_per_s_cold.q3, r.decode_samples_per_s_warm.q3) for r in rows)
        ax.set_ylim(top=top * 4)  # headroom for the legend
        ax.set_xticks(x, labels)
        ax.set_ylabel("decode samples/s (log)")
        ax.set_title(f"{plain(track)}: decode throughput, one process (median, IQR; ! = unstable)", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Format costs per track: bytes on disk and decode throughput", fontsize=12)
    fig.tight_layout(h_pad=2.0)  # room between rows: a log axis's end labels reach past its edge
    return fig
