"""A damaged shard raises ShardError, never gives wrong or missing samples: a property test over every format and
every byte region of a small shard (bit flips, truncations, zeroed blocks, appended bytes, replayed regions), read
every way the loader reads (iter_samples, iter_columns, read_sample, count); every bit of every header flipped in
turn; and the loader end to end (0, 1 and 2 workers, shuffled or not, with or without transform).
Run: python -m pytest tests/test_corruption.py (FEEDTAX_CORRUPTION_EXAMPLES=5000 for a deeper search)."""

from __future__ import annotations

import io
import itertools
import os
import re
import struct

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import digest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedtax import datasets, formats
from feedtax.bench.profiles import get
from feedtax.formats import parquet
from feedtax.formats.base import ShardError
from feedtax.loader import LoaderConfig, make_loader, transform_for
from feedtax.vocabulary import FORMATS

N_SAMPLES = 12
RG_ROWS = 5  # parquet row groups of 5 rows in the property, so a 12-sample shard has three (two full, one short)
TRACKS = ["cloud", "mobile"]  # one column (the parquet case) and three of different dtypes and shapes
# derandomized, no example database: the same damage every run, in CI and here; more with FEEDTAX_CORRUPTION_EXAMPLES
PROPERTY = settings(max_examples=int(os.environ.get("FEEDTAX_CORRUPTION_EXAMPLES", "400")), deadline=None,
                    derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def originals() -> dict[str, list[dict]]:
    return {t: list(datasets.generate(t, N_SAMPLES, seed=11, sizes=get("ci").sizes)) for t in TRACKS}


@pytest.fixture(scope="module")
def shards(originals) -> dict[tuple[str, str], bytes]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parquet, "RG_ROWS", RG_ROWS)
        return {(fmt, t): formats.get(fmt).encode_shard(s, formats.schema_of(s[0]))
                for fmt in FORMATS for t, s in originals.items()}


# ---------------------------------------------------------------------------------------------
# Where a shard's bytes lie: each format's regions, so every one is damaged, not only the largest.


def _frames(data: bytes) -> list[tuple[int, int]]:
    """Protobuf's records as (start, end), frame prefix included."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        out.append((pos, pos + 8 + length))
        pos += 8 + length
    return out


def _json_tokens(data: bytes, lo: int, hi: int) -> dict[str, tuple[int, int]]:
    """Each string and number of a JSON header as a region of its own: a field name or a count is a few bytes of
    a long header, and damage there is what a checksum over the header must catch."""
    return {f"header token {m.group().decode()}@{lo + m.start()}": (lo + m.start(), lo + m.end())
            for m in re.finditer(rb'"[^"]*"|-?[0-9]+', data[lo:hi])}


def regions(fmt: str, data: bytes) -> dict[str, tuple[int, int]]:
    """Named byte ranges [start, end) of an intact shard."""
    end = len(data)
    if fmt in ("csv", "json"):
        nl = data.index(b"\n") + 1
        last = data.rindex(b"\n", 0, end - 1) + 1
        return {"header line": (0, nl), **_json_tokens(data, 0, nl), "body": (nl, last), "last line": (last, end)}
    if fmt == "raw":
        start, hlen = data.index(b"{"), struct.unpack_from("<I", data, 8)[0]  # the JSON header follows the prefix
        data_start = start + hlen + (-(start + hlen) % 4096)
        data_end = end - 4 * N_SAMPLES
        return {"prefix": (0, start), "header": (start, start + hlen), **_json_tokens(data, start, start + hlen),
                "padding": (start + hlen, data_start), "records": (data_start, data_end),
                "record crcs": (data_end, end)}
    if fmt == "protobuf":
        frames = _frames(data)
        return {"header record": frames[0], "frame prefixes": (frames[1][0], frames[1][0] + 8),
                "records": (frames[1][0], frames[-1][0]), "last record": frames[-1]}
    footer_len = struct.unpack_from("<I", data, end - 8)[0]
    out = {"magic": (0, 4), "footer": (end - 8 - footer_len, end - 8), "footer length and magic": (end - 8, end)}
    md = pq.ParquetFile(io.BytesIO(data)).metadata
    for rg, c in itertools.product(range(md.num_row_groups), range(md.num_columns)):
        col = md.row_group(rg).column(c)
        pages = [o for o in (col.dictionary_page_offset, col.data_page_offset) if o is not None]
        for i, off in enumerate(pages):  # a page header is a few dozen bytes of thrift, outside the page CRC
            out[f"page header {rg}.{c}.{i}"] = (off, off + 24)
        first = min(pages)
        out[f"column chunk {rg}.{c}"] = (first, first + col.total_compressed_size)
    return out


KINDS = ["flip", "zero", "truncate", "append", "repeat"]


@st.composite
def damage(draw, fmt: str, data: bytes) -> tuple[str, bytes]:
    """One to three of: a flipped bit, a zeroed block, a truncation, appended bytes, a region written twice (a
    copy inserted after it, as a replayed write); each in a drawn region."""
    where = regions(fmt, data)
    out, steps = bytearray(data), []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(KINDS))
        if kind == "append":
            extra = draw(st.binary(min_size=1, max_size=48))
            out += extra
            steps.append(f"append {extra!r}")
            continue
        name = draw(st.sampled_from(sorted(where)))
        lo, hi = where[name]
        if lo >= len(out):
            continue  # an earlier truncation removed this region
        hi = min(hi, len(out))
        if kind == "repeat":
            out[hi:hi] = out[lo:hi]
            steps.append(f"repeat bytes {lo}..{hi} ({name})")
            continue
        pos = draw(st.integers(lo, hi - 1))
        if kind == "flip":
            bit = draw(st.integers(0, 7))
            out[pos] ^= 1 << bit
            steps.append(f"flip bit {bit} of byte {pos} ({name})")
        elif kind == "zero":
            n = draw(st.integers(1, 64))
            out[pos:pos + n] = bytes(len(out[pos:pos + n]))
            steps.append(f"zero {n} bytes at {pos} ({name})")
        else:
            del out[pos:]
            steps.append(f"truncate at {pos} ({name})")
    return "; ".join(steps), bytes(out)


# ---------------------------------------------------------------------------------------------
# The property


def same_samples(expected: list[dict], actual: list[dict]) -> bool:
    """Exactly the same samples: field names and order, dtypes, shapes and bytes."""
    return len(expected) == len(actual) and all(
        list(a) == list(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                                   and a[k].tobytes() == np.ascontiguousarray(b[k]).tobytes() for k in a)
        for a, b in zip(expected, actual, strict=True))


def _rows(columns):
    for cols in columns:
        yield from ({k: v[i] for k, v in cols.items()} for i in range(len(next(iter(cols.values())))))


def _read_all(codec, path, n: int):
    yield from (codec.read_sample(path, i) for i in range(n))


def read_every_way(codec, path, n: int) -> dict[str, tuple[list, ShardError | None]]:
    """What each reader yields for the shard, sample by sample, and the ShardError it ended with (checked to name
    the shard), if any: the samples yielded before an error count too."""
    readers = {"iter_samples": lambda: codec.iter_samples([path]), "count": lambda: iter([codec.count(path)])}
    if codec.columnar:
        readers["iter_columns"] = lambda: _rows(codec.iter_columns(path))
    if codec.random_access:
        readers["read_sample"] = lambda: _read_all(codec, path, n)
    out = {}
    for name, read in readers.items():
        got = []
        try:
            got.extend(read())
            out[name] = got, None
        except ShardError as exc:
            assert exc.path == path and exc.position and exc.problem and str(path) in str(exc), repr(exc)
            out[name] = got, exc
    return out


def assert_exact_or_shard_error(codec, path, expected: list[dict]) -> None:
    """Every reader gives exactly the original samples, or raises ShardError having yielded only original
    samples, in order, before it."""
    for name, (got, error) in read_every_way(codec, path, len(expected)).items():
        if name == "count":
            assert error or got == [len(expected)], f"count gave {got[0]} of {len(expected)} with no error"
        elif error is None:
            assert same_samples(expected, got), f"{name} gave {len(got)} samples, not the original {len(expected)}"
        else:
            assert same_samples(expected[: len(got)], got), f"{name} yielded a wrong sample before {error}"


_SERIAL = itertools.count()


@pytest.mark.parametrize("track", TRACKS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_shard_gives_the_exact_samples_or_shard_error(tmp_path_factory, monkeypatch, shards, originals, fmt,
                                                            track):
    monkeypatch.setattr(parquet, "RG_ROWS", RG_ROWS)  # read as written
    codec, data = formats.get(fmt), shards[fmt, track]
    folder = tmp_path_factory.mktemp(f"damaged-{fmt}-{track}")

    @PROPERTY
    @given(st.data())
    def check(draw):
        what, damaged = draw.draw(damage(fmt, data), label="damage")
        # a fresh file each time: raw maps its shard, and rewriting a mapped file in place would fault its views
        path = folder / f"{next(_SERIAL)}{codec.suffix}"
        path.write_bytes(damaged)
        try:
            assert_exact_or_shard_error(codec, path, originals[track])
        finally:
            path.unlink()

    check()


HEADERS = {"csv": ("header line",), "json": ("header line",), "raw": ("prefix", "header"),
           "protobuf": ("header record", "frame prefixes"), "parquet": ("page header",)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_bit_of_every_header_flipped(tmp_path, monkeypatch, shards, originals, fmt):
    """Exhaustively where the property samples: each bit of the regions that describe the samples rather than hold
    them (a field name, a count, a page header), one at a time, in the one-column shard."""
    monkeypatch.setattr(parquet, "RG_ROWS", RG_ROWS)
    codec, data = formats.get(fmt), shards[fmt, "cloud"]
    spans = [span for name, span in regions(fmt, data).items()
             if name in HEADERS[fmt] or name.startswith("page header")]
    for pos in sorted({pos for lo, hi in spans for pos in range(lo, hi)}):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            path = tmp_path / f"{pos}-{bit}{codec.suffix}"
            path.write_bytes(bytes(damaged))
            assert_exact_or_shard_error(codec, path, originals["cloud"])
            path.unlink()


def test_every_region_of_every_format_is_named(shards):
    """The property draws from these regions: each is non-empty and inside the shard."""
    for (fmt, _), data in shards.items():
        where = regions(fmt, data)
        assert len(where) >= 3 and all(0 <= lo < hi <= len(data) for lo, hi in where.values()), (fmt, where)


# ---------------------------------------------------------------------------------------------
# The loader: the codec's ShardError reaches the caller, and no batch before it holds a wrong sample


def _quiet_damage(fmt: str, path) -> None:
    """Damage shard `path` the way that once went unnoticed in fmt: a parquet page header bit that drops rows,
    the last protobuf record written again at the end, a flipped byte in the field name of the other formats'
    headers."""
    data = path.read_bytes()
    if fmt == "protobuf":
        path.write_bytes(data + data[_frames(data)[-1][0]:])
        return
    if fmt != "parquet":
        damaged = bytearray(data)
        damaged[data.index(b'"tokens"') + 1] ^= 0x01
        path.write_bytes(bytes(damaged))
        return
    col = pq.ParquetFile(path).metadata.row_group(0).column(0)
    codec = formats.get(fmt)
    for pos in [off + i for off in (col.dictionary_page_offset, col.data_page_offset) for i in range(24)]:
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            try:
                codec.count(path)
                list(codec.iter_samples([path]))
            except ShardError as exc:
                if "the header implies" in exc.problem:  # pyarrow read it without error, short
                    return
    raise AssertionError("no page header bit flip in which pyarrow reads a short row group")


LOADER_CASES = [
    ("0 workers", dict(num_workers=0), False),
    ("0 workers, shuffled, transform", dict(num_workers=0, shuffle_samples=True, shuffle_buffer=7), True),
    ("1 worker, shuffled", dict(num_workers=1, shuffle_samples=True, shuffle_buffer=7), False),
    ("2 workers", dict(num_workers=2), False),
    ("2 workers, pickled numpy, shuffled", dict(num_workers=2, transport="numpy", shuffle_samples=True), False),
    ("2 workers, transform", dict(num_workers=2), True),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", LOADER_CASES, ids=[c[0] for c in LOADER_CASES])
def test_loader_raises_shard_error_before_any_wrong_batch(tmp_path, fmt, case):
    _, config, transform = case
    samples = list(datasets.generate("cloud", 23, seed=5, sizes=get("ci").sizes))
    paths = formats.get(fmt).write(samples, tmp_path, samples_per_shard=5)
    loader = make_loader(fmt, paths, LoaderConfig(batch_size=4, seed=2, **config),
                         transform=transform_for("cloud") if transform else None)
    _quiet_damage(fmt, paths[2])
    want = {digest(s) for s in samples}
    seen = []
    with pytest.raises(ShardError) as info:
        for batch in loader:
            fields = {k: v.numpy() for k, v in batch.items() if not k.startswith("_")}
            if not transform:
                assert list(fields) == list(samples[0])
                seen += [digest({k: v[i] for k, v in fields.items()}) for i in range(len(fields["tokens"]))]
    assert info.value.path == paths[2] and info.value.position and info.value.problem
    assert set(seen) <= want and len(seen) == len(set(seen)) < len(samples)
