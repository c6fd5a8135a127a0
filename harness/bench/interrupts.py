"""Ctrl-C that is never lost.

SIGINT raises KeyboardInterrupt, as Python's own handler does, and is also latched: one that lands inside a
finalizer (a torch DataLoader iterator shutting its workers down), where Python prints "Exception ignored" and
carries on, is raised again at the next measurement boundary (`check`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pending = False


def _on_sigint(signum, frame) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if a SIGINT arrived inside `latched()` and has not been raised through yet."""
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt


@contextmanager
def latched() -> Iterator[None]:
    """SIGINT latched for `check` while the block runs (main thread only; elsewhere signals are not ours)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending = False
