"""Parquet via pyarrow: one row per sample, one column per field, written as record batches.

Arrays are FixedSizeList columns of their numpy type (flattened, C order); scalars are plain
columns. Each field's dtype and shape sit in the Arrow field metadata, so shards are
self-describing. Snappy compression (pyarrow's default, and the common choice) and page CRCs
written and verified, so a damaged page is an error rather than wrong values.
Random access: yes, by row group (the reader decodes the row group holding the row, RG_ROWS rows).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from feedtax.formats.base import (
    SHARD_VERSION,
    Codec,
    Columns,
    Sample,
    Schema,
    ShardError,
    rows_of,
    schema_from_json,
    schema_to_json,
)

RG_ROWS = 256
_META_KEY = b"feedtax"


def _arrow_type(f) -> pa.DataType:
    t = pa.from_numpy_dtype(np.dtype(f.dtype))
    return t if f.shape == () else pa.list_(t, f.size)


def encode_shard(samples: Sequence[Sample], schema: Schema) -> bytes:
    arrays = []
    for f in schema:
        flat = np.stack([s[f.name] for s in samples]).reshape(-1)
        values = pa.array(flat, type=pa.from_numpy_dtype(np.dtype(f.dtype)))
        arrays.append(values if f.shape == () else pa.FixedSizeListArray.from_arrays(values, f.size))
    header = {"feedtax_shard": SHARD_VERSION, "schema": schema_to_json(schema), "count": len(samples)}
    fields = [pa.field(f.name, _arrow_type(f)) for f in schema]
    arrow_schema = pa.schema(fields, metadata={_META_KEY: orjson.dumps(header)})
    table = pa.Table.from_arrays(arrays, schema=arrow_schema)
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=RG_ROWS, compression="snappy", write_page_checksum=True)
    return out.getvalue()


def _open(path: Path) -> tuple[pq.ParquetFile, Schema]:
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        meta = orjson.loads((pf.schema_arrow.metadata or {})[_META_KEY])
    except (pa.ArrowException, OSError, KeyError, orjson.JSONDecodeError) as exc:
        raise ShardError(path, "footer", f"not a readable feedtax parquet shard: {exc!r}") from None
    if not isinstance(meta, dict) or meta.get("feedtax_shard") != SHARD_VERSION:
        raise ShardError(path, "footer", f"not a version {SHARD_VERSION} feedtax parquet shard")
    schema = schema_from_json(meta.get("schema"), path)
    if pf.metadata.num_rows != meta.get("count"):
        raise ShardError(path, "footer", f"{pf.metadata.num_rows} rows with {meta.get('count')} expected")
    return pf, schema


def _columns(path: Path, pf: pq.ParquetFile, schema: Schema, rg: int) -> dict[str, np.ndarray]:
    """Decode one row group into field -> array of shape (rows, *field shape)."""
    try:
        table = pf.read_row_group(rg, use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise ShardError(path, f"row group {rg}", f"cannot decode: {exc}") from None
    if table.column_names != [f.name for f in schema]:
        raise ShardError(path, f"row group {rg}", f"columns {table.column_names} differ from the shard's schema")
    out = {}
    for f in schema:
        col = table.column(f.name).combine_chunks()
        if col.null_count or col.type != _arrow_type(f):
            raise ShardError(path, f"row group {rg}", f"field {f.name!r} is {col.type} with {col.null_count} nulls, "
                                                      f"schema says {f.dtype}{list(f.shape)}")
        values = col if f.shape == () else col.flatten()
        out[f.name] = values.to_numpy(zero_copy_only=False).reshape((len(col), *f.shape))
    return out


def iter_columns(path: Path) -> Iterator[Columns]:
    """One chunk per row group (RG_ROWS rows), decoded when reached."""
    pf, schema = _open(path)
    for rg in range(pf.num_row_groups):
        yield _columns(path, pf, schema, rg)


def iter_shard(path: Path) -> Iterator[Sample]:
    return rows_of(iter_columns(path))


def read_shard_sample(path: Path, index: int) -> Sample:
    pf, schema = _open(path)
    if not 0 <= index < pf.metadata.num_rows:
        raise IndexError(f"{path}: sample {index} out of range (shard holds {pf.metadata.num_rows})")
    rg, row = divmod(index, RG_ROWS)
    return {name: arr[row, ...] for name, arr in _columns(path, pf, schema, rg).items()}


CODEC = Codec(
    name="parquet",
    suffix=".parquet",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    read_shard_sample=read_shard_sample,
    iter_shard_columns=iter_columns,
)
