"""What each of the lab's three Locks came out as on the student's own machine, from that run's results: the numbers
the report's answers (feedtax.reports.answers) stand on, reduced to one of the Lock's choices, or none and why."""

from __future__ import annotations

from pydantic import BaseModel

from feedtax.results.lab import LOCKS
from feedtax.results.schema import Results

LAB_DATASET_BYTES = 10**15  # the lab asks Part 1 of a petabyte, as the report's answer does
NOISY_LABELS = ("low", "medium")  # what the report counts as a noisy pool


class MeasuredAnswer(BaseModel):
    """One Lock's answer as this run measured it: one of the lock's choices, or None with the reason."""

    lock: str
    answer: str | None
    reason: str | None = None
    evidence: str = ""

    @property
    def question(self) -> str:
        return LOCKS[self.lock][0]


def _none(lock: str, reason: str) -> MeasuredAnswer:
    return MeasuredAnswer(lock=lock, answer=None, reason=reason, evidence=reason)


def measured_answers(res: Results) -> dict[str, MeasuredAnswer]:
    """Every Lock's measured answer for this run, keyed by lock id, in the lab's order."""
    found = {"gravity": _gravity(res), "format_vs_ssd": _format_vs_ssd(res), "curated_vs_noisy": _curated(res)}
    return {k: found[k] for k in LOCKS}


# --- Part 1: fiber or a shipped drive ---------------------------------------------------------------

def _hours(s: float) -> str:
    return f"{s / 3600:,.0f} h" if s < 72 * 3600 else f"{s / 86400:,.1f} days"


def _gravity(res: Results) -> MeasuredAnswer:
    """The Data Gravity Audit at the lab's petabyte (else the largest size audited), over its slowest link, at the
    audit's shipping distance (the assumption sneakernet_distance_km: across the country), drives written and
    read at this machine's measured disk rates. The slowest link is where the measured disk can decide: over the
    fastest one the network's lead does not depend on this machine."""
    g = res.gravity
    if g is None or not g.tiers:
        return _none("gravity", "this run has no Data Gravity Audit (its gravity section)")
    disk = [g.inputs.get(k) for k in ("disk_write_bandwidth", "disk_read_bandwidth")]
    if any(d is None or d.source != "measured" for d in disk):
        sources = ", ".join(sorted({d.source for d in disk if d is not None})) or "none"
        return _none("gravity", f"the drives' rates were not measured on this machine (source: {sources})")
    sizes = {t.dataset_bytes for t in g.tiers}
    asked = LAB_DATASET_BYTES if LAB_DATASET_BYTES in sizes else max(sizes)
    t = min((t for t in g.tiers if t.dataset_bytes == asked), key=lambda t: t.link_gbps)
    answer = "fiber" if t.winner == "network" else "drive"
    size = f"{asked / 1e15:g} PB" if asked >= 1e15 else f"{asked / 1e12:g} TB"
    where = t.where_drives_win()
    others = "".join(f"; over {o.link_gbps:g} Gbit/s {o.winner} wins ({_hours(o.network_s)} by network)"
                     for o in g.tiers if o.dataset_bytes == asked and o.link_gbps != t.link_gbps)
    evidence = (f"{size} over {t.link_gbps:g} Gbit/s at {t.distance_km:,.0f} km: network {_hours(t.network_s)}, "
                f"{t.drives} drives {_hours(t.sneakernet_s)} at this disk's {disk[0].value:,.0f} MB/s write, "
                f"{disk[1].value:,.0f} MB/s read ({t.winner} wins); {where}{others}")
    return MeasuredAnswer(lock="gravity", answer=answer, evidence=evidence)


# --- Part 2: JSON -> Protobuf, or a faster SSD -----------------------------------------------------

def _format_vs_ssd(res: Results) -> MeasuredAnswer:
    """Measured at throttled disk tiers where the run has them (`disk_tiers`), else from the measured decode rates
    against the measured disk read rate, as the report says it."""
    tiers = getattr(res, "disk_tiers", None)  # only a `feedtax sweep --disk-tier` run has them
    if tiers is not None and (measured := _from_disk_tiers(tiers)) is not None:
        return measured
    return _from_decode(res)


_WINNERS = {"format": "format", "disk": "ssd"}  # Lock2Answer.winner -> the Lock's choice


def _from_disk_tiers(tiers) -> MeasuredAnswer | None:
    """The answer measured at throttled disk tiers (results.tiers.Lock2Answer, one per worker count): the AU gained
    by the format switch against that gained by the disk upgrade, both measured here. Where the winners that beat a
    rerun's noise agree, that; none beating it or a split: no answer, and why. None where nothing was measured
    (the decode-rate answer stands in)."""
    measured = [a for a in getattr(tiers, "lock2", None) or [] if getattr(a, "reason", None) is None
                and a.format_gain_pp is not None and a.disk_gain_pp is not None]
    if not measured:
        return None
    said = "; ".join(f"{a.num_workers} workers on {a.slow_tier}: JSON -> Protobuf {a.format_gain_pp:+.1f} pp AU, "
                     f"-> {a.fast_tier} {a.disk_gain_pp:+.1f} pp" for a in measured)
    clear = {a.num_workers: _WINNERS.get(a.winner) for a in measured if a.beats_noise and a.winner in _WINNERS}
    if not clear:
        return _none("format_vs_ssd", f"measured at disk tiers, the two gains differ by no more than a rerun's "
                                      f"noise: {said}")
    if len(set(clear.values())) > 1:
        split = ", ".join(f"{v} at {w} workers" for w, v in clear.items())
        return _none("format_vs_ssd", f"measured at disk tiers, the winner depends on the worker count ({split}): "
                                      f"{said}")
    return MeasuredAnswer(lock="format_vs_ssd", answer=next(iter(clear.values())),
                          evidence=f"measured at throttled disk tiers: {said}")


def _track_answer(res: Results, track: str) -> tuple[str, str] | None:
    """(answer, evidence) of one track: decode binds (the disk reads JSON faster than one core decodes it) ->
    format; else the disk binds -> ssd. None where the track lacks JSON, Protobuf or a disk rate."""
    fmt = {(f.track, f.format): f for f in res.formats}
    j, p = fmt.get((track, "json")), fmt.get((track, "protobuf"))
    disk = res.disk.seq_read_mb_per_s_first if res.disk else None
    if j is None or p is None or not disk or not j.bytes_per_sample > 0:
        return None
    decode_j, decode_p = j.decode_samples_per_s_warm.median, p.decode_samples_per_s_warm.median
    if not decode_j > 0:
        return None
    read_j = disk * 1e6 / j.bytes_per_sample
    rates = (f"{track}: the disk reads JSON at {read_j:,.0f} samples/s ({disk:,.0f} MB/s), one core decodes "
             f"{decode_j:,.0f} (Protobuf {decode_p:,.0f})")
    if read_j > decode_j:
        return "format", f"{rates}: decode binds, a faster SSD changes nothing"
    return "ssd", f"{rates}: the disk binds, a faster SSD helps up to {decode_j / read_j:.3g}x"


def _from_decode(res: Results) -> MeasuredAnswer:
    """The track the lab's Part 2 works on (the one swept with feedtax's tuned loader) where it has an answer;
    else the answer every track gives, when they agree."""
    tracks = list(dict.fromkeys(f.track for f in res.formats))
    per = {t: a for t in tracks if (a := _track_answer(res, t)) is not None}
    if not per:
        has_disk = res.disk is not None and bool(res.disk.seq_read_mb_per_s_first)
        why = "no track has both JSON and Protobuf decode measurements" if has_disk else "no disk read measurement"
        return _none("format_vs_ssd", f"this run cannot say: {why}")
    swept = next((r.track for r in res.tuned_rows()), None)
    if swept in per:
        answer, evidence = per[swept]
        return MeasuredAnswer(lock="format_vs_ssd", answer=answer, evidence=evidence)
    answers = {a for a, _ in per.values()}
    if len(answers) == 1:
        evidence = "; ".join(e for _, e in per.values())
        return MeasuredAnswer(lock="format_vs_ssd", answer=answers.pop(), evidence=evidence)
    split = ", ".join(f"{t}: {a}" for t, (a, _) in per.items())
    return _none("format_vs_ssd", f"the tracks disagree ({split}) and none was swept")


# --- Part 3: many noisy samples or few curated ones ------------------------------------------------

def _curated(res: Results) -> MeasuredAnswer:
    """The energy to reach the target accuracy: the curated run against the cheapest noisy pool (low or medium
    labels, any filtering) that reaches it, as the report compares them; a side that misses the target loses."""
    sel = res.selection
    if sel is None or not sel.rows:
        return _none("curated_vs_noisy", "this run has no selection experiment")
    curated = [r for r in sel.rows if r.scenario.startswith("few")]
    noisy = [r for r in sel.rows if r.scenario.startswith("many")]
    if not curated or not noisy:
        return _none("curated_vs_noisy", "the selection experiment lacks a curated or a noisy scenario")
    c = curated[0]
    reached = [r for r in noisy if r.reached_target and r.label_quality in NOISY_LABELS]
    k = min(reached, key=lambda r: r.energy_j, default=None)
    target = sel.config.target_accuracy
    said_c = (f"curated: {c.kept_samples:,} {c.label_quality}-labelled samples reach {c.accuracy:.1%} "
              f"(target {target:.0%}) for {c.energy_j:.3g} J")
    said_k = ("no noisy pool (low or medium labels) reaches the target" if k is None else
              f"cheapest noisy pool to reach it: {k.kept_samples:,} of {k.pool_samples:,} ({k.label_quality} labels, "
              f"{k.filter_ratio:.0%} filtered), {k.energy_j:.3g} J")
    evidence = f"{said_c}; {said_k}"
    if not c.reached_target and k is None:
        return _none("curated_vs_noisy", f"neither reaches the target accuracy: {evidence}")
    if not c.reached_target:
        answer = "noisy"
    elif k is None:
        answer = "curated"
    else:
        answer = "curated" if c.energy_j <= k.energy_j else "noisy"
    return MeasuredAnswer(lock="curated_vs_noisy", answer=answer, evidence=evidence)
