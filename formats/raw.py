"""Raw: fixed-size binary records, memory-mapped: the physical-limit baseline.

Layout: `FTXRAW01` | u32 header length | JSON header (schema, count, record size, CRC32 of the
data region) | zero padding to a 4096-byte boundary | count records | count u32 CRC32s, one per
record. A record is each field's bytes, little endian, C order, in schema order: numpy's packed
structured dtype, so reading is np.memmap plus views, no copy and no parsing.
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
    SHARD_VERSION,
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

MAGIC = b"FTXRAW01"
ALIGN = 4096
_U32 = struct.Struct("<I")


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
        "feedtax_shard": SHARD_VERSION, "format": "raw", "schema": schema_to_json(schema),
        "count": len(samples), "record_bytes": rec.itemsize, "data_crc32": crc32(data),
    })
    prefix = MAGIC + _U32.pack(len(header)) + header
    pad = -len(prefix) % ALIGN
    return prefix + b"\0" * pad + data + struct.pack(f"<{len(crcs)}I", *crcs)


def _open(path: Path, verify_data: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Map a shard after checking its header and size: (records, per-record CRCs, data offset).

    verify_data checks the whole data region's CRC (streaming); random access checks one record's.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(ALIGN)
    except OSError as exc:
        raise ShardError(path, "open", exc.strerror or str(exc)) from exc
    if head[:8] != MAGIC:
        raise ShardError(path, "byte 0", "not a feedtax raw shard (bad magic)")
    if len(head) < 12:
        raise ShardError(path, "byte 8", "truncated header")
    (hlen,) = _U32.unpack_from(head, 8)
    try:
        header = orjson.loads(head[12 : 12 + hlen])
    except orjson.JSONDecodeError as exc:
        raise ShardError(path, "byte 12", f"header is not valid: {exc}") from None
    if not isinstance(header, dict) or header.get("feedtax_shard") != SHARD_VERSION:
        raise ShardError(path, "byte 12", f"not a version {SHARD_VERSION} raw shard header")
    dtype = record_dtype(schema_from_json(header.get("schema"), path))
    count = header.get("count")
    if not isinstance(count, int) or count < 0 or header.get("record_bytes") != dtype.itemsize:
        raise ShardError(path, "byte 12", "header count or record size is inconsistent with its schema")
    offset = 12 + hlen + (-(12 + hlen) % ALIGN)
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


if sys.byteorder != "little":  # the layout is little endian; views would need a byte swap
    raise ImportError("feedtax.formats.raw expects a little-endian host")

CODEC = Codec(
    name="raw",
    suffix=".raw",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    read_shard_sample=read_shard_sample,
    iter_shard_columns=iter_columns,
)
