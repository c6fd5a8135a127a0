"""Hostile results files through every reader: collect, `feedtax report`, `feedtax compare`, `feedtax project` and
`feedtax class-report`. Each is refused in one line naming the file (exit 2; collect: its reject kind), with no
traceback, and never hangs: every command runs as a subprocess with a timeout, so a blocking read fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from feedtax.results.validate import MAX_RESULTS_BYTES

DATA = Path(__file__).parent / "data"
GOOD = DATA / "results-v4.json"  # a real run of every stage (schema 4, migrated on reading)
TIMEOUT_S = 60


def _doc() -> dict:
    return json.loads(GOOD.read_text())


def _with(change, run_id: str) -> bytes:
    doc = _doc()
    doc["run_id"] = run_id
    change(doc)
    return json.dumps(doc).encode()


def _text(run_id: str, old: str, new: str) -> bytes:
    """The good run under run_id with its first `old` replaced by `new` in the JSON text (a number JSON can't hold)."""
    text = json.dumps({**_doc(), "run_id": run_id})
    assert old in text
    return text.replace(old, new, 1).encode()


def _nothing(doc: dict) -> None:
    pass


def _sparse(path: Path) -> None:
    """A file one byte over the limit, without writing it: refused by its size before a byte is read."""
    with open(path, "wb") as f:
        f.truncate(MAX_RESULTS_BYTES + 1)


# name -> (file contents, or a callable making the file at a path; the kind collect gives it)
HOSTILE = {
    "fifo": (lambda p: os.mkfifo(p), "not_a_file"),
    "dev_zero": (lambda p: p.symlink_to("/dev/zero"), "not_a_file"),
    "too_large": (_sparse, "too_large"),
    "too_deep": (b'{"schema_version": 4, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too_deep"),
    "nan": (_text("hostile-nan", '"bytes_per_sample": ', '"bytes_per_sample": NaN, "_x": '), "non_finite"),
    "infinity": (_text("hostile-inf", '"min_time_s": ', '"min_time_s": Infinity, "_x": '), "non_finite"),
    "huge": (_with(lambda d: d["config"].update(min_time_s=1e308), "hostile-huge"), "implausible"),
    "load_average": (_with(lambda d: d["host"].update(load_average_1m=1e308), "hostile-load"), "implausible"),
    "negative_count": (_with(lambda d: d["config"].update(samples_per_track=-5), "hostile-neg"), "implausible"),
    "no_repeats": (_with(lambda d: d["config"].update(repeats=0), "hostile-repeats"), "implausible"),
    "inconsistent": (_with(lambda d: d["formats"][0].update(compression_ratio=d["formats"][0]["compression_ratio"] * 3),
                           "hostile-ratio"), "implausible"),
    "duplicate_key": (_text("hostile-dup", '"profile": "laptop"', '"profile": "laptop", "profile": "ci"'),
                      "duplicate_key"),
    "run_id_newline": (_with(_nothing, "hostile-id\n"), "bad_run_id"),
    "not_json": (b"track,format\ncloud,csv\n", "not_json"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    out = {}
    for name, (content, _) in HOSTILE.items():
        path = folder / f"{name}.json"
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        out[name] = path
    return out


def feedtax(*args: str | Path) -> subprocess.CompletedProcess:
    """`feedtax ARGS` as a user runs it; a hang past TIMEOUT_S fails the test (subprocess raises TimeoutExpired)."""
    exe = shutil.which("feedtax") or sys.executable
    cmd = [exe, *map(str, args)] if exe.endswith("feedtax") else [exe, "-m", "feedtax", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


def _one_line_naming(proc: subprocess.CompletedProcess, path: Path) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], proc.stderr
    return lines[0]


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("reader", ["report", "compare", "project"])
def test_every_reader_refuses_in_one_line(reader, name, hostile, tmp_path):
    path = hostile[name]
    args = {"report": ["report", path, "--out", tmp_path / "report.html"],
            "compare": ["compare", GOOD, path], "project": ["project", path]}[reader]
    proc = feedtax(*args)
    assert proc.returncode == 2, proc.stderr
    _one_line_naming(proc, path)
    assert not (tmp_path / "report.html").exists()


def test_collect_names_each_with_its_kind_and_the_class_report_reads_the_rest(hostile, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in hostile.values():
        (inbox / path.name).symlink_to(path)  # a copy of the pipe would block the copy itself
    (inbox / "good.json").write_bytes(GOOD.read_bytes())
    db = tmp_path / "class.duckdb"
    proc = feedtax("collect", inbox, "--db", db, "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    kinds = {Path(r["path"]).stem: r["kind"] for r in report["rejected"]}
    assert kinds == {name: kind for name, (_, kind) in HOSTILE.items()}
    assert [a["run_id"] for a in report["accepted"]] == [_doc()["run_id"]]
    out = feedtax("class-report", "--db", db, "--out", tmp_path / "report")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and (tmp_path / "report" / "class_report.html").is_file()


def test_a_bom_is_skipped_by_every_reader(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.read_bytes())
    assert feedtax("project", path).returncode == 0
    same = feedtax("compare", GOOD, path)
    assert same.returncode == 0 and "nothing to compare" in same.stdout
    collected = feedtax("collect", path, "--db", tmp_path / "c.duckdb", "--json")
    assert collected.returncode == 0 and len(json.loads(collected.stdout)["accepted"]) == 1


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_a_database_that_is_a_pipe_or_a_device_is_refused_unopened(kind, hostile, tmp_path):
    db = hostile[kind]
    for args in (["class-report", "--db", db, "--out", tmp_path / "r"], ["collect", GOOD, "--db", db]):
        proc = feedtax(*args)
        assert proc.returncode == 2 and "not a regular file" in _one_line_naming(proc, db)


def test_text_a_figure_would_take_for_mathtext_reaches_the_class_report_as_text(tmp_path):
    """Free text of a submission (a filesystem name, a CPU model) with matplotlib's $...$ markup in it: collected as
    typed, and the class report draws it without parsing it as mathtext."""
    from test_collect import variant

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(3):
        doc = variant(_doc(), i)
        doc["host"]["cpu_model"] = "$\\frac{1}{$ CPU"
        doc["host"]["data_dir"]["fs_type"] = "$x^{$"
        (inbox / f"{doc['run_id']}.json").write_text(json.dumps(doc))
    db = tmp_path / "class.duckdb"
    assert feedtax("collect", inbox, "--db", db).returncode == 0
    out = feedtax("class-report", "--db", db, "--out", tmp_path / "report")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
