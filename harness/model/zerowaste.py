"""The Zero-Waste Audit of one selection run (the lab's Part 3): the energy of computing on the samples, moving
them through DRAM, and sending data over the radio, where the processing location decides what is sent.

local: the device runs the selection and sends only the kept samples; cloud: it sends the whole pool and the
selection runs there. The transmission cut is set against sending the whole pool, the lab's baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedtax.model.ledger import DRAM, RADIO
from feedtax.model.sources import derived, from_mlsysim, measured
from feedtax.results.audits import Ledger, LedgerRow, SelectionRow, TrackLedger
from feedtax.results.projections import Assumptions

LOCATIONS = ("local", "cloud")
CPU_J_PER_FLOP = "Hardware.Tech.EffectiveCompute.Cpu.energy_per_flop"
FLOPS_PER_FEATURE = 4  # logistic regression per sample and feature: a multiply-add forward, one for the gradient


@dataclass
class ZeroWasteAudit:
    """One selection run's energy by axis (a Ledger, for the EnergyRadar) and the transmission cut it reaches."""

    ledger: Ledger
    sent_bytes: int
    transmission_j: float
    baseline_transmission_j: float
    cut: float
    required_cut: float
    meets_cut: bool


def audit(row: SelectionRow, n_features: int, location: str, a: Assumptions) -> ZeroWasteAudit:
    """The run's compute, DRAM and radio joules at the chosen location, and its cut against sending the whole pool."""
    if location not in LOCATIONS:
        raise ValueError(f"unknown processing location {location!r}; choose from {', '.join(LOCATIONS)}")
    per_sample = row.bytes_processed / max(row.samples_processed, 1)
    flops = measured(row.samples_processed * FLOPS_PER_FEATURE * n_features, "flop",
                     f"samples processed (measured) x {FLOPS_PER_FEATURE} x {n_features} features")
    dram = measured(row.bytes_processed, "byte", "bytes the run read (measured)")
    bit = from_mlsysim(RADIO, "J/bit")
    per_byte = derived(bit.value * 8, "J/byte", [bit], "radio energy per bit x 8")
    sent = row.kept_samples if location == "local" else row.pool_samples
    sent_bytes = measured(sent * per_sample, "byte", f"{'kept' if location == 'local' else 'all'} samples sent")
    pool_bytes = row.pool_samples * per_sample
    rows = [_row("compute", "CPU FLOPs", flops, from_mlsysim(CPU_J_PER_FLOP, "J/flop")),
            _row("memory", "DRAM", dram, from_mlsysim(DRAM, "J/byte")),
            _row("radio", "radio", sent_bytes, per_byte)]
    move = sum(r.joules for r in rows if r.axis != "compute")
    compute = rows[0].joules
    track = TrackLedger(track="selection", unit_of_work=f"one selection run, processed {location}", format="float32",
                        rows=rows, move_j=move, compute_j=compute, move_over_compute=move / compute if compute else 0,
                        measured_joules=row.energy_j if row.energy_source.startswith("measured") else None,
                        measured_source=row.energy_source)
    baseline = pool_bytes * per_byte.value
    cut = 1 - rows[2].joules / baseline if baseline else 0.0
    required = a.value("transmission_energy_cut")
    return ZeroWasteAudit(ledger=Ledger(tracks=[track]), sent_bytes=int(sent_bytes.value),
                          transmission_j=rows[2].joules, baseline_transmission_j=baseline, cut=cut,
                          required_cut=required, meets_cut=cut >= required)


def _row(axis: str, medium: str, amount, per_unit) -> LedgerRow:
    return LedgerRow(axis=axis, medium=medium, amount=amount, energy_per_unit=per_unit,
                     joules=amount.value * per_unit.value)
