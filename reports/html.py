"""The run's report: one self-contained HTML file (figures inline as SVG, no network, opens offline)."""

from __future__ import annotations

import io
from html import escape
from pathlib import Path

from feedtax.results.io import write_atomic
from feedtax.results.schema import Results
from feedtax.stats import Distribution

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.warn{color:#b00;font-weight:bold}.note{color:#555;font-size:.9em}
ul.warnings{background:#fff8e6;border-left:3px solid #e0a000;padding:.4em 1em .4em 2em;font-size:.85em;color:#6b4500}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}.status{padding:.2em .5em;border-radius:4px;background:#eee}
"""


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _dist(d: Distribution) -> str:
    flag = f' <span class="warn" title="{escape(d.note or "")}">!</span>' if d.unstable else ""
    return f"{d.median:,.0f} <span class='note'>±{d.iqr / 2:,.0f}</span>{flag}"


def _kv(rows: list[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th class='l'>{escape(k)}</th><td class='l'>{escape(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _table(header: list[str], rows: list[list[object]], left: int = 1, text: tuple[int, ...] = ()) -> str:
    """A table: the first `left` columns and the `text` ones left-aligned, numbers right; cells escaped
    unless _Markup."""
    def is_left(i: int) -> bool:
        return i < left or i in text or i - len(header) in text

    def cell(i: int, v: object) -> str:
        html = v.html if isinstance(v, _Markup) else escape(f"{v:,.3g}" if isinstance(v, float) else str(v))
        return f"<td class='l'>{html}</td>" if is_left(i) else f"<td>{html}</td>"

    head = "".join(f"<th class='l'>{escape(h)}</th>" if is_left(i) else f"<th>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class _Markup:
    def __init__(self, html: str):
        self.html = html


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def _feeding(results: Results) -> list[str]:
    """Part 2, the Feeding Tax Solver: the sweep, where the wait comes from, the harness's own overhead."""
    from feedtax.reports import feeding_figures

    if not results.loader:
        return []
    plan = results.config.sweep or {}
    parts = [
        "<h2>2. Feeding tax: the DataLoader sweep</h2>",
        "<p>Each format's shards streamed through <code>torch.utils.data.DataLoader</code> with 0..N workers into a"
        f" consumer: an emulated accelerator that computes for {plan.get('step_s', 0) * 1e3:g} ms per batch of"
        f" {plan.get('batch_size', '?')} (as MLPerf Storage/DLIO emulate one), or a real model on the GPU/CPU."
        " <b>AU</b> = compute time / wall time with the warm-up steps excluded (MLPerf Storage's definition);"
        " <b>feeding tax</b> = 1 &minus; AU, the share of time the accelerator waits for data. The <b>flow equilibrium</b>"
        " is the smallest worker count (one or more: with none, loading runs in series with the consumer and"
        " always costs load / (load + step)) whose ingestion rate (the loader alone) meets the consumer's rate.</p>",
        f"<figure>{_svg(feeding_figures.feeding_tax_gauge(results.loader))}</figure>",
    ]
    for summary in results.feeding.summaries if results.feeding else []:
        rows = [r for r in results.loader if r.track == summary.track]
        parts.append(f"<figure>{_svg(feeding_figures.mfu_vs_ingestion(rows, summary))}</figure>")
        if (fig := feeding_figures.scaling(rows, summary, results.host.usable_cores)) is not None:
            parts.append(f"<figure>{_svg(fig)}</figure>")
            parts.append(_table(
                ["format", "measured workers", "λ (samples/s, 1 worker)", "σ contention", "κ coherency", "rel. RMSE",
                 "predicted at 32 workers", "predicted equilibrium", "note"],
                [[f.format, ", ".join(map(str, f.measured_workers)), f"{f.lam_per_s:,.0f}", f"{f.sigma:.3f}",
                  f"{f.kappa:.4f}", f"{f.rel_rmse:.1%}", f"{f.predicted[-1].samples_per_s:,.0f}"
                  + (" (extrapolated)" if f.predicted[-1].extrapolated else ""),
                  "—" if f.flow_equilibrium_predicted is None else f"{f.flow_equilibrium_predicted} (extrapolated)",
                  f.note or ""] for f in summary.fits], left=2, text=(-1,)))
        if summary.breakdown:
            parts.append(f"<figure>{_svg(feeding_figures.wait_breakdown(summary))}</figure>")
        eq = ", ".join(f"{f}: {'never reached' if n is None else f'{n} worker(s)'}" for f, n in summary.flow_equilibrium.items())
        parts.append(f"<p><b>{escape(summary.track)}</b>: the consumer takes {summary.consumption_samples_per_s:,.0f}"
                     f" samples/s; flow equilibrium: {escape(eq)}.</p>")
        if summary.transport:
            t = summary.transport
            full = "" if t.worker_s_per_batch is None else (
                f" At full speed (no consumer) one worker hands over a batch every {t.worker_s_per_batch * 1e3:.2f} ms,"
                f" against {t.in_process_s_per_batch * 1e3:.2f} ms to make it in the main process: the handover adds"
                f" {t.ipc_s_per_batch * 1e3:.2f} ms" + (" (no cost beyond noise)" if t.ipc_s_per_batch <= 0 else "") + ".")
            parts.append(f"<p class='note'>The DataLoader's own transport, with a ready batch of {t.batch_size}"
                         f" ({t.batch_bytes / 1e3:,.0f} kB), not decode.{full} Behind the consumer, each step waits"
                         f" {t.transport_s_per_batch * 1e3:.2f} ms for a batch a worker already made (the main"
                         f" process's receive).</p>")
        if summary.peak_source:
            parts.append(f"<p class='note'>MFU is taken against {escape(summary.peak_source)}"
                         f" ({summary.peak_flop_per_s / 1e12:,.1f} TFLOP/s).</p>" if summary.peak_flop_per_s else
                         f"<p class='note'>No MFU: the device's peak is {escape(summary.peak_source)}.</p>")
        if summary.nvml_absent_reason:
            parts.append(f"<p class='note'>NVML: {escape(summary.nvml_absent_reason)}.</p>")
    mfu = any(r.mfu is not None for r in results.loader)
    nvml = any(r.nvml_idle_fraction is not None for r in results.loader)
    parts.append(_table(
        ["track", "format", "workers", "batch", "delivered samples/s", "loader alone samples/s", "feeding tax", "AU",
         "step (ms)", "noisy"] + (["MFU"] if mfu else []) + (["NVML idle (1 − duty cycle)"] if nvml else []),
        [[r.track, r.format, r.num_workers, r.batch_size, f"{r.samples_per_s:,.0f}", f"{r.ingestion_samples_per_s:,.0f}",
          _pct(r.feeding_tax), _pct(r.au), f"{r.step_s * 1e3:.2f}", "!" if r.unstable else ""]
         + ([f"{r.mfu:.2%}" if r.mfu is not None else "—"] if mfu else [])
         + ([_pct(r.nvml_idle_fraction) if r.nvml_idle_fraction is not None else "—"] if nvml else [])
         for r in results.loader], left=2))
    if nvml:
        parts.append("<p class='note'>NVML idle is 1 − utilization.gpu, NVML's coarse duty cycle (the share of each"
                     " sample period in which any kernel ran, not how full the SMs were): set it against the feeding"
                     " tax, which is measured by timing each step.</p>")
    if results.feeding and results.feeding.loader_overhead:
        def ratio(r: float | None) -> str:
            return "—" if r is None else f"{r:.2f}"

        def _split(o) -> str:
            d, c, w = o.amortized_worker_decode_s_per_batch, o.amortized_worker_collate_s_per_batch, o.amortized_wall_s_per_batch
            if d is None or c is None or w is None:
                return "—"
            return f"{d * 1e3:.2f} / {c * 1e3:.2f} / {max(0.0, w - d - c) * 1e3:.2f}"

        parts += ["<h3>The harness's own overhead</h3>",
                  "<p class='note'>Loader throughput at one worker (no consumer, no transform) against the"
                  " one-process decode rate of the same shards: the format stage's figure, and the same decode"
                  " re-measured in rounds alternating with the loader (paired: the median of per-round ratios, so a"
                  " busy moment hits both). At the sweep's batch and at a batch large enough (about 10 ms of"
                  " decoding) to amortize the DataLoader's fixed cost per batch, which is fitted from the two. "
                  "“No worker” forms the batches in this process: what batching itself costs (keeping a batch of"
                  " samples alive and the one copy that makes it contiguous) apart from the transport. The check"
                  " asks for at least 0.90 at the amortized batch; at the sweep's batch, fast formats decode a"
                  " batch in less time than torch's DataLoader takes to hand it over. Where the no-worker ratio is as"
                  " low as the loader's, forming the batch is the limit, not the transport: its one copy of every"
                  " byte weighs most against formats whose decode barely touches the bytes (raw: a checksum). The"
                  " split of one worker's batch time (the worker's own clock) shows the same: decode, the copy into"
                  " the slot, and what remains, the DataLoader's per-batch cost.</p>",
                  _table(["track", "format", "batch", "loader samples/s", "decode samples/s (stage / paired)",
                          "ratio (stage / paired)", "no worker", "amortized batch", "paired ratio at it [IQR]",
                          "no worker", "1 worker at it, ms per batch: decode / copy / DataLoader",
                          "fixed cost per batch (ms)"],
                         [[o.track, o.format, o.batch_size, f"{o.loader_samples_per_s:,.0f}",
                           f"{o.decode_samples_per_s:,.0f} / "
                           + ("—" if o.paired_decode_samples_per_s is None else f"{o.paired_decode_samples_per_s:,.0f}"),
                           f"{o.ratio:.2f} / {ratio(o.paired_ratio)}", ratio(o.in_process_ratio), o.amortized_batch_size,
                           (f"{ratio(o.amortized_paired_ratio)} [{o.amortized_paired_ratio_iqr[0]:.2f}–"
                            f"{o.amortized_paired_ratio_iqr[1]:.2f}]" if o.amortized_paired_ratio_iqr else
                            f"{o.amortized_ratio:.2f} (stage)")
                           + ("" if o.meets_target is None else (" ✓" if o.meets_target else " ✗")),
                           ratio(o.amortized_in_process_ratio), _split(o),
                           "—" if o.per_batch_s is None else f"{o.per_batch_s * 1e3:.2f}"]
                          for o in results.feeding.loader_overhead], left=2)]
    return parts


def _waterfall_links(results: Results) -> tuple[float | None, dict[str, tuple[float, str]]]:
    """This machine's measured disk read (MB/s) and each mission's network link (MB/s), from the assumptions:
    cloud data arrives over the lab's fastest datacenter link, mobile frames over Bluetooth LE."""
    from feedtax.vocabulary import LINK_GBPS

    disk = results.disk.seq_read_mb_per_s_cold if results.disk else None
    a = results.assumptions
    if a is None:
        return disk, {}
    e = a.entries
    links = {"cloud": (max(LINK_GBPS) * 1e9 / 8 * e["link_efficiency"].value / 1e6, f"network\n{max(LINK_GBPS):g} Gbit/s")}
    if "ble_phy_mbit_per_s" in e and "ble_link_efficiency" in e:
        links["mobile"] = (e["ble_phy_mbit_per_s"].value * e["ble_link_efficiency"].value / 8, "network\nBLE")
    return disk, links


def _missions(results: Results) -> list[str]:
    """Part 1/3 projections: each mission through mlsysim, its verdict, checks and sourced inputs."""
    from feedtax.reports import mission_figures

    if not results.projections:
        return []
    parts = [
        "<h2>3. Missions: this machine's measurements projected through mlsysim</h2>",
        "<p>The measured numbers above, fed as calibration into the course's own models (mlsysim's"
        " <code>evaluate_pipeline</code>, <code>DataModel</code>, <code>TransformationModel</code>), answer each track's"
        " mission. Every input names its source: <i>measured</i> here, <i>mlsysim:</i> a registry value, or"
        " <i>assumption:</i> an entry of the assumptions file (listed at the end; change one with"
        " <code>--assume key=value</code> and <code>feedtax project</code>).</p>",
        f"<figure>{_svg(mission_figures.ingestion_waterfall(results.projections, *_waterfall_links(results)))}</figure>",
    ]
    for track, p in results.projections.items():
        verdict = "<span style='color:#080'>meets</span>" if p.verdict == "meets" else "<span class='warn'>misses</span>"
        parts += [
            f"<h3>{escape(track)}: {verdict} — binding: {escape(p.binding_constraint)}</h3>",
            f"<p class='note'>Headline format: {escape(p.format)}; pipeline bottleneck: {escape(p.pipeline.bottleneck_stage)},"
            f" accelerator waiting {p.pipeline.accelerator_wait_fraction:.0%} of the time.</p>",
            _table(["check", "value", "limit", "unit", "ok", "headroom", "detail"],
                   [[c.name, c.value, c.limit, c.unit, "yes" if c.ok else _Markup("<span class='warn'>no</span>"),
                     f"{c.headroom:.2f}x", c.detail] for c in p.checks], text=(-1,)),
            "<details><summary>pipeline inputs and their sources</summary>",
            _table(["input", "value", "unit", "source", "note"],
                   [[k, v.value, v.unit, v.source, v.note or ""] for k, v in p.inputs.items()], text=(-2, -1)),
            "</details>",
        ]
        for alt in p.alternatives:
            parts.append(f"<p>Alternative <b>{escape(alt.name)}</b>: {alt.bytes_per_frame:,.0f} bytes per frame,"
                         f" radio {alt.radio_power_w * 1e3:,.1f} mW, transmission energy cut {alt.cut_vs_baseline:.0%}"
                         f" ({'meets' if alt.meets_cut else 'misses'} the 50% cut).</p>")
    if results.model_validation:
        parts += [
            "<h3>Does the model match this machine?</h3>",
            "<p class='note'>For every sweep point: the pipeline model's feeding tax, predicted from the measured stage rates"
            " (a worker's decode, transform and collate in series, times the workers, against the consumer's demand; plus"
            " the measured per-batch transport each step waits for), against the feeding tax measured end to end. Errors"
            " over 10 percentage points are flagged with the likely reason.</p>",
            _table(["track", "format", "workers", "predicted", "measured", "error (pp)", "likely reason"],
                   [[v.track, v.format, v.num_workers, _pct(v.predicted_feeding_tax), _pct(v.measured_feeding_tax),
                     _Markup(f"<span class='warn'>{v.error_pp:+.1f}</span>") if abs(v.error_pp) > 10 else f"{v.error_pp:+.1f}",
                     v.likely_reason or ""] for v in results.model_validation], left=2, text=(-1,)),
        ]
    return parts


def _gravity(results: Results) -> list[str]:
    from feedtax.reports import mission_figures

    g = results.gravity
    if g is None:
        return []
    return [
        "<h2>4. Data Gravity Audit: network or sneakernet?</h2>",
        f"<p class='note'>{escape(g.definition)}. Drives are written and read at this machine's measured disk bandwidth"
        " unless a storage tier is chosen (<code>feedtax gravity --tier</code>).</p>",
        f"<figure>{_svg(mission_figures.transfer_time_radar(g))}</figure>",
        f"<figure>{_svg(mission_figures.sneakernet_crossover(g))}</figure>",
        _table(["dataset", "link", "network", "sneakernet", "winner", "crossover", "drives", "egress"],
               [[mission_figures.size_label(t.dataset_bytes), f"{t.link_gbps:g} Gbit/s", f"{t.network_s / 3600:,.1f} h",
                 f"{t.sneakernet_s / 3600:,.1f} h", t.winner, "never" if t.crossover_km is None else f"{t.crossover_km:,.0f} km",
                 t.drives, f"${t.egress_usd:,.0f}"] for t in g.tiers]),
    ]


def _zero_waste(results: Results) -> list[str]:
    from feedtax.reports import mission_figures

    parts = []
    if results.energy_ledger is not None:
        parts += [
            "<h2>5. Zero-Waste Audit: moving data vs computing on it</h2>",
            f"<figure>{_svg(mission_figures.energy_radar(results.energy_ledger))}</figure>",
            _table(["track", "unit of work", "format", "moving (J)", "computing (J)", "move / compute"],
                   [[t.track, t.unit_of_work, t.format, f"{t.move_j:.3g}", f"{t.compute_j:.3g}", f"{t.move_over_compute:.3g}"]
                    for t in results.energy_ledger.tracks], left=3),
        ]
    if results.selection is not None:
        sel = results.selection
        parts += [
            "<h3>Many noisy samples or few curated ones?</h3>",
            f"<p class='note'>A real training run per setting (seeded); the best accuracy any classifier can reach here is"
            f" {sel.bayes_accuracy:.1%}. Energy: {escape(sel.rows[0].energy_source) if sel.rows else ''}.</p>",
            _table(["scenario", "label quality", "filter", "kept samples", "samples processed", "MB processed", "accuracy",
                    "target reached", "seconds", "energy (J)"],
                   [[r.scenario, r.label_quality, f"{r.filter_ratio:.0%}", f"{r.kept_samples:,}", f"{r.samples_processed:,}",
                     f"{r.bytes_processed / 1e6:,.1f}", f"{r.accuracy:.1%}", "yes" if r.reached_target else "no",
                     f"{r.wall_s:.2f}", f"{r.energy_j:.3g}"] for r in sel.rows], left=2),
        ]
    return parts


def _assumptions(results: Results) -> list[str]:
    a = results.assumptions
    if a is None:
        return []
    return ["<h2>Assumptions used by the projections</h2>",
            "<p class='note'>What neither this machine measures nor mlsysim provides. Override any with"
            " <code>--assume key=value</code> (on <code>feedtax run</code> or <code>feedtax project</code>).</p>",
            _table(["key", "value", "unit", "source", "note"],
                   [[k + (" (overridden)" if e.overridden else ""), e.value, e.unit, e.source, e.note]
                    for k, e in a.entries.items()], text=(-2, -1))]


def _warnings(items: list[str]) -> str:
    return "<ul class='warnings'>" + "".join(f"<li>{escape(w)}</li>" for w in items) + "</ul>" if items else ""


def _probes(results: Results) -> list[str]:
    """The measured supply side: disk, memory, energy counters (present or absent, and why)."""
    parts = []
    d, m, e = results.disk, results.memory, results.energy
    if d is not None:
        parts += [
            "<h2>Disk under the data directory</h2>",
            f"<p class='note'>{escape(d.path)} on {escape(d.fs_type)}; test file {d.size_bytes / 1e6:,.0f} MB,"
            f" {d.block_size_bytes // 1024} KiB blocks; MB = 10<sup>6</sup> bytes. Cold reads: {escape(d.cache_method)}"
            f" ({'confirmed' if d.cache_evicted else '<span class=warn>not confirmed</span>'}).</p>",
            _kv([("sequential write (fsync included)", f"{d.seq_write_mb_per_s:,.0f} MB/s"),
                 ("sequential read, cold cache", f"{d.seq_read_mb_per_s_cold:,.0f} MB/s"),
                 ("sequential read, warm cache", f"{d.seq_read_mb_per_s_warm:,.0f} MB/s"),
                 ("sequential read, O_DIRECT", "not allowed here" if d.seq_read_mb_per_s_direct is None else f"{d.seq_read_mb_per_s_direct:,.0f} MB/s"),
                 ("random 4 KiB reads", f"{d.rand_read_iops_4k:,.0f} IOPS ({escape(d.rand_read_method)})"),
                 ("read latency p50 / p99", f"{d.read_latency_p50_s * 1e6:,.0f} / {d.read_latency_p99_s * 1e6:,.0f} µs")]),
        ]
        parts.append(_warnings(d.warnings))
    if m is not None:
        parts += ["<h2>Memory bandwidth</h2>", f"<p class='note'>{escape(m.convention)}</p>",
                  _kv([("copy, one core", f"{m.copy_mb_per_s_one_core:,.0f} MB/s"),
                       (f"copy, all cores ({m.threads} threads)", f"{m.copy_mb_per_s_all_cores:,.0f} MB/s")])]
        parts.append(_warnings(m.warnings))
    if e is not None:
        rows = [(f"{c.name} ({c.source})", f"{c.energy_j:,.1f} J, {c.average_power_w:,.1f} W average"
                 + (f" — {c.warning}" if c.warning else "")) for c in e.counters]
        rows += [(f"{source}: absent", why) for source, why in e.absent.items()]
        parts += ["<h2>Energy counters</h2>",
                  f"<p class='note'>Read over the measuring stages ({e.window_s:,.1f} s). Absent counters are reported"
                  " as absent, never estimated here.</p>", _kv(rows)]
    return parts


def render(results: Results) -> str:
    """The whole report as an HTML string."""
    from feedtax.reports import figures

    h = results.host
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>feedtax report {escape(results.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>feedtax report</h1><p>Run <code>{escape(results.run_id)}</code>, profile <b>{escape(results.profile)}</b>,"
        f" started {escape(results.created_utc)}, status <span class='status'>{escape(results.status)}</span>.</p>",
    ]
    if results.status != "complete":
        parts.append("<p class='warn'>This run did not complete: the report shows what was measured before it stopped.</p>")
    if results.formats:
        parts += [
            "<h2>1. Format costs</h2>",
            "<p>Per track, what each serialization costs: bytes on disk per sample (label: compression ratio versus the"
            " in-memory size) and decode throughput in one process. <b>Cold</b>: the shards' pages were evicted from the"
            " page cache before each read (fsync + posix_fadvise DONTNEED, checked with mincore); <b>warm</b>: read from"
            " the page cache. Bars are medians over repeats (warm-ups excluded), whiskers the interquartile range;"
            " <span class='warn'>!</span> marks a noisy measurement (spread over 10%).</p>",
            f"<figure>{_svg(figures.format_costs(results))}</figure>",
            "<table><tr><th class='l'>track</th><th class='l'>format</th><th>samples</th><th>bytes/sample</th><th>compression</th>"
            "<th>encode samples/s</th><th>decode samples/s cold</th><th>decode samples/s warm</th>"
            "<th>decode MB/s warm</th><th class='l'>cache evicted</th><th class='l'>random access</th></tr>",
        ]
        for r in results.formats:
            parts.append(
                f"<tr><td class='l'>{r.track}</td><td class='l'>{r.format}</td><td>{r.n_samples:,}</td><td>{r.bytes_per_sample:,.0f}</td>"
                f"<td>{r.compression_ratio:.2f}x</td><td>{_dist(r.encode_samples_per_s)}</td>"
                f"<td>{_dist(r.decode_samples_per_s_cold)}</td><td>{_dist(r.decode_samples_per_s_warm)}</td>"
                f"<td>{r.decode_mb_per_s_warm.median:,.1f}</td>"
                f"<td class='l'>{'yes' if r.cold_cache.evicted else '<span class=warn>no</span>'}</td>"
                f"<td class='l'>{'yes' if r.random_access else 'no'}</td></tr>"
            )
        parts.append(
            "</table><p class='note'>Values: median ± half the IQR. MB = 10<sup>6</sup> bytes of shard file. "
            "Encode includes writing the shards to the page cache (no fsync). A format too slow to repeat over all"
            " of a track's samples within the profile's time budget is measured on fewer whole shards"
            " (<i>samples</i>); a per-sample cost does not depend on the count.</p>"
        )
    parts += _feeding(results) + _missions(results) + _gravity(results) + _zero_waste(results)
    parts += _probes(results) + _assumptions(results)
    c = results.config
    parts += [
        "<h2>Machine</h2>",
        _kv([("CPU", h.cpu_model), ("cores (logical / physical / usable)", f"{h.cpu_logical_cores} / {h.cpu_physical_cores} / {h.cpu_affinity_cores}"),
             ("memory", f"{h.memory_total_bytes / 2**30:.1f} GiB"), ("OS", h.os), ("Python", f"{h.python} ({h.python_implementation})"),
             ("CPU frequency now / max", f"{h.cpu_freq_mhz or '?'} / {h.cpu_freq_max_mhz or '?'} MHz, governor {h.cpu_governor or 'unknown'}"),
             ("load average (1 min) at start", h.load_average_1m),
             ("virtual machine / container", f"{h.virtualization or 'not detected'} / {h.container or 'not detected'}"),
             ("data directory", f"{h.data_dir.path}: {h.data_dir.fs_type} on {h.data_dir.block_device or '?'}"
              f" (rotational: {h.data_dir.rotational})" if h.data_dir else "not recorded"),
             ("GPUs (NVML)", ", ".join(g["name"] for g in h.gpus) if h.gpus else f"none: {h.gpu_absent_reason}"),
             ("protobuf backend", h.protobuf_backend), ("feedtax git sha", h.git_sha or "not from a git checkout")]
            + [(f"version of {k}", v or "not installed") for k, v in h.packages.items()]),
        "<h2>Configuration</h2>",
        _kv([("seed", c.seed), ("tracks", ", ".join(c.tracks)), ("formats", ", ".join(c.formats)),
             ("samples per track", c.samples_per_track), ("samples per shard", c.samples_per_shard),
             ("warm-ups / repeats", f"{c.warmups} / {c.repeats}"), ("min time per repeat", f"{c.min_time_s} s"),
             ("sample sizes", c.sizes)]),
        "<h2>Stages</h2><table><tr><th class='l'>stage</th><th class='l'>status</th><th>seconds</th><th class='l'>error</th></tr>",
    ]
    for s in results.stages:
        parts.append(f"<tr><td class='l'>{escape(s.name)}</td><td class='l'>{escape(s.status)}</td>"
                     f"<td>{'' if s.elapsed_s is None else f'{s.elapsed_s:.1f}'}</td><td class='l'>{escape(s.error or '')}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write(results: Results, path: Path) -> Path:
    """Render and write the report atomically."""
    path = Path(path)
    write_atomic(path, render(results).encode("utf-8"), durable=False)
    return path
