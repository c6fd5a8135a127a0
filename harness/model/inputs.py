"""What this machine measured, as the model's inputs: per-format sizes and decode rates, transform rates, the
fields of each track's sample, disk read bandwidth, MFU; built from a run's results (measured_from)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from feedtax.vocabulary import Track


class FormatMeasure(BaseModel):
    """One format's measured cost for one track's samples (from the format stage, medians)."""

    track: Track
    format: str
    bytes_per_sample: float = Field(description="bytes on disk per sample")
    raw_bytes_per_sample: float = Field(description="the sample's in-memory size")
    decode_samples_per_s: float = Field(description="decode rate of one process, cold cache, median")


class FieldMeasure(BaseModel):
    """One field of a measured sample: its in-memory bytes and element count."""

    bytes: int
    items: int


class Measured(BaseModel):
    """Everything the projections need from this machine; built by the run (or `feedtax project`) from results."""

    formats: list[FormatMeasure]
    transform_samples_per_s: dict[str, float] = Field(description="per track: the track's transform, one worker")
    sample_fields: dict[str, dict[str, FieldMeasure]] = Field(description="per track: field -> bytes, items")
    disk_read_mb_per_s: float = Field(
        description="sequential read, the first of freshly written data (probes: seq_read_mb_per_s_first)")
    gpu_mfu: float | None = Field(None, description="measured MFU when a GPU was present")
    audio_rate_hz: float = Field(description="sample rate of the measured audio (feedtax.datasets.AUDIO_RATE_HZ)")

    def of(self, track: str) -> list[FormatMeasure]:
        return [f for f in self.formats if f.track == track]

    def format_of(self, track: str, fmt: str) -> FormatMeasure:
        """The measured costs of one track x format."""
        return next(f for f in self.formats if f.track == track and f.format == fmt)


def sample_fields(samples_by_track: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, FieldMeasure]]:
    """Field sizes of the first sample of each track, from its schema."""
    from feedtax.formats.base import schema_of

    return {track: {f.name: FieldMeasure(bytes=f.nbytes, items=f.size) for f in schema_of(next(iter(samples)))}
            for track, samples in samples_by_track.items()}


def measured_from(format_results: Iterable[Any], **fields: Any) -> Measured:
    """Build Measured from results.FormatResult objects (decode: cold median) plus the other measured fields."""
    formats = [FormatMeasure(track=r.track, format=r.format, bytes_per_sample=r.bytes_per_sample,
                             raw_bytes_per_sample=r.raw_bytes_per_sample,
                             decode_samples_per_s=r.decode_samples_per_s_cold.median) for r in format_results]
    return Measured(formats=formats, **fields)
