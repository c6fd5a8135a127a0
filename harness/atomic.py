"""Writing a file whole: a reader sees the old file or the new one, never half of one (optionally durable).

The one implementation every part uses (results.json, shards, reports); it imports nothing of feedtax.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, durable: bool) -> None:
    """Replace path with data via a temp file and rename, so a reader sees the old file or the new one,
    never half of one; durable also fsyncs the file and its directory (the rename survives a crash)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
