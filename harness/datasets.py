"""Seeded synthetic samples for the four tracks, with realistic entropy so compression means something.

Sample i of a track depends only on (seed, track, i): regenerating gives byte-identical samples,
and any worker can generate any index. Sizes come from the profile (Sizes).

- cloud:  `tokens` int32[seq_len], Zipf-distributed ids (s=1) over Llama-3's 128256-token vocabulary,
          frequent ids small as in a BPE vocabulary.
- edge:   `frame` uint8[H, W, 3] camera frame: multi-octave value noise (spatially correlated,
          channels correlated as in natural images) plus sensor noise; `timestamp_s` float64 at 30 FPS.
- mobile: `crop` uint8[h, w, 3] (same image model), `tokens` int32[text_len] (Zipf text),
          `imu` float32[6] (accelerometer m/s^2 with gravity, gyroscope rad/s).
- tiny:   `audio` int16[n] at 16 kHz: a harmonic tone (random f0, decaying partials) plus noise at
          a random SNR; `snr_db` float32, the SNR it was mixed at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from feedtax.formats.base import Sample
from feedtax.vocabulary import TRACKS

_TRACK_ID = {t: i for i, t in enumerate(TRACKS)}

LLAMA3_VOCAB = 128256  # Llama 3 tokenizer vocabulary size (Meta, Llama 3 model card)
AUDIO_RATE_HZ = 16000
FRAME_RATE_HZ = 30.0


@dataclass(frozen=True)
class Sizes:
    """Per-track sample sizes (set by the profile)."""

    seq_len: int = 2048
    frame_hw: tuple[int, int] = (64, 64)
    crop_hw: tuple[int, int] = (32, 32)
    text_len: int = 32
    audio_len: int = 160  # 10 ms at 16 kHz

    def to_json(self) -> dict[str, int | list[int]]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, obj: dict) -> Sizes:
        """The Sizes a run recorded in results.json (config.sizes)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in obj.items()})


@lru_cache(maxsize=4)
def _zipf_cdf(vocab: int, s: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** s
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def zipf_tokens(rng: np.random.Generator, n: int, vocab: int = LLAMA3_VOCAB) -> np.ndarray:
    """n token ids in [0, vocab): id k has probability proportional to 1/(k+1)."""
    ids = np.searchsorted(_zipf_cdf(vocab), rng.random(n), side="right")
    return np.minimum(ids, vocab - 1).astype(np.int32)


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling of a (gh, gw, ...) grid to (h, w, ...)."""
    gh, gw = grid.shape[:2]
    y, x = np.linspace(0, gh - 1, h), np.linspace(0, gw - 1, w)
    y0, x0 = np.minimum(y.astype(int), gh - 2), np.minimum(x.astype(int), gw - 2)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    if grid.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A natural-looking uint8 HxWx3 image: correlated octaves of luminance, smooth chroma, sensor noise."""
    luma = np.zeros((h, w))
    for cells, amplitude in ((3, 90.0), (9, 40.0), (27, 15.0)):
        luma += amplitude * (_upsample(rng.random((cells + 1, cells + 1)), h, w) - 0.5)
    chroma = 25.0 * (_upsample(rng.random((4, 4, 3)), h, w) - 0.5)
    img = 128.0 + luma[..., None] + chroma + rng.normal(0.0, 2.0, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def audio(rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    """int16 audio at 16 kHz: harmonic tone plus Gaussian noise; returns (samples, snr_db)."""
    t = np.arange(n) / AUDIO_RATE_HZ
    f0 = rng.uniform(100.0, 400.0)
    tone = np.zeros(n)
    for k in range(1, int(rng.integers(3, 7)) + 1):
        tone += rng.uniform(0.5, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    snr_db = float(rng.uniform(5.0, 25.0))
    noise = rng.normal(0.0, tone.std() / 10 ** (snr_db / 20), n)
    mix = tone + noise
    peak = np.abs(mix).max() or 1.0
    return np.rint(mix / peak * 0.5 * 32767).astype(np.int16), snr_db


def sample(track: str, index: int, seed: int, sizes: Sizes = Sizes()) -> Sample:
    """Sample `index` of a track: a pure function of (track, index, seed, sizes)."""
    if track not in _TRACK_ID:
        raise ValueError(f"unknown track {track!r}; known tracks: {', '.join(TRACKS)}")
    rng = np.random.default_rng([seed, _TRACK_ID[track], index])
    if track == "cloud":
        return {"tokens": zipf_tokens(rng, sizes.seq_len)}
    if track == "edge":
        return {"frame": image(rng, *sizes.frame_hw), "timestamp_s": np.array(index / FRAME_RATE_HZ)}
    if track == "mobile":
        imu = np.concatenate([[0.0, 0.0, 9.81] + rng.normal(0, 0.3, 3), rng.normal(0, 0.05, 3)])
        return {
            "crop": image(rng, *sizes.crop_hw),
            "tokens": zipf_tokens(rng, sizes.text_len),
            "imu": imu.astype(np.float32),
        }
    samples, snr_db = audio(rng, sizes.audio_len)
    return {"audio": samples, "snr_db": np.array(snr_db, dtype=np.float32)}


def generate(track: str, n: int, seed: int, sizes: Sizes = Sizes()) -> Iterator[Sample]:
    """Samples 0..n-1 of a track."""
    for i in range(n):
        yield sample(track, i, seed, sizes)
