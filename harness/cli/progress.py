"""Progress of a long command: rich bars with an ETA in a terminal; plain lines stamped with the elapsed time
otherwise (a pipe, a log file, CI), at least one every HEARTBEAT_S, so a log never goes quiet while work goes on."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from feedtax.reports.common import duration

EVERY_S = 5.0  # a plain line at most this often as work advances (and at every stage's start and end)
HEARTBEAT_S = 10.0  # and at least this often while a step runs


class Lines:
    """The runner's Progress as plain lines: `[  12s] format costs: 40/120, about 20s left`."""

    def __init__(self, stream: TextIO = sys.stderr, every_s: float = EVERY_S, heartbeat_s: float = HEARTBEAT_S):
        self.stream, self.every_s, self.heartbeat_s = stream, every_s, heartbeat_s
        self.t0 = self.last = self.stage_t0 = time.monotonic()
        self.description, self.total, self.done = "", 0, 0
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> Lines:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def start(self, description: str, total: int) -> None:
        with self.lock:
            self.description, self.total, self.done = description, total, 0
            self.stage_t0 = time.monotonic()
            self._line()

    def advance(self) -> None:
        with self.lock:
            self.done += 1
            if self.done >= self.total or time.monotonic() - self.last >= self.every_s:
                self._line()

    def _heartbeat(self) -> None:
        while not self.stop.wait(0.5):
            with self.lock:
                if self.description and time.monotonic() - self.last >= self.heartbeat_s:
                    self._line(" (working)")

    def _line(self, note: str = "") -> None:
        now = time.monotonic()
        left = ""
        if 0 < self.done < self.total:
            left = f", about {duration((now - self.stage_t0) / self.done * (self.total - self.done))} left"
        print(f"[{now - self.t0:5.0f}s] {self.description}: {self.done}/{self.total}{left}{note}",
              file=self.stream, flush=True)
        self.last = now


class Bars:
    """The runner's Progress as rich bars, one per stage, with elapsed and remaining time."""

    def __init__(self, console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self.task = None

    def __enter__(self) -> Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start(self, description: str, total: int) -> None:
        self.task = self.progress.add_task(description, total=total)

    def advance(self) -> None:
        self.progress.advance(self.task)


def for_console(console) -> Bars | Lines:
    """Bars where the console is a terminal, plain lines everywhere else."""
    return Bars(console) if console.is_terminal else Lines(console.file)
