"""The run's report: one self-contained HTML file (figures inline as SVG, no network, opens offline)."""

from __future__ import annotations

import io
from html import escape
from pathlib import Path

from harness.results import Results
from harness.stats import Distribution

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
    from reports import figures

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
    parts += _probes(results)
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
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(render(results), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
