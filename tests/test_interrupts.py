import signal
import sys

import pytest

from feedtax.bench import interrupts


class _SignalsInFinalizer:
    """Stands in for torch's DataLoader iterator, whose __del__ shuts workers down when Ctrl-C lands."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_swallowed_by_a_finalizer_is_raised_at_the_next_check(monkeypatch):
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: swallowed.append(u.exc_type))
    with interrupts.latched():
        obj = _SignalsInFinalizer()
        del obj  # Python reports "Exception ignored in ... __del__" and carries on, as with torch
        assert swallowed == [KeyboardInterrupt]
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        interrupts.check()  # raised once, not again


def test_ctrl_c_still_raises_where_it_lands():
    with interrupts.latched(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_latch_restores_the_previous_handler_and_forgets_the_signal():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), interrupts.latched():
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    interrupts.check()  # nothing pending once the block is left
