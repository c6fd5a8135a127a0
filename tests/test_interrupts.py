import signal
import sys

import pytest

from feedtax.bench import interrupts


class _SignalsInFinalizer:
    """Stands in for torch's DataLoader iterator, whose __del__ shuts workers down when Ctrl-C lands."""

    def __init__(self, signum=signal.SIGINT):
        self.signum = signum

    def __del__(self):
        signal.raise_signal(self.signum)


@pytest.mark.parametrize("signum", interrupts.SIGNALS)
def test_a_signal_swallowed_by_a_finalizer_is_raised_at_the_next_check(monkeypatch, signum):
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: swallowed.append(u.exc_type))
    with interrupts.latched():
        obj = _SignalsInFinalizer(signum)
        del obj  # Python reports "Exception ignored in ... __del__" and carries on, as with torch
        assert swallowed == [interrupts.Interrupted]
        with pytest.raises(interrupts.Interrupted) as info:
            interrupts.check()
        assert info.value.signum == signum
        interrupts.check()  # raised once, not again


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_each_signal_raises_where_it_lands_naming_itself(signum, code):
    with interrupts.latched(), pytest.raises(KeyboardInterrupt) as info:  # every `except KeyboardInterrupt` stops
        signal.raise_signal(signum)
    stop = interrupts.interruption(info.value)
    assert (stop.signum, stop.name, stop.exit_code) == (signum, signal.Signals(signum).name, code)


def test_a_plain_keyboard_interrupt_is_sigint():
    stop = interrupts.interruption(KeyboardInterrupt())
    assert (stop.name, stop.exit_code) == ("SIGINT", 130)


def test_latch_restores_the_previous_handlers_and_forgets_the_signal():
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    with pytest.raises(KeyboardInterrupt), interrupts.latched():
        signal.raise_signal(signal.SIGTERM)
    assert {s: signal.getsignal(s) for s in interrupts.SIGNALS} == before
    interrupts.check()  # nothing pending once the block is left
    assert interrupts.received() is None


def test_an_ignored_signal_stays_ignored(monkeypatch):
    """`nohup` ignores SIGHUP: a run started under it must not stop when the terminal closes."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts.latched():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            signal.raise_signal(signal.SIGHUP)
            interrupts.check()
            assert interrupts.received() is None
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_nested_blocks_keep_the_signal_for_the_outer_one():
    with interrupts.latched():
        with pytest.raises(interrupts.Interrupted), interrupts.latched():
            signal.raise_signal(signal.SIGHUP)
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "the outer block still handles signals"
        assert interrupts.received().name == "SIGHUP"  # an error the signal caused can still be told from a failure


def test_a_deferred_block_finishes_and_the_signal_waits_for_the_next_check():
    done = []
    with interrupts.latched():
        with interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
            done.append("saved")
        assert done == ["saved"]
        with pytest.raises(interrupts.Interrupted) as info:
            interrupts.check()
        assert info.value.name == "SIGTERM"
