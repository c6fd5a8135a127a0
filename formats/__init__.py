"""Serialization formats, all behind one interface (feedtax.formats.base.Codec).

    codec = formats.get("parquet")
    paths = codec.write(samples, directory, samples_per_shard=1024)
    for sample in codec.iter_samples(paths): ...
"""

from __future__ import annotations

from importlib import import_module

from feedtax.formats.base import Codec, FieldSpec, Sample, Schema, ShardError, schema_of
from feedtax.vocabulary import FORMATS as NAMES

__all__ = ["NAMES", "Codec", "FieldSpec", "Sample", "Schema", "ShardError", "get", "schema_of"]


def get(name: str) -> Codec:
    """The codec for a format name; ValueError naming the known formats otherwise."""
    if name not in NAMES:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(NAMES)}")
    return import_module(f"feedtax.formats.{name}").CODEC
