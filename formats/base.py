"""What every format shares: the sample schema, the codec interface, shard errors and safe shard writing.

A sample is a dict of field name -> numpy array (shape () for scalars). A schema is the tuple of
FieldSpec every sample of a dataset follows; each shard stores it, so a shard can be read alone.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from feedtax.atomic import write_atomic

Sample = dict[str, np.ndarray]
Columns = dict[str, np.ndarray]  # field -> array [rows, *field shape]: a run of consecutive samples

SHARD_VERSION = 1

# dtypes a field may have: the numeric types the four tracks use and their neighbours.
DTYPES = (
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
    "float32", "float64",
)


class ShardError(ValueError):
    """A shard that cannot be read as written: names the file and where in it the problem is."""

    def __init__(self, path: os.PathLike | str, position: str, problem: str):
        self.path = Path(path)
        self.position = position
        self.problem = problem
        super().__init__(f"{self.path}: {position}: {problem}")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a sample: its name, numpy dtype name and fixed shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


Schema = tuple[FieldSpec, ...]


def schema_of(sample: Sample) -> Schema:
    """The schema a sample follows (field order is the dict's order)."""
    specs = []
    for name, value in sample.items():
        arr = np.asarray(value)
        if arr.dtype.name not in DTYPES:
            raise TypeError(f"field {name!r}: dtype {arr.dtype} is not one of {', '.join(DTYPES)}")
        if arr.size == 0:
            raise ValueError(f"field {name!r} has no elements: every field must hold at least one value")
        specs.append(FieldSpec(name, arr.dtype.name, tuple(int(d) for d in arr.shape)))
    return tuple(specs)


def schema_to_json(schema: Schema) -> list[dict]:
    return [f.to_json() for f in schema]


def schema_from_json(obj: object, path: os.PathLike | str) -> Schema:
    """Parse a stored schema, raising ShardError on anything malformed."""
    if not isinstance(obj, list) or not obj:
        raise ShardError(path, "header", "schema is missing or not a non-empty list")
    specs = []
    for i, f in enumerate(obj):
        try:
            name, dtype, shape = f["name"], f["dtype"], tuple(f["shape"])
        except (TypeError, KeyError) as exc:
            raise ShardError(path, "header", f"schema field {i} is malformed ({exc!r})") from None
        if not isinstance(name, str) or dtype not in DTYPES or not all(
            isinstance(d, int) and d >= 0 for d in shape
        ):
            raise ShardError(path, "header", f"schema field {i} is invalid: {f!r}")
        specs.append(FieldSpec(name, dtype, shape))
    return tuple(specs)


def sample_nbytes(schema: Schema) -> int:
    """Bytes of one sample in memory (the raw, uncompressed size)."""
    return sum(f.nbytes for f in schema)


def check_sample(sample: Sample, schema: Schema, index: int) -> None:
    """Refuse to write a sample that does not follow the dataset's schema (no silent casts)."""
    if list(sample) != [f.name for f in schema]:
        raise ValueError(f"sample {index}: fields {list(sample)} differ from schema {[f.name for f in schema]}")
    for f in schema:
        arr = sample[f.name]
        if arr.dtype.name != f.dtype or tuple(arr.shape) != f.shape:
            raise ValueError(
                f"sample {index}: field {f.name!r} is {arr.dtype.name}{list(arr.shape)},"
                f" schema says {f.dtype}{list(f.shape)}"
            )


def crc32(data: bytes | memoryview, start: int = 0) -> int:
    """CRC-32 of data; start seeds it (a record's position, so a record copied elsewhere fails its check)."""
    return zlib.crc32(data, start) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# The codec interface


@dataclass(frozen=True)
class Codec:
    """One format. Built from plain functions so every format has exactly the same interface.

    encode_shard(samples, schema) -> bytes of one shard file.
    iter_shard(path) -> the samples of one shard, in order; ShardError on any damage.
    read_shard_sample(path, index) -> one sample by index, for formats with random access.
    iter_shard_columns(path) -> the shard as column chunks, in order, for formats that decode whole
    columns anyway (raw: the mapped records; parquet: a row group), so a loader can slice batches
    from them instead of restacking samples.
    count_shard(path) -> the shard's sample count from its checked header, for formats that store one
    where it can be read without decoding the samples (else `count` streams the shard).
    Every reader checks what it reads first and raises ShardError(path, position, problem) rather
    than yield a sample the shard did not hold as written.
    """

    name: str
    suffix: str
    encode_shard: Callable[[Sequence[Sample], Schema], bytes]
    iter_shard: Callable[[Path], Iterator[Sample]]
    read_shard_sample: Callable[[Path, int], Sample] | None = None
    random_access_note: str = ""
    iter_shard_columns: Callable[[Path], Iterator[Columns]] | None = None
    count_shard: Callable[[Path], int] | None = None

    @property
    def random_access(self) -> bool:
        return self.read_shard_sample is not None

    @property
    def columnar(self) -> bool:
        """Whether the format decodes whole columns (iter_columns works)."""
        return self.iter_shard_columns is not None

    def write(
        self, samples: Iterable[Sample], directory: os.PathLike | str, *, samples_per_shard: int = 1024
    ) -> list[Path]:
        """Write samples into shard files of at most samples_per_shard each; return their paths."""
        return write_shards(self, samples, Path(directory), samples_per_shard)

    def iter_samples(self, paths: Iterable[os.PathLike | str]) -> Iterator[Sample]:
        """Yield every sample of the shards, in order."""
        for path in paths:
            path = Path(path)
            if not path.is_file():
                raise ShardError(path, "open", "no such shard file")
            yield from self.iter_shard(path)

    def iter_columns(self, path: os.PathLike | str) -> Iterator[Columns]:
        """One shard's samples as column chunks (field -> array [rows, *shape]), in order; only for
        columnar formats. Arrays may be read-only views of the decoded shard (raw's memory map):
        slice or copy them, never write to them."""
        if self.iter_shard_columns is None:
            raise NotImplementedError(f"{self.name} does not decode whole columns; use iter_shard")
        return self.iter_shard_columns(Path(path))

    def count(self, path: os.PathLike | str) -> int:
        """Samples in one shard: from its checked header where the format has one, else by streaming it."""
        path = Path(path)
        if self.count_shard is not None:
            return self.count_shard(path)
        return sum(1 for _ in self.iter_samples([path]))

    def read_sample(self, path: os.PathLike | str, index: int) -> Sample:
        """One sample of one shard by its index in that shard (only where the format allows it)."""
        if self.read_shard_sample is None:
            raise NotImplementedError(f"{self.name} has no random access: {self.random_access_note}")
        return self.read_shard_sample(Path(path), index)


def rows_of(chunks: Iterable[Columns]) -> Iterator[Sample]:
    """The samples of column chunks, in order: row i of every column (views, no copy). Columnar
    formats define iter_shard with it, so samples and columns come from one reader."""
    for cols in chunks:
        items = list(cols.items())
        for i in range(len(items[0][1]) if items else 0):
            yield {name: col[i, ...] for name, col in items}


def write_shards(codec: Codec, samples: Iterable[Sample], directory: Path, samples_per_shard: int) -> list[Path]:
    """Chunk samples into shards and write each atomically (temp file then rename).

    A failure (full disk, bad sample) leaves no partial shard behind: the temp file is removed
    and the error names the shard.
    """
    if samples_per_shard < 1:
        raise ValueError("samples_per_shard must be >= 1")
    directory.mkdir(parents=True, exist_ok=True)
    it = iter(samples)
    paths: list[Path] = []
    schema: Schema | None = None
    index = 0
    while chunk := list(islice(it, samples_per_shard)):
        if schema is None:
            schema = schema_of(chunk[0])
        for sample in chunk:
            check_sample(sample, schema, index)
            index += 1
        path = shard_path(codec, directory, len(paths))
        write_shard(path, codec.encode_shard(chunk, schema))
        paths.append(path)
    return paths


def shard_path(codec: Codec, directory: Path, k: int) -> Path:
    return directory / f"shard-{k:05d}{codec.suffix}"


def encode_checked(codec: Codec, chunk: list[Sample], first_index: int = 0) -> bytes:
    """One shard's bytes from its samples, each checked against the first's schema (check_sample)."""
    schema = schema_of(chunk[0])
    for i, sample in enumerate(chunk):
        check_sample(sample, schema, first_index + i)
    return codec.encode_shard(chunk, schema)


def write_shard(path: Path, data: bytes) -> None:
    """A shard's bytes written atomically; a failure (a full disk) leaves nothing and its error names the shard."""
    try:
        write_atomic(path, data, durable=False)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write shard {path}: {exc.strerror or exc}") from exc


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ShardError(path, "open", exc.strerror or str(exc)) from exc


def text_header(kind: str, schema: Schema, count: int, body: bytes) -> dict:
    """The header text formats put on their first line: schema, record count and body checksum."""
    return {
        "feedtax_shard": SHARD_VERSION,
        "format": kind,
        "schema": schema_to_json(schema),
        "count": count,
        "body_crc32": crc32(body),
    }


def split_text_shard(path: Path, data: bytes, kind: str,
                     parse_header: Callable[[bytes], object]) -> tuple[Schema, int, memoryview]:
    """Split a text shard into (schema, count, body) after checking its header and body checksum."""
    end = data.find(b"\n")
    if end < 0:
        raise ShardError(path, "byte 0", "no header line (file empty or truncated)")
    try:
        header = parse_header(data[:end])
    except Exception as exc:  # the parsers raise several types for garbage
        raise ShardError(path, "line 1", f"header is not valid: {exc}") from None
    if not isinstance(header, dict) or header.get("feedtax_shard") != SHARD_VERSION or header.get("format") != kind:
        raise ShardError(path, "line 1", f"not a feedtax {kind} shard of version {SHARD_VERSION}")
    schema = schema_from_json(header.get("schema"), path)
    count, expected = header.get("count"), header.get("body_crc32")
    if not isinstance(count, int) or count < 0 or not isinstance(expected, int):
        raise ShardError(path, "line 1", "header count or checksum missing")
    body = memoryview(data)[end + 1 :]
    if crc32(body) != expected:
        raise ShardError(
            path, f"bytes {end + 1}..{len(data)}",
            "body checksum mismatch: the shard is truncated or corrupted",
        )
    return schema, count, body
