"""The answers first, in words and this run's numbers: per track the format and workers to use (with the default
DataLoader's AU there), the four missions' verdicts and what binds each, and the lab's three questions (fiber or
shipped drives; JSON -> Protobuf or a faster SSD; many noisy samples or few curated ones). Plain sentences, so the
report's opening and the terminal's summary at the end of `feedtax run` say the same; each names where its evidence
is (an anchor of the report)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from feedtax.reports.common import duration, ratio
from feedtax.results.schema import Results

LAB_DATASET_BYTES = 10**15  # the lab's question is asked of a petabyte
MISSIONS = {"cloud": "H100 cloud", "edge": "Jetson Orin edge", "mobile": "AR glasses", "tiny": "hearable MCU"}


@dataclass(frozen=True)
class Answer:
    """One question, its answer sentences and the report anchor holding the evidence."""

    question: str
    lines: list[str]
    evidence: str


def answers(results: Results) -> list[Answer]:
    """Every answer this run's results hold, in the order a student asks."""
    return [a for a in (_formats(results), _missions(results), _fiber(results), _json_or_ssd(results),
                        _noisy_or_curated(results)) if a is not None and a.lines]


def opening(results: Results) -> list[str]:
    """The report's first screen: every answer, each with a link to its evidence below."""
    found = answers(results)
    if not found:
        return []
    parts = ["<h2 id='answers'>The answers, from this run's numbers</h2>"]
    for a in found:
        parts.append(f"<h3>{escape(a.question)} <a class='evidence' href='#{a.evidence}'>evidence</a></h3>"
                     + "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in a.lines) + "</ul>")
    return parts


def _formats(results: Results) -> Answer | None:
    """Per swept track: the tuned loader's best point (highest AU, fewest workers within 1 pp) and its headroom."""
    tuned = results.tuned_rows()
    if not tuned:
        return None
    default = {(r.track, r.format, r.num_workers): r for r in results.loader if r.loader == "default"}
    consumption = {s.track: s.consumption_samples_per_s for s in results.tuned_summaries()}
    lines = []
    for track in dict.fromkeys(r.track for r in tuned):
        mine = [r for r in tuned if r.track == track]
        top = max(r.au for r in mine)
        best = min((r for r in mine if r.au >= top - 0.01), key=lambda r: (r.num_workers, -r.au))
        workers = f"{best.num_workers} worker" + ("" if best.num_workers == 1 else "s")
        line = (f"{track}: {best.format} at {workers} with feedtax's tuned loader, on this machine: feeding tax "
                f"{best.feeding_tax:.0%} (AU {best.au:.0%})")
        if consumption.get(track):
            headroom = ratio(best.ingestion_samples_per_s / consumption[track])
            line += f", the loader alone delivering {headroom} what the consumer takes"
        d = default.get((track, best.format, best.num_workers))
        if d is not None:
            line += f"; the default torch DataLoader there: AU {d.au:.0%}"
        lines.append(line + ".")
    unswept = [t for t in results.config.tracks if t not in {r.track for r in tuned}]
    if unswept:
        lines.append(f"Not swept in this run: {', '.join(unswept)} (the {results.profile} profile sweeps "
                     f"{', '.join(dict.fromkeys(r.track for r in tuned))}; the full profile sweeps every track).")
    both = {r.loader for r in results.loader} == {"default", "tuned"}
    return Answer("Which format and how many DataLoader workers?", lines, "loaders" if both else "feeding")


def _missions(results: Results) -> Answer | None:
    lines = []
    for track, p in results.projections.items():
        binding = next((c for c in p.checks if c.name == p.binding_constraint), None)
        how = ""
        if binding is not None:
            how = (f" (headroom {ratio(binding.headroom)})" if binding.ok else
                   f" (missed by {ratio(1 / binding.headroom)})" if binding.headroom > 0 else " (missed)")
        lines.append(f"{MISSIONS.get(track, track)} ({track}): {p.verdict}; binding: {p.binding_constraint}{how}.")
    return Answer("Do the four missions work? (this machine's measurements projected onto each target through "
                  "mlsysim)", lines, "missions")


def _fiber(results: Results) -> Answer | None:
    """The largest dataset's tiers: who wins at the audit's distance, and up to which distance drives win."""
    g = results.gravity
    if g is None or not g.tiers:
        return None
    sizes = {t.dataset_bytes for t in g.tiers}
    asked = LAB_DATASET_BYTES if LAB_DATASET_BYTES in sizes else max(sizes)
    lines = []
    for t in (t for t in g.tiers if t.dataset_bytes == asked):
        size = f"{asked / 1e15:g} PB" if asked >= 1e15 else f"{asked / 1e12:g} TB"
        lines.append(f"{size} over {t.link_gbps:g} Gbit/s: network {duration(t.network_s)}, {t.drives} drives "
                     f"{duration(t.sneakernet_s)} at {t.distance_km:,.0f} km ({t.winner} wins); "
                     f"{t.where_drives_win()}.")
    disk = g.inputs.get("disk_write_bandwidth")
    if disk is not None:
        lines.append(f"Drives are written and read at this machine's disk rates ({disk.source}: "
                     f"{disk.value:,.0f} MB/s write).")
    return Answer("Fiber or shipped drives?", lines, "gravity")


def _json_or_ssd(results: Results) -> Answer | None:
    """JSON -> Protobuf (measured decode, and the sweep where it has both) against a faster disk (the measured read
    rate in JSON samples/s: a disk faster than decode needs changes nothing)."""
    fmt = {(f.track, f.format): f for f in results.formats}
    disk = results.disk.seq_read_mb_per_s_first if results.disk else None
    lines = []
    for track in dict.fromkeys(f.track for f in results.formats):
        j, p = fmt.get((track, "json")), fmt.get((track, "protobuf"))
        if j is None or p is None or disk is None:
            continue
        decode_j, decode_p = j.decode_samples_per_s_warm.median, p.decode_samples_per_s_warm.median
        read_j = disk * 1e6 / j.bytes_per_sample
        line = (f"{track}: Protobuf decodes {ratio(decode_p / decode_j)} JSON's rate ({decode_p:,.0f} vs "
                f"{decode_j:,.0f} samples/s per core, measured)")
        if read_j > decode_j:
            ahead = ratio(read_j / decode_j)
            line += (f"; the disk already reads JSON {ahead} faster than one core decodes it (measured {disk:,.0f} "
                     f"MB/s), so a faster SSD changes nothing until decode is {ahead} faster: switch formats")
        else:
            line += (f"; the disk reads JSON at {read_j:,.0f} samples/s, below decode: a faster SSD helps up to "
                     f"{ratio(decode_j / read_j)} (computed from the measured rate, not measured)")
        lines.append(line + ".")
    sweep = {(r.track, r.format, r.num_workers): r for r in results.tuned_rows()}
    for (track, f, w), r in sweep.items():
        if f == "json" and (other := sweep.get((track, "protobuf", w))) is not None:
            lines.append(f"{track}, {w} worker(s), measured in the sweep: feeding tax {r.feeding_tax:.0%} with JSON, "
                         f"{other.feeding_tax:.0%} with Protobuf.")
    return Answer("JSON -> Protobuf, or a faster SSD?", lines, "formats")


def _noisy_or_curated(results: Results) -> Answer | None:
    sel = results.selection
    if sel is None or not sel.rows:
        return None
    curated = [r for r in sel.rows if r.scenario.startswith("few")]
    noisy = [r for r in sel.rows if r.scenario.startswith("many")]
    if not curated or not noisy:
        return None
    c = curated[0]
    raw = min(noisy, key=lambda r: (r.filter_ratio, ["low", "medium", "high", "expert"].index(r.label_quality)
                                    if r.label_quality in ("low", "medium", "high", "expert") else 9))
    reached = [r for r in noisy if r.reached_target and r.label_quality in ("low", "medium")]
    cheapest = min(reached, key=lambda r: r.energy_j, default=None)
    target = sel.config.target_accuracy
    lines = [
        f"Few curated: {c.kept_samples:,} {c.label_quality}-labelled samples reach {c.accuracy:.1%} (target "
        f"{target:.0%}) after processing {c.samples_processed:,} samples, {c.energy_j:.2g} J.",
        f"Many noisy: {raw.kept_samples:,} {raw.label_quality}-quality labels, unfiltered, reach "
        f"{raw.accuracy:.1%} after {raw.samples_processed:,} samples, {raw.energy_j:.2g} J"
        + ("" if raw.reached_target else ": short of the target") + ".",
    ]
    if cheapest is not None:
        k = cheapest
        energy = ratio(k.energy_j / c.energy_j) if c.energy_j else "n/a"
        lines.append(f"The cheapest noisy pool (low or medium labels) to reach the target kept {k.kept_samples:,} of "
                     f"{k.pool_samples:,} ({k.label_quality} labels, {k.filter_ratio:.0%} filtered): "
                     f"{k.samples_processed:,} samples, {k.energy_j:.2g} J, {energy} the curated run's energy.")
    lines.append(f"(This run's scale: a pool of {sel.config.pool_samples:,} against {sel.config.curated_samples:,} "
                 "curated; the lab asks it of a million against ten thousand.)")
    return Answer("A million noisy samples or ten thousand curated ones?", lines, "selection")
