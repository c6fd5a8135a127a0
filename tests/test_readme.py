"""The README's Python examples run as written (extracted from the README itself, run as scripts)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if marker in b)


def test_the_measure_example_runs_as_written(tmp_path):
    example = _example("if __name__")
    script = tmp_path / "my_pipeline.py"
    script.write_text(example)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["0 workers", "2 workers"]
    assert all(re.fullmatch(r"\d workers: feeding tax \d+%, [\d,]+ samples/s", line) for line in lines), lines


def test_the_ranks_example_runs_under_torchrun(tmp_path):
    script = tmp_path / "feed_ranks.py"
    script.write_text(_example("init_process_group"))
    port = str(29400 + os.getpid() % 500)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-addr", "127.0.0.1", "--master-port", port, str(script)],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    # the ranks' own messages come first, torchrun's summary last: both, when it fails
    assert out.returncode == 0, out.stderr[:3000] + "\n...\n" + out.stderr[-1500:]
    lines = out.stdout.splitlines()
    assert [line.split(" on ")[0] for line in lines[:2]] == ["rank 0", "rank 1"], lines
    assert re.fullmatch(r"slowest rank [01]: the job delivers \d+ samples/s", lines[2]), lines
