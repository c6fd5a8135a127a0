"""inputs: a plausible Measured for the model's tests (make_measured), and Measured built from format results."""

from __future__ import annotations

from feedtax import datasets
from feedtax.bench.profiles import get
from feedtax.model import inputs
from feedtax.model.inputs import FormatMeasure, Measured

# Decode rates relative to raw and size ratios (raw / on disk) of a plausible measurement; hand-picked.
RELATIVE_DECODE = {"csv": 0.2, "json": 0.3, "parquet": 0.8, "protobuf": 0.7, "raw": 1.0}
SIZE_RATIO = {"csv": 0.4, "json": 0.45, "parquet": 1.3, "protobuf": 0.9, "raw": 1.0}
RAW_DECODE_BYTES_PER_S = 2e8


def make_measured(disk_mb_per_s: float = 1500.0) -> Measured:
    sizes = get("ci").sizes
    fields = inputs.sample_fields({t: datasets.generate(t, 1, seed=0, sizes=sizes) for t in datasets.TRACKS})
    formats = []
    for t in datasets.TRACKS:
        raw = sum(f.bytes for f in fields[t].values())
        for f, rel in RELATIVE_DECODE.items():
            formats.append(FormatMeasure(track=t, format=f, bytes_per_sample=raw / SIZE_RATIO[f],
                                         raw_bytes_per_sample=raw,
                                         decode_samples_per_s=RAW_DECODE_BYTES_PER_S * rel / raw))
    return Measured(formats=formats, transform_samples_per_s={t: 5e4 for t in datasets.TRACKS}, sample_fields=fields,
                    disk_read_mb_per_s=disk_mb_per_s, audio_rate_hz=datasets.AUDIO_RATE_HZ)


def test_measured_from_format_results():
    from types import SimpleNamespace

    r = SimpleNamespace(track="tiny", format="raw", bytes_per_sample=324.0, raw_bytes_per_sample=324,
                        decode_samples_per_s_cold=SimpleNamespace(median=1e5))
    m = make_measured()
    built = inputs.measured_from([r], transform_samples_per_s=m.transform_samples_per_s, sample_fields=m.sample_fields,
                                 disk_read_mb_per_s=100.0, audio_rate_hz=16000)
    assert built.formats[0].decode_samples_per_s == 1e5


def test_format_of_picks_the_track_and_format():
    m = make_measured()
    fm = m.format_of("edge", "json")
    assert (fm.track, fm.format) == ("edge", "json")
    assert fm in m.of("edge")
