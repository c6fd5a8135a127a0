"""Byte sizes typed by users: one parser for every command.

Bare prefixes and IEC names are binary (256M = 256MiB = 256 * 2**20), SI names are decimal
(300MB = 300 * 10**6, 1PB = 10**15), as `dd` and fio read them; plain numbers are bytes (5e12 too).
"""

from __future__ import annotations

import re

_PREFIXES = "KMGTPE"


def parse_size(text: str) -> int:
    """Bytes from '4096', '5e12', '256M' / '256MiB' (binary) or '300MB' / '1 PB' (decimal)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:E[+-]?\d+)?)\s*([KMGTPE]?)(I?B)?\s*", text.upper())
    if not m:
        raise ValueError(f"not a size: {text!r} (use bytes, or a unit: 256M, 1GiB, 300MB, 1PB)")
    number, prefix, tail = m.groups()
    power = _PREFIXES.index(prefix) + 1 if prefix else 0
    unit = 1000**power if tail == "B" else 1024**power
    value = float(number) * unit
    if value < 1 or value != int(value):
        raise ValueError(f"not a whole, positive number of bytes: {text!r}")
    return int(value)
