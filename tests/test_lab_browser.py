"""`feedtax lab` in a real browser: Debian's headless chromium, driven by playwright (which downloads nothing here).

Start the lab on a stored run, commit each Lock, move a slider and read the instrument's new value, measure a
point live, save a Reflect answer, stop the server with Ctrl-C. Screenshots of each part go to
$FEEDTAX_LAB_SCREENSHOTS when it is set (to look at them), else to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAPTOP = Path(__file__).parent / "data" / "results-v4.json"
WAIT_MS = 120_000

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian: apt install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """`feedtax lab` serving a copy of the stored run: (its URL, the results path, the process)."""
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    shutil.copy(LAPTOP, results)
    port, log = _free_port(), (tmp_path / "lab.log").open("w")  # a file: a full pipe would stall the server
    proc = subprocess.Popen([sys.executable, "-m", "feedtax", "lab", str(results), "--port", str(port),
                             "--no-browser"], stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    assert f"http://127.0.0.1:{port}" in line, line + (tmp_path / "lab.log").read_text()
    yield f"http://127.0.0.1:{port}", results, proc
    if proc.poll() is None:
        proc.kill()  # the server dies with it (PR_SET_PDEATHSIG): nothing is left serving
        proc.wait()


def _shot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("FEEDTAX_LAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"lab-{name}.png"), full_page=True)


def _commit(page, choice: str) -> None:
    page.get_by_role("radio", name=choice).check()
    page.get_by_role("button", name="Commit my prediction").first.click()


def _text(page, start: str) -> str:
    """The first rendered paragraph starting with `start`, once it is there."""
    loc = page.locator("span.paragraph").filter(has_text=re.compile("^" + re.escape(start))).first
    loc.wait_for(timeout=WAIT_MS)
    return loc.inner_text()


def _changed(page, start: str, before: str) -> str:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        now = _text(page, start)
        if now != before:
            return now
        time.sleep(0.2)
    raise AssertionError(f"the instrument did not change: {before}")


def test_the_lab_in_a_browser(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, results, proc = lab
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1800})
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
            (url, "data:", "blob:", "ws://127.0.0.1")) else None)
        page.goto(url, wait_until="networkidle")
        page.get_by_text("The workbench unlocks once you commit.").first.wait_for(timeout=WAIT_MS)
        assert page.get_by_text("Drives written at").count() == 0  # no number before the Lock

        _commit(page, "Ship hard drives")  # Part 1
        before = _text(page, "1 PB over 10 Gbit/s")
        slider = page.get_by_role("slider").first
        slider.focus()
        slider.press("ArrowLeft")
        slider.press("ArrowLeft")
        after = _changed(page, "100 TB over", "")
        assert "network 23 h" in after and before != after
        _shot(page, "part1", tmp_path)

        _commit(page, "Switching JSON to Protobuf")  # Part 2
        page.locator("select").filter(has=page.locator("option", has_text="protobuf")).select_option("protobuf")
        workers = page.get_by_role("slider").nth(3)
        workers.focus()
        workers.press("ArrowRight")
        workers.press("ArrowRight")  # 1 -> 3 workers: the run measured 0, 1, 2 and 4
        modelled = _changed(page, "protobuf, 3 workers", "")
        assert "modelled: mlsysim" in modelled
        page.get_by_role("button", name="Measure this point on this machine").click()
        live = _changed(page, "protobuf, 3 workers", modelled)
        assert "measured here, live" in live
        assert re.search(r"AU \d+% ±\d+\.\d pp", live), live  # a measured point with its 95% interval
        _shot(page, "part2", tmp_path)

        _commit(page, "10,000 curated samples")  # Part 3
        before = _text(page, "Kept ")
        ratio = page.get_by_role("slider").nth(4)
        ratio.focus()
        ratio.press("ArrowRight")
        after = _changed(page, "Kept ", before)
        assert re.search(r"a \*?\*?\d+%", after) or "cut" in after
        _shot(page, "part3", tmp_path)

        page.locator("textarea").first.fill("Drives won at 1 PB <script>alert(1)</script>")
        page.locator("textarea").first.press("Tab")  # leaving the box saves the answer
        lab_json, deadline = results.parent / "lab.json", time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline and not json.loads(lab_json.read_text())["reflections"]:
            time.sleep(0.2)
        browser.close()

    assert outside == [], f"the lab fetched from outside this machine: {outside[:5]}"
    record = json.loads((results.parent / "lab.json").read_text())
    assert [(lk["lock"], lk["choice"]) for lk in record["locks"]] == [
        ("gravity", "drive"), ("format_vs_ssd", "format"), ("curated_vs_noisy", "curated")]
    assert {it["part"] for it in record["iterations"]} == {1, 2, 3} and len(record["tiers_examined"]) >= 2
    assert record["reflections"][0]["answer"] == "Drives won at 1 PB <script>alert(1)</script>"

    proc.send_signal(signal.SIGINT)  # Ctrl-C stops the server and the command
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out, (tmp_path / "lab.log").read_text()[-2000:]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1).close()
