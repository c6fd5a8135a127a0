"""The Zero-Waste ledger: energy of moving a track's data (bytes x pJ/byte) vs computing on it (FLOPs x pJ/FLOP).

One unit of work per track (one inference on one measured sample's worth of mission data). Energies per byte
and per FLOP come from mlsysim (Hardware.Tech, Systems.NetworkEnergy); bytes from this machine's measured
sample sizes; FLOPs from mlsysim's model registry. Measured joules, where counters exist, sit beside the model.
"""

from __future__ import annotations

from collections.abc import Mapping

from feedtax.model.inputs import Measured
from feedtax.model.sources import derived, frame_4k_bytes, from_mlsysim, measured
from feedtax.results.audits import Ledger, LedgerRow, TrackLedger
from feedtax.results.projections import Assumptions, Sourced
from feedtax.vocabulary import TRACKS

# Per track: the mission's model (FLOPs per inference) and the energy per FLOP of the processor running it.
WORKLOADS = {
    "cloud": ("Models.Language.Llama3_70B.inference_flops", "Hardware.Tech.EffectiveCompute.Gpu.energy_per_flop"),
    "edge": ("Models.Vision.YOLOv8_Nano.inference_flops", "Hardware.Tech.EffectiveCompute.Gpu.energy_per_flop"),
    "mobile": ("Models.Vision.MobileNetV2.inference_flops", "Hardware.Tech.EffectiveCompute.Tpu.energy_per_flop"),
    "tiny": ("Models.Tiny.DS_CNN.inference_flops", "Hardware.Tech.EffectiveCompute.Cpu.energy_per_flop"),
}
HBM = "Hardware.Tech.Memory.HBM2_AccessEnergy2017.energy_per_byte"
DRAM = "Hardware.Tech.Memory.DRAM.energy_per_byte"
SRAM = "Hardware.Tech.Movement.L1.energy_per_byte"
NVME = "Hardware.Tech.Movement.Nvme.energy_per_byte"
NETWORK = "Hardware.Tech.Movement.Network.energy_per_byte"
RADIO = "Systems.NetworkEnergy.RadioBitLow"


def _row(axis: str, medium: str, amount: Sourced, per_unit: Sourced) -> LedgerRow:
    return LedgerRow(axis=axis, medium=medium, amount=amount, energy_per_unit=per_unit,
                     joules=amount.value * per_unit.value)


def _rows(track: str, m: Measured, fmt: str, a: Assumptions) -> tuple[str, list[LedgerRow]]:
    from mlsysim.core.units import BITS_PER_BYTE

    fm = m.format_of(track, fmt)
    on_disk = measured(fm.bytes_per_sample, "byte", f"{fmt} bytes on disk per sample")
    raw = measured(fm.raw_bytes_per_sample, "byte", "in-memory bytes per sample")
    flops_path, pj_flop_path = WORKLOADS[track]
    per_inference = from_mlsysim(flops_path, "flop")
    e_flop = from_mlsysim(pj_flop_path, "J/flop")
    if track == "cloud":
        tokens = measured(m.sample_fields["cloud"]["tokens"].items, "", "tokens per measured sample")
        params = from_mlsysim("Models.Language.Llama3_70B.parameters", "param")
        width = from_mlsysim("core.units.BYTES_INT8", "byte")
        weights = derived(params.value * width.value, "byte", [params, width], "fp8 weights, read once per pass")
        flops = derived(per_inference.value * tokens.value, "flop", [per_inference, tokens], "prefill over the prompt")
        rows = [_row("compute", "GPU FLOPs", flops, e_flop),
                _row("memory", "HBM", weights, from_mlsysim(HBM, "J/byte")),
                _row("storage", "NVMe", on_disk, from_mlsysim(NVME, "J/byte")),
                _row("network", "datacenter network", on_disk, from_mlsysim(NETWORK, "J/byte"))]
        return "one prompt (measured tokens) through Llama-3-70B", rows
    if track == "edge":
        streams, frame = a.sourced("edge_streams"), frame_4k_bytes()
        frames = derived(streams.value * frame.value, "byte", [streams, frame], "one raw 4K frame per camera")
        flops = derived(per_inference.value * streams.value, "flop", [per_inference, streams],
                        "one detection per camera")
        return "one frame from every camera", [_row("compute", "GPU FLOPs", flops, e_flop),
                                              _row("memory", "DRAM", frames, from_mlsysim(DRAM, "J/byte"))]
    if track == "mobile":
        bits = from_mlsysim(RADIO, "J/bit")
        per_byte = derived(bits.value * BITS_PER_BYTE, "J/byte", [bits], "radio energy per bit x 8")
        return "one frame sent from the glasses and recognised on the phone", [
            _row("compute", "NPU FLOPs", per_inference, e_flop),
            _row("memory", "DRAM", raw, from_mlsysim(DRAM, "J/byte")),
            _row("radio", "Bluetooth radio", on_disk, per_byte)]
    return "one 10 ms audio window", [_row("compute", "MCU FLOPs", per_inference, e_flop),
                                      _row("memory", "SRAM", raw, from_mlsysim(SRAM, "J/byte"))]


def ledger(m: Measured, a: Assumptions, formats: Mapping[str, str] | None = None,
           measured_joules: Mapping[str, tuple[float, str]] | None = None) -> Ledger:
    """Per measured track: moved vs computed joules for one unit of work.

    formats: track -> format whose measured bytes to use (default: raw, the physical-limit reference).
    measured_joules: track -> (joules, counter name) where an energy counter measured the same work.
    """
    out = []
    for track in TRACKS:
        if not m.of(track):
            continue
        names = [f.format for f in m.of(track)]
        fmt = (formats or {}).get(track) or ("raw" if "raw" in names else names[0])
        unit, rows = _rows(track, m, fmt, a)
        move = sum(r.joules for r in rows if r.axis != "compute")
        compute = sum(r.joules for r in rows if r.axis == "compute")
        j, src = (measured_joules or {}).get(track, (None, None))
        out.append(TrackLedger(track=track, unit_of_work=unit, format=fmt, rows=rows, move_j=move, compute_j=compute,
                               move_over_compute=move / compute, measured_joules=j, measured_source=src))
    return Ledger(tracks=out)
