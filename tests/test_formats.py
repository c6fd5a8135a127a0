"""Every format x track: exact round trip (values, dtypes, shapes, NaN/inf, extremes), random access
where offered, and damage detected: a truncated or corrupted shard raises ShardError naming the file."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import zlib
from collections import Counter

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from feedtax import datasets, formats
from feedtax.formats import parquet, sample_pb2
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


# --- Damage that once gave wrong or missing samples with no error ---------------------------------------------


def _read_or_error(codec, path):
    try:
        return list(codec.iter_samples([path]))
    except ShardError as exc:
        assert exc.path == path and exc.position and exc.problem
        return exc


def test_parquet_page_header_bit_flips_never_drop_rows(tmp_path, track_samples):
    """A page header lies outside the page CRC: a flipped bit in one (here, every bit of the first 24 bytes of
    each page header of a one-column shard) made pyarrow read fewer rows with no error. Now every row group's
    and column's length is checked against the feedtax header's count."""
    samples = track_samples["cloud"]
    codec = formats.get("parquet")
    [path] = codec.write(samples, tmp_path, samples_per_shard=100)
    data = path.read_bytes()
    col = pq.ParquetFile(path).metadata.row_group(0).column(0)
    caught = Counter()
    for pos in [off + i for off in (col.dictionary_page_offset, col.data_page_offset) for i in range(24)]:
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            got = _read_or_error(codec, path)
            if isinstance(got, ShardError):
                caught["rows" if "the header implies" in got.problem else "pyarrow's own"] += 1
            else:
                assert_same(samples, got)
    assert caught["rows"] > 0, "no flip exercised the row-count check"


def test_parquet_bytes_inserted_before_the_footer_are_shard_error(tmp_path, track_samples, monkeypatch):
    """A row group's bytes written twice (a replayed write) left the footer's offsets pointing at the copy: row
    group 1 read back as row group 0's intact pages (here one sample five times, so the smaller)."""
    monkeypatch.setattr(parquet, "RG_ROWS", 5)  # three row groups in 12 samples
    codec = formats.get("parquet")
    samples = track_samples["cloud"][:1] * 5 + track_samples["cloud"][1:8]
    [path] = codec.write(samples, tmp_path, samples_per_shard=12)
    data = path.read_bytes()
    end = 4 + pq.ParquetFile(path).metadata.row_group(0).column(0).total_compressed_size
    path.write_bytes(data[:end] + data[4:end] + data[end:])
    got = []
    with pytest.raises(ShardError, match="bytes were inserted or removed") as info:
        got.extend(codec.iter_samples([path]))
    assert info.value.position == "footer"
    assert_same(samples[: len(got)], got)
    with pytest.raises(ShardError, match="bytes were inserted or removed"):
        codec.read_sample(path, 7)


_FOOTER_FLIPS = """
import sys
from pathlib import Path
from feedtax.formats import parquet
from feedtax.formats.base import ShardError
path = Path(sys.argv[1])
data = path.read_bytes()
start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
for pos in range(start, start + 128):
    for bit in range(8):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << bit
        path.write_bytes(bytes(damaged))
        for read in (lambda: parquet.count_shard(path), lambda: parquet.read_shard_sample(path, 4)):
            try:
                read()
            except ShardError:
                pass
"""


def test_damaged_parquet_footer_never_aborts_the_process(tmp_path, track_samples):
    """pyarrow's per-column metadata accessor terminates the process (an uncaught C++ exception) on some damaged
    footers, e.g. a flipped bit in the schema that makes a definition-level histogram the wrong size; the reader
    must not call it. Every bit of the footer's start (its schema) is flipped in turn, in a child process."""
    [path] = formats.get("parquet").write(track_samples["mobile"][:5], tmp_path, samples_per_shard=5)
    done = subprocess.run([sys.executable, "-c", _FOOTER_FLIPS, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_csv_header_asking_for_more_columns_than_fit_is_refused(tmp_path, track_samples):
    """The csv header is outside the body CRC: a damaged shape must not make the reader build millions of names."""
    codec = formats.get("csv")
    [path] = codec.write(track_samples["cloud"][:3], tmp_path, samples_per_shard=3)
    path.write_bytes(path.read_bytes().replace(b'"shape":[256]', b'"shape":[256256256]', 1))
    with pytest.raises(ShardError, match="columns cannot fit in the"):
        list(codec.iter_samples([path]))


@pytest.mark.parametrize("fmt", ["parquet", "raw"])
def test_random_access_on_a_damaged_footer_or_truncation_is_shard_error(tmp_path, track_samples, fmt):
    """read_sample and count check as streaming does: never pyarrow's ArrowInvalid/OSError, never IndexError."""
    codec = formats.get(fmt)
    [path] = codec.write(track_samples["mobile"][:10], tmp_path, samples_per_shard=10)
    data = path.read_bytes()
    damages = [data[: len(data) // 2], data[:-3], data + b"\0" * 7]
    if fmt == "parquet":  # the footer's length zeroed; the feedtax header's count made 11 (one bit)
        damages += [data[:-8] + bytes(4) + data[-4:], data.replace(b'"count":10', b'"count":11')]
    for damaged in damages:
        path.write_bytes(damaged)
        for read in (lambda: codec.read_sample(path, 3), lambda: codec.count(path)):
            with pytest.raises(ShardError) as info:
                read()
            assert info.value.path == path and str(path) in str(info.value)


def test_raw_header_is_checksummed(tmp_path, track_samples):
    """A flipped byte in a field name ('crop' -> 'brop') gave samples under the wrong name."""
    codec = formats.get("raw")
    [path] = codec.write(track_samples["mobile"][:5], tmp_path, samples_per_shard=5)
    data = bytearray(path.read_bytes())
    data[data.index(b'"crop"') + 1] ^= 0x01
    path.write_bytes(bytes(data))
    for read in (lambda: list(codec.iter_samples([path])), lambda: codec.read_sample(path, 0),
                 lambda: codec.count(path)):
        with pytest.raises(ShardError, match="header checksum mismatch"):
            read()


def test_raw_version_1_shard_is_refused_clearly(tmp_path, track_samples):
    codec = formats.get("raw")
    [path] = codec.write(track_samples["tiny"][:3], tmp_path, samples_per_shard=3)
    data = path.read_bytes()
    hlen = struct.unpack_from("<I", data, 8)[0]
    header = orjson.loads(data[16 : 16 + hlen]) | {"feedtax_shard": 1}
    prefix = b"FTXRAW01" + struct.pack("<I", len(orjson.dumps(header))) + orjson.dumps(header)
    start = 16 + hlen + (-(16 + hlen) % 4096)
    path.write_bytes(prefix + bytes(-len(prefix) % 4096) + data[start:])
    with pytest.raises(ShardError, match="version 1 raw shard.*rewrite it"):
        list(codec.iter_samples([path]))


def _pb_records(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], 0
    while pos < len(data):
        out.append((pos, pos + 8 + struct.unpack_from("<I", data, pos)[0]))
        pos = out[-1][1]
    return out


def test_protobuf_checks_the_record_count_before_yielding(tmp_path, track_samples):
    """An appended copy of the last record was yielded as a sixth sample before the count check; now every frame
    (its CRC seeded with its position) and the count are checked before the first sample is given out."""
    codec = formats.get("protobuf")
    samples = track_samples["mobile"][:5]
    [path] = codec.write(samples, tmp_path, samples_per_shard=5)
    data = path.read_bytes()
    last, end = _pb_records(data)[-1]
    payload = data[last + 8 : end]
    valid_sixth = struct.pack("<II", len(payload), zlib.crc32(payload, 6)) + payload  # framed for its place
    for damaged, problem in [(data + data[last:], "not in its place"),
                             (data + valid_sixth, "6 records, more than the header's count of 5"),
                             (data[:last], "4 records with 5 expected")]:
        path.write_bytes(damaged)
        got = []
        with pytest.raises(ShardError, match=problem):
            got.extend(codec.iter_samples([path]))
        assert got == []


def test_protobuf_record_out_of_its_place_is_shard_error(tmp_path, track_samples):
    """A record's CRC is seeded with its position: one written over another of the same length (a misdirected
    write; tiny's records all have one length) or two swapped would otherwise pass as valid records."""
    codec = formats.get("protobuf")
    [path] = codec.write(track_samples["tiny"][:6], tmp_path, samples_per_shard=6)
    data = path.read_bytes()
    (a2, b2), (a3, b3) = _pb_records(data)[3:5]
    assert b2 - a2 == b3 - a3
    for damaged in (data[:a3] + data[a2:b2] + data[b3:], data[:a2] + data[a3:b3] + data[a2:b2] + data[b3:]):
        path.write_bytes(damaged)
        with pytest.raises(ShardError, match="not in its place") as info:
            list(codec.iter_samples([path]))
        assert info.value.position == f"byte {a2 if damaged[a2:b2] != data[a2:b2] else a3}"


def test_protobuf_version_1_shard_is_refused_clearly(tmp_path, track_samples):
    """Version 1 framed records with unseeded CRCs: its header still reads, and says which version it is."""
    codec = formats.get("protobuf")
    [path] = codec.write(track_samples["tiny"][:3], tmp_path, samples_per_shard=3)
    data = path.read_bytes()
    payloads = [data[a + 8 : b] for a, b in _pb_records(data)]
    header = sample_pb2.ShardHeader.FromString(payloads[0])
    header.version = 1
    payloads[0] = header.SerializeToString()
    path.write_bytes(b"".join(struct.pack("<II", len(p), zlib.crc32(p)) + p for p in payloads))
    with pytest.raises(ShardError, match="protobuf shard version 1, this reader knows 2: rewrite it"):
        list(codec.iter_samples([path]))


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_count_matches_the_samples(shard_sets, fmt):
    samples, paths = shard_sets
    codec = formats.get(fmt)
    assert [codec.count(p) for p in paths[fmt]] == [5, 5, 5, 5, 3]
    with pytest.raises(ShardError):
        codec.count(paths[fmt][0].with_name("missing" + codec.suffix))
