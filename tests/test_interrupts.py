import os
import signal
import sys
import time

import pytest

from feedtax.bench import interrupts

pytestmark = pytest.mark.usefixtures("terminal_handlers")  # as in a terminal, whatever started the suite


class _SignalsInFinalizer:
    """Stands in for torch's DataLoader iterator, whose __del__ shuts workers down when Ctrl-C lands."""

    def __init__(self, signum=signal.SIGINT):
        self.signum = signum

    def __del__(self):
        signal.raise_signal(self.signum)


@pytest.mark.parametrize("signum", interrupts.SIGNALS)
def test_a_signal_swallowed_by_a_finalizer_is_raised_at_the_next_check(monkeypatch, signum):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_type))
    hook = sys.unraisablehook
    with interrupts.latched():
        obj = _SignalsInFinalizer(signum)
        del obj  # Python would report "Exception ignored in ... __del__" and carry on, as with torch
        assert reported == [], "the terminal shows no traceback for a stop that is latched"
        with pytest.raises(interrupts.Interrupted) as info:
            interrupts.check()
        assert info.value.signum == signum
        interrupts.check()  # raised once, not again
        del _ErrorInFinalizer().me  # any other error in a finalizer is still reported
        assert reported == [ValueError]
    assert sys.unraisablehook is hook, "the block puts Python's hook back"


class _ErrorInFinalizer:
    def __init__(self):
        self.me = self

    def __del__(self):
        raise ValueError("a real failure")


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


def test_a_signal_while_a_batch_is_fetched_waits_for_the_batch():
    """Torch hands a batch from a worker over a socket: a signal must not cut that short (the worker prints a
    traceback), so it is raised when the batch has arrived."""
    with interrupts.latched():
        fetched = []
        with pytest.raises(interrupts.Interrupted) as info, interrupts.between_batches:
            signal.raise_signal(signal.SIGTERM)
            fetched.append("batch")
        assert fetched == ["batch"] and info.value.name == "SIGTERM"
        interrupts.check()  # raised once


def test_a_second_signal_while_fetching_stops_at_once():
    with interrupts.latched():
        with pytest.raises(interrupts.Interrupted) as info, interrupts.between_batches:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
            pytest.fail("the second signal did not stop the fetch")
        assert info.value.name == "SIGINT"


def test_a_fetch_that_never_ends_is_stopped_after_the_grace(monkeypatch):
    """A hung loader: one SIGTERM (from `timeout`, say) still stops the run, GRACE_S after it came."""
    monkeypatch.setattr(interrupts, "GRACE_S", 0.2)
    with interrupts.latched():
        t0 = time.monotonic()
        with pytest.raises(interrupts.Interrupted) as info, interrupts.between_batches:
            signal.raise_signal(signal.SIGHUP)
            while time.monotonic() - t0 < 30:
                time.sleep(0.01)
        assert info.value.name == "SIGHUP" and time.monotonic() - t0 < 30


def test_a_signal_latched_during_a_save_stops_before_the_next_fetch():
    with interrupts.latched():
        with interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
        with pytest.raises(interrupts.Interrupted), interrupts.between_batches:
            pytest.fail("the fetch started although a signal was waiting")


def test_a_process_forked_inside_the_block_has_the_handlers_from_before():
    """DataLoader workers are forked: they must stop on a group SIGTERM as they would without feedtax (silently,
    by the signal), not raise feedtax's Interrupted inside torch's worker loop."""
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.latched():
        assert signal.getsignal(signal.SIGTERM) is not before
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: say whether its handler is the one from before, then wait to be signalled
            os.write(write_end, b"1" if signal.getsignal(signal.SIGTERM) is before else b"0")
            time.sleep(30)
            os._exit(3)
        os.close(write_end)
        restored = os.read(read_end, 1)
        os.close(read_end)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert restored == b"1"
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
