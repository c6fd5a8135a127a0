"""Synthetic data: deterministic, the declared dtypes and shapes, and the statistics it claims."""

from __future__ import annotations

import numpy as np
import pytest

from feedtax import datasets
from feedtax.datasets import Sizes
from feedtax.vocabulary import TRACKS

SIZES = Sizes(seq_len=512, frame_hw=(48, 64), crop_hw=(16, 24), text_len=20, audio_len=1600)


def as_bytes(samples) -> bytes:
    return b"".join(v.tobytes() for s in samples for v in s.values())


@pytest.mark.parametrize("track", datasets.TRACKS)
def test_same_seed_is_byte_identical_and_other_seed_differs(track):
    a = as_bytes(datasets.generate(track, 5, seed=11, sizes=SIZES))
    assert a == as_bytes(datasets.generate(track, 5, seed=11, sizes=SIZES))
    assert a != as_bytes(datasets.generate(track, 5, seed=12, sizes=SIZES))
    # any index can be generated alone (workers, random access) and equals the sequence's
    alone = as_bytes([datasets.sample(track, 3, 11, SIZES)])
    assert alone == as_bytes(list(datasets.generate(track, 5, 11, SIZES))[3:4])


def test_declared_fields():
    shapes = {t: {k: (v.dtype.name, v.shape) for k, v in datasets.sample(t, 0, 0, SIZES).items()} for t in TRACKS}
    assert shapes == {
        "cloud": {"tokens": ("int32", (512,))},
        "edge": {"frame": ("uint8", (48, 64, 3)), "timestamp_s": ("float64", ())},
        "mobile": {"crop": ("uint8", (16, 24, 3)), "tokens": ("int32", (20,)), "imu": ("float32", (6,))},
        "tiny": {"audio": ("int16", (1600,)), "snr_db": ("float32", ())},
    }


def test_unknown_track():
    with pytest.raises(ValueError, match="unknown track 'space'"):
        datasets.sample("space", 0, 0)


def test_tokens_follow_zipf_over_llama3_vocabulary():
    rng = np.random.default_rng(0)
    ids = datasets.zipf_tokens(rng, 400_000)
    assert ids.min() >= 0 and ids.max() < datasets.LLAMA3_VOCAB
    counts = np.bincount(ids, minlength=datasets.LLAMA3_VOCAB)
    harmonic = np.sum(1.0 / np.arange(1, datasets.LLAMA3_VOCAB + 1))
    # P(id k) = 1 / ((k+1) H_V): check the head, and the log-log rank-frequency slope of -1
    assert counts[0] / ids.size == pytest.approx(1 / harmonic, rel=0.03)
    ranks = np.arange(1, 200)
    slope = np.polyfit(np.log(ranks), np.log(counts[:199] + 1e-9), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)


def test_frames_are_spatially_correlated_not_white_noise():
    frame = datasets.sample("edge", 0, 0, Sizes(frame_hw=(128, 128))).get("frame").astype(np.float64)
    luma = frame.mean(axis=2)
    neighbour = np.corrcoef(luma[:, :-1].ravel(), luma[:, 1:].ravel())[0, 1]
    assert neighbour > 0.8
    noise = np.random.default_rng(0).integers(0, 256, (128, 128)).astype(np.float64)
    assert abs(np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]) < 0.05
    channels = np.corrcoef(frame[..., 0].ravel(), frame[..., 2].ravel())[0, 1]
    assert channels > 0.5  # colour channels move together, as in natural images
    assert frame.std() > 10  # not flat


@pytest.mark.parametrize("index", range(6))
def test_audio_is_harmonic_at_its_declared_snr(index):
    s = datasets.sample("tiny", index, 0, Sizes(audio_len=16000))
    audio = s["audio"].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / datasets.AUDIO_RATE_HZ)
    f0 = freqs[np.argmax(spectrum)]
    assert 100 <= f0 <= 400 * 1.01 or any(100 <= f0 / k <= 400 for k in range(2, 7))
    # white noise has a flat spectrum: its per-bin power is the (exponentially distributed) bins'
    # median / ln 2, the tone's partials occupy a few bins; the ratio gives the mixing SNR back
    windowed = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
    noise = np.median(windowed) / np.log(2) * windowed.size
    snr_measured = 10 * np.log10((windowed.sum() - noise) / noise)
    assert snr_measured == pytest.approx(float(s["snr_db"]), abs=1.0)
    assert np.abs(audio).max() == pytest.approx(0.5 * 32767, rel=0.01)
