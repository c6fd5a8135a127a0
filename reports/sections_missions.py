"""Parts 3-5 of the run report and its assumptions: the missions projected through mlsysim (with the model's
validation against this machine), the Data Gravity Audit, the Zero-Waste Audit, and every assumption used."""

from __future__ import annotations

from html import escape

from feedtax.reports import text
from feedtax.reports.common import Markup, duration, figure, human, pct, ratio, table
from feedtax.results.schema import Results
from feedtax.vocabulary import HALF_EARTH_KM, LINK_GBPS, VALIDATION_LIMIT_PP


def waterfall_links(results: Results) -> tuple[float | None, dict[str, tuple[float, str]]]:
    """This machine's measured disk read (MB/s) and each mission's network link (MB/s), from the assumptions:
    cloud data arrives over the lab's fastest datacenter link, mobile frames over Bluetooth LE."""
    disk = results.disk.seq_read_mb_per_s_first if results.disk else None
    a = results.assumptions
    if a is None:
        return disk, {}
    e = a.entries
    links = {"cloud": (max(LINK_GBPS) * 1e9 / 8 * e["link_efficiency"].value / 1e6,
                       f"network {max(LINK_GBPS):g}G")}
    if "ble_phy_mbit_per_s" in e and "ble_link_efficiency" in e:
        links["mobile"] = (e["ble_phy_mbit_per_s"].value * e["ble_link_efficiency"].value / 8, "network BLE")
    return disk, links


def missions(results: Results) -> list[str]:
    """Part 3: each mission through mlsysim, its verdict, checks and sourced inputs; then the model's validation."""
    from feedtax.reports import mission_figures

    if not results.projections:
        return []
    parts = [
        "<h2 id='missions'>3. Missions: this machine's measurements projected through mlsysim</h2>",
        text.MISSIONS_INTRO,
        figure(mission_figures.ingestion_waterfall(results.projections, *waterfall_links(results))),
    ]
    for track, p in results.projections.items():
        parts += _mission(track, p)
    if results.model_validation:
        parts += _validation(results)
    return parts


def _mission(track: str, p) -> list[str]:
    """One track's verdict, binding constraint, checks, pipeline inputs (folded) and alternatives."""
    verdict = "<span style='color:#080'>meets</span>" if p.verdict == "meets" else "<span class='warn'>misses</span>"
    parts = [
        f"<h3>{escape(track)}: {verdict} — binding: {escape(p.binding_constraint)}</h3>",
        text.MISSION_SUMMARY.format(format=escape(p.format), bottleneck=escape(p.pipeline.bottleneck_stage),
                                    wait=p.pipeline.accelerator_wait_fraction),
        table(["check", "value", "limit", "ok", "headroom", "detail"],
              [[c.name, human(c.value, c.unit), human(c.limit, c.unit),
                "yes" if c.ok else Markup("<span class='warn'>no</span>"), ratio(c.headroom), c.detail]
               for c in p.checks], text=(-1,)),
        "<details><summary>pipeline inputs and their sources</summary>",
        table(["input", "value", "source", "note"],
              [[k, human(v.value, v.unit), v.source, v.note or ""] for k, v in p.inputs.items()], text=(-2, -1)),
        "</details>",
    ]
    for alt in p.alternatives:
        parts.append(text.ALTERNATIVE.format(name=escape(alt.name), bytes_per_frame=alt.bytes_per_frame,
                                             radio_mw=alt.radio_power_w * 1e3, cut=alt.cut_vs_baseline,
                                             verdict="meets" if alt.meets_cut else "misses"))
    return parts


def _validation(results: Results) -> list[str]:
    """Predicted vs measured feeding tax per sweep point; errors past the limit flagged."""
    def error(pp: float) -> str | Markup:
        return Markup(f"<span class='warn'>{pp:+.1f}</span>") if abs(pp) > VALIDATION_LIMIT_PP else f"{pp:+.1f}"

    return [
        "<h3>Does the model match this machine?</h3>",
        text.VALIDATION.format(limit=VALIDATION_LIMIT_PP),
        table(["track", "format", "workers", "predicted", "measured", "error (pp)", "likely reason"],
              [[v.track, v.format, v.num_workers, pct(v.predicted_feeding_tax), pct(v.measured_feeding_tax),
                error(v.error_pp), v.likely_reason or ""] for v in results.model_validation], left=2, text=(-1,)),
    ]


def gravity(results: Results) -> list[str]:
    """Part 4: network or sneakernet, per dataset size and link."""
    from feedtax.reports import mission_figures

    g = results.gravity
    if g is None:
        return []
    return [
        "<h2 id='gravity'>4. Data Gravity Audit: network or sneakernet?</h2>",
        text.GRAVITY.format(definition=escape(g.definition)),
        figure(mission_figures.transfer_time_radar(g)),
        figure(mission_figures.sneakernet_crossover(g)),
        table(["dataset", "link", "network", "sneakernet", "winner", "crossover", "drives", "egress"],
              [[mission_figures.size_label(t.dataset_bytes), f"{t.link_gbps:g} Gbit/s", duration(t.network_s),
                duration(t.sneakernet_s), t.winner,
                "never" if t.crossover_km is None else
                "anywhere on Earth" if t.crossover_km > HALF_EARTH_KM else f"{t.crossover_km:,.0f} km",
                t.drives, f"${t.egress_usd:,.0f}"] for t in g.tiers]),
    ]


def zero_waste(results: Results) -> list[str]:
    """Part 5: energy of moving data vs computing on it, and many noisy samples vs few curated ones."""
    from feedtax.reports import mission_figures

    parts = []
    if results.energy_ledger is not None:
        parts += [
            "<h2 id='zero-waste'>5. Zero-Waste Audit: moving data vs computing on it</h2>",
            figure(mission_figures.energy_radar(results.energy_ledger)),
            table(["track", "unit of work", "format", "moving", "computing", "move / compute"],
                  [[t.track, t.unit_of_work, t.format, human(t.move_j, "J"), human(t.compute_j, "J"),
                    human(t.move_over_compute)] for t in results.energy_ledger.tracks], left=3),
        ]
    if results.selection is not None:
        sel = results.selection
        parts += [
            "<h3 id='selection'>Many noisy samples or few curated ones?</h3>",
            text.SELECTION.format(bayes=sel.bayes_accuracy,
                                  energy_source=escape(sel.rows[0].energy_source) if sel.rows else ""),
            table(["scenario", "label quality", "filter", "kept samples", "samples processed", "MB processed",
                   "accuracy", "target reached", "time", "energy"],
                  [[r.scenario, r.label_quality, f"{r.filter_ratio:.0%}", f"{r.kept_samples:,}",
                    f"{r.samples_processed:,}", f"{r.bytes_processed / 1e6:,.1f}", f"{r.accuracy:.1%}",
                    "yes" if r.reached_target else "no", human(r.wall_s, "s"), human(r.energy_j, "J")]
                   for r in sel.rows],
                  left=2),
        ]
    return parts


def assumptions(results: Results) -> list[str]:
    """Every assumption the projections used, overridden ones marked."""
    a = results.assumptions
    if a is None:
        return []
    return ["<h2>Assumptions used by the projections</h2>",
            text.ASSUMPTIONS,
            table(["key", "value", "source", "note"],
                  [[k + (" (overridden)" if e.overridden else ""), human(e.value, e.unit), e.source, e.note]
                   for k, e in a.entries.items()], text=(-2, -1))]
