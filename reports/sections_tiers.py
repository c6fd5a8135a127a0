"""Disk tiers, measured (`feedtax sweep --disk-tier`): a table per storage tier swept (each AU with its 95% interval),
the tiers this machine cannot emulate with the reason, and the Lock's answer in words. Nothing when the run swept no
tier."""

from __future__ import annotations

from html import escape

from feedtax.reports.common import WIDE_LEGEND, pct_ci, table
from feedtax.results.schema import Results
from feedtax.results.tiers import StorageTier, TierSweep
from feedtax.vocabulary import GAP_PP

INTRO = ("<p>Every shard read of feedtax's tuned loader held to a storage tier's bandwidth and per-request latency by "
         "one token bucket shared by all workers (the bytes come from the page cache and are not changed); "
         "<i>read MB/s</i> is the rate measured at the reader. A tier faster than this machine's own disk cannot be "
         "made by holding reads back, so it is not swept. {disk}</p>")
ANSWER_INTRO = ("<p>The Lock: from JSON to Protobuf, or to a faster disk? Both measured here, at each worker count; a "
                "difference of {gap:g} pp or less is within a rerun's noise.</p>")


def disk_tiers(results: Results) -> list[str]:
    """The tiers' tables, the unreachable tiers and the answers; [] without results.disk_tiers."""
    d = results.disk_tiers
    if d is None:
        return []
    disk = (f"This disk reads {d.disk_seq_read_mb_per_s:,.0f} MB/s, {escape(d.disk_source)}."
            if d.disk_seq_read_mb_per_s is not None else "")
    parts = ["<h2 id='disk-tiers'>Disk tiers, measured: the format or the disk?</h2>", INTRO.format(disk=disk)]
    for sweep in d.tiers:
        parts.append(_tier(sweep))
    if any(r.au_ci95 is not None for sweep in d.tiers for r in sweep.rows):
        parts.append(f"<p>{escape(WIDE_LEGEND)}.</p>")
    parts.append(ANSWER_INTRO.format(gap=GAP_PP))
    parts.append("<ul>" + "".join(f"<li>{escape(a.sentence())}</li>" for a in d.lock2) + "</ul>")
    return parts


def _label(t: StorageTier) -> str:
    return (f"{escape(t.name)}: {escape(t.label or t.name)}, {t.bandwidth_bytes_per_s / 1e6:,.0f} MB/s and "
            f"{t.latency_s * 1e3:g} ms per request")


def _tier(sweep: TierSweep) -> str:
    """One tier: its sources and its rows, or why it was not swept."""
    t = sweep.tier
    sources = f"<p class='note'>bandwidth {escape(t.source)}; latency {escape(t.latency_source or 'not given')}</p>"
    if not sweep.reachable:
        return f"<h3>{_label(t)}</h3><p class='warn'>{escape(sweep.reason or 'not swept')}: not swept.</p>{sources}"
    rows = [[r.format, r.num_workers, f"{r.ingestion_samples_per_s:,.0f}", f"{r.samples_per_s:,.0f}",
             pct_ci(r.au, r.au_ci95, r.au_ci_wide, 0), "—" if r.steps is None else r.steps, f"{r.wait_s:.3f}",
             "—" if r.read_bytes_per_s is None else f"{r.read_bytes_per_s / 1e6:,.1f}", r.read_requests]
            for r in sweep.rows]
    return (f"<h3>{_label(t)}</h3>" + sources
            + table(["format", "workers", "loader alone samples/s", "fed samples/s", "AU", "steps", "wait s",
                     "read MB/s", "read requests"], rows))
