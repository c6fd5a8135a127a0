"""Raw: fixed-size binary records, memory-mapped: the physical-limit baseline.

Layout (version 2): `FTXRAW02` | u32 header length | u32 CRC32 of the header | JSON header (schema,
count, record size, CRC32 of the data region) | zero padding to a 4096-byte boundary | count records |
count u32 CRC32s, one per record. The header's CRC is checked on every open, so a damaged field name,
dtype or count is an error, never a renamed or reshaped sample; version 1 shards (no header CRC) are
refused with a ShardError that says to rewrite them. A record is each field's bytes, little endian,
C order, in schema order: numpy's packed structured dtype, so reading is np.memmap plus views, no
copy and no parsing.
Streaming checks the data region's CRC once per shard; random access checks the one record's CRC.
Random access: yes, record i is at a computed offset.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import orjson

from feedtax.formats.base import (
    Codec,
    Columns,
    Sample,
    Schema,
    ShardError,
    crc32,
    rows_of,
    schema_from_json,
    schema_to_json,
)

RAW_VERSION = 2  # raw's own layout version: 2 added the header CRC
MAGIC = b"FTXRAW02"
_OLD_MAGIC = b"FTXRAW01"
ALIGN = 4096
_PREFIX = struct.Struct("<8sII")  # magic, header length, header CRC32


def record_dtype(schema: Schema) -> np.dtype:
    return np.dtype([(f.name, np.dtype(f.dtype).newbyteorder("<"), f.shape) for f in schema])


def encode_shard(samples: Sequence[Sample], schema: Schema) -> bytes:
    rec = np.empty(len(samples), dtype=record_dtype(schema))
    for i, s in enumerate(samples):
        for f in schema:
            rec[f.name][i] = s[f.name]
    data = rec.tobytes()
    crcs = [crc32(data[i * rec.itemsize : (i + 1) * rec.itemsize]) for i in range(len(samples))]
    header = orjson.dumps({
        "feedtax_shard": RAW_VERSION, "format": "raw", "schema": schema_to_json(schema),
        "count": len(samples), "record_bytes": rec.itemsize, "data_crc32": crc32(data),
    })
    prefix = _PREFIX.pack(MAGIC, len(header), crc32(header)) + header
    pad = -len(prefix) % ALIGN
    return prefix + b"\0" * pad + data + struct.pack(f"<{len(crcs)}I", *crcs)


def _header(path: Path, f, size: int) -> tuple[dict, int]:
    """Read and check a shard's prefix and JSON header: (header, offset of the first record)."""
    head = f.read(ALIGN)
    if head[:8] == _OLD_MAGIC:
        raise ShardError(path, "byte 0", "a version 1 raw shard (no header checksum): rewrite it with this feedtax")
    if head[:8] != MAGIC:
        raise ShardError(path, "byte 0", f"not a version {RAW_VERSION} feedtax raw shard (bad magic)")
    if len(head) < _PREFIX.size:
        raise ShardError(path, "byte 8", "truncated header")
    _, hlen, expected = _PREFIX.unpack_from(head)
    if _PREFIX.size + hlen > size:
        raise ShardError(path, "byte 8", f"header length {hlen} runs past the end of the {size}-byte file")
    raw = head[_PREFIX.size : _PREFIX.size + hlen]
    if len(raw) < hlen:
        raw += f.read(hlen - len(raw))
    if crc32(raw) != expected:
        raise ShardError(path, f"bytes {_PREFIX.size}..{_PREFIX.size + hlen}", "header checksum mismatch (corrupted)")
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ShardError(path, f"byte {_PREFIX.size}", f"header is not valid: {exc}") from None
    if not isinstance(header, dict) or header.get("feedtax_shard") != RAW_VERSION:
        raise ShardError(path, f"byte {_PREFIX.size}", f"not a version {RAW_VERSION} raw shard header")
    return header, _PREFIX.size + hlen + (-(_PREFIX.size + hlen) % ALIGN)


def _open(path: Path, verify_data: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Map a shard after checking its header and size: (records, per-record CRCs, data offset).

    verify_data checks the whole data region's CRC (streaming); random access checks one record's.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            header, offset = _header(path, f, size)
    except OSError as exc:
        raise ShardError(path, "open", exc.strerror or str(exc)) from exc
    dtype = record_dtype(schema_from_json(header.get("schema"), path))
    count = header.get("count")
    if not isinstance(count, int) or count < 0 or header.get("record_bytes") != dtype.itemsize:
        raise ShardError(path, f"byte {_PREFIX.size}", "header count or record size is inconsistent with its schema")
    data_end = offset + count * dtype.itemsize
    if size != data_end + 4 * count:
        raise ShardError(path, f"byte {size}",
                         f"file is {size} bytes, header implies {data_end + 4 * count} (truncated?)")
    mm = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)  # plain views index fast
    data = mm[offset:data_end]
    if verify_data and crc32(data) != header.get("data_crc32"):
        raise ShardError(path, f"bytes {offset}..{data_end}", "data checksum mismatch (corrupted)")
    return data.view(dtype), mm[data_end:].view("<u4"), offset


def iter_columns(path: Path) -> Iterator[Columns]:
    """The whole shard as one chunk: each field a read-only strided view of the mapped records."""
    records, _, _ = _open(path, verify_data=True)
    yield {name: records[name] for name in records.dtype.names}


def iter_shard(path: Path) -> Iterator[Sample]:
    return rows_of(iter_columns(path))


def read_shard_sample(path: Path, index: int) -> Sample:
    records, crcs, offset = _open(path, verify_data=False)
    if not 0 <= index < len(records):
        raise IndexError(f"{path}: sample {index} out of range (shard holds {len(records)})")
    rec = records[index : index + 1]
    if crc32(rec.view(np.uint8)) != crcs[index]:
        raise ShardError(path, f"byte {offset + index * records.itemsize} (record {index})",
                         "record checksum mismatch (corrupted)")
    return {name: rec[name][0, ...] for name in records.dtype.names}


def count_shard(path: Path) -> int:
    """The shard's sample count, from its checksummed header (the file's size checked against it)."""
    return len(_open(path, verify_data=False)[0])


if sys.byteorder != "little":  # the layout is little endian; views would need a byte swap
    raise ImportError("feedtax.formats.raw expects a little-endian host")

CODEC = Codec(
    name="raw",
    suffix=".raw",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    read_shard_sample=read_shard_sample,
    iter_shard_columns=iter_columns,
    count_shard=count_shard,
)
