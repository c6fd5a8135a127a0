"""Per-sample transforms (feedtax.loader.transforms): known answers, and every track's transform runs."""

from __future__ import annotations

import numpy as np
import pytest

from feedtax import datasets
from feedtax.loader.transforms import normalize_frames, spectrogram, token_shift, transform_for


def test_transforms_known_answers(track_samples):
    rng = np.random.default_rng(0)
    shifted = token_shift({"tokens": np.array([5, 6, 7], dtype=np.int32)}, rng)
    assert shifted["input"].tolist() == [5, 6] and shifted["target"].tolist() == [6, 7]
    frame = np.full((4, 5, 3), 255, dtype=np.uint8)
    out = normalize_frames({"frame": frame}, rng)["frame"]
    assert out.shape == (3, 4, 5) and out.dtype == np.float32 and np.allclose(out, 2.0)
    tone = (10000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 16000)).astype(np.int16)  # 1 kHz
    spec = spectrogram({"audio": tone}, rng)["spec"]
    assert spec.shape == (4, 33)
    assert int(np.argmax(spec.mean(0))) == 4  # bin 4 of a 64-point FFT at 16 kHz = 1 kHz
    for track in datasets.TRACKS:
        transform_for(track)(track_samples[track][0], rng)


def test_an_unknown_track_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError) as info:
        transform_for("nope")
    assert "nope" in str(info.value) and all(t in str(info.value) for t in datasets.TRACKS)
