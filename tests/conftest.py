"""Shared fixtures: small track samples sized like the ci profile, their shards in every format, a full disk (faked,
or a small tmpfs), and `feedtax ARGS...` run in this process."""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import typer

from feedtax import datasets, formats
from feedtax.bench.profiles import get
from feedtax.cli import app, invoke

CI_SIZES = get("ci").sizes
ANY_CALL_S = 300  # any command line run through the fixture: a hang fails instead of stopping the suite


@pytest.fixture(scope="session")
def track_samples() -> dict[str, list[dict]]:
    return {t: list(datasets.generate(t, 24, seed=7, sizes=CI_SIZES)) for t in datasets.TRACKS}


def digest(sample: dict) -> str:
    """A sample's identity: its field names and bytes, so delivered samples can be counted against written ones."""
    h = hashlib.sha1()
    for k in sorted(sample):
        h.update(k.encode())
        h.update(np.ascontiguousarray(sample[k]).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def sample_digest():
    return digest


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory, track_samples):
    """23 mobile samples in shards of 5 (the last one short), written in every format."""
    samples = track_samples["mobile"][:23]
    out = {fmt: formats.get(fmt).write(samples, tmp_path_factory.mktemp(fmt), samples_per_shard=5)
           for fmt in formats.NAMES}
    return samples, out


@pytest.fixture
def full_disk(monkeypatch):
    """Writes to a *.tmp file fail half-way with ENOSPC, as on a full disk (the atomic writer's temp files)."""
    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return FullFile(f) if "w" in mode and str(path).endswith(".tmp") else f

    monkeypatch.setattr(builtins, "open", fake_open)


@contextlib.contextmanager
def small_tmpfs(where: Path, options: str):
    """A small tmpfs mounted at where (mount options, e.g. "size=16M" or "ro,size=1M") for the block; the test is
    skipped, with the reason, where none can be mounted (not root, no mount(8), a container without the capability)."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True, capture_output=True,
                       text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        why = getattr(exc, "stderr", None) or exc
        pytest.skip(f"cannot mount a tmpfs here: {str(why).strip()[:200]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True, capture_output=True, timeout=30)


@dataclass
class Ran:
    """What a command line did: its exit code, stdout and stderr."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def feedtax_cli(capsys):
    """`feedtax ARGS...` in this process, through the console script's own error handling (feedtax.cli.invoke)."""
    def run(*args: object, command=None, timeout_s: float = ANY_CALL_S) -> Ran:
        with _deadline(timeout_s):
            code = invoke(command or typer.main.get_command(app), [str(a) for a in args])
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)
    return run


@contextlib.contextmanager
def _deadline(seconds: float):
    """Fail a call that runs past `seconds` (SIGALRM) instead of letting it hang the suite."""
    def expired(signum, frame):
        raise TimeoutError(f"a command line ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


TERMINAL = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL, signal.SIGHUP: signal.SIG_DFL}


def terminal_signals() -> None:
    """A Popen preexec_fn: the child takes SIGINT, SIGTERM and SIGHUP as a run in a terminal does, even where the suite
    runs under nohup (SIGHUP ignored) or as a background job of a script (SIGINT ignored): an ignored signal is
    inherited, and feedtax rightly keeps an ignored signal ignored."""
    for s in TERMINAL:
        signal.signal(s, signal.SIG_DFL)  # Python in the child then installs its own SIGINT handler


@pytest.fixture
def terminal_handlers():
    """This process handles SIGINT, SIGTERM and SIGHUP as in a terminal for the test (see terminal_signals); the
    handlers it had are put back after."""
    saved = {s: signal.getsignal(s) for s in TERMINAL}
    for s, handler in TERMINAL.items():
        signal.signal(s, handler)
    yield
    for s, handler in saved.items():
        signal.signal(s, signal.SIG_DFL if handler is None else handler)
