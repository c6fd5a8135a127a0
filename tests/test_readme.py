"""The README's Python example runs as written (extracted from the README itself, run as a script)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_measure_example_runs_as_written(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "feedtax.measure(" in b)
    script = tmp_path / "my_pipeline.py"
    script.write_text(example)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["0 workers", "2 workers"]
    assert all(re.fullmatch(r"\d workers: feeding tax \d+%, [\d,]+ samples/s", line) for line in lines), lines
