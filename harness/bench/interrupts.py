"""Ctrl-C, SIGTERM and SIGHUP that are never lost, and say which they were.

Inside `latched()` each of SIGINT, SIGTERM (`kill`, `timeout`, a container stop) and SIGHUP (a closed terminal) raises
`Interrupted`, a KeyboardInterrupt carrying the signal and the exit code a shell reports for it (128 + signum), so
every `except KeyboardInterrupt` stops on all three. Each is also latched: one that lands inside a finalizer (a torch
DataLoader iterator shutting its workers down), where Python prints "Exception ignored" and carries on, is raised
again at the next measurement boundary (`check`); and `received()` tells an error that the signal caused (a worker
killed by the same signal) from a real failure. A signal ignored when the block starts (`nohup`) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal: `signum`, its `name` (SIGTERM) and the `exit_code` to leave with."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + self.signum
        super().__init__(self.name)


def interruption(exc: BaseException) -> Interrupted:
    """The Interrupted a KeyboardInterrupt stands for: itself, or SIGINT for one raised by Python's own handler."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


_pending: int | None = None  # a signal not yet raised through `check`
_received: int | None = None  # the first signal of the outermost block
_depth = 0
_deferring = 0


def _on_signal(signum, frame) -> None:
    global _pending, _received
    _pending = signum
    if _received is None:
        _received = signum
    if not _deferring:
        raise Interrupted(signum)


def check() -> None:
    """Raise Interrupted if a signal arrived inside `latched()` and has not been raised through yet."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)


def received() -> Interrupted | None:
    """The first signal that arrived inside the outermost `latched()` block (raised through or not), else None."""
    return None if _received is None else Interrupted(_received)


@contextmanager
def deferred() -> Iterator[None]:
    """A block that a signal does not cut short (saving what a stopping run measured): one that arrives is only
    latched, for the next `check`."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


@contextmanager
def latched() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Interrupted and are latched for `check` while the block runs (main thread
    only; elsewhere signals are not ours). Blocks nest: the outermost one installs the handlers and forgets the
    signals when it ends."""
    global _pending, _received, _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if _depth == 0:
        _pending = _received = None
        previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(s, _on_signal)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
            _pending = _received = None
