"""Every format x track: exact round trip (values, dtypes, shapes, NaN/inf, extremes), random access
where offered, and damage detected: a truncated or corrupted shard raises ShardError naming the file."""

from __future__ import annotations

import random

import numpy as np
import pytest

from feedtax import datasets, formats
from feedtax.formats.base import DTYPES, ShardError

TRACKS = datasets.TRACKS


def assert_same(expected: list[dict], actual: list[dict]) -> None:
    assert len(actual) == len(expected)
    for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
        assert list(a) == list(b), f"sample {i}: fields"
        for k in a:
            assert b[k].dtype == a[k].dtype, f"sample {i} {k}: dtype {b[k].dtype} != {a[k].dtype}"
            assert b[k].shape == a[k].shape, f"sample {i} {k}: shape {b[k].shape} != {a[k].shape}"
            # bit-exact, NaN included (array_equal with equal_nan would accept other NaN payloads too)
            assert a[k].tobytes() == np.ascontiguousarray(b[k]).tobytes(), f"sample {i} {k}: values differ"


def with_extremes(samples: list[dict]) -> list[dict]:
    """Copies of samples with each field's extreme values (and NaN/+-inf/-0.0/subnormals for floats)."""
    out = []
    for s in samples:
        s = {k: v.copy() for k, v in s.items()}
        for v in s.values():
            flat = v.reshape(-1)
            if v.dtype.kind == "f":
                info = np.finfo(v.dtype)
                special = [np.nan, np.inf, -np.inf, -0.0, info.max, info.min, info.tiny, info.smallest_subnormal]
            else:
                info = np.iinfo(v.dtype)
                special = [info.min, info.max, 0]
            n = min(len(special), flat.size)
            flat[:n] = np.array(special[:n], dtype=v.dtype)
        out.append(s)
    return out


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("track", TRACKS)
def test_round_trip_track_samples(tmp_path, track_samples, fmt, track):
    codec = formats.get(fmt)
    samples = track_samples[track]
    paths = codec.write(samples, tmp_path, samples_per_shard=10)
    assert [p.name for p in paths] == [f"shard-{i:05d}{codec.suffix}" for i in range(3)]
    assert_same(samples, list(codec.iter_samples(paths)))


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("track", TRACKS)
def test_round_trip_extremes(tmp_path, track_samples, fmt, track):
    codec = formats.get(fmt)
    samples = with_extremes(track_samples[track][:5])
    assert_same(samples, list(codec.iter_samples(codec.write(samples, tmp_path, samples_per_shard=4))))


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_round_trip_every_dtype_and_shape(tmp_path, fmt):
    rng = np.random.default_rng(3)
    samples = []
    for i in range(6):
        s = {}
        for dt in DTYPES:
            info = np.finfo(dt) if np.dtype(dt).kind == "f" else np.iinfo(dt)
            if np.dtype(dt).kind == "f":
                s[f"v_{dt}"] = (rng.standard_normal((2, 3)) * 10.0 ** rng.integers(-30, 30)).astype(dt)
            else:
                s[f"v_{dt}"] = rng.integers(info.min, info.max, size=(2, 3), dtype=dt, endpoint=True)
        s["scalar_f64"] = np.array(rng.standard_normal())
        s["scalar_i64"] = np.array(np.iinfo(np.int64).min + i, dtype=np.int64)
        samples.append(s)
    samples = with_extremes(samples)
    codec = formats.get(fmt)
    assert_same(samples, list(codec.iter_samples(codec.write(samples, tmp_path, samples_per_shard=4))))


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_random_access_where_offered(tmp_path, track_samples, fmt):
    codec = formats.get(fmt)
    samples = track_samples["mobile"]
    paths = codec.write(samples, tmp_path, samples_per_shard=10)
    if not codec.random_access:
        assert codec.random_access_note, "a format without random access must say why"
        with pytest.raises(NotImplementedError, match="no random access"):
            codec.read_sample(paths[0], 0)
        return
    for shard, index in [(0, 0), (1, 7), (2, 3)]:
        assert_same([samples[shard * 10 + index]], [codec.read_sample(paths[shard], index)])
    with pytest.raises(IndexError):
        codec.read_sample(paths[2], 4)


def test_empty_field_is_refused(tmp_path):
    with pytest.raises(ValueError, match="field 'x' has no elements"):
        formats.get("raw").write([{"x": np.zeros(0, np.float32)}], tmp_path)


def test_get_unknown_format_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown format 'xml'.*csv, json, parquet, protobuf, raw"):
        formats.get("xml")


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_write_refuses_samples_off_schema(tmp_path, track_samples, fmt):
    samples = [dict(s) for s in track_samples["tiny"][:3]]
    samples[2]["audio"] = samples[2]["audio"].astype(np.int32)
    with pytest.raises(ValueError, match="sample 2: field 'audio' is int32"):
        formats.get(fmt).write(samples, tmp_path, samples_per_shard=10)
    assert list(tmp_path.iterdir()) == [], "no shard (or temp file) may be left from a failed write"


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_full_disk_leaves_no_partial_shard(tmp_path, track_samples, fmt, full_disk):
    with pytest.raises(OSError, match=r"cannot write shard .*shard-00000.*No space left"):
        formats.get(fmt).write(track_samples["tiny"], tmp_path, samples_per_shard=10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("track", TRACKS)
def test_truncated_shard_raises_naming_file(tmp_path, track_samples, fmt, track):
    codec = formats.get(fmt)
    [path] = codec.write(track_samples[track], tmp_path, samples_per_shard=100)
    data = path.read_bytes()
    for keep in (0, 1, 9, len(data) // 3, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:keep])
        with pytest.raises(ShardError) as info:
            list(codec.iter_samples([path]))
        assert str(path) in str(info.value) and info.value.position


@pytest.mark.parametrize("fmt", formats.NAMES)
@pytest.mark.parametrize("track", TRACKS)
def test_corrupted_bytes_never_give_wrong_samples(tmp_path, track_samples, fmt, track):
    """Flip bytes all over the shard: each read either raises ShardError or returns the exact samples."""
    codec = formats.get(fmt)
    samples = track_samples[track]
    [path] = codec.write(samples, tmp_path, samples_per_shard=100)
    data = path.read_bytes()
    positions = random.Random(f"{fmt}{track}").sample(range(len(data)), min(60, len(data)))
    detected = 0
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        path.write_bytes(bytes(damaged))
        try:
            back = list(codec.iter_samples([path]))
        except ShardError as exc:
            assert str(path) in str(exc)
            detected += 1
        else:
            assert_same(samples, back)  # the flip hit bytes that carry no data (padding, statistics)
    assert detected >= len(positions) // 2


def test_missing_shard_is_named(tmp_path):
    with pytest.raises(ShardError, match="no such shard file"):
        list(formats.get("csv").iter_samples([tmp_path / "nope.csv"]))


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_shard_of_another_format_is_refused(tmp_path, track_samples, fmt):
    other = "json" if fmt != "json" else "csv"
    [path] = formats.get(other).write(track_samples["tiny"], tmp_path, samples_per_shard=100)
    with pytest.raises(ShardError):
        list(formats.get(fmt).iter_samples([path]))
