"""Per-sample transforms, run in the worker on numpy samples: one per track (transform_for)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from feedtax.formats.base import Sample

Transform = Callable[[Sample, np.random.Generator], Sample]


def normalize_frames(sample: Sample, rng: np.random.Generator) -> Sample:
    """uint8 HxWx3 fields -> float32 3xHxW in about [-2, 2], randomly flipped left-right (augment)."""
    out = {}
    for name, value in sample.items():
        if value.dtype == np.uint8 and value.ndim == 3 and value.shape[-1] == 3:
            x = value[:, ::-1] if rng.random() < 0.5 else value
            out[name] = ((x.astype(np.float32) * (1 / 255.0) - 0.5) * 4.0).transpose(2, 0, 1).copy()
        else:
            out[name] = value
    return out


def spectrogram(sample: Sample, rng: np.random.Generator) -> Sample:
    """int16 `audio` -> float32 log-magnitude STFT `spec` [frames, bins] (Hann window, 50% hop)."""
    out = dict(sample)
    audio = out.pop("audio").astype(np.float32) * (1 / 32768.0)
    n = min(64, audio.size)
    hop = max(1, n // 2)
    frames = np.lib.stride_tricks.sliding_window_view(audio, n)[::hop] * np.hanning(n).astype(np.float32)
    out["spec"] = np.log1p(np.abs(np.fft.rfft(frames, axis=-1))).astype(np.float32)
    return out


def token_shift(sample: Sample, rng: np.random.Generator) -> Sample:
    """int32 `tokens` [L] -> int64 `input` [L-1] and `target` [L-1] (next-token prediction)."""
    out = dict(sample)
    tokens = out.pop("tokens").astype(np.int64)
    out["input"], out["target"] = tokens[:-1], tokens[1:]
    return out


def chain(*steps: Transform) -> Transform:
    """The steps applied in order, sharing one rng."""
    def run(sample: Sample, rng: np.random.Generator) -> Sample:
        for step in steps:
            sample = step(sample, rng)
        return sample
    return run


TRACK_TRANSFORMS: dict[str, Transform] = {
    "cloud": token_shift,
    "edge": normalize_frames,
    "mobile": chain(normalize_frames, token_shift),
    "tiny": spectrogram,
}


def transform_for(track: str) -> Transform:
    """The track's per-sample transform: token shift (cloud), frame normalize+flip (edge), both
    (mobile), spectrogram (tiny)."""
    if track not in TRACK_TRANSFORMS:
        raise ValueError(f"unknown track {track!r}; known: {', '.join(TRACK_TRANSFORMS)}")
    return TRACK_TRANSFORMS[track]
