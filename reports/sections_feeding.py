"""Part 2 of the run report, the Feeding Tax Solver: the DataLoader sweep, where the wait comes from, and the
harness's own overhead. Each function returns the section's HTML parts, or none when the run has no sweep."""

from __future__ import annotations

from html import escape

from feedtax.reports import sections_loaders, text
from feedtax.reports.common import WIDE_LEGEND, figure, fit_reach, pct, pct_ci, table, with_ci
from feedtax.results.feeding import VS_PLAIN_TARGET, decode_share_with_one_copy
from feedtax.results.schema import Results
from feedtax.vocabulary import OVERHEAD_TARGET


def feeding(results: Results) -> list[str]:
    """The sweep's figures and tables, one block per track summary, then every sweep point and the overhead."""
    from feedtax.reports import feeding_figures

    tuned = results.tuned_rows()
    if not tuned:
        return []
    plan = results.config.sweep or {}
    parts = [
        "<h2 id='feeding'>2. Feeding tax: the DataLoader sweep</h2>",
        text.FEEDING_INTRO.format(step_ms=plan.get("step_s", 0) * 1e3, batch_size=plan.get("batch_size", "?")),
        figure(feeding_figures.feeding_tax_gauge(tuned)),
    ]
    if results.feeding and results.feeding.datasets:
        parts += _datasets(results.feeding.datasets)
    for summary in results.tuned_summaries():
        parts += _summary(results, summary)
    parts += sections_loaders.loaders(results)
    parts += _sweep_points(results)
    if results.feeding and results.feeding.loader_overhead:
        parts += _overhead(results.feeding.loader_overhead)
    return parts


def _datasets(reads) -> list[str]:
    """--dataset-size: each dataset the sweep read, its first read (the disk's rate on it), how its points read it."""
    rows = [[d.track, d.format, d.bytes_on_disk / 1e9, f"{d.shards:,}", d.dataset_write_s,
             f"{d.first_read_mb_per_s:,.0f}" + ("" if d.first_read_whole else " (part)"), d.windows_bytes / 1e9,
             d.windows_wrapped, d.evictions_failed] for d in reads]
    larger = all(d.larger_than_memory for d in reads)
    return [text.DATASETS.format(memory_gb=reads[0].memory_bytes / 1e9,
                                 fits="" if larger else text.DATASETS_FIT),
            table(["track", "format", "GB on disk", "shards", "written in (s)", "first read (MB/s)",
                   "read by the points (GB)", "wrapped", "not evicted"], rows, left=2)]


def _summary(results: Results, summary) -> list[str]:
    """One track: MFU vs ingestion, the scaling fit, the wait breakdown, equilibrium, transport, MFU peak."""
    from feedtax.reports import feeding_figures

    rows = [r for r in results.tuned_rows() if r.track == summary.track]
    parts = [figure(feeding_figures.mfu_vs_ingestion(rows, summary))]
    if (fig := feeding_figures.scaling(rows, summary, results.host.usable_cores)) is not None:
        parts += [figure(fig), text.FITS_NOTE, _fits(summary)]
    if summary.breakdown:
        parts.append(figure(feeding_figures.wait_breakdown(summary)))
    eq = ", ".join(f"{f}: {'never reached' if n is None else f'{n} worker(s)'}"
                   for f, n in summary.flow_equilibrium.items())
    parts.append(text.EQUILIBRIUM.format(track=escape(summary.track), rate=summary.consumption_samples_per_s,
                                         equilibrium=escape(eq)))
    if summary.transport:
        parts.append(_transport(summary.transport))
    if summary.peak_source:
        source = escape(summary.peak_source)
        parts.append(text.MFU_PEAK.format(source=source, tflops=summary.peak_flop_per_s / 1e12)
                     if summary.peak_flop_per_s else text.MFU_NO_PEAK.format(source=source))
    if summary.nvml_absent_reason:
        parts.append(text.NVML_ABSENT.format(reason=escape(summary.nvml_absent_reason)))
    return parts


def _fits(summary) -> str:
    """The Universal Scalability Law fit per format: parameters with their 95% intervals, quality, and the furthest
    prediction narrow enough to read."""
    return table(
        ["format", "measured workers", "λ (samples/s, 1 worker)", "σ contention", "κ coherency", "rel. RMSE",
         "furthest informative prediction (samples/s)", "flow equilibrium", "note"],
        [[f.format, ", ".join(map(str, f.measured_workers)), with_ci(f.lam_per_s, f.lam_ci95),
          with_ci(f.sigma, f.sigma_ci95, ".3f"), with_ci(f.kappa, f.kappa_ci95, ".4f"), f"{f.rel_rmse:.1%}",
          fit_reach(f), _equilibrium(f, summary), f.note or ""] for f in summary.fits], left=2, text=(-1,))


def _equilibrium(fit, summary) -> str:
    """The flow equilibrium beside a fit: measured where a measured count kept up, else the fit's extrapolation."""
    measured = summary.flow_equilibrium.get(fit.format)
    if measured is not None:
        return f"{measured} (measured)"
    return "never" if fit.flow_equilibrium_predicted is None else f"{fit.flow_equilibrium_predicted} (extrapolated)"


def _transport(t) -> str:
    """The DataLoader's handover cost with ready batches: at full speed (where measured) and behind the consumer."""
    full = "" if t.worker_s_per_batch is None else text.TRANSPORT_FULL_SPEED.format(
        worker_ms=t.worker_s_per_batch * 1e3, in_process_ms=t.in_process_s_per_batch * 1e3,
        ipc_ms=t.ipc_s_per_batch * 1e3, noise=text.TRANSPORT_NO_COST if t.ipc_s_per_batch <= 0 else "")
    return text.TRANSPORT.format(batch_size=t.batch_size, batch_kb=t.batch_bytes / 1e3, full_speed=full,
                                 wait_ms=t.transport_s_per_batch * 1e3)


def _sweep_points(results: Results) -> list[str]:
    """Every sweep point; MFU and NVML idle columns only where some point has them."""
    mfu = any(r.mfu is not None for r in results.loader)
    nvml = any(r.nvml_idle_fraction is not None for r in results.loader)
    parts = [table(
        ["track", "format", "loader", "workers", "batch", "delivered samples/s", "loader alone samples/s",
         "feeding tax", "AU", "AU (MLPerf)", "steps", "step (ms)", "noisy"]
        + (["MFU"] if mfu else []) + (["NVML idle (1 − duty cycle)"] if nvml else []),
        [[r.track, r.format, r.loader, r.num_workers, r.batch_size, f"{r.samples_per_s:,.0f}",
          f"{r.ingestion_samples_per_s:,.0f}", pct_ci(r.feeding_tax, r.feeding_tax_ci95, r.au_ci_wide, 0),
          pct_ci(r.au, r.au_ci95, r.au_ci_wide, 0), pct(r.mlperf_au), "—" if r.steps is None else r.steps,
          f"{r.step_s * 1e3:.2f}", "!" if r.unstable else ""]
         + ([f"{r.mfu:.2%}" if r.mfu is not None else "—"] if mfu else [])
         + ([pct(r.nvml_idle_fraction) if r.nvml_idle_fraction is not None else "—"] if nvml else [])
         for r in results.loader], left=3)]
    if any(r.au_ci95 is not None for r in results.loader):
        parts.append(f"<p>{escape(WIDE_LEGEND)}.</p>")
    if nvml:
        parts.append(text.NVML_IDLE)
    return parts


def _ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}"


def _rate(r: float | None) -> str:
    return "—" if r is None else f"{r:,.0f}"


def _split(o) -> str:
    """One worker's batch time at the amortized batch: decode / copy into the slot / the rest (DataLoader), ms."""
    d, c = o.amortized_worker_decode_s_per_batch, o.amortized_worker_collate_s_per_batch
    w = o.amortized_wall_s_per_batch
    if d is None or c is None or w is None:
        return "—"
    return f"{d * 1e3:.2f} / {c * 1e3:.2f} / {max(0.0, w - d - c) * 1e3:.2f}"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def _amortized(o) -> str:
    """The paired ratio at the amortized batch with its IQR (else the format stage's), and ✓/✗ against the decode
    target where it applies."""
    value = (f"{_ratio(o.amortized_paired_ratio)} [{o.amortized_paired_ratio_iqr[0]:.2f}–"
             f"{o.amortized_paired_ratio_iqr[1]:.2f}]" if o.amortized_paired_ratio_iqr else
             f"{o.amortized_ratio:.2f} (stage)")
    if o.decode_target_applies is False:
        return value + " (target n/a)"
    return value + _mark(o.meets_decode_target)


def _overhead(overhead) -> list[str]:
    """The loader at one worker against a plain DataLoader and against one-process decode, at the sweep's batch
    and the amortized one."""
    parts = ["<h3>The harness's own overhead</h3>",
             text.OVERHEAD.format(plain_target=VS_PLAIN_TARGET, target=OVERHEAD_TARGET)]
    plain = [o for o in overhead if o.vs_plain_ratio is not None]
    parts += [_vs_plain(plain), _applies(plain)] if plain else [text.OVERHEAD_NO_PLAIN]
    return parts + [
        text.OVERHEAD_DECODE,
        table(["track", "format", "batch", "loader samples/s", "decode samples/s (stage / paired)",
               "ratio (stage / paired)", "ratio with no worker", "amortized batch", "paired ratio at it [IQR]",
               "ratio with no worker at it", "1 worker at it, ms per batch: decode / copy / DataLoader",
               "fixed cost per batch (ms)"],
              [[o.track, o.format, o.batch_size, f"{o.loader_samples_per_s:,.0f}",
                f"{o.decode_samples_per_s:,.0f} / {_rate(o.paired_decode_samples_per_s)}",
                f"{o.ratio:.2f} / {_ratio(o.paired_ratio)}",
                _ratio(o.in_process_ratio), o.amortized_batch_size, _amortized(o),
                _ratio(o.amortized_in_process_ratio), _split(o),
                "—" if o.per_batch_s is None else f"{o.per_batch_s * 1e3:.2f}"]
               for o in overhead], left=2)]


def _vs(ratio: float | None, iqr: tuple[float, float] | None) -> str:
    """feedtax / plain with its IQR, ✓/✗ against VS_PLAIN_TARGET."""
    if ratio is None:
        return "—"
    return f"{ratio:.2f}" + ("" if iqr is None else f" [{iqr[0]:.2f}–{iqr[1]:.2f}]") + _mark(ratio >= VS_PLAIN_TARGET)


def _ns(s_per_byte: float | None) -> str:
    return "—" if s_per_byte is None else f"{s_per_byte * 1e9:.3f}"


def _ceiling(o) -> str:
    """decode / (decode + copy): the most of the decode rate a worker that decodes, then copies each byte once, gets."""
    d, c = o.decode_s_per_byte, o.copy_s_per_byte
    return "—" if d is None or c is None else f"{decode_share_with_one_copy(d, c):.2f}"


def _vs_plain(overhead) -> str:
    """feedtax's loader against the plain DataLoader at both batches, and decode's cost per byte against a copy's."""
    return table(
        ["track", "format", "plain dataset", "batch", "plain samples/s", "feedtax / plain [IQR]", "amortized batch",
         "plain samples/s at it", "feedtax / plain at it [IQR]", "decode ns/B", "one copy ns/B",
         "decode share with one copy", "decode target", "overhead check"],
        [[o.track, o.format, o.plain_dataset or "—", o.batch_size, _rate(o.plain_samples_per_s),
          _vs(o.vs_plain_ratio, o.vs_plain_ratio_iqr), o.amortized_batch_size, _rate(o.amortized_plain_samples_per_s),
          _vs(o.amortized_vs_plain_ratio, o.amortized_vs_plain_ratio_iqr),
          _ns(o.decode_s_per_byte), _ns(o.copy_s_per_byte), _ceiling(o),
          {True: "applies", False: "n/a"}.get(o.decode_target_applies, "—"), _mark(o.meets_target).strip() or "—"]
         for o in overhead], left=3)


def _applies(overhead) -> str:
    """Which formats the decode target applies to, per track, and why the others are not held to it."""
    def formats(applies: bool) -> str:
        by_track: dict[str, list[str]] = {}
        for o in overhead:
            if o.decode_target_applies is applies:
                by_track.setdefault(o.track, []).append(o.format)
        return "; ".join(f"{escape(t)}: {escape(', '.join(f))}" for t, f in by_track.items()) or "none"

    exempt = formats(False)
    return text.OVERHEAD_APPLIES.format(target=OVERHEAD_TARGET, copies=OVERHEAD_TARGET / (1 - OVERHEAD_TARGET),
                                        applies=formats(True),
                                        exempt="" if exempt == "none" else text.OVERHEAD_EXEMPT.format(formats=exempt))
