"""calibrate: projections equal mlsysim on their recorded inputs, every input is sourced, hand-checked cases."""

from __future__ import annotations

import math

import pytest

from feedtax import datasets
from feedtax.measure.profiles import get
from feedtax.model import assumptions, calibrate
from feedtax.model.calibrate import FormatMeasure, Measured, StageRates

# Decode rates relative to raw and size ratios (raw / on disk) of a plausible measurement; hand-picked.
RELATIVE_DECODE = {"csv": 0.2, "json": 0.3, "parquet": 0.8, "protobuf": 0.7, "raw": 1.0}
SIZE_RATIO = {"csv": 0.4, "json": 0.45, "parquet": 1.3, "protobuf": 0.9, "raw": 1.0}
RAW_DECODE_BYTES_PER_S = 2e8


def make_measured(disk_mb_per_s: float = 1500.0) -> Measured:
    sizes = get("ci").sizes
    fields = calibrate.sample_fields({t: datasets.generate(t, 1, seed=0, sizes=sizes) for t in datasets.TRACKS})
    formats = []
    for t in datasets.TRACKS:
        raw = sum(f.bytes for f in fields[t].values())
        for f, rel in RELATIVE_DECODE.items():
            formats.append(FormatMeasure(track=t, format=f, bytes_per_sample=raw / SIZE_RATIO[f], raw_bytes_per_sample=raw,
                                         decode_samples_per_s=RAW_DECODE_BYTES_PER_S * rel / raw))
    return Measured(formats=formats, transform_samples_per_s={t: 5e4 for t in datasets.TRACKS}, sample_fields=fields,
                    disk_read_mb_per_s=disk_mb_per_s, audio_rate_hz=datasets.AUDIO_RATE_HZ)


@pytest.fixture(scope="module")
def a():
    return assumptions.load()


@pytest.fixture(scope="module")
def projections(a):
    return calibrate.project(make_measured(), a)


def test_all_tracks_projected_with_contract_fields(projections):
    assert set(projections) == {"cloud", "edge", "mobile", "tiny"}
    for p in projections.values():
        assert p.verdict in ("meets", "misses")
        assert p.binding_constraint in {c.name for c in p.checks}
        assert set(p.inputs) == set(calibrate.PIPELINE_ARGS)
        dumped = p.model_dump()
        assert set(dumped["pipeline"]) == {"read_rate_per_second", "decode_rate_per_second", "transform_rate_per_second",
                                           "service_rate_per_second", "required_rate_per_second", "bottleneck_stage",
                                           "accelerator_wait_fraction"}
        assert all(set(i) >= {"value", "unit", "source"} for i in dumped["inputs"].values())


def test_projection_equals_evaluate_pipeline_on_recorded_inputs(projections):
    from mlsysim.core.units import Q_
    from mlsysim.labs.experiments.v1_04_experiments import evaluate_pipeline

    for p in projections.values():
        for fp in [p, *p.per_format]:
            kw = {k: (Q_(v.value, v.unit) if v.unit else v.value) for k, v in fp.inputs.items()}
            direct = evaluate_pipeline(**kw)
            for name, value in fp.pipeline.model_dump().items():
                assert getattr(direct, name) == value, (p.track, name)


def _valid_source(source: str, a) -> bool:
    if source == "measured":
        return True
    if source.startswith("assumption:"):
        return source.split(":", 1)[1] in a.entries
    if source.startswith("mlsysim:"):
        import mlsysim

        obj = mlsysim
        for part in source.split(":", 1)[1].split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)  # raises if the path is not real
        return True
    return False


def test_no_projection_input_is_a_literal(projections, a):
    """Each input (and everything it was derived from) is measured, an mlsysim registry path, or an assumption."""
    for p in projections.values():
        for fp in [p, *p.per_format]:
            for name, s in fp.inputs.items():
                assert _valid_source(s.source, a), (p.track, name, s.source)
                assert all(_valid_source(d, a) for d in s.derived_from), (p.track, name, s.derived_from)


def test_facts_are_sourced(projections, a):
    for p in projections.values():
        for name, s in p.facts.items():
            assert _valid_source(s.source, a), (p.track, name, s.source)


def test_text_format_larger_than_raw_is_passed_at_its_on_disk_size():
    fm = FormatMeasure(track="cloud", format="json", bytes_per_sample=200, raw_bytes_per_sample=100, decode_samples_per_s=10)
    one = calibrate.measured(1)
    inputs = calibrate.pipeline_inputs(fm, None, read_bandwidth=calibrate.measured(1, "MB/s"), scale=[one],
                                       transform_per_core=calibrate.measured(1e9), required=calibrate.measured(1))
    assert inputs["sample_size"].value == 200 and inputs["compression_ratio"].value == 1
    p = calibrate.run_pipeline(inputs)
    assert p.read_rate_per_second == pytest.approx(1e6 / 200)  # 1 MB/s over 200 bytes read per sample
    assert p.decode_rate_per_second == pytest.approx(10)


def test_decode_work_is_relative_to_raw(projections):
    edge_json = next(fp for fp in projections["edge"].per_format if fp.format == "json")
    assert edge_json.inputs["compression_decode_work"].value == pytest.approx(1 / RELATIVE_DECODE["json"])
    cores, speed = 12, 0.45  # the assumptions file's orin_cpu_cores and orin_core_speed
    raw_rate = RAW_DECODE_BYTES_PER_S / (edge_json.inputs["sample_size"].value * SIZE_RATIO["json"])  # on-disk size passed
    assert edge_json.pipeline.decode_rate_per_second == pytest.approx(raw_rate * cores * speed * RELATIVE_DECODE["json"], rel=1e-6)


def test_cloud_fp16_does_not_fit_fp8_does(projections):
    p = projections["cloud"]
    assert p.facts["fp16_fits_hbm"].value == 0
    fit = next(c for c in p.checks if c.name.startswith("fp8 weights"))
    assert fit.ok and fit.limit == 80 * 2**30
    assert p.facts["weights_fp8_bytes"].value == pytest.approx(70.6e9)
    # cold start: 70.6 GB at this machine's 1500 MB/s, at the H100 NVMe's 7 GB/s
    assert p.facts["weights_fp8_load_s_this_disk"].value == pytest.approx(70.6e9 / 1.5e9)
    assert p.facts["weights_fp8_load_s_h100_nvme"].value == pytest.approx(70.6e9 / 7e9)


def test_edge_camera_bytes_hand_checked(projections):
    assert projections["edge"].facts["camera_bytes_per_s"].value == pytest.approx(8 * 30 * 3840 * 2160 * 3)
    mem = next(c for c in projections["edge"].checks if "memory bandwidth" in c.name)
    assert mem.limit == pytest.approx(204_000) and mem.ok


def test_mobile_radio_power_hand_checked(projections):
    p = projections["mobile"]
    radio = next(fp for fp in p.per_format if fp.format == "raw")
    check = next(c for c in radio.checks if c.name.startswith("radio power"))
    raw_bytes = radio.inputs["sample_size"].value
    assert check.value == pytest.approx(raw_bytes * 8 * 60 * 100e3 * 1e-12)  # RadioBitLow = 100,000 pJ/bit
    assert check.limit == pytest.approx(0.96 / 6)
    assert p.alternatives and all(0 < alt.cut_vs_baseline < 1 for alt in p.alternatives)


def test_tiny_buffer_hand_checked(projections):
    raw = next(fp for fp in projections["tiny"].per_format if fp.format == "raw")
    buf = next(c for c in raw.checks if c.name.startswith("audio buffering"))
    window = raw.inputs["sample_size"].value
    assert buf.value == pytest.approx((1.0 * 16000 * 2 + 2 * window) / (256 * 1024))
    assert buf.limit == 0.5


def test_override_changes_the_projection(a):
    more = calibrate.project(make_measured(), assumptions.load(overrides=["orin_cpu_cores=24"]), tracks=["edge"])
    base = calibrate.project(make_measured(), a, tracks=["edge"])
    assert more["edge"].pipeline.decode_rate_per_second == pytest.approx(2 * base["edge"].pipeline.decode_rate_per_second)


RATES = StageRates(track="edge", format="raw", bytes_per_sample=1000, raw_bytes_per_sample=1000,
                   decode_samples_per_s_per_worker=50, transform_samples_per_s_per_worker=1000, read_mb_per_s=1000)


def test_model_validation_hand_checked():
    rows = [
        {"track": "edge", "format": "raw", "num_workers": 2, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.5},
        {"track": "edge", "format": "raw", "num_workers": 2, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.2},
        {"track": "edge", "format": "raw", "num_workers": 0, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.8},
        {"track": "edge", "format": "json", "num_workers": 1, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.8},
    ]
    # a worker decodes (50/s) then transforms (1000/s) in series: 2 x 47.6 = 95.2 samples/s against
    # 10 / 0.05 s = 200 demanded: the consumer waits 52.4% of the time
    expected = 1 - 2 / (1 / 50 + 1 / 1000) / 200
    rows[0]["feeding_tax"] = expected
    out = calibrate.model_validation(rows, [RATES])
    assert len(out) == 3  # no stage rates for json: skipped
    assert out[0].predicted_feeding_tax == pytest.approx(expected) and abs(out[0].error_pp) < 1e-6
    assert out[0].likely_reason is None
    assert out[1].error_pp == pytest.approx((expected - 0.2) * 100) and out[1].likely_reason
    # workers = 0: in series, per batch 10 x (1/50 + 1/1000 + 1000 B / 1e9 B/s) s of loading + 0.05 s compute
    io = 10 * (1 / 50 + 1 / 1000 + 1000 / 1e9)
    assert out[2].predicted_feeding_tax == pytest.approx(io / (io + 0.05))
    assert "DataStallModel" in out[2].model


def test_model_validation_adds_the_transport_and_collate_per_batch():
    rates = RATES.model_copy(update={"transport_s_per_batch": 0.02, "decode_samples_per_s_per_worker": 1000})
    row = {"track": "edge", "format": "raw", "num_workers": 2, "batch_size": 10, "step_s": 0.05, "feeding_tax": 0.6}
    (v,) = calibrate.model_validation([row], [rates])
    # workers keep up (2 x 500/s > 200/s); each step still waits 20 ms to receive its batch
    assert v.predicted_feeding_tax == pytest.approx(0.02 / 0.07)
    assert v.error_pp < -10 and "transport" in v.likely_reason
    (noisy,) = calibrate.model_validation([{**row, "unstable": True}], [rates])
    assert noisy.error_pp == v.error_pp and "noisy" in noisy.likely_reason
    slow_collate = rates.model_copy(update={"collate_s_per_batch": 0.1})  # 10 ms per sample: 2 x 83/s < 200/s
    (c,) = calibrate.model_validation([row], [slow_collate])
    per_worker = 1 / (1 / 1000 + 1 / 1000 + 0.1 / 10)
    assert c.predicted_feeding_tax == pytest.approx(1 - (2 * per_worker / 200) * 0.05 / 0.07)


def test_measured_from_format_results():
    from types import SimpleNamespace

    r = SimpleNamespace(track="tiny", format="raw", bytes_per_sample=324.0, raw_bytes_per_sample=324,
                        decode_samples_per_s_cold=SimpleNamespace(median=1e5))
    m = make_measured()
    built = calibrate.measured_from([r], transform_samples_per_s=m.transform_samples_per_s, sample_fields=m.sample_fields,
                                    disk_read_mb_per_s=100.0, audio_rate_hz=16000)
    assert built.formats[0].decode_samples_per_s == 1e5


def test_ingestion_waterfall_figure(projections):
    from feedtax.reports.mission_figures import ingestion_waterfall

    fig = ingestion_waterfall(projections)
    assert len(fig.axes) == 4
    assert not math.isnan(fig.axes[0].get_ylim()[1])
