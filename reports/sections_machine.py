"""The run report's record of the machine and the run: the supply-side probes (disk, memory, energy counters),
the host, the configuration and each stage's status."""

from __future__ import annotations

from html import escape

from feedtax.reports import text
from feedtax.reports.common import kv, quantity, warning_list
from feedtax.results.schema import Results


def probes(results: Results) -> list[str]:
    """The measured supply side: disk, memory, energy counters (present or absent, and why)."""
    parts = []
    if results.disk is not None:
        parts += _disk(results.disk)
    if (m := results.memory) is not None:
        parts += ["<h2>Memory bandwidth</h2>", f"<p class='note'>{escape(m.convention)}</p>",
                  kv([("copy, one core", quantity(m.copy_mb_per_s_one_core, "copy_mb_per_s_one_core")),
                      (f"copy, all cores ({m.threads} threads)",
                       quantity(m.copy_mb_per_s_all_cores, "copy_mb_per_s_all_cores"))])]
        parts.append(warning_list(m.warnings))
    if (e := results.energy) is not None:
        rows = [(f"{c.name} ({c.source})", f"{c.energy_j:,.1f} J, {c.average_power_w:,.1f} W average"
                 + (f" — {c.warning}" if c.warning else "")) for c in e.counters]
        rows += [(f"{source}: absent", why) for source, why in e.absent.items()]
        parts += ["<h2>Energy counters</h2>", text.ENERGY.format(window_s=e.window_s), kv(rows)]
    return parts


def _repeats(d) -> str:
    """How much faster the re-reads of one file ran than its first read, and whether a cache below the OS served
    them."""
    if d.repeat_read_speedup is None:
        return "not measured (a file from before schema 5)"
    said = ("<span class=warn>a cache below this OS served the re-reads</span>" if d.repeats_cached_below_os
            else "no cache below this OS seen")
    return f"{d.repeat_read_speedup:.2f}x: {said}"


def _disk(d) -> list[str]:
    direct = ("not allowed here" if d.seq_read_mb_per_s_direct is None
              else quantity(d.seq_read_mb_per_s_direct, "seq_read_mb_per_s_direct"))
    iops = quantity(d.rand_read_iops_4k, "rand_read_iops_4k")
    latency = f"{d.read_latency_p50_s * 1e6:,.0f} / {d.read_latency_p99_s * 1e6:,.0f} µs"
    return [
        "<h2>Disk under the data directory</h2>",
        text.DISK.format(path=escape(d.path), fs_type=escape(d.fs_type), size_mb=d.size_bytes / 1e6,
                         block_kib=d.block_size_bytes // 1024, cache_method=escape(d.cache_method),
                         evicted="confirmed" if d.cache_evicted else "<span class=warn>not confirmed</span>"),
        kv([("sequential write (fsync included)", quantity(d.seq_write_mb_per_s, "seq_write_mb_per_s")),
            ("sequential read, first after writing (the model's)",
             f"{quantity(d.seq_read_mb_per_s_first, 'seq_read_mb_per_s_first')} ({escape(d.first_read_method)})"),
            ("re-reads over the first read", _repeats(d)),
            ("sequential re-read, cold cache", quantity(d.seq_read_mb_per_s_cold, "seq_read_mb_per_s_cold")),
            ("sequential re-read, warm cache", quantity(d.seq_read_mb_per_s_warm, "seq_read_mb_per_s_warm")),
            ("sequential re-read, O_DIRECT", direct),
            ("random 4 KiB reads", f"{iops} ({escape(d.rand_read_method)})"),
            ("read latency p50 / p99", latency)]),
        warning_list(d.warnings),
    ]


def machine(results: Results) -> list[str]:
    """The host the run measured: CPU, memory, OS, data directory, GPUs and package versions."""
    h = results.host
    data_dir = (f"{h.data_dir.path}: {h.data_dir.fs_type} on {h.data_dir.block_device or '?'}"
                f" ({_medium(h.data_dir.rotational)})" if h.data_dir else "not recorded")
    rows = [
        ("CPU", h.cpu_model),
        ("cores (logical / physical / usable)",
         f"{h.cpu_logical_cores} / {h.cpu_physical_cores} / {h.cpu_affinity_cores}"),
        ("memory", f"{h.memory_total_bytes / 2**30:.1f} GiB"), ("OS", h.os),
        ("Python", f"{h.python} ({h.python_implementation})"),
        ("CPU frequency now / max", f"{_mhz(h.cpu_freq_mhz)} / {_mhz(h.cpu_freq_max_mhz)}, governor "
                                    f"{h.cpu_governor or 'unknown'}"),
        ("load average (1 min) at start", "not recorded" if h.load_average_1m is None else
         f"{h.load_average_1m:.2f} on {h.cpu_affinity_cores} usable cores"),
        ("virtual machine / container", f"{h.virtualization or 'not detected'} / {h.container or 'not detected'}"),
        ("data directory", data_dir),
        ("GPUs (NVML)", ", ".join(g["name"] for g in h.gpus) if h.gpus else f"none: {h.gpu_absent_reason}"),
        ("protobuf backend", h.protobuf_backend), ("feedtax", _source(h)),
    ]
    return ["<h2>Machine</h2>", kv(rows + [(f"version of {k}", v or "not installed") for k, v in h.packages.items()])]


def _mhz(f: float | None) -> str:
    return "unknown" if not f else f"{f:,.0f} MHz"


def _medium(rotational: bool | None) -> str:
    return {True: "a spinning disk, as the kernel reports it", False: "solid state, as the kernel reports it",
            None: "kind unknown"}[rotational]


def _sizes(sizes: dict) -> str:
    """The synthetic samples' sizes in words (cloud tokens, edge frame, mobile crop and text, tiny audio)."""
    names = {"seq_len": "cloud tokens", "frame_hw": "edge frame", "crop_hw": "mobile crop", "text_len": "mobile text",
             "audio_len": "tiny audio samples"}

    def show(v) -> str:
        return "x".join(map(str, v)) + "x3" if isinstance(v, (list, tuple)) else f"{v:,}"

    return "; ".join(f"{names.get(k, k)} {show(v)}" for k, v in sizes.items())


def _source(h) -> str:
    """The version feedtax was built as (it names the commit, from git at build time) and, where this run came from
    a checkout, that checkout's commit now."""
    version = h.packages.get("feedtax") or "version unknown"
    return f"{version}, checkout {h.git_sha}" if h.git_sha else f"{version} (installed, not run from a git checkout)"


def glossary() -> list[str]:
    """Every term the report uses, defined once; the sections link to #g-<key>."""
    items = "".join(f"<dt id='g-{key}'>{escape(term)}</dt><dd>{escape(text_)}</dd>"
                    for key, (term, text_) in text.GLOSSARY.items())
    return ["<h2 id='glossary'>Glossary</h2>", f"<dl class='glossary'>{items}</dl>"]


def configuration(results: Results) -> list[str]:
    c = results.config
    return ["<h2>Configuration</h2>",
            kv([("seed", c.seed), ("tracks", ", ".join(c.tracks)), ("formats", ", ".join(c.formats)),
                ("samples per track", c.samples_per_track), ("samples per shard", c.samples_per_shard),
                ("warm-ups / repeats", f"{c.warmups} / {c.repeats}"), ("min time per repeat", f"{c.min_time_s} s"),
                ("sample sizes", _sizes(c.sizes))])]


def stages(results: Results) -> list[str]:
    """Each stage's status, time and error."""
    parts = ["<h2>Stages</h2><table><tr><th class='l'>stage</th><th class='l'>status</th><th>seconds</th>"
             "<th class='l'>error</th></tr>"]
    for s in results.stages:
        seconds = "" if s.elapsed_s is None else f"{s.elapsed_s:.1f}"
        parts.append(f"<tr><td class='l'>{escape(s.name)}</td><td class='l'>{escape(s.status)}</td>"
                     f"<td>{seconds}</td><td class='l'>{escape(s.error or '')}</td></tr>")
    parts.append("</table>")
    return parts
