"""JSON lines via orjson: one object per line, field -> (nested) list, as `arr.tolist()` would give.

orjson serializes numpy arrays natively (its fast path). JSON has no NaN or infinity, so a float
array holding one is written with the strings "NaN", "Infinity", "-Infinity" in their places
(protobuf's JSON mapping convention); finite floats use the shortest round-tripping decimal.
Line 1 is a header object with the schema, record count and a CRC32 of the remaining lines.
No random access: lines have variable length, so finding line i means scanning every line before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import orjson

from feedtax.formats.base import Codec, Sample, Schema, ShardError, read_bytes, split_text_shard, text_header

_OPTS = orjson.OPT_SERIALIZE_NUMPY
_NONFINITE = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def _jsonable(arr: np.ndarray):
    if arr.ndim == 0:
        value = arr[()]
        if arr.dtype.kind == "f" and not np.isfinite(value):
            return "NaN" if np.isnan(value) else _NONFINITE[float(value)]
        return value
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        obj = arr.astype(object)
        obj[np.isnan(arr)] = "NaN"
        obj[arr == np.inf] = "Infinity"
        obj[arr == -np.inf] = "-Infinity"
        return obj.tolist()
    return arr


def encode_shard(samples: Sequence[Sample], schema: Schema) -> bytes:
    lines = [orjson.dumps({k: _jsonable(v) for k, v in s.items()}, option=_OPTS) for s in samples]
    body = b"\n".join(lines) + b"\n" if lines else b""
    return orjson.dumps(text_header("json", schema, len(samples), body)) + b"\n" + body


def iter_shard(path: Path) -> Iterator[Sample]:
    data = read_bytes(path)
    schema, count, body = split_text_shard(path, data, "json", orjson.loads)
    lines = bytes(body).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != count:
        raise ShardError(path, "body", f"{len(lines)} records with {count} expected")
    for i, line in enumerate(lines):
        where = f"line {i + 2}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ShardError(path, where, f"invalid JSON: {exc}") from None
        if not isinstance(record, dict) or list(record) != [f.name for f in schema]:
            raise ShardError(path, where, "record fields differ from the shard's schema")
        sample = {}
        for f in schema:
            try:
                arr = np.array(record[f.name], dtype=f.dtype)
            except (ValueError, TypeError, OverflowError) as exc:
                raise ShardError(path, where, f"field {f.name!r}: {exc}") from None
            if arr.shape != f.shape:
                raise ShardError(path, where, f"field {f.name!r} has shape {arr.shape}, schema says {f.shape}")
            sample[f.name] = arr
        yield sample


CODEC = Codec(
    name="json",
    suffix=".jsonl",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    random_access_note="lines have variable length: reaching record i scans every line before it",
)
