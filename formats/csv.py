"""CSV: one row per sample, one column per array element (as MNIST-style CSVs do), via pyarrow.csv.

Column names are `field[i]` over the flattened array (scalars keep the bare field name). Values are
written in their shortest round-tripping decimal form; NaN and +-inf as `nan`, `inf`, `-inf`.
Line 1 is a comment `#{header}` with the schema, row count and a CRC32 of the rest, so dtypes and
shapes survive and damage is detected before any sample is yielded.
Columnar in decoding (pyarrow parses whole columns) but no random access: rows have variable length,
so finding row i means parsing every row before it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from feedtax.formats.base import (
    Codec,
    Columns,
    Sample,
    Schema,
    ShardError,
    read_bytes,
    rows_of,
    split_text_shard,
    text_header,
)


def column_names(schema: Schema) -> list[str]:
    names = []
    for f in schema:
        names.extend([f.name] if f.shape == () else [f"{f.name}[{i}]" for i in range(f.size)])
    return names


def encode_shard(samples: Sequence[Sample], schema: Schema) -> bytes:
    columns = []
    for f in schema:
        flat = np.stack([s[f.name] for s in samples]).reshape(len(samples), f.size)
        columns.extend(pa.array(flat[:, j]) for j in range(f.size))
    table = pa.Table.from_arrays(columns, names=column_names(schema))
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    body = out.getvalue()
    return b"#" + orjson.dumps(text_header("csv", schema, len(samples), body)) + b"\n" + body


def iter_columns(path: Path) -> Iterator[Columns]:
    """The whole shard as one chunk: pyarrow parses every column at once, then each field's columns
    are joined into one array [rows, *shape]."""
    data = read_bytes(path)
    schema, count, body = split_text_shard(path, data, "csv", lambda line: orjson.loads(line[1:]))
    if sum(f.size for f in schema) > len(body):  # every column takes a byte: a damaged shape is no huge allocation
        raise ShardError(path, "line 1", f"the schema's {sum(f.size for f in schema)} columns cannot fit in the "
                                         f"{len(body)}-byte body")
    names = column_names(schema)
    types = {}
    for f in schema:
        t = pa.from_numpy_dtype(np.dtype(f.dtype))
        types.update({n: t for n in ([f.name] if f.shape == () else [f"{f.name}[{i}]" for i in range(f.size)])})
    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[], quoted_strings_can_be_null=False),
        )
    except pa.ArrowException as exc:
        raise ShardError(path, "csv body", str(exc)) from None
    if table.column_names != names:
        raise ShardError(path, "line 2", "column header does not match the shard's schema")
    if table.num_rows != count or table.num_columns and table.num_rows and any(c.null_count for c in table.columns):
        raise ShardError(path, "csv body", f"{table.num_rows} rows with {count} expected, or empty cells")
    arrays = {}
    col = 0
    for f in schema:
        cols = [table.column(col + j).to_numpy() for j in range(f.size)]
        col += f.size
        flat = np.column_stack(cols) if cols else np.empty((count, 0), f.dtype)
        arrays[f.name] = flat.astype(f.dtype, copy=False).reshape((count, *f.shape))
    yield arrays


def iter_shard(path: Path) -> Iterator[Sample]:
    return rows_of(iter_columns(path))


CODEC = Codec(
    name="csv",
    suffix=".csv",
    encode_shard=encode_shard,
    iter_shard=iter_shard,
    iter_shard_columns=iter_columns,
    random_access_note="rows have variable length: reaching row i parses every row before it",
)
