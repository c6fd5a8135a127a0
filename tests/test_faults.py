"""`feedtax run` under faults, end to end (real `feedtax run --profile ci` processes, one track and one format where
that reaches the stage): SIGINT, SIGTERM and SIGHUP in every stage, kill -9 and the next run, a disk that fills, two
runs into one directory, a rerun, and bad options refused before anything is measured.

After each: results.json valid (or kept recoverable), its status and stage saying what happened, one line on stderr,
and no shards, hidden files or temp files left behind.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import small_tmpfs, terminal_signals

from feedtax import results
from feedtax.bench.outdir import LOCK_NAME

FEEDTAX = [shutil.which("feedtax")] if shutil.which("feedtax") else [sys.executable, "-m", "feedtax"]
SMALL = ["--profile", "ci", "--tracks", "edge", "--formats", "raw", "--loader", "tuned"]  # reaches every stage
LIMIT_S = 150


@pytest.fixture(scope="module")
def schema() -> dict:
    return results.json_schema()


def start(out: Path, *extra: str, options=SMALL) -> subprocess.Popen:
    """`feedtax run` into out, in a process group of its own (as a shell job: the group gets a terminal's signals)."""
    return subprocess.Popen([*FEEDTAX, "run", *options, "--out", str(out), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=terminal_signals)


def read(out: Path) -> dict | None:
    try:
        return json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return None


def _in_stage(out: Path, name: str, at_least: tuple[str, int] | None) -> bool:
    doc = read(out)
    if not doc or not doc["stages"] or doc["stages"][-1] != {**doc["stages"][-1], "name": name, "status": "running"}:
        return False
    return at_least is None or len(doc[at_least[0]]) >= at_least[1]


def _stopped(pid: int) -> bool:
    """Whether the process is frozen (SIGSTOP acted on: it is not inside a system call such as fork)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def stop_in(proc: subprocess.Popen, out: Path, name: str, sig: int, *, group: bool = False,
            at_least: tuple[str, int] | None = None) -> dict:
    """Send sig once results.json says the run is inside stage `name` (with at least n entries of a section): the
    main process is frozen with SIGSTOP while that is confirmed, and not mid-save (no results.json.tmp), so the
    signal lands in the stage however short it is. With group, the signal goes to the whole group (workers too, as
    `timeout` or a closing terminal sends it); only the main process is frozen, and only once it really is stopped
    is the signal sent, since a group signal that meets a fork is also given to the new child, SIGSTOP included.
    Returns results.json as it was then."""
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if _in_stage(out, name, at_least):
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                while not _stopped(proc.pid) and time.monotonic() < deadline:
                    time.sleep(0.001)
                doc = read(out)
                if _in_stage(out, name, at_least) and not (out / "results.json.tmp").exists():
                    (os.killpg if group else os.kill)(proc.pid, sig)
                    return doc
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"the run never reached stage {name} (exit {proc.poll()}): {proc.communicate()[1][-2000:]}")


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=LIMIT_S)
    return proc.returncode, err


def hidden_or_temp(out: Path) -> list[str]:
    """Files a run must not leave: shards, the disk probe's hidden file, temp files, the lock."""
    left = [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    return sorted(str(p.relative_to(out)) for p in left + ([out / "data"] if (out / "data").exists() else []))


def assert_stopped_cleanly(out: Path, schema: dict, status: str, stage: str, err: str = "") -> dict:
    doc = json.loads((out / "results.json").read_text())
    jsonschema.validate(doc, schema)
    assert (doc["status"], doc["stages"][-1]["name"], doc["stages"][-1]["status"]) == (status, stage, status), \
        (doc["stages"], err[-2000:])
    assert hidden_or_temp(out) == []
    assert "did not complete" in (out / "report.html").read_text()
    return doc


@pytest.mark.parametrize("stage, sig, group", [
    pytest.param("probes", signal.SIGTERM, False, id="SIGTERM-probes"),  # `kill`, a container stop
    pytest.param("formats", signal.SIGHUP, True, id="SIGHUP-formats"),  # a closed terminal hangs up its group
    pytest.param("sweep", signal.SIGTERM, True, id="SIGTERM-sweep"),  # `timeout` signals the group: workers too
    pytest.param("selection", signal.SIGINT, True, id="SIGINT-selection"),  # Ctrl-C in a terminal
    pytest.param("projections", signal.SIGHUP, False, id="SIGHUP-projections"),
])
def test_a_signal_in_each_stage_stops_the_run_cleanly(tmp_path, schema, stage, sig, group):
    out = tmp_path / "out"
    proc = start(out)
    before = stop_in(proc, out, stage, sig, group=group, at_least=("loader", 1) if stage == "sweep" else None)
    code, err = finish(proc)
    assert code == 128 + sig, err
    name = signal.Signals(sig).name
    last = err.strip().splitlines()[-1]
    assert last == f"feedtax: interrupted by {name}: what was measured is in {out}/results.json", err[-2000:]
    doc = read(out)
    names = [s["name"] for s in doc["stages"]]
    if doc["stages"][names.index(stage)]["status"] == "complete":
        # rarely the signal meets the save that closes the stage (deferred): the stage is whole, and the run stops
        # at the next boundary, between the two stages or in the next one
        assert doc["status"] == "interrupted" and len(names) - names.index(stage) <= 2, (doc["stages"], err[-2000:])
        jsonschema.validate(doc, schema)
        assert hidden_or_temp(out) == [] and "did not complete" in (out / "report.html").read_text()
    else:
        doc = assert_stopped_cleanly(out, schema, "interrupted", stage, err)
        assert doc["stages"][-1]["error"] == f"interrupted by {name}"
    assert len(doc["formats"]) >= len(before["formats"]) and len(doc["loader"]) >= len(before["loader"]), \
        "every point measured before the signal is kept"


def test_a_closed_terminal_stops_the_run_as_sighup_does(tmp_path, schema):
    """A run in a terminal that closes: the kernel hangs up (SIGHUP to its foreground group) and every later write to
    the terminal fails (EIO); the run still stops cleanly and exits 129."""
    out = tmp_path / "out"
    master, terminal = os.openpty()

    def own_terminal() -> None:  # a session leader whose controlling terminal this is, as a login shell's job
        terminal_signals()
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([*FEEDTAX, "run", *SMALL, "--out", str(out)], stdin=terminal, stdout=terminal,
                            stderr=terminal, preexec_fn=own_terminal)
    os.close(terminal)
    os.set_blocking(master, False)
    deadline = time.monotonic() + LIMIT_S
    while not _in_stage(out, "formats", None) and time.monotonic() < deadline:
        try:  # the terminal's screen: read, so the progress bars never fill its buffer
            os.read(master, 1 << 16)
        except BlockingIOError:
            time.sleep(0.01)
    os.close(master)  # the terminal closes
    assert proc.wait(timeout=LIMIT_S) == 128 + signal.SIGHUP
    assert assert_stopped_cleanly(out, schema, "interrupted", "formats")["stages"][-1]["error"] == \
        "interrupted by SIGHUP"


def test_kill_9_then_the_next_runs_remove_what_it_left(tmp_path, schema):
    out = tmp_path / "out"
    first = start(out)  # killed inside the disk probe: its hidden 32 MiB test file stays
    deadline = time.monotonic() + LIMIT_S
    while not list((out / "data").glob(".feedtax-disk-*.bin")) and time.monotonic() < deadline:
        time.sleep(0.01)
    first.kill()
    finish(first)
    probe_file = next((out / "data").glob(".feedtax-disk-*.bin"))
    assert (out / LOCK_NAME).exists() and read(out)["status"] == "running"

    second = start(out)  # removes it, then is killed with shards written
    stop_in(second, out, "formats", signal.SIGKILL, at_least=("formats", 1))
    _, err = finish(second)
    assert not probe_file.exists()
    assert f"removed what a run that did not finish left in {out}: 1 hidden or temp file(s) (" in err, err
    assert [p.name for p in (out / "data").iterdir()] == ["edge-raw"]

    third = start(out)
    stop_in(third, out, "probes", signal.SIGTERM)
    code, err = finish(third)
    assert code == 128 + signal.SIGTERM
    assert f"removed what a run that did not finish left in {out}: 1 shard folder(s) (" in err, err
    assert_stopped_cleanly(out, schema, "interrupted", "probes")
    killed = results.load(out / "results.prev.json")  # the killed run's measurements: kept, and readable
    assert killed.status == "running" and killed.formats

def fill(where: Path) -> None:
    """Take every free byte of where's filesystem, as another writer would: what is free, then what is still free,
    down to a page, so space taken meanwhile (ENOSPC for the whole) does not stop it."""
    with open(where / "filler", "wb") as f:
        st = os.statvfs(where)
        size = st.f_bavail * st.f_frsize
        while size >= 4096:
            try:
                os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2


def test_a_disk_that_fills_mid_run_keeps_the_results_and_removes_the_shards(tmp_path, schema):
    with small_tmpfs(tmp_path / "disk", "size=48M") as disk:
        out = disk / "out"
        proc = start(out, options=["--profile", "ci", "--tracks", "edge,cloud", "--formats", "csv,json"])
        deadline = time.monotonic() + LIMIT_S
        while not _in_stage(out, "formats", ("formats", 1)) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGSTOP)  # fill the disk while the run (and any process of it) holds shards on it
        try:
            fill(disk)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        code, err = finish(proc)
        assert code == 1, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("feedtax: disk full (cannot write ") and f"bytes) free on {out} once the shards" in line
        assert line.endswith(f"what was measured is in {out}/results.json")
        doc = json.loads((out / "results.json").read_text())
        jsonschema.validate(doc, schema)
        assert doc["status"] == "failed" and doc["stages"][-1]["status"] == "failed"
        assert "[Errno 28]" in doc["stages"][-1]["error"] and doc["formats"]
        assert hidden_or_temp(out) == []


def test_a_disk_too_small_for_the_run_is_refused_before_measuring(tmp_path):
    with small_tmpfs(tmp_path / "disk", "size=16M") as disk:
        proc = start(disk / "out")
        code, err = finish(proc)
        assert code == 2
        assert err.strip().startswith(f"feedtax: {disk / 'out'}: not enough free space for the ci profile's")
        assert " free, about " in err and " needed " in err and len(err.strip().splitlines()) == 1
        assert sorted(p.name for p in (disk / "out").iterdir()) == []


def test_two_runs_into_one_directory_the_second_is_refused(tmp_path, schema):
    out = tmp_path / "out"
    first = start(out)
    deadline = time.monotonic() + LIMIT_S
    while not _in_stage(out, "probes", None) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGSTOP)  # paused in its disk probe, holding OUT, while the second one tries
    try:
        run_id = read(out)["run_id"]
        code, err = finish(start(out))
    finally:
        os.kill(first.pid, signal.SIGTERM)
        os.kill(first.pid, signal.SIGCONT)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"another feedtax run is writing here (pid {first.pid}, run {run_id}, started " in err
    assert finish(first)[0] == 128 + signal.SIGTERM, "the first run carries on until it is stopped"
    assert assert_stopped_cleanly(out, schema, "interrupted", "probes")["run_id"] == run_id


def test_a_rerun_keeps_the_previous_results(tmp_path, schema):
    out = tmp_path / "out"
    first = start(out)
    stop_in(first, out, "formats", signal.SIGTERM)
    finish(first)
    earlier = read(out)["run_id"]
    second = start(out)
    stop_in(second, out, "probes", signal.SIGINT)
    code, err = finish(second)
    assert code == 130
    assert f"kept the previous run's results as {out}/results.prev.json and report.prev.html" in err
    assert assert_stopped_cleanly(out, schema, "interrupted", "probes")["run_id"] != earlier
    assert results.load(out / "results.prev.json").run_id == earlier
    assert "did not complete" in (out / "report.prev.html").read_text()


@pytest.mark.parametrize("extra, message", [
    pytest.param(["--submit", "{blocker}/class"], "{blocker}/class: cannot write the submission there: Not a directory",
                 id="submit"),
    pytest.param(["--out", "{blocker}/sub"], "{blocker}/sub: cannot write results there: Not a directory", id="out"),
    pytest.param(["--seed", "-1"], "--seed", id="seed-negative"),
    pytest.param(["--seed", str(2**32)], "--seed", id="seed-over-32-bits"),
])
def test_bad_paths_and_options_are_refused_before_measuring(tmp_path, extra, message):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = tmp_path / "out"
    code, err = finish(start(out, *[e.format(blocker=blocker) for e in extra]))
    assert code == 2 and message.format(blocker=blocker) in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (out / "results.json").exists(), "nothing measured"
