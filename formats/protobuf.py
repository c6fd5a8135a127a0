"""Protobuf (upb backend): length-prefixed, checksummed records, one `Sample` message each.

The message schema is formats/sample.proto: dense arrays (pixels, audio, floats) as raw bytes, as
ONNX/TensorFlow TensorProto do; integer ids as packed varints, as tf.train.Int64List does.
Framing follows TFRecord: each record is `u32 length | u32 crc32(payload) | payload`, little
endian, the CRC seeded with the record's position in the file (0 for the first, so a copied,
swapped or replayed record fails its check); the first record is a `ShardHeader` with the schema,
record count and version (2: position-seeded CRCs). Protobuf parsing is lenient (flipped bytes
often still parse), so the per-record CRC is what catches corruption; no record is yielded before
every frame's CRC matched and their number is the header's count.
No random access: records have variable length and there is no index, as with TFRecord.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from feedtax.formats import sample_pb2 as pb
from feedtax.formats.base import Codec, Sample, Schema, ShardError, crc32, read_bytes, schema_from_json

_FRAME = struct.Struct("<II")
PB_VERSION = 2  # protobuf's own layout version: 2 seeds each record's CRC with its position

# dtype -> the Tensor field that holds it
_SLOT = {
    "uint8": "raw_data", "int8": "raw_data", "int16": "raw_data", "uint16": "raw_data",
    "float32": "raw_data", "float64": "raw_data",
    "int32": "sint32_values", "int64": "sint64_values", "uint32": "uint32_values", "uint64": "uint64_values",
}


def _frame(payload: bytes, n: int) -> bytes:
    return _FRAME.pack(len(payload), crc32(payload, n)) + payload


def encode_shard(samples: Sequence[Sample], schema: Schema) -> bytes:
    header = pb.ShardHeader(
        version=PB_VERSION,
        schema=[pb.FieldSpec(name=f.name, dtype=f.dtype, shape=f.shape) for f in schema],
        count=len(samples),
    )
    slots = [(f.name, _SLOT[f.dtype]) for f in schema]
    out = [_frame(header.SerializeToString(), 0)]
    for n, s in enumerate(samples, start=1):
        msg = pb.Sample()
        for name, slot in slots:
            arr = s[name]
            if slot == "raw_data":
                msg.tensors.add(raw_data=np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
            else:
                msg.tensors.add(**{slot: arr.ravel().tolist()})
        out.append(_frame(msg.SerializeToString(), n))
    return b"".join(out)


def _records(path: Path, data: bytes) -> Iterator[tuple[int, memoryview]]:
    """(offset, payload) of each record in order, its frame and position-seeded CRC checked."""
    view = memoryview(data)
    pos = n = 0
    while pos < len(data):
        if pos + _FRAME.size > len(data):
            raise ShardError(path, f"byte {pos}", "truncated record frame")
        length, expected = _FRAME.unpack_from(data, pos)
        start, end = pos + _FRAME.size, pos + _FRAME.size + length
        if end > len(data):
            raise ShardError(path, f"byte {pos}",
                             f"record of {length} bytes runs past the end of the file (truncated?)")
        payload = view[start:end]
        if crc32(payload, n) != expected:
            raise ShardError(path, f"byte {pos}", "record checksum mismatch (corrupted, or not in its place)")
        yield pos, payload
        pos, n = end, n + 1


def _where(pos: int, n: int) -> str:
    return f"byte {pos} (record {n})"


def _decode(path: Path, pos: int, n: int, payload: memoryview, fields: list[tuple]) -> Sample:
    try:
        msg = pb.Sample.FromString(payload)
    except Exception as exc:  # upb raises google.protobuf.message.DecodeError
        raise ShardError(path, _where(pos, n), f"not a Sample message: {exc}") from None
    tensors = msg.tensors
    if len(tensors) != len(fields):
        raise ShardError(path, _where(pos, n), f"{len(tensors)} tensors, schema has {len(fields)}")
    sample = {}
    for (name, slot, dtype, size, shape), t in zip(fields, tensors, strict=True):
        values = getattr(t, slot)
        arr = np.frombuffer(values, dtype=dtype) if slot == "raw_data" else np.array(values, dtype=dtype)
        if arr.size != size:
            raise ShardError(path, _where(pos, n), f"field {name!r} has {arr.size} values, schema says {size}")
        sample[name] = arr.reshape(shape)
    return sample


def iter_shard(path: Path) -> Iterator[Sample]:
    """The shard's samples, once every frame's length and CRC and the header's record count have been checked:
    a replayed or lost record shows in the count, a copied or swapped one in its position-seeded CRC."""
    data = read_bytes(path)
    records = _records(path, data)
    first = next(records, None)
    if first is None:
        raise ShardError(path, "byte 0", "empty file: no shard header")
    try:
        header = pb.ShardHeader.FromString(first[1])
    except Exception as exc:
        raise ShardError(path, "byte 0", f"not a shard header: {exc}") from None
    if header.version != PB_VERSION:
        raise ShardError(path, "byte 0", f"protobuf shard version {header.version}, this reader knows {PB_VERSION}: "
                                         "rewrite it with this feedtax")
    schema = schema_from_json(
        [{"name": f.name, "dtype": f.dtype, "shape": list(f.shape)} for f in header.schema], path
    )
    body = list(records)
    if len(body) > header.count:
        raise ShardError(path, _where(body[header.count][0], header.count),
                         f"{len(body)} records, more than the header's count of {header.count}")
    if len(body) < header.count:
        raise ShardError(path, f"byte {len(data)}", f"{len(body)} records with {header.count} expected (truncated?)")
    fields = [(f.name, _SLOT[f.dtype], np.dtype(f.dtype).newbyteorder("<"), f.size, f.shape) for f in schema]
    for n, (pos, payload) in enumerate(body):
        yield _decode(path, pos, n, payload, fields)


CODEC = Codec(
    name="protobuf",
    suffix=".pb",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    random_access_note="records have variable length and no index (as TFRecord): reaching record i reads every "
                       "record before it",
)
