"""Ctrl-C, SIGTERM and SIGHUP that are never lost, and say which they were.

Inside `latched()` each of SIGINT, SIGTERM (`kill`, `timeout`, a container stop) and SIGHUP (a closed terminal) raises
`Interrupted`, a KeyboardInterrupt carrying the signal and the exit code a shell reports for it (128 + signum), so
every `except KeyboardInterrupt` stops on all three. Each is also latched: one that lands inside a finalizer (a torch
DataLoader iterator shutting its workers down), where Python would print "Exception ignored" and carry on, is raised
again, silently, at the next measurement boundary (`check`); `received()` tells an error that the signal caused (a
worker killed by the same signal) from a real failure. A signal ignored when the block starts (`nohup`) stays ignored.
Inside `between_batches` (a DataLoader's next()) a signal waits for the batch, at most GRACE_S, so it never lands in
torch's hand-over of a batch from a worker; a second signal stops at once. A process forked inside the block (a
DataLoader worker) gets back the handlers from before it, so the main process alone decides how a run stops.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 2.0  # the longest a signal waits for a batch being fetched


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
_previous: dict = {}  # the handlers the outermost block replaced
_depth = 0
_deferring = 0
_fetching = 0
_grace: threading.Timer | None = None  # armed by a signal inside `between_batches`
_forced = False  # set by the grace timer just before it signals the main thread again
_grace_lock = threading.RLock()  # re-entrant: a handler may run while the main thread holds it


def _on_signal(signum, frame) -> None:
    global _pending, _received, _forced
    if _forced:  # the grace ran out: raise what is still latched, unless a save is running
        _forced = False
        if not _deferring:
            check()
        return
    again = _pending is not None
    _pending = signum
    if _received is None:
        _received = signum
    if _deferring:
        return
    if _fetching and not again:
        _arm_grace(signum)
        return
    raise Interrupted(signum)


def _arm_grace(signum: int) -> None:
    global _grace
    with _grace_lock:
        if _grace is None:
            _grace = threading.Timer(GRACE_S, _grace_over, args=(signum,))
            _grace.daemon = True
            _grace.start()


def _grace_over(signum: int) -> None:
    global _forced
    with _grace_lock:
        if _grace is threading.current_thread():
            _forced = True
            _thread.interrupt_main(signum)


def _disarm_grace() -> None:
    global _grace
    with _grace_lock:
        timer, _grace = _grace, None
    if timer is not None:
        timer.cancel()


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


class _BetweenBatches:
    """The block around fetching one batch (see the module's docstring); a signal latched before it raises on
    entry, one that came during it raises on exit. A class, not a generator: it runs once per step."""

    def __enter__(self) -> None:
        global _fetching
        check()
        _fetching += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        global _fetching
        _fetching -= 1
        _disarm_grace()
        if exc_type is None:
            check()


between_batches = _BetweenBatches()
_END = object()


def fetched(loader: Iterable) -> Iterator:
    """loader's batches, each fetched `between_batches`; its iterator is let go under `deferred`, since a
    DataLoader iterator's finalizer shuts its workers down."""
    with between_batches:
        it = iter(loader)
    try:
        while True:
            with between_batches:
                batch = next(it, _END)
            if batch is _END:
                return
            yield batch
    finally:
        with deferred():
            it = None  # noqa: F841 (the last reference: the workers shut down here)


@contextmanager
def latched() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Interrupted and are latched for `check` while the block runs (main thread
    only; elsewhere signals are not ours). Blocks nest: the outermost one installs the handlers and forgets the
    signals when it ends."""
    global _pending, _received, _depth, _previous, _forced
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _pending = _received = None
        _previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s, handler in _previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(s, _on_signal)
        hook, sys.unraisablehook = sys.unraisablehook, partial(_unraisable, sys.unraisablehook)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _disarm_grace()
            _restore()
            sys.unraisablehook = hook
            _pending = _received = None
            _forced = False


def _unraisable(previous, unraisable) -> None:
    """Python's "Exception ignored in ..." report, but silent for our own Interrupted: it is latched, and raised
    at the next check, so the stop is not lost, and the terminal shows only the run's one line."""
    if not isinstance(unraisable.exc_value, Interrupted):
        previous(unraisable)


def _restore() -> None:
    for s, handler in _previous.items():
        signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


def _in_forked_child() -> None:
    """A process forked inside the block (a DataLoader worker) stops on a signal as it would without feedtax: a
    SIGTERM to the whole group ends it silently, Ctrl-C raises the KeyboardInterrupt torch's worker loop expects."""
    global _depth, _deferring, _fetching, _pending, _received, _grace, _forced
    if _depth:
        _depth = _deferring = _fetching = 0
        _pending = _received = _grace = None
        _forced = False
        try:
            _restore()
        except ValueError:  # forked from a thread other than the main one: signal.signal is refused there
            pass


os.register_at_fork(after_in_child=_in_forked_child)
