"""Sizes typed by users: binary for bare and IEC prefixes, decimal for SI names, plain bytes."""

from __future__ import annotations

import pytest

from feedtax.units import parse_size


@pytest.mark.parametrize("text,expected", [
    ("4096", 4096), ("256M", 256 << 20), ("1G", 1 << 30), ("256MiB", 256 << 20), ("8m", 8 << 20), ("1.5K", 1536),
    ("300MB", 300_000_000), ("10GB", 10**10), ("1 PB", 10**15), ("2.5TB", 25 * 10**11), ("10PB", 10**16),
    ("5e12", 5 * 10**12), ("1EB", 10**18), ("1E", 1 << 60),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["12Q", "", "M", "-5", "0", "0.5", "10 XB", "1.5"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError):
        parse_size(text)
