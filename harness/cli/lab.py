"""`feedtax lab`: the course's lab as a marimo app on localhost, on a run's results (or a ci run made first).

marimo serves the notebook shipped in feedtax.lab (its assets come from the marimo package: nothing is fetched from
the network); Ctrl-C stops the server and the command.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer

from feedtax.cli.options import Range, echo, fail, ranged

DEFAULT_RESULTS = Path("feedtax-out/results.json")  # where `feedtax run` writes by default
START_TIMEOUT_S = 60.0
PORT = Range(0, 65535, whole=True)


def lab_cmd(
    results: Path | None = typer.Argument(None, help="A run's results.json (default: feedtax-out/results.json)."),
    port: int = ranged(0, "--port", help="Port on localhost (0: a free one).", within=PORT),
    host: str = typer.Option("127.0.0.1", help="Address to serve on (localhost by default: only this machine)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL without opening a browser."),
    submit: Path | None = typer.Option(None, help="Instead of serving: write the run's results and its lab record "
                                                  "as DIR/<run_id>.json and .lab.json, for your instructor."),
) -> None:
    """Open the lab (its Locks, workbenches and Reflect questions) on a run's own measurements."""
    path = _results_path(results)
    from feedtax import results as results_io

    try:
        res = results_io.load(path)  # refuse a bad file here, in one line, not inside the browser
    except results_io.ResultsFileError as exc:
        raise fail(str(exc)) from None
    if submit is not None:
        return _submit(res, path, submit)
    port = port or _free_port(host)
    from feedtax.lab import notebook

    cmd = [sys.executable, "-m", "marimo", "-q", "run", notebook.__file__, "--host", host, "--port", str(port),
           "--headless", "--no-token", "--", "--results", str(path.resolve())]
    # its own session: a terminal's Ctrl-C reaches this command only, which stops the server quietly
    server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # marimo's errors: stderr
                              start_new_session=True,
                              preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    # Ctrl-C, `kill` and a closed terminal all stop it, also where SIGINT came in ignored (a background job's)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _wait_until_serving(server, host, port)
        url = f"http://{host}:{port}"
        echo(f"feedtax lab on {path}: {url}  (Ctrl-C stops it)")
        if not no_browser:
            import webbrowser

            webbrowser.open(url)
        server.wait()
    except KeyboardInterrupt:
        typer.echo("feedtax lab: stopped")
    finally:
        _stop(server)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if server.returncode not in (0, -2, -15, 130, 143, None):
        raise fail(f"the lab's server stopped with exit code {server.returncode}", 1)


def _submit(res, path: Path, submit_dir: Path) -> None:
    from feedtax.classroom.submit import SubmitError, lab_beside, write_submission

    lab, problem = lab_beside(path, res.run_id)
    if problem:
        raise fail(problem)
    if lab is None:
        raise fail(f"{path.parent / 'lab.json'}: no lab record beside these results: open the lab first")
    try:
        echo(f"submission: {write_submission(res, submit_dir, lab)} (with its lab record)")
    except SubmitError as exc:
        raise fail(str(exc)) from None


def _results_path(given: Path | None) -> Path:
    """The results to open: the one given, else feedtax-out/results.json, else (asked, in a terminal) a ci run."""
    if given is not None:
        if not given.exists():
            raise fail(f"{given}: no such results file")
        return given
    if DEFAULT_RESULTS.exists():
        return DEFAULT_RESULTS
    if not sys.stdin.isatty():
        raise fail(f"no results at {DEFAULT_RESULTS}: give a results.json, or run `feedtax run --profile ci` first")
    if not typer.confirm(f"No results at {DEFAULT_RESULTS}. Measure this machine with the ci profile now "
                         "(about a minute)?", default=True):
        raise fail("no results to open: give a results.json")
    code = subprocess.call([sys.executable, "-m", "feedtax", "run", "--profile", "ci",
                            "--out", str(DEFAULT_RESULTS.parent)])
    if code != 0 or not DEFAULT_RESULTS.exists():
        raise fail(f"the ci run did not complete (exit code {code})", 1)
    return DEFAULT_RESULTS


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """In the server's process, before marimo starts (Linux): SIGTERM when `feedtax lab` dies, even by SIGKILL,
    so no server outlives the command."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_until_serving(server: subprocess.Popen, host: str, port: int) -> None:
    """Return once the server accepts connections; fail if it exits or does not start in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise fail(f"the lab's server exited (code {server.returncode}) before serving on {host}:{port}", 1)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise fail(f"the lab's server did not start on {host}:{port} within {START_TIMEOUT_S:.0f} s", 1)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
