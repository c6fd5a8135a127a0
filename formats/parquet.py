"""Parquet via pyarrow: one row per sample, one column per field, written as record batches.

Arrays are FixedSizeList columns of their numpy type (flattened, C order); scalars are plain
columns. Each field's dtype and shape sit in the Arrow field metadata, so shards are
self-describing. Snappy compression (pyarrow's default, and the common choice) and page CRCs
written and verified, so a damaged page is an error rather than wrong values; page headers and the
footer lie outside those CRCs, so every row group's and column's length is checked against the
count in the feedtax header (version 2, which also records where the row groups end, so inserted or
removed bytes are caught), and anything pyarrow raises on a damaged file becomes a ShardError.
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
PARQUET_VERSION = 2  # parquet's own layout version: 2 records where the row groups end
_META_KEY = b"feedtax"
_END_KEY = b"feedtax_data_end"


def _arrow_type(f) -> pa.DataType:
    t = pa.from_numpy_dtype(np.dtype(f.dtype))
    return t if f.shape == () else pa.list_(t, f.size)


def encode_shard(samples: Sequence[Sample], schema: Schema) -> bytes:
    arrays = []
    for f in schema:
        flat = np.stack([s[f.name] for s in samples]).reshape(-1)
        values = pa.array(flat, type=pa.from_numpy_dtype(np.dtype(f.dtype)))
        arrays.append(values if f.shape == () else pa.FixedSizeListArray.from_arrays(values, f.size))
    header = {"feedtax_shard": PARQUET_VERSION, "schema": schema_to_json(schema), "count": len(samples)}
    fields = [pa.field(f.name, _arrow_type(f)) for f in schema]
    arrow_schema = pa.schema(fields, metadata={_META_KEY: orjson.dumps(header)})
    table = pa.Table.from_arrays(arrays, schema=arrow_schema)
    out = io.BytesIO()
    with pq.ParquetWriter(out, arrow_schema, compression="snappy", write_page_checksum=True) as writer:
        writer.write_table(table, row_group_size=RG_ROWS)
        writer.add_key_value_metadata({_END_KEY: str(out.tell())})  # the row groups written: where the footer starts
    return out.getvalue()


def _layout(count: int) -> list[int]:
    """Rows per row group of a shard of count samples, as encode_shard writes them (RG_ROWS each, the last short)."""
    return [min(RG_ROWS, count - start) for start in range(0, count, RG_ROWS)]


def _check_extent(path: Path, recorded: bytes | None, footer_size: int) -> None:
    """The row groups must end where encode_shard recorded, at the footer: page CRCs do not say where a page
    belongs, so bytes inserted or removed before the footer (a replayed write) would have its offsets point at
    another row group's intact pages. (The footer's per-column offsets are not read here: pyarrow's column
    metadata accessor aborts the process on some damaged footers rather than raise.)"""
    try:
        written = int(recorded)
    except (TypeError, ValueError):
        raise ShardError(path, "footer", "no valid record of where the row groups end") from None
    end = path.stat().st_size - footer_size - 8  # the footer, then its length and PAR1
    if written != end:
        raise ShardError(path, "footer", f"the row groups end at byte {end}, {written} when written: bytes were "
                                         "inserted or removed, or the footer is damaged")


def _open(path: Path) -> tuple[pq.ParquetFile, Schema, list[int]]:
    """Open a shard and check its footer against the feedtax header it holds: (file, schema, rows per row group
    as the header's count implies; decoding checks each row group holds them).

    Anything pyarrow raises on a damaged footer (ArrowInvalid, OSError, a bad UTF-8 name...) is a ShardError.
    """
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        footer, arrow = pf.metadata, pf.schema_arrow
        pairs = footer.metadata or {}
        stored = pairs[_META_KEY]  # the footer's key-value copy of the header; ARROW:schema holds another
        if (arrow.metadata or {}).get(_META_KEY) != stored:
            raise ShardError(path, "footer", "the footer's two copies of the feedtax header differ")
        meta = orjson.loads(stored)
        names, groups, total = arrow.names, footer.num_row_groups, footer.num_rows
        _check_extent(path, pairs.get(_END_KEY), footer.serialized_size)
    except FileNotFoundError:
        raise ShardError(path, "open", "no such shard file") from None
    except ShardError:
        raise
    except Exception as exc:  # pyarrow raises many types for a damaged footer
        raise ShardError(path, "footer", f"not a readable feedtax parquet shard: {exc!r}") from None
    if not isinstance(meta, dict) or meta.get("feedtax_shard") != PARQUET_VERSION:
        raise ShardError(path, "footer", f"not a version {PARQUET_VERSION} feedtax parquet shard (rewrite it with "
                                         "this feedtax)")
    schema = schema_from_json(meta.get("schema"), path)
    count = meta.get("count")
    if not isinstance(count, int) or count < 0:
        raise ShardError(path, "footer", f"header count {count!r} is not a sample count")
    if names != [f.name for f in schema]:
        raise ShardError(path, "footer", f"columns {names} differ from the shard's schema")
    if total != count or groups != -(-count // RG_ROWS):
        raise ShardError(path, "footer", f"{groups} row groups of {total} rows in all, the header's count of {count} "
                                         f"implies {-(-count // RG_ROWS)} of {RG_ROWS} (the last fewer)")
    return pf, schema, _layout(count)


def _columns(path: Path, pf: pq.ParquetFile, schema: Schema, rg: int, rows: int) -> dict[str, np.ndarray]:
    """Decode one row group into field -> array of shape (rows, *field shape), checking every column holds rows
    values of its field's type: a damaged page header (outside the page CRC) can make pyarrow read fewer."""
    where = f"row group {rg}"
    try:
        table = pf.read_row_group(rg, use_threads=False)
    except Exception as exc:  # pyarrow raises many types for damaged pages
        raise ShardError(path, where, f"cannot decode: {exc!r}") from None
    if table.column_names != [f.name for f in schema]:
        raise ShardError(path, where, f"columns {table.column_names} differ from the shard's schema")
    if table.num_rows != rows:
        raise ShardError(path, where, f"{table.num_rows} rows, the header implies {rows}")
    out = {}
    for f in schema:
        col = table.column(f.name).combine_chunks()
        if len(col) != rows or col.null_count or col.type != _arrow_type(f):
            raise ShardError(path, where, f"field {f.name!r} is {len(col)} x {col.type} with {col.null_count} nulls, "
                                          f"the header says {rows} x {f.dtype}{list(f.shape)}")
        values = col if f.shape == () else col.flatten()
        if len(values) != rows * f.size:
            raise ShardError(path, where, f"field {f.name!r} holds {len(values)} values, {rows * f.size} expected")
        out[f.name] = values.to_numpy(zero_copy_only=False).reshape((rows, *f.shape))
    return out


def iter_columns(path: Path) -> Iterator[Columns]:
    """One chunk per row group (RG_ROWS rows), decoded when reached."""
    pf, schema, rows = _open(path)
    for rg, n in enumerate(rows):
        yield _columns(path, pf, schema, rg, n)


def iter_shard(path: Path) -> Iterator[Sample]:
    return rows_of(iter_columns(path))


def read_shard_sample(path: Path, index: int) -> Sample:
    pf, schema, rows = _open(path)
    if not 0 <= index < sum(rows):
        raise IndexError(f"{path}: sample {index} out of range (shard holds {sum(rows)})")
    rg, row = divmod(index, RG_ROWS)
    return {name: arr[row, ...] for name, arr in _columns(path, pf, schema, rg, rows[rg]).items()}


def count_shard(path: Path) -> int:
    """The shard's sample count, from its footer once checked against the feedtax header."""
    return sum(_open(path)[2])


CODEC = Codec(
    name="parquet",
    suffix=".parquet",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    read_shard_sample=read_shard_sample,
    iter_shard_columns=iter_columns,
    count_shard=count_shard,
)
