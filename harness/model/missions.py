"""The four missions projected through mlsysim from this machine's measurements: cloud (Llama-3-70B on an H100),
edge (4K cameras into a Jetson AGX Orin), mobile (glasses to phone over Bluetooth), tiny (audio on an nRF52840).

Each mission's numbers are measured, from mlsysim's registry, or a sourced assumption (model/assumptions.json).
Rates are in measured (synthetic) samples per second; a mission's demand is converted to that unit by bytes,
which assumes decode cost scales with bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from feedtax.model.checks import assemble, best_format, check, per_core_service, project_formats
from feedtax.model.inputs import FormatMeasure, Measured
from feedtax.model.sources import derived, frame_4k_bytes, from_mlsysim, measured
from feedtax.model.walls import data_wall, storage_node, transform_wall
from feedtax.results.projections import Alternative, Assumptions, Projection, Sourced
from feedtax.vocabulary import TRACKS


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
    fp16_gb = serve["fp16"].total_memory_required.to("GB").magnitude
    shared = [check("serving: fp8 weights + KV fit HBM", serve["fp8"].total_memory_required.to("byte").magnitude,
                    hbm.value, "byte", "max", "mlsysim ServingModel, fp8; fp16 needs "
                    f"{fp16_gb:.0f} GB ({'fits' if serve['fp16'].feasible else 'does not fit'})")]
    prompt_tokens_per_s = batch * tokens.value / serve["fp8"].ttft.to("s").magnitude
    weights = serve["fp8"].model_weights_size.to("byte").magnitude
    disk = measured(m.disk_read_mb_per_s, "MB/s", "this machine's sequential read, first read of freshly written data")
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
        c = check("serving: request payload decode cores", prompt_tokens_per_s / per_core_tokens, cores.value, "cores",
                  "max",
                  f"{fm.format}: prompt tokens/s at the fp8 prefill rate / measured decode tokens/s per core")
        return [c], {}

    per_format = project_formats(m, "cloud", read_bandwidth=read_bw, cores=cores, speed=speed, required=required,
                                 extra_checks=payload)
    best = best_format(per_format)
    fm = m.format_of("cloud", best.format)
    wall = data_wall("Hardware.Cloud.H100", h100, "mlsysim:Hardware.Cloud.H100.storage",
                     required.value * fm.bytes_per_sample)
    tw = transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return assemble("cloud", per_format, shared, facts=facts, data_wall=wall, transformation=tw)


def project_edge(m: Measured, a: Assumptions) -> Projection:
    """8 raw 4K streams at 30 FPS into a Jetson AGX Orin: bytes/s vs memory bandwidth, decode cores, 10 ms loop."""
    frame = frame_4k_bytes()
    streams, fps, loop = a.sourced("edge_streams"), a.sourced("edge_fps"), a.sourced("edge_loop_s")
    ingest = derived(streams.value * fps.value * frame.value, "byte/s", [streams, fps, frame],
                     "raw bytes/s of all cameras")
    raw_bytes = m.of("edge")[0].raw_bytes_per_sample
    sample = measured(raw_bytes, "byte", "in-memory bytes of one measured frame sample")
    required = derived(ingest.value / sample.value, "", [ingest, sample],
                       "measured-sample equivalents/s (bytes-scaled)")
    mem_bw = from_mlsysim("Hardware.Edge.JetsonAGXOrin.memory.bandwidth", "MB/s")
    cores, speed = a.sourced("orin_cpu_cores"), a.sourced("orin_core_speed")
    shared = [check("camera bytes/s vs Orin memory bandwidth", ingest.value / 1e6, mem_bw.value, "MB/s", "max",
                    f"{streams.source} x {fps.source} x 4K RGB frame; limit {mem_bw.source}")]
    transform = m.transform_samples_per_s["edge"]
    set_samples = streams.value * frame.value / sample.value

    def loop_check(fm: FormatMeasure):
        latency = set_samples / (per_core_service(fm, transform) * speed.value * cores.value)
        return [check(f"{loop.value * 1e3:g} ms loop: ingest one frame per camera", latency, loop.value, "s", "max",
                      f"{fm.format}: {streams.value:.0f} frames decoded + transformed on all Orin cores")], {}

    per_format = project_formats(m, "edge", read_bandwidth=mem_bw, cores=cores, speed=speed, required=required,
                                 extra_checks=loop_check)
    best = best_format(per_format)
    fm = m.format_of("edge", best.format)
    disk = measured(m.disk_read_mb_per_s, "MB/s", "this machine's sequential read, first read of freshly written data")
    node = storage_node("Hardware.Edge.JetsonAGXOrin", disk)
    wall = data_wall("Hardware.Edge.JetsonAGXOrin", node, "measured (replaying recorded streams from this disk)",
                     required.value * fm.bytes_per_sample)
    tw = transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return assemble("edge", per_format, shared, facts={"camera_bytes_per_s": ingest}, data_wall=wall, transformation=tw)


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
            check("BLE link rate", fm.bytes_per_sample * fps.value, link_bytes_per_s, "byte/s", "max",
                  f"{fm.format} bytes per frame x {fps.source}; limit {phy.source} x {eff.source}"),
            check("radio power vs battery budget", p_low, budget_w.value, "W", "max",
                  f"{fm.format}: bits/s x {bit_low.source}; limit {battery.source} / {life.source}"),
        ]
        facts = {"radio_power_w_high": derived(_radio_power(fm.bytes_per_sample, fps.value, bit_high.value), "W",
                                               [bit_high, fps], "at mlsysim's high radio energy per bit"),
                 "battery_h_radio_only": derived(battery.value / p_low, "h", [battery, bit_low],
                                                 "radio alone, low pJ/bit")}
        return checks, facts

    required = derived(fps.value, "", [fps], "frames/s the glasses send")
    per_format = project_formats(m, "mobile", read_bandwidth=link, cores=cores, speed=speed, required=required,
                                 extra_checks=radio)
    best = best_format(per_format)
    fm = m.format_of("mobile", best.format)
    cut = a.sourced("transmission_energy_cut")
    base_w = _radio_power(fm.bytes_per_sample, fps.value, bit_low.value)
    fields = m.sample_fields["mobile"]
    alternatives = []
    text, imu = fields["tokens"].bytes, fields["imu"].bytes
    for name, nbytes in ((f"send text only (tokens, raw int32) instead of {fm.format} frames", text),
                         (f"send text + IMU instead of {fm.format} frames", text + imu)):
        w = _radio_power(nbytes, fps.value, bit_low.value)
        alternatives.append(Alternative(name=name, bytes_per_frame=nbytes, radio_power_w=w,
                                        cut_vs_baseline=1 - w / base_w, meets_cut=1 - w / base_w >= cut.value))
    disk = measured(m.disk_read_mb_per_s, "MB/s", "this machine's sequential read, first read of freshly written data")
    node = storage_node("Hardware.Mobile.iPhone15Pro", disk)
    wall = data_wall("Hardware.Mobile.iPhone15Pro", node, "measured (a disk like this machine's)",
                     required.value * fm.bytes_per_sample)
    tw = transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return assemble("mobile", per_format, [], facts={"ble_payload_mbit_per_s": link, "power_budget_w": budget_w},
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
        busy_s = 1.0 / (per_core_service(fm, transform) * speed.value)
        energy = busy_s * power.value + (fm.bytes_per_sample + fm.raw_bytes_per_sample) * pj_byte.value
        checks = [
            check("audio buffering vs SRAM", buffer / sram.value, frac.value, "", "max",
                  f"({context.source} decoded + {inflight.source} x {fm.format} window) / {sram.source}"),
            check(f"energy per window vs {budget.value * 1e3:g} mW budget", energy, budget.value * loop.value, "J",
                  "max",
                  f"{fm.format}: decode+transform time x {power.source} + SRAM bytes x {pj_byte.source}"),
        ]
        return checks, {"buffer_bytes": derived(buffer, "byte", [context, inflight], f"{fm.format} buffering"),
                        "energy_per_window_j": derived(energy, "J", [power, pj_byte, speed],
                                                       f"{fm.format} window energy")}

    per_format = project_formats(m, "tiny", read_bandwidth=sram_bw, cores=cores, speed=speed, required=required,
                                 extra_checks=budget_checks)
    best = best_format(per_format)
    fm = m.format_of("tiny", best.format)
    flash = from_mlsysim("Hardware.Tiny.nRF52840.memory.flash_bandwidth", "MB/s")
    capacity = from_mlsysim("Hardware.Tiny.nRF52840.memory.flash_capacity", "byte")
    node = storage_node("Hardware.Tiny.nRF52840", flash, capacity)
    wall = data_wall("Hardware.Tiny.nRF52840", node, flash.source, required.value * fm.bytes_per_sample)
    tw = transform_wall(fm.raw_bytes_per_sample, best.inputs["transform_rate_per_second"].value, required.value)
    return assemble("tiny", per_format, [], facts={"sram_bytes": sram}, data_wall=wall, transformation=tw)


PROJECTORS = {"cloud": project_cloud, "edge": project_edge, "mobile": project_mobile, "tiny": project_tiny}


def project(m: Measured, a: Assumptions, tracks: Iterable[str] = TRACKS) -> dict[str, Projection]:
    """Every requested track whose formats were measured."""
    return {t: PROJECTORS[t](m, a) for t in tracks if m.of(t)}


