"""The projection stage: a run's measured sections -> the model's inputs -> the missions, the model's check
against the measured sweep, the Data Gravity Audit and the energy ledger. It reads only the results object,
so `feedtax project RESULTS.json` re-projects without measuring again (with other assumptions, say)."""

from __future__ import annotations

from collections.abc import Iterable

from feedtax import datasets
from feedtax.results.schema import Results


def stage_rates(res: Results) -> list:
    """Per-worker stage rates of each swept track x format, from the tuned loader's 1-worker (else first) rows
    (the default loader's workers carry no stage clocks)."""
    from feedtax.model.validation import StageRates

    disk = res.disk
    transport = {s.track: s.transport.transport_s_per_batch for s in res.tuned_summaries() if s.transport}
    sizes = {(f.track, f.format): f for f in res.formats}
    out = []
    for (track, fmt), rows in _by_pair(res.tuned_rows()).items():
        row = next((r for r in rows if r.num_workers == 1), rows[0])
        f = sizes.get((track, fmt))
        if f is None or disk is None or not row.decode_s_per_batch or not row.transform_s_per_batch:
            continue
        out.append(StageRates(
            track=track, format=fmt, bytes_per_sample=f.bytes_per_sample, raw_bytes_per_sample=f.raw_bytes_per_sample,
            decode_samples_per_s_per_worker=row.batch_size / row.decode_s_per_batch,
            transform_samples_per_s_per_worker=row.batch_size / row.transform_s_per_batch,
            # the sweep reads shards the format stage just wrote: from the page cache
            read_mb_per_s=disk.seq_read_mb_per_s_warm,
            transport_s_per_batch=transport.get(track),
            collate_s_per_batch=row.collate_s_per_batch,
        ))
    return out


def _by_pair(rows: Iterable) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for r in rows:
        out.setdefault((r.track, r.format), []).append(r)
    return out


def project_results(res: Results, assume: list[str] | None = None) -> None:
    """Fill res.assumptions, projections, model_validation, gravity and energy_ledger from what res measured."""
    from feedtax.model import assumptions as assumptions_mod
    from feedtax.model import gravity, inputs, missions, validation
    from feedtax.model import ledger as energy

    if res.disk is None or not res.formats:
        raise ValueError("projection needs the disk probe and the format stage's results")
    a = assumptions_mod.load(overrides=assume)
    res.assumptions = a
    tracks = list(dict.fromkeys(f.track for f in res.formats))
    sizes = datasets.Sizes.from_json(res.config.sizes)
    fields = inputs.sample_fields({t: [datasets.sample(t, 0, res.config.seed, sizes)] for t in tracks})
    mfu = [r.mfu for r in res.loader if r.mfu is not None]
    m = inputs.measured_from(
        res.formats,
        transform_samples_per_s={t.track: t.samples_per_s.median for t in res.transforms},
        sample_fields=fields,
        disk_read_mb_per_s=res.disk.seq_read_mb_per_s_first,
        gpu_mfu=max(mfu) if mfu else None,
        audio_rate_hz=datasets.AUDIO_RATE_HZ,
    )
    res.projections = missions.project(m, a, tracks)
    res.model_validation = validation.model_validation(res.tuned_rows(), stage_rates(res),
                                                      cpu_count=res.host.cpu_affinity_cores)
    res.gravity = gravity.gravity(disk_write_mb_per_s=res.disk.seq_write_mb_per_s,
                                  disk_read_mb_per_s=res.disk.seq_read_mb_per_s_first, assumptions=a)
    res.energy_ledger = energy.ledger(m, a)
