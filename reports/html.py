"""The run's report: one self-contained HTML file (figures inline as SVG, no network, opens offline).

This module assembles the page, in order: the run's header, the answers with links to their evidence
(answers), 1. format costs, 2. the feeding tax (sections_feeding, with the default loader beside the
tuned one from sections_loaders), 3.-5. missions, data gravity and zero waste (sections_missions), then the probes,
assumptions, machine, configuration, stages and the glossary (sections_machine). Prose lives in reports.text.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from feedtax.reports import (
    answers,
    sections_feeding,
    sections_machine,
    sections_missions,
    sections_pipeline,
    sections_tiers,
    text,
)
from feedtax.reports.common import CSS, dist, figure
from feedtax.results.io import write_atomic
from feedtax.results.schema import Results
from feedtax.stats import UNSTABLE_SPREAD

_FORMATS_HEAD = (
    "<table><tr><th class='l'>track</th><th class='l'>format</th><th>samples</th><th>bytes/sample</th>"
    "<th>compression</th><th>encode samples/s</th><th>decode samples/s cold</th><th>decode samples/s warm</th>"
    "<th>decode MB/s warm</th><th class='l'>cache evicted</th><th class='l'>random access</th></tr>"
)


def _header(results: Results) -> list[str]:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>feedtax report {escape(results.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>feedtax report</h1><p>Run <code>{escape(results.run_id)}</code>,"
        f" profile <b>{escape(results.profile)}</b>, started {escape(results.created_utc)},"
        f" status <span class='status'>{escape(results.status)}</span>.</p>",
    ]
    if results.status != "complete":
        parts.append(text.INCOMPLETE)
    if results.merged is not None:  # feedtax run --repeat N
        parts.append(f"<p>A merge of {results.merged.runs} runs of this profile (<code>feedtax run --repeat "
                     f"{results.merged.runs}</code>): every figure is the median of the runs' medians; the model's "
                     "projections and the settings are the first run's.</p>")
    return parts


def _formats(results: Results) -> list[str]:
    """Part 1: bytes on disk and decode throughput per track and format."""
    from feedtax.reports import figures

    if not results.formats:
        return []
    parts = ["<h2 id='formats'>1. Format costs</h2>", text.FORMATS_INTRO.format(spread=UNSTABLE_SPREAD),
             figure(figures.format_costs(results)), _FORMATS_HEAD]
    for r in results.formats:
        evicted = "yes" if r.cold_cache.evicted else "<span class=warn>no</span>"
        parts.append(
            f"<tr><td class='l'>{r.track}</td><td class='l'>{r.format}</td><td>{r.n_samples:,}</td>"
            f"<td>{r.bytes_per_sample:,.0f}</td><td>{r.compression_ratio:.2f}x</td>"
            f"<td>{dist(r.encode_samples_per_s)}</td><td>{dist(r.decode_samples_per_s_cold)}</td>"
            f"<td>{dist(r.decode_samples_per_s_warm)}</td><td>{r.decode_mb_per_s_warm.median:,.1f}</td>"
            f"<td class='l'>{evicted}</td><td class='l'>{'yes' if r.random_access else 'no'}</td></tr>"
        )
    parts.append("</table>" + text.FORMATS_NOTE)
    return parts


def render(results: Results) -> str:
    """The whole report as an HTML string, every hidden character of the run's text shown (text.visible)."""
    parts = (_header(results) + answers.opening(results) + _formats(results)
             + sections_feeding.feeding(results)
             + sections_pipeline.pipeline(results)
             + sections_tiers.disk_tiers(results)
             + sections_missions.missions(results) + sections_missions.gravity(results)
             + sections_missions.zero_waste(results) + sections_machine.probes(results)
             + sections_missions.assumptions(results) + sections_machine.machine(results)
             + sections_machine.configuration(results) + sections_machine.stages(results)
             + sections_machine.glossary())
    return text.visible("\n".join(parts) + "</body></html>")  # no field's control or bidi character reaches the page


def write(results: Results, path: Path) -> Path:
    """Render and write the report atomically."""
    path = Path(path)
    write_atomic(path, render(results).encode("utf-8"), durable=False)
    return path
