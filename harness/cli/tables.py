"""The sweeps' tables on the console: feedtax's formats swept with both loaders (and the default loader's gaps), the
tuned loader at storage tiers, and a user's own pipeline per batch size. rich loads inside each function; every name
that comes from the user or a file goes through cli.options.shown."""

from __future__ import annotations

from feedtax.cli.options import make_console, make_table, shown


def print_formats(rows, summaries, gaps) -> None:
    """One table per loader (the flow equilibrium marked *; AU and feeding tax with their intervals, wide ones marked),
    then each gap: its main cost and the fixes' AUs."""
    from feedtax.reports.common import PM_LEGEND, pm_pp

    console = make_console()
    for summary in summaries:
        mine = [r for r in rows if r.loader == summary.loader]
        table = make_table(title=f"{shown(summary.track)}, {shown(summary.loader)} loader: feeding tax per format x "
                            f"workers ({shown(summary.consumer.kind)} consumer, batch {summary.batch_size}, "
                            f"needs {summary.consumption_samples_per_s:,.0f} samples/s)")
        mfu = any(r.mfu is not None for r in mine)
        nvml = any(r.nvml_idle_fraction is not None for r in mine)
        for col in ("format", "workers", "loader alone/s", "fed/s", "feeding tax", "AU", "AU (MLPerf)",
                    "step ms", "wait s") + (("MFU",) if mfu else ()) + (("NVML idle",) if nvml else ()):
            table.add_column(col, justify="left" if col == "format" else "right")
        for r in mine:
            mark = " *" if summary.flow_equilibrium.get(r.format) == r.num_workers else ""
            table.add_row(shown(r.format), f"{r.num_workers}{mark}", f"{r.ingestion_samples_per_s:,.0f}",
                          f"{r.samples_per_s:,.0f}",
                          f"{r.feeding_tax:.1%}" + (" [red]![/red]" if r.unstable else "")
                          + pm_pp(r.feeding_tax_ci95, r.au_ci_wide), f"{r.au:.1%}",
                          f"{r.mlperf_au:.1%}" if r.mlperf_au is not None else "-", f"{r.step_s * 1e3:.2f}",
                          f"{r.wait_s:.3f}", *([f"{r.mfu:.2%}" if r.mfu is not None else "-"] if mfu else []),
                          *([f"{r.nvml_idle_fraction:.1%}" if r.nvml_idle_fraction is not None else "-"]
                            if nvml else []))
        console.print(table)
        if any(r.au_ci95 is not None for r in mine):
            console.print(PM_LEGEND, highlight=False)
        if summary.peak_source:
            console.print(f"MFU against {shown(summary.peak_source)} ({summary.peak_flop_per_s / 1e12:,.1f} TFLOP/s)"
                          if summary.peak_flop_per_s else f"no MFU: the device's peak is {shown(summary.peak_source)}")
        if nvml:
            console.print("NVML idle = 1 - utilization.gpu, a coarse duty cycle (share of time any kernel ran), "
                          "to set against the feeding tax measured by timing")
    for g in gaps:
        costs = ", ".join(f"{k} {d * 1e3:.2f} vs {t * 1e3:.2f} ms" for k, (d, t) in g.costs().items())
        fixes = "; ".join(f"{f.fix} -> AU {f.au:.0%} ({g.gain_pp(f):+.1f} pp)" for f in g.fixes)
        best = g.best_fix()
        verdict = f"best fix: {best.fix}" if best is not None else "no fix tried closes more than the noise"
        console.print(shown(f"default loader trails at {g.format}, {g.num_workers} worker(s): AU {g.default_au:.0%} "
                            f"vs {g.tuned_au:.0%}; per batch (default vs tuned) {costs}; waits on: "
                            f"{g.main_cost() or '-'}; fixes tried: {fixes or 'none'}; {verdict}"))


def print_tiers(result) -> None:
    """A table per swept tier, the tiers not reachable here with why, then the Lock's answers."""
    from feedtax.reports.common import PM_LEGEND, pm_pp

    console = make_console()
    for sweep in result.tiers:
        t = sweep.tier
        head = (f"{shown(result.track)} at {shown(t.name)} ({shown(t.label or t.source)}: "
                f"{t.bandwidth_bytes_per_s / 1e6:,.0f} MB/s, {t.latency_s * 1e3:g} ms per request)")
        if not sweep.reachable:
            console.print(f"{head}: {shown(sweep.reason)}, not swept")
            continue
        table = make_table("format", "workers", "loader alone/s", "fed/s", "AU", "steps", "wait s", "read MB/s",
                           title=head)
        for r in sweep.rows:
            table.add_row(shown(r.format), str(r.num_workers), f"{r.ingestion_samples_per_s:,.0f}",
                          f"{r.samples_per_s:,.0f}", f"{r.au:.1%}" + pm_pp(r.au_ci95, r.au_ci_wide),
                          str(r.steps) if r.steps is not None else "-", f"{r.wait_s:.3f}",
                          f"{r.read_bytes_per_s / 1e6:,.1f}" if r.read_bytes_per_s else "-")
        console.print(table)
    if any(r.au_ci95 is not None for t in result.tiers for r in t.rows):
        console.print(PM_LEGEND, highlight=False)
    console.print(f"this disk: {result.disk_seq_read_mb_per_s:,.0f} MB/s, {shown(result.disk_source)}")
    for answer in result.lock2:
        console.print(shown(answer.sentence()), highlight=False)


def print_pipeline(section) -> None:
    """Per batch size: the rows as a table, then equilibrium, fit, breakdown, __getitem__ timing and transport."""

    from feedtax.reports.common import PM_LEGEND, fit_reach, pm_pp, with_ci

    console = make_console()
    for s in section.summaries:
        rows = [r for r in section.rows if r.batch_size == s.batch_size]
        eq = s.flow_equilibrium.get(section.name)
        table = make_table(title=f"{shown(section.factory)}: batch {s.batch_size}, {shown(section.consumer.kind)} "
                            f"consumer, needs {s.consumption_samples_per_s:,.0f} samples/s")
        for col in ("workers", "loader alone/s", "fed/s", "feeding tax", "AU", "steps", "step ms", "wait s"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(f"{r.num_workers}{' *' if eq == r.num_workers else ''}", f"{r.ingestion_samples_per_s:,.0f}",
                          f"{r.samples_per_s:,.0f}", f"{r.feeding_tax:.1%}" + (" [red]![/red]" if r.unstable else "")
                          + pm_pp(r.feeding_tax_ci95, r.au_ci_wide), f"{r.au:.2f}",
                          str(r.steps) if r.steps is not None else "-",
                          f"{r.step_s * 1e3:.2f}", f"{r.wait_s:.3f}")
        console.print(table)
        if any(r.au_ci95 is not None for r in rows):
            console.print(PM_LEGEND, highlight=False)
        for p in (p for p in section.ranks if p.batch_size == s.batch_size):
            console.print(f"ranks @ {p.num_workers} workers (the row is the slowest, rank {p.slowest_rank}): "
                          + "; ".join(f"rank {x.rank} tax {x.feeding_tax:.1%}, {x.samples_per_s:,.0f}/s, wait "
                                      f"{x.wait_s:.3f} s" for x in p.ranks))
        predicted = s.fits[0].flow_equilibrium_predicted if s.fits and eq is None else None
        console.print(f"flow equilibrium: {f'{eq} workers (*)' if eq is not None else 'not reached'}"
                      + (f"; USL fit predicts {predicted} (extrapolated)" if predicted else ""))
        for f in s.fits:
            console.print(f"USL fit (95% intervals): lambda {with_ci(f.lam_per_s, f.lam_ci95)}/s, sigma "
                          f"{with_ci(f.sigma, f.sigma_ci95, '.3f')}, kappa {with_ci(f.kappa, f.kappa_ci95, '.4f')}, "
                          f"rel. RMSE {f.rel_rmse:.1%}; furthest informative prediction {fit_reach(f)}/s"
                          + (f" ({shown(f.note)})" if f.note else ""))
        for b in s.breakdown:
            fetch = f"{b.fetch_samples_per_s:,.0f}/s" if b.fetch_samples_per_s else "not seen"
            console.print(f"wait breakdown @ {b.num_workers} workers: first read {b.cold_samples_per_s:,.0f}/s, warm "
                          f"{b.warm_samples_per_s:,.0f}/s, ready samples {b.in_memory_samples_per_s:,.0f}/s, fetch "
                          f"{fetch}, consumer {b.consumer_samples_per_s:,.0f}/s -> binds: "
                          f"[bold]{shown(b.binding)}[/bold]")
        if s.breakdown_absent_reason:
            console.print(f"no wait breakdown: {shown(s.breakdown_absent_reason)}")
        if (g := s.getitem) is not None:
            console.print(f"__getitem__ per batch (in the workers): first read {g.first_getitem_s_per_batch * 1e3:.2f}"
                          f" ms, warm {g.warm_getitem_s_per_batch * 1e3:.2f} ms")
        if (t := s.transport) is not None:
            console.print(f"transport per batch ({t.batch_bytes:,} B, ready samples): in-process "
                          f"{t.in_process_s_per_batch * 1e3:.2f} ms, 1 worker {t.worker_s_per_batch * 1e3:.2f} ms, "
                          f"wait per step behind a consumer {t.transport_s_per_batch * 1e3:.2f} ms")
