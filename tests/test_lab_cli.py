"""`feedtax lab` from the command line: what it refuses in one line, and --submit (the browser drive is in
test_lab_browser.py); a new run keeping the lab record of the run it replaces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from feedtax.cli import app
from feedtax.cli.run import _set_aside_lab
from feedtax.lab.session import LabSession
from feedtax.results import load

LAPTOP = Path(__file__).parent / "data" / "results-v4.json"
runner = CliRunner()


def _run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "results.json"
    path.parent.mkdir()
    shutil.copy(LAPTOP, path)
    return path


def test_what_the_lab_refuses_in_one_line(tmp_path, monkeypatch):
    missing = runner.invoke(app, ["lab", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "nope.json: no such results file" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 4, "run_id": 7}')
    out = runner.invoke(app, ["lab", str(bad)])
    assert out.exit_code == 2 and "bad.json" in out.output and len(out.output.strip().splitlines()) == 1
    monkeypatch.chdir(tmp_path)  # no feedtax-out/results.json here, and no terminal to ask in
    none = runner.invoke(app, ["lab"])
    assert none.exit_code == 2 and "feedtax run --profile ci" in none.output


def test_submit_sends_the_results_with_their_lab_record(tmp_path):
    path = _run_dir(tmp_path)
    alone = runner.invoke(app, ["lab", str(path), "--submit", str(tmp_path / "class")])
    assert alone.exit_code == 2 and "no lab record" in alone.output
    lab = LabSession.open(load(path), path)
    lab.commit_lock("gravity", "drive", "high")
    sent = runner.invoke(app, ["lab", str(path), "--submit", str(tmp_path / "class")])
    assert sent.exit_code == 0, sent.output
    run_id = load(path).run_id
    assert json.loads((tmp_path / "class" / f"{run_id}.lab.json").read_text())["locks"][0]["choice"] == "drive"
    assert load(tmp_path / "class" / f"{run_id}.json").run_id == run_id


def test_a_new_run_keeps_the_lab_record_of_the_run_it_replaces(tmp_path):
    path = _run_dir(tmp_path)
    lab = LabSession.open(load(path), path)
    lab.commit_lock("curated_vs_noisy", "curated", "low")
    _set_aside_lab(path.parent, Console(file=open(tmp_path / "log", "w")))
    kept = path.parent / f"lab-{load(path).run_id}.json"
    assert not lab.path.exists() and json.loads(kept.read_text())["locks"][0]["lock"] == "curated_vs_noisy"
    lab.path.write_text("not json")
    _set_aside_lab(path.parent, Console(file=open(tmp_path / "log", "w")))
    assert (path.parent / "lab-unreadable.json").read_text() == "not json" and not lab.path.exists()


def test_no_server_outlives_the_command_even_killed(tmp_path):
    """SIGTERM stops `feedtax lab` as Ctrl-C does; SIGKILL cannot be caught, and the server dies with it anyway."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    path = _run_dir(tmp_path)
    for sig, code in ((signal.SIGTERM, 0), (signal.SIGKILL, -9)):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "feedtax", "lab", str(path), "--port", str(port),
                                 "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert str(port) in proc.stdout.readline()
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code
        deadline, serving = time.monotonic() + 15, True
        while serving and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                time.sleep(0.2)
            except OSError:
                serving = False
        assert not serving, f"the server still answers on port {port} after {sig.name}"


def test_a_terminals_ctrl_c_stops_the_lab_quietly(tmp_path):
    """A terminal sends SIGINT to the whole foreground process group: the server, in a session of its own, never
    sees it, so no traceback of its shutdown reaches the student."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    path = _run_dir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "feedtax", "lab", str(path), "--port", str(port), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert str(port) in proc.stdout.readline()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in err, err[-1500:]
