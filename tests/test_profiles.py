"""bench.profiles: every profile the vocabulary names exists, in order of size, and unknown names are refused."""

from __future__ import annotations

import pytest

from feedtax.bench import profiles
from feedtax.vocabulary import DEFAULT_PROFILE, PROFILE_NAMES


def test_the_vocabulary_names_every_profile_smallest_first():
    assert tuple(profiles.PROFILES) == PROFILE_NAMES and DEFAULT_PROFILE in PROFILE_NAMES
    sizes = [profiles.get(name).samples_per_track for name in PROFILE_NAMES]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert all(profiles.get(name).name == name for name in PROFILE_NAMES)


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown profile 'huge'; known profiles: ci, laptop, full"):
        profiles.get("huge")
