"""The one bridge to mlsysim: this machine's measured numbers become the inputs of the course's models.

Per track, evaluate_pipeline (the lab's own pipeline model), DataModel and TransformationModel run on
inputs that are each measured, from mlsysim's registry, or a sourced assumption (model/assumptions.json),
and every input keeps its {value, unit, source}. Rates are in samples of the measured (synthetic) sample
per second; mission demands are converted to that unit, which assumes decode cost scales with bytes.
mlsysim is imported inside the functions that use it: it takes seconds to import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from feedtax.results.projections import (
    Alternative,
    Assumptions,
    Check,
    DataWall,
    FormatProjection,
    PipelineOut,
    Projection,
    Sourced,
    TransformWall,
    ValidationRow,
)
from feedtax.vocabulary import TRACKS, VALIDATION_LIMIT_PP, Track

PIPELINE_ARGS = ("sample_size", "compression_ratio", "read_bandwidth", "base_decode_rate_per_second",
                 "compression_decode_work", "transform_rate_per_second", "required_rate_per_second")
BASELINE_FORMAT = "raw"     # the physical-limit reference every format's decode work is relative to


# ---------------------------------------------------------------- inputs: what the probes and sweep measured

class FormatMeasure(BaseModel):
    """One format's measured cost for one track's samples (from the format stage, medians)."""

    track: Track
    format: str
    bytes_per_sample: float = Field(description="bytes on disk per sample")
    raw_bytes_per_sample: float = Field(description="the sample's in-memory size")
    decode_samples_per_s: float = Field(description="decode rate of one process, cold cache, median")


class FieldMeasure(BaseModel):
    """One field of a measured sample: its in-memory bytes and element count."""

    bytes: int
    items: int


class Measured(BaseModel):
    """Everything calibrate needs from this machine; built by the run (or `feedtax project`) from results."""

    formats: list[FormatMeasure]
    transform_samples_per_s: dict[str, float] = Field(description="per track: the track's transform, one worker")
    sample_fields: dict[str, dict[str, FieldMeasure]] = Field(description="per track: field -> bytes, items")
    disk_read_mb_per_s: float = Field(description="sequential read, cold cache (probes: seq_read_mb_per_s_cold)")
    disk_write_mb_per_s: float | None = None
    memory_copy_mb_per_s: float | None = None
    gpu_mfu: float | None = Field(None, description="measured MFU when a GPU was present")
    audio_rate_hz: float = Field(description="sample rate of the measured audio (feedtax.datasets.AUDIO_RATE_HZ)")

    def of(self, track: str) -> list[FormatMeasure]:
        return [f for f in self.formats if f.track == track]


def sample_fields(samples_by_track: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, FieldMeasure]]:
    """Field sizes of the first sample of each track, from its schema."""
    from feedtax.formats.base import schema_of

    return {track: {f.name: FieldMeasure(bytes=f.nbytes, items=f.size) for f in schema_of(next(iter(samples)))}
            for track, samples in samples_by_track.items()}


def measured_from(format_results: Iterable[Any], **fields: Any) -> Measured:
    """Build Measured from results.FormatResult objects (decode: cold median) plus the other measured fields."""
    formats = [FormatMeasure(track=r.track, format=r.format, bytes_per_sample=r.bytes_per_sample,
                             raw_bytes_per_sample=r.raw_bytes_per_sample,
                             decode_samples_per_s=r.decode_samples_per_s_cold.median) for r in format_results]
    return Measured(formats=formats, **fields)


# ---------------------------------------------------------------- outputs


# ---------------------------------------------------------------- sourced numbers

def measured(value: float, unit: str = "", note: str | None = None) -> Sourced:
    return Sourced(value=float(value), unit=unit, source="measured", note=note)


def from_mlsysim(path: str, unit: str = "") -> Sourced:
    """A registry value by its dotted path below the mlsysim package, converted to unit; source names the path."""
    import mlsysim

    obj: Any = mlsysim
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    if hasattr(obj, "to"):
        value = obj.to(unit).magnitude if unit else obj.to("").magnitude
    else:
        value = obj
    return Sourced(value=float(value), unit=unit, source=f"mlsysim:{path}")


def derived(value: float, unit: str, parts: Iterable[Sourced], note: str) -> Sourced:
    """A value computed from other sourced values: source "measured" if any part is, else the first part's."""
    parts = list(parts)
    sources = list(dict.fromkeys(s for p in parts for s in [p.source, *p.derived_from]))
    primary = "measured" if "measured" in sources else sources[0]
    return Sourced(value=float(value), unit=unit, source=primary, note=note, derived_from=sources)


def _q(s: Sourced):
    from mlsysim.core.units import Q_

    return Q_(s.value, s.unit)


# ---------------------------------------------------------------- the pipeline model

def run_pipeline(inputs: Mapping[str, Sourced]) -> PipelineOut:
    """Call mlsysim's evaluate_pipeline on recorded inputs (quantities for the two with units)."""
    from mlsysim.labs.experiments.v1_04_experiments import evaluate_pipeline

    kwargs = {k: (_q(inputs[k]) if k in ("sample_size", "read_bandwidth") else inputs[k].value) for k in PIPELINE_ARGS}
    r = evaluate_pipeline(**kwargs)
    return PipelineOut(**{k: getattr(r, k) for k in PipelineOut.model_fields})


def pipeline_inputs(fm: FormatMeasure, baseline: FormatMeasure | None, *, read_bandwidth: Sourced,
                    scale: list[Sourced], transform_per_core: Sourced, required: Sourced) -> dict[str, Sourced]:
    """evaluate_pipeline's keyword arguments for one format; per-core rates are multiplied by `scale`
    (target cores x their speed relative to this machine's, or this machine's worker count).

    The model wants compression_ratio >= 1; a format larger than raw (text) is passed as its on-disk size
    with ratio raw/raw, which gives the same bytes read per sample. Decode work is relative to the raw
    baseline's measured decode rate, so base rate x 1/work is the format's own measured rate.
    """
    ratio = fm.raw_bytes_per_sample / fm.bytes_per_sample
    raw = measured(fm.raw_bytes_per_sample, "byte", "in-memory bytes of one measured sample")
    on_disk = measured(fm.bytes_per_sample, "byte", f"{fm.format} bytes on disk per sample")
    if ratio >= 1:
        sample_size = raw
        compression = measured(ratio, "", f"raw / {fm.format} bytes on disk")
    else:
        sample_size = on_disk
        compression = measured(fm.bytes_per_sample / fm.bytes_per_sample, "",
                               f"{fm.format} is larger than raw ({ratio:.2f}x): passed as its on-disk size, ratio 1")
    base = baseline or fm
    per_core = measured(base.decode_samples_per_s, "", f"{base.format} decode samples/s, one process, cold cache")
    factor = math.prod(s.value for s in scale)
    by = " x ".join(s.source for s in scale)
    return {
        "sample_size": sample_size,
        "compression_ratio": compression,
        "read_bandwidth": read_bandwidth,
        "base_decode_rate_per_second": derived(per_core.value * factor, "", [per_core, *scale],
                                               f"{base.format} decode rate x {by}"),
        "compression_decode_work": measured(base.decode_samples_per_s / fm.decode_samples_per_s, "",
                                            f"{base.format} decode rate / {fm.format} decode rate (measured)"),
        "transform_rate_per_second": derived(transform_per_core.value * factor, "", [transform_per_core, *scale],
                                             f"transform rate x {by}"),
        "required_rate_per_second": required,
    }


def _check(name: str, value: float, limit: float, unit: str, kind: str, detail: str) -> Check:
    if kind == "max":
        ok, headroom = value <= limit, (limit / value if value > 0 else math.inf)
    else:
        ok, headroom = value >= limit, (value / limit if limit > 0 else math.inf)
    return Check(name=name, value=value, limit=limit, unit=unit, kind=kind, ok=ok, headroom=headroom, detail=detail)


def _pipeline_check(p: PipelineOut) -> Check:
    return _check("pipeline service rate", p.service_rate_per_second, p.required_rate_per_second, "samples/s", "min",
                  f"evaluate_pipeline: bottleneck {p.bottleneck_stage}, accelerator waits "
                  f"{p.accelerator_wait_fraction:.0%}")


def _per_core_service(fm: FormatMeasure, transform_per_core: float) -> float:
    """Samples/s one worker sustains doing decode then transform in series (measured rates)."""
    return 1.0 / (1.0 / fm.decode_samples_per_s + 1.0 / transform_per_core)


def _cores_check(name: str, required: float, fm: FormatMeasure, transform_per_core: float,
                 cores: Sourced, speed: Sourced) -> Check:
    needed = required / (_per_core_service(fm, transform_per_core) * speed.value)
    return _check(name, needed, cores.value, "cores", "max",
                  f"{fm.format}: decode + transform per worker, scaled by {speed.source}; limit {cores.source}")


def _best(per_format: list[FormatProjection]) -> FormatProjection:
    """The format with the most headroom on its own checks (the shared ones are the same for all)."""
    return max(per_format, key=lambda fp: min(c.headroom for c in fp.checks))


def _assemble(track: str, per_format: list[FormatProjection], shared: list[Check], **extra: Any) -> Projection:
    best = _best(per_format)
    checks = shared + best.checks
    binding = min(checks, key=lambda c: c.headroom)
    return Projection(track=track, verdict="meets" if all(c.ok for c in checks) else "misses",
                      binding_constraint=binding.name, format=best.format, pipeline=best.pipeline,
                      inputs=best.inputs, checks=checks, facts={**extra.pop("facts", {}), **best.facts},
                      per_format=per_format, **extra)


def _storage_node(node_path: str, storage_bw: Sourced, capacity: Sourced | None = None):
    """A copy of a registry node with a storage entry (DataModel returns inf without one).

    DataModel reads only the bandwidth; an unknown capacity is recorded as NaN bytes, not invented.
    """
    from mlsysim.core.units import Q_
    from mlsysim.hardware.types import StorageHierarchy

    node = from_mlsysim_object(node_path)
    cap = _q(capacity) if capacity is not None else Q_(math.nan, "byte")
    return node.model_copy(update={"storage": StorageHierarchy(capacity=cap, bandwidth=_q(storage_bw))})


def from_mlsysim_object(path: str) -> Any:
    import mlsysim

    obj: Any = mlsysim
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _data_wall(node_path: str, node: Any, storage_source: str, demand_bytes_per_s: float) -> DataWall:
    from mlsysim.core.units import Q_
    from mlsysim.solvers import DataModel

    r = DataModel().solve(Q_(demand_bytes_per_s, "byte/s"), node)
    return DataWall(node=node_path, storage_source=storage_source, demand_mb_per_s=r.demand_bw.to("MB/s").magnitude,
                    supply_mb_per_s=r.supply_bw.to("MB/s").magnitude, utilization=r.utilization,
                    bottleneck=r.bottleneck, stalled=r.is_stalled)


def _transform_wall(raw_bytes: float, transform_rate: float, required: float) -> TransformWall:
    from mlsysim.core.units import Q_
    from mlsysim.solvers import TransformationModel

    r = TransformationModel().solve(batch_size=1, sample_size_bytes=Q_(raw_bytes, "byte"),
                                    cpu_throughput=Q_(raw_bytes * transform_rate, "byte/s"),
                                    accelerator_step_time=Q_(1.0 / required, "s"))
    return TransformWall(transform_time_s=r.transform_time.to("s").magnitude,
                         accelerator_step_time_s=r.accelerator_step_time.to("s").magnitude,
                         accelerator_utilization=r.accelerator_utilization, is_bottleneck=r.is_bottleneck)


def _formats(m: Measured, track: str) -> tuple[list[FormatMeasure], FormatMeasure | None]:
    fms = m.of(track)
    if not fms:
        raise ValueError(f"no measured formats for track {track!r}")
    return fms, next((f for f in fms if f.format == BASELINE_FORMAT), None)


def _project_formats(m: Measured, track: str, *, read_bandwidth: Sourced, cores: Sourced, speed: Sourced,
                     required: Sourced, extra_checks=None) -> list[FormatProjection]:
    """Pipeline + cores-needed check for every measured format, plus per-format extras."""
    fms, baseline = _formats(m, track)
    transform = measured(m.transform_samples_per_s[track], "", f"{track} transform samples/s, one worker")
    out = []
    for fm in fms:
        inputs = pipeline_inputs(fm, baseline, read_bandwidth=read_bandwidth, scale=[cores, speed],
                                 transform_per_core=transform, required=required)
        p = run_pipeline(inputs)
        checks = [_pipeline_check(p), _cores_check("decode cores needed", required.value, fm, transform.value, cores, speed)]
        facts: dict[str, Sourced] = {}
        if extra_checks is not None:
            more, facts = extra_checks(fm)
            checks += more
        out.append(FormatProjection(format=fm.format, inputs=inputs, pipeline=p, checks=checks, facts=facts))
    return out


# ---------------------------------------------------------------- missions

def project_cloud(m: Measured, a: Assumptions) -> Projection:
    """Llama-3-70B on one H100: weights in HBM (fp16 vs fp8), cold-start load times, the training feed and
    the request-payload decode against the serving rate."""
    from mlsysim import Hardware, Models
    from mlsysim.physics.transformer import calc_transformer_training_flops
    from mlsysim.solvers import ServingModel

    model, h100 = Models.Language.Llama3_70B, Hardware.Cloud.H100
    tokens = measured(m.sample_fields["cloud"]["tokens"].items, "", "tokens per measured sample")
    params = from_mlsysim("Models.Language.Llama3_70B.parameters", "param")
    peak = from_mlsysim("Hardware.Cloud.H100.compute.precision_flops.fp16_dense", "flop/s")
    mfu = measured(m.gpu_mfu, "", "measured MFU") if m.gpu_mfu else a.sourced("llama_training_mfu")
    flops_per_token = Sourced(value=calc_transformer_training_flops(params.value, 1).to("flop").magnitude, unit="flop",
                              source="mlsysim:physics.transformer.calc_transformer_training_flops",
                              derived_from=[params.source], note="6 P FLOPs per training token")
    tokens_per_s = derived(peak.value * mfu.value / flops_per_token.value, "1/s", [peak, mfu, flops_per_token],
                           "training tokens/s one H100 consumes")
    required = derived(tokens_per_s.value / tokens.value, "", [tokens_per_s, tokens], "training samples/s demanded")
    cores, speed = a.sourced("h100_host_cpu_cores_per_gpu"), a.sourced("h100_host_core_speed")
    read_bw = from_mlsysim("Hardware.Cloud.H100.storage.bandwidth", "MB/s")

    batch = int(a.value("cloud_serving_batch_size"))
    serve = {prec: ServingModel().solve(model, h100, seq_len=int(tokens.value), batch_size=batch, precision=prec,
                                        **({"efficiency": m.gpu_mfu} if m.gpu_mfu else {}))
             for prec in ("fp16", "fp8")}
    hbm = from_mlsysim("Hardware.Cloud.H100.memory.capacity", "byte")
    shared = [_check("fp8 weights + KV fit HBM", serve["fp8"].total_memory_required.to("byte").magnitude, hbm.value,
                     "byte", "max", "mlsysim ServingModel, fp8; fp16 needs "
                     f"{serve['fp16'].total_memory_required.to('GB').magnitude:.0f} GB (feasible: {serve['fp16'].feasible})")]
    prompt_tokens_per_s = batch * tokens.value / serve["fp8"].ttft.to("s").magnitude
    weights = serve["fp8"].model_weights_size.to("byte").magnitude
    disk = measured(m.disk_read_mb_per_s, "MB/s", "this machine's sequential read, cold cache")
    nvme = read_bw
    hbm_bw = from_mlsysim("Hardware.Cloud.H100.memory.bandwidth", "MB/s")
    facts = {
        "weights_fp16_bytes": Sourced(value=serve["fp16"].model_weights_size.to("byte").magnitude, unit="byte",
                                      source="mlsysim:solvers.ServingModel", derived_from=[params.source]),
        "weights_fp8_bytes": Sourced(value=weights, unit="byte", source="mlsysim:solvers.ServingModel",
                                     derived_from=[params.source]),
        "fp16_fits_hbm": Sourced(value=float(serve["fp16"].feasible), unit="", source="mlsysim:solvers.ServingModel"),
        "training_tokens_per_s": tokens_per_s,
        "serving_tokens_per_s": Sourced(value=batch / serve["fp8"].itl.to("s").magnitude, unit="1/s",
                                        source="mlsysim:solvers.ServingModel", note="fp8 decode, batch / ITL"),
        "prompt_tokens_per_s": Sourced(value=prompt_tokens_per_s, unit="1/s", source="mlsysim:solvers.ServingModel",
                                       note="fp8 prefill: batch x prompt tokens / TTFT"),
    }
    for name, bw in (("this_disk", disk), ("h100_nvme", nvme), ("hbm", hbm_bw)):
        facts[f"weights_fp8_load_s_{name}"] = derived(weights / (bw.value * 1e6), "s", [bw, facts["weights_fp8_bytes"]],
                                                      f"fp8 weights / {bw.source} bandwidth (cold start)")

    def payload(fm: FormatMeasure):
        per_core_tokens = fm.decode_samples_per_s * tokens.value * speed.value
        c = _check("request payload decode cores", prompt_tokens_per_s / per_core_tokens, cores.value, "cores", "max",
                   f"{fm.format}: prompt tokens/s at the fp8 prefill rate / measured decode tokens/s per core")
        return [c], {}

    per_format = _project_formats(m, "cloud", read_bandwidth=read_bw, cores=cores, speed=speed, required=required,
                                  extra_checks=payload)
    best = _best(per_format)
    fm = next(f for f in m.of("cloud") if f.format == best.format)
    wall = _data_wall("Hardware.Cloud.H100", h100, "mlsysim:Hardware.Cloud.H100.storage", required.value * fm.bytes_per_sample)
    tw = _transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return _assemble("cloud", per_format, shared, facts=facts, data_wall=wall, transformation=tw)


def frame_4k_bytes() -> Sourced:
    w = from_mlsysim("core.units.VIDEO_4K_WIDTH")
    h = from_mlsysim("core.units.VIDEO_4K_HEIGHT")
    px = from_mlsysim("core.units.VIDEO_BYTES_PER_PIXEL_RGB", "byte")
    return Sourced(value=w.value * h.value * px.value, unit="byte", source=w.source,
                   derived_from=[w.source, h.source, px.source], note="one raw 4K RGB frame")


def project_edge(m: Measured, a: Assumptions) -> Projection:
    """8 raw 4K streams at 30 FPS into a Jetson AGX Orin: bytes/s vs memory bandwidth, decode cores, 10 ms loop."""
    frame = frame_4k_bytes()
    streams, fps, loop = a.sourced("edge_streams"), a.sourced("edge_fps"), a.sourced("edge_loop_s")
    ingest = derived(streams.value * fps.value * frame.value, "byte/s", [streams, fps, frame], "raw bytes/s of all cameras")
    raw_bytes = m.of("edge")[0].raw_bytes_per_sample
    sample = measured(raw_bytes, "byte", "in-memory bytes of one measured frame sample")
    required = derived(ingest.value / sample.value, "", [ingest, sample], "measured-sample equivalents/s (bytes-scaled)")
    mem_bw = from_mlsysim("Hardware.Edge.JetsonAGXOrin.memory.bandwidth", "MB/s")
    cores, speed = a.sourced("orin_cpu_cores"), a.sourced("orin_core_speed")
    shared = [_check("camera bytes/s vs Orin memory bandwidth", ingest.value / 1e6, mem_bw.value, "MB/s", "max",
                     f"{streams.source} x {fps.source} x 4K RGB frame; limit {mem_bw.source}")]
    transform = m.transform_samples_per_s["edge"]
    set_samples = streams.value * frame.value / sample.value

    def loop_check(fm: FormatMeasure):
        latency = set_samples / (_per_core_service(fm, transform) * speed.value * cores.value)
        return [_check("10 ms loop: ingest one frame per camera", latency, loop.value, "s", "max",
                       f"{fm.format}: {streams.value:.0f} frames decoded + transformed on all Orin cores")], {}

    per_format = _project_formats(m, "edge", read_bandwidth=mem_bw, cores=cores, speed=speed, required=required,
                                  extra_checks=loop_check)
    best = _best(per_format)
    fm = next(f for f in m.of("edge") if f.format == best.format)
    disk = measured(m.disk_read_mb_per_s, "MB/s", "this machine's sequential read, cold cache")
    node = _storage_node("Hardware.Edge.JetsonAGXOrin", disk)
    wall = _data_wall("Hardware.Edge.JetsonAGXOrin", node, "measured (replaying recorded streams from this disk)",
                      required.value * fm.bytes_per_sample)
    tw = _transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return _assemble("edge", per_format, shared, facts={"camera_bytes_per_s": ingest}, data_wall=wall, transformation=tw)


def _radio_power(bytes_per_frame: float, fps: float, joule_per_bit: float) -> float:
    from mlsysim.core.units import BITS_PER_BYTE

    return bytes_per_frame * BITS_PER_BYTE * fps * joule_per_bit


def project_mobile(m: Measured, a: Assumptions) -> Projection:
    """60 FPS from the glasses to the phone over Bluetooth: link rate and radio power per format against the
    battery; sending only the text (local pre-processing) as the alternative, against the 50% cut."""
    fps = a.sourced("mobile_fps")
    phy, eff = a.sourced("ble_phy_mbit_per_s"), a.sourced("ble_link_efficiency")
    link = derived(phy.value * eff.value, "Mbit/s", [phy, eff], "BLE payload rate")
    bit_low = from_mlsysim("Systems.NetworkEnergy.RadioBitLow", "J/bit")
    bit_high = from_mlsysim("Systems.NetworkEnergy.RadioBitHigh", "J/bit")
    battery, life = a.sourced("glasses_battery_wh"), a.sourced("glasses_battery_life_h")
    budget_w = derived(battery.value / life.value, "W", [battery, life], "average power the glasses may draw")
    cores, speed = a.sourced("phone_cpu_cores"), a.sourced("phone_core_speed")
    link_bytes_per_s = link.value * 1e6 / 8

    def radio(fm: FormatMeasure):
        p_low = _radio_power(fm.bytes_per_sample, fps.value, bit_low.value)
        checks = [
            _check("BLE link rate", fm.bytes_per_sample * fps.value, link_bytes_per_s, "byte/s", "max",
                   f"{fm.format} bytes per frame x {fps.source}; limit {phy.source} x {eff.source}"),
            _check("radio power vs battery budget", p_low, budget_w.value, "W", "max",
                   f"{fm.format}: bits/s x {bit_low.source}; limit {battery.source} / {life.source}"),
        ]
        facts = {"radio_power_w_high": derived(_radio_power(fm.bytes_per_sample, fps.value, bit_high.value), "W",
                                               [bit_high, fps], "at mlsysim's high radio energy per bit"),
                 "battery_h_radio_only": derived(battery.value / p_low, "h", [battery, bit_low], "radio alone, low pJ/bit")}
        return checks, facts

    required = derived(fps.value, "", [fps], "frames/s the glasses send")
    per_format = _project_formats(m, "mobile", read_bandwidth=link, cores=cores, speed=speed, required=required,
                                  extra_checks=radio)
    best = _best(per_format)
    fm = next(f for f in m.of("mobile") if f.format == best.format)
    cut = a.sourced("transmission_energy_cut")
    base_w = _radio_power(fm.bytes_per_sample, fps.value, bit_low.value)
    fields = m.sample_fields["mobile"]
    alternatives = []
    for name, nbytes in ((f"send text only (tokens, raw int32) instead of {fm.format} frames", fields["tokens"].bytes),
                         (f"send text + IMU instead of {fm.format} frames", fields["tokens"].bytes + fields["imu"].bytes)):
        w = _radio_power(nbytes, fps.value, bit_low.value)
        alternatives.append(Alternative(name=name, bytes_per_frame=nbytes, radio_power_w=w,
                                        cut_vs_baseline=1 - w / base_w, meets_cut=1 - w / base_w >= cut.value))
    disk = measured(m.disk_read_mb_per_s, "MB/s", "this machine's sequential read, cold cache")
    node = _storage_node("Hardware.Mobile.iPhone15Pro", disk)
    wall = _data_wall("Hardware.Mobile.iPhone15Pro", node, "measured (a disk like this machine's)",
                      required.value * fm.bytes_per_sample)
    tw = _transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return _assemble("mobile", per_format, [], facts={"ble_payload_mbit_per_s": link, "power_budget_w": budget_w},
                     data_wall=wall, transformation=tw, alternatives=alternatives)


def project_tiny(m: Measured, a: Assumptions) -> Projection:
    """Neural audio isolation on an nRF52840: audio buffering against SRAM (the lab's 50%), and energy per 10 ms
    window (SRAM moves + decode time at the MCU's power) against a 1 mW budget."""
    loop, budget = a.sourced("tiny_loop_s"), a.sourced("tiny_power_budget_w")
    audio = m.sample_fields["tiny"]["audio"]
    items = measured(audio.items, "", "audio samples per measured window")
    rate = measured(m.audio_rate_hz, "Hz", "sample rate of the measured audio")
    required = derived(rate.value / items.value, "", [rate, items], "windows/s the microphone produces")
    sram = from_mlsysim("Hardware.Tiny.nRF52840.memory.sram_capacity", "byte")
    sram_bw = from_mlsysim("Hardware.Tiny.nRF52840.memory.sram_bandwidth", "MB/s")
    power = from_mlsysim("Hardware.Tiny.nRF52840.tdp", "W")
    pj_byte = from_mlsysim("Hardware.Tech.Movement.L1.energy_per_byte", "J/byte")
    frac, context, inflight = (a.sourced("tiny_buffer_sram_fraction_max"), a.sourced("tiny_context_s"),
                               a.sourced("tiny_inflight_windows"))
    cores, speed = a.sourced("mcu_cpu_cores"), a.sourced("mcu_core_speed")
    context_bytes = context.value * rate.value * audio.bytes / audio.items
    transform = m.transform_samples_per_s["tiny"]

    def budget_checks(fm: FormatMeasure):
        buffer = context_bytes + inflight.value * fm.bytes_per_sample
        busy_s = 1.0 / (_per_core_service(fm, transform) * speed.value)
        energy = busy_s * power.value + (fm.bytes_per_sample + fm.raw_bytes_per_sample) * pj_byte.value
        checks = [
            _check("audio buffering vs SRAM", buffer / sram.value, frac.value, "", "max",
                   f"({context.source} decoded + {inflight.source} x {fm.format} window) / {sram.source}"),
            _check("energy per window vs 1 mW budget", energy, budget.value * loop.value, "J", "max",
                   f"{fm.format}: decode+transform time x {power.source} + SRAM bytes x {pj_byte.source}"),
        ]
        return checks, {"buffer_bytes": derived(buffer, "byte", [context, inflight], f"{fm.format} buffering"),
                        "energy_per_window_j": derived(energy, "J", [power, pj_byte, speed], f"{fm.format} window energy")}

    per_format = _project_formats(m, "tiny", read_bandwidth=sram_bw, cores=cores, speed=speed, required=required,
                                  extra_checks=budget_checks)
    best = _best(per_format)
    fm = next(f for f in m.of("tiny") if f.format == best.format)
    flash = from_mlsysim("Hardware.Tiny.nRF52840.memory.flash_bandwidth", "MB/s")
    node = _storage_node("Hardware.Tiny.nRF52840", flash, from_mlsysim("Hardware.Tiny.nRF52840.memory.flash_capacity", "byte"))
    wall = _data_wall("Hardware.Tiny.nRF52840", node, flash.source, required.value * fm.bytes_per_sample)
    tw = _transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return _assemble("tiny", per_format, [], facts={"sram_bytes": sram}, data_wall=wall, transformation=tw)


PROJECTORS = {"cloud": project_cloud, "edge": project_edge, "mobile": project_mobile, "tiny": project_tiny}


def project(m: Measured, a: Assumptions, tracks: Iterable[str] = TRACKS) -> dict[str, Projection]:
    """Every requested track whose formats were measured."""
    return {t: PROJECTORS[t](m, a) for t in tracks if m.of(t)}


# ---------------------------------------------------------------- closing the loop on this machine

class StageRates(BaseModel):
    """Measured per-worker stage rates of one track x format on this machine (from the sweep's breakdown)."""

    track: str
    format: str
    bytes_per_sample: float
    raw_bytes_per_sample: float
    decode_samples_per_s_per_worker: float
    transform_samples_per_s_per_worker: float
    read_mb_per_s: float
    transport_s_per_batch: float | None = Field(None, description="worker->main transfer per batch, if measured")
    collate_s_per_batch: float | None = Field(None, description="assembling a batch in the worker, per batch")


def _field(row: Any, name: str, default: Any = None) -> Any:
    return row.get(name, default) if isinstance(row, Mapping) else getattr(row, name, default)


def _reason(error_pp: float, workers: int, rates: StageRates, batch: int, step_s: float, cpus: int | None,
            noisy: bool = False) -> str:
    if workers == 0:
        return "num_workers=0: loading runs in the consumer's process; per-batch Python overheads add to every step"
    if cpus is not None and workers >= cpus:
        return f"{workers} workers on {cpus} CPUs: workers and the consumer share cores, the model assumes they don't"
    if noisy:
        return ("the measured point is noisy (its step times' stdev or IQR is over 10% of their centre): rerun on a "
                "quieter machine")
    if error_pp < 0:
        if rates.transport_s_per_batch and rates.transport_s_per_batch > 0.1 * step_s:
            return (f"transport cost: {rates.transport_s_per_batch * 1e3:.2f} ms per batch moving batches from "
                    "workers to the main process, measured with one small ready batch, may be larger for these")
        return "per-batch costs the model does not see (worker start-up in a short run, a busy moment)"
    return "the loader ran faster than the stage rates predict (page cache hits, or the prefetch queue covering a short run)"


def model_validation(rows: Iterable[Any], stage_rates: Iterable[StageRates], *, cpu_count: int | None = None) -> list[ValidationRow]:
    """Predicted feeding tax per sweep point from the measured stage rates vs the measured one.

    Workers >= 1: evaluate_pipeline with one per-worker rate (decode, transform and collate in series)
    x workers against required rate = batch / step; then the measured per-batch transport (the wait
    for a ready batch at one worker) added to each step: tax = 1 - (1 - pipeline wait) x step /
    (step + transport). Without the transport term the model under-predicted every point here
    (median |error| 9.4 pp on a laptop-profile run, 13.5-14.8 pp at ci); with it, 2.2 and 3.4-4.1 pp.
    Workers = 0: mlsysim DataStallModel, sequential (load and compute in one process, no overlap).
    Rows need track, format, num_workers, batch_size, step_s, feeding_tax (mappings or objects).
    """
    from mlsysim.core.units import Q_
    from mlsysim.solvers import DataStallModel

    by_key = {(r.track, r.format): r for r in stage_rates}
    out = []
    for row in rows:
        track, fmt = _field(row, "track"), _field(row, "format")
        rates = by_key.get((track, fmt))
        if rates is None:
            continue
        workers, batch = int(_field(row, "num_workers")), int(_field(row, "batch_size"))
        step_s, measured_tax = float(_field(row, "step_s")), float(_field(row, "feeding_tax"))
        if workers == 0:
            per_sample_s = (1 / rates.decode_samples_per_s_per_worker + 1 / rates.transform_samples_per_s_per_worker
                            + rates.bytes_per_sample / (rates.read_mb_per_s * 1e6))
            io_s = batch * per_sample_s + (rates.transport_s_per_batch or 0.0)
            predicted = DataStallModel().solve(compute_time=Q_(step_s, "s"), io_time=Q_(io_s, "s")).sequential_stall
            model = "mlsysim DataStallModel (sequential)"
        else:
            # a worker decodes, transforms and collates each batch in series: one rate for both stages
            serial = 1 / (1 / rates.decode_samples_per_s_per_worker + 1 / rates.transform_samples_per_s_per_worker
                          + (rates.collate_s_per_batch or 0.0) / batch)
            fm = FormatMeasure(track=track, format=fmt, bytes_per_sample=rates.bytes_per_sample,
                               raw_bytes_per_sample=rates.raw_bytes_per_sample, decode_samples_per_s=serial)
            n = measured(workers, "", "DataLoader workers of this sweep point")
            inputs = pipeline_inputs(fm, None, read_bandwidth=measured(rates.read_mb_per_s, "MB/s"), scale=[n],
                                     transform_per_core=measured(serial),
                                     required=measured(batch / step_s, "", "consumer samples/s: batch / step"))
            pipe_wait = run_pipeline(inputs).accelerator_wait_fraction
            # the main process receives every batch between steps: that wait adds to each step, in series
            receive_s = rates.transport_s_per_batch or 0.0
            predicted = 1 - (1 - pipe_wait) * step_s / (step_s + receive_s)
            model = "mlsysim evaluate_pipeline + measured per-batch transport"
        error = (predicted - measured_tax) * 100
        cpus = _field(row, "cpu_count", cpu_count)
        reason = (_reason(error, workers, rates, batch, step_s, cpus, bool(_field(row, "unstable", False)))
                  if abs(error) > VALIDATION_LIMIT_PP else None)
        out.append(ValidationRow(track=track, format=fmt, num_workers=workers, predicted_feeding_tax=predicted,
                                 measured_feeding_tax=measured_tax, error_pp=error, model=model, likely_reason=reason))
    return out
