"""The report's part on a user's own pipeline (`feedtax sweep --dataset`): the feeding figures drawn from its rows and
per-batch-size summaries, its tables, and the prose saying what each measured. Nothing when the run has none."""

from __future__ import annotations

from html import escape

from feedtax.reports.common import figure, fit_reach, pct, table, with_ci
from feedtax.results.schema import Results

INTRO = (
    "<p>Your pipeline, <code>{factory}</code> ({kind}), swept over batch sizes {sizes} and DataLoader worker counts"
    " {workers} into {consumer}. Per point two runs of {steps} measured steps (the warm-up steps, 2 + 2 per worker,"
    " excluded): the loader alone, at full speed (its <b>ingestion</b> rate), and the loader feeding the consumer."
    " <b>AU</b> = compute time / wall time (MLPerf Storage's definition), the <b>feeding tax</b> = 1 &minus; AU: the"
    " share of time the consumer waited for a batch. The <b>flow equilibrium</b> is the smallest worker count (one"
    " or more) whose ingestion meets the consumer's rate (batch size / its median step).</p>"
)
KIND = {"dataset": "a Dataset: DataLoader(dataset, batch_size, num_workers, shuffle=False) per point",
        "loader": "a DataLoader factory called per point with num_workers and batch_size"}
GAUGE = "<p class='note'>The feeding tax per worker count, one panel per batch size.</p>"
EQUILIBRIUM = ("<p><b>Batch size {batch_size}</b>: the consumer takes {rate:,.0f} samples/s; flow equilibrium: "
               "{equilibrium}.</p>")
BREAKDOWN = (
    "<p class='note'>Where the wait comes from, DS-Analyzer's way as far as it applies to a Dataset feedtax does not"
    " know: its files cannot be evicted from the page cache, so the same {n:,} samples are read first"
    " (<i>cold</i> above: whatever the cache held; {fresh}) and then again, warm ({rounds} passes: <i>prep</i>), at"
    " {workers} workers; fetch shows only where the first read was slower than the warm ones by more than their"
    " spread, both by the pass's wall time and by the workers' own <code>__getitem__</code> time."
    " <i>Transport</i> is the loader's ceiling: one ready sample, returned at once, through the same"
    " DataLoader settings. The slowest stage binds (hatched).</p>"
)
FRESH = {True: "samples this sweep had not read before", False: "samples read before, so warm too: no fetch can show"}
GETITEM = (
    "<p class='note'>Your <code>__getitem__</code>, timed inside the workers: {first_ms:.2f} ms per batch of"
    " {batch_size} on the first read, {warm_ms:.2f} ms warm (the seconds of a batch's calls added up: one worker"
    " makes a batch, so a worker delivers at most one batch per that time).</p>"
)
TRANSPORT = (
    "<p class='note'>The DataLoader's own cost per batch of ready samples ({batch_kb:,.1f} kB): {in_process_ms:.2f} ms"
    " to make it in the main process, {worker_ms:.2f} ms handed over by one worker at full speed, and a wait of"
    " {wait_ms:.2f} ms per step behind a consumer for a batch a worker already made.</p>"
)
RANKS = (
    "<p class='note'>Under torchrun each of the {world} ranks measured every point, reading its own share of the"
    " dataset (a DistributedSampler); the rows above are the slowest rank's at each point, the one that waited"
    " longest for data: in training the others wait for it. The wait breakdown and transport are rank 0's.</p>"
)
POINT_RANKS = "<p><b>Batch {batch_size}, {workers} worker(s)</b>: slowest rank: {slowest}.</p>"
NO_BREAKDOWN = "<p class='note'>No wait breakdown: {reason}.</p>"


def pipeline(results: Results) -> list[str]:
    """The pipeline sweep's figures and tables: the feeding tax per batch size, then one block per batch size."""
    from feedtax.reports import feeding_figures

    p = results.pipeline
    if p is None:
        return []
    consumer = (f"your <code>train_step</code> <code>{escape(p.consumer.train_step or '')}</code> on"
                f" {escape(p.consumer.device)}, timed by feedtax" if p.consumer.kind == "train_step" else
                f"an emulated accelerator busy {(p.consumer.step_s or 0) * 1e3:g} ms per batch")
    parts = ["<h2>Your pipeline: the DataLoader sweep</h2>",
             INTRO.format(factory=escape(p.factory), kind=KIND[p.kind], sizes=", ".join(map(str, p.batch_sizes)),
                          workers=", ".join(map(str, p.worker_counts)), consumer=consumer, steps=p.steps)]
    if p.rows:  # one gauge panel per batch size: the rows relabelled for the figure only
        panels = [r.model_dump() | {"track": f"batch {r.batch_size}"} for r in p.rows]
        parts += [figure(feeding_figures.feeding_tax_gauge(panels)), GAUGE]
    for s in p.summaries:
        parts += _summary(results, p, s)
    if p.rows:
        parts.append(_points(p.rows))
    if p.ranks:
        parts += [RANKS.format(world=p.world_size), *_ranks(p.ranks)]
    return parts


def _summary(results: Results, p, s) -> list[str]:
    """One batch size: AU vs ingestion, the scaling fit, the wait breakdown, equilibrium, __getitem__ and transport."""
    from feedtax.reports import feeding_figures

    rows = [r for r in p.rows if r.batch_size == s.batch_size]
    parts = [f"<h3>Batch size {s.batch_size}</h3>", figure(feeding_figures.mfu_vs_ingestion(rows, s))]
    if (fig := feeding_figures.scaling(rows, s, results.host.usable_cores)) is not None:
        parts += [figure(fig), _fits(s)]
    eq = s.flow_equilibrium.get(p.name)
    parts.append(EQUILIBRIUM.format(batch_size=s.batch_size, rate=s.consumption_samples_per_s,
                                    equilibrium="never reached" if eq is None else f"{eq} worker(s)"))
    if s.breakdown:
        b, g = s.breakdown[0], s.getitem
        parts += [figure(feeding_figures.wait_breakdown(s)),
                  BREAKDOWN.format(n=g.n_samples, fresh=FRESH[g.first_read], rounds=b.rounds, workers=b.num_workers)]
    if s.getitem is not None:
        parts.append(GETITEM.format(first_ms=s.getitem.first_getitem_s_per_batch * 1e3, batch_size=s.batch_size,
                                    warm_ms=s.getitem.warm_getitem_s_per_batch * 1e3))
    if s.breakdown_absent_reason:
        parts.append(NO_BREAKDOWN.format(reason=escape(s.breakdown_absent_reason)))
    if (t := s.transport) is not None:
        parts.append(TRANSPORT.format(batch_kb=t.batch_bytes / 1e3, in_process_ms=t.in_process_s_per_batch * 1e3,
                                      worker_ms=(t.worker_s_per_batch or 0) * 1e3,
                                      wait_ms=t.transport_s_per_batch * 1e3))
    if s.nvml_absent_reason:
        parts.append(f"<p class='note'>NVML: {escape(s.nvml_absent_reason)}.</p>")
    return parts


def _fits(s) -> str:
    """The Universal Scalability Law fit over the measured worker counts (95% intervals), and what it predicts
    beyond them where the prediction is narrow enough to read."""
    return table(
        ["measured workers", "λ (samples/s, 1 worker)", "σ contention", "κ coherency", "rel. RMSE",
         "furthest informative prediction (samples/s)", "predicted equilibrium", "note"],
        [[", ".join(map(str, f.measured_workers)), with_ci(f.lam_per_s, f.lam_ci95),
          with_ci(f.sigma, f.sigma_ci95, ".3f"), with_ci(f.kappa, f.kappa_ci95, ".4f"), f"{f.rel_rmse:.1%}",
          fit_reach(f),
          "—" if f.flow_equilibrium_predicted is None else f"{f.flow_equilibrium_predicted} (extrapolated)",
          f.note or ""] for f in s.fits], left=1, text=(-1,))


def _points(rows) -> str:
    """Every measured point, in the order measured."""
    nvml = any(r.nvml_idle_fraction is not None for r in rows)
    return table(
        ["batch", "workers", "delivered samples/s", "loader alone samples/s", "feeding tax", "AU", "step (ms)",
         "wait (s)", "compute (s)", "wall (s)", "noisy"] + (["NVML idle (1 − duty cycle)"] if nvml else []),
        [[r.batch_size, r.num_workers, f"{r.samples_per_s:,.0f}", f"{r.ingestion_samples_per_s:,.0f}",
          pct(r.feeding_tax), pct(r.au), f"{r.step_s * 1e3:.2f}", f"{r.wait_s:.3f}", f"{r.compute_s:.3f}",
          f"{r.wall_s:.3f}", "!" if r.unstable else ""]
         + ([pct(r.nvml_idle_fraction) if r.nvml_idle_fraction is not None else "—"] if nvml else [])
         for r in rows], left=0)


def _ranks(points) -> list[str]:
    """Per point measured on every rank: each rank's feeding tax, samples/s and wait, the slowest rank named."""
    parts = []
    for pt in points:
        parts += [POINT_RANKS.format(batch_size=pt.batch_size, workers=pt.num_workers, slowest=pt.slowest_rank),
                  table(["rank", "feeding tax", "samples/s", "wait (s)"],
                        [[f"{r.rank}{' (slowest)' if r.rank == pt.slowest_rank else ''}", pct(r.feeding_tax),
                          f"{r.samples_per_s:,.0f}", f"{r.wait_s:.3f}"] for r in pt.ranks], left=1)]
    return parts
