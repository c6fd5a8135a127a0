"""feedtax.bench.outdir: a run's output directory checked, held by one run, cleared of what a killed run left (and of
nothing else), and the previous results kept."""

from __future__ import annotations

import json

import pytest

from feedtax.bench import outdir


def _run_dir(tmp_path, status: str | None):
    out = tmp_path / "out"
    (out / "data" / "edge-raw").mkdir(parents=True)
    (out / "data" / "edge-raw" / "shard-00000.raw").write_bytes(b"x" * 1000)
    (out / "data" / "sweep-edge-csv").mkdir()
    (out / "data" / "my-own-folder").mkdir()  # not feedtax's: never removed
    (out / "data" / ".feedtax-disk-abc.bin").write_bytes(b"y" * 500)
    (out / "results.json.tmp").write_bytes(b"z" * 20)
    (out / "notes.tmp").write_bytes(b"mine")
    if status is not None:
        (out / "results.json").write_text(json.dumps({"status": status}))
    return out


def test_what_a_killed_run_left_is_removed_and_said_in_one_line(tmp_path):
    out, lines = _run_dir(tmp_path, "running"), []
    assert outdir.remove_stale(out, lines.append) == 1000 + 500 + 20
    assert lines == [f"removed what a run that did not finish left in {out}: 2 shard folder(s) and 2 hidden or temp "
                     "file(s) (1,520 bytes)"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["my-own-folder"]
    assert sorted(p.name for p in out.iterdir()) == ["data", "notes.tmp", "results.json"]


@pytest.mark.parametrize("status", ["complete", "interrupted", None])
def test_shards_of_a_run_that_finished_are_kept(tmp_path, status):
    """--keep-data's shards (or a folder with no run in it) stay; the hidden and temp files still go."""
    out, lines = _run_dir(tmp_path, status), []
    assert outdir.remove_stale(out, lines.append) == 500 + 20
    assert lines[0].endswith(": 2 hidden or temp file(s) (520 bytes)")
    assert (out / "data" / "edge-raw" / "shard-00000.raw").exists()
    assert outdir.remove_stale(out, lines.append) == 0 and len(lines) == 1, "nothing left: nothing said"


def test_remove_shards_leaves_what_is_not_feedtax_s(tmp_path):
    out = _run_dir(tmp_path, "complete")
    outdir.remove_shards(out / "data")
    assert sorted(p.name for p in (out / "data").iterdir()) == [".feedtax-disk-abc.bin", "my-own-folder"]
    (out / "data" / ".feedtax-disk-abc.bin").unlink()
    (out / "data" / "my-own-folder").rmdir()
    (out / "data" / "tiny-json-encode").mkdir()
    outdir.remove_shards(out / "data")
    assert not (out / "data").exists(), "an emptied data/ goes too"


def test_a_rerun_keeps_the_previous_pair(tmp_path):
    out, lines = tmp_path, []
    (out / "results.json").write_text("second")
    (out / "results.prev.json").write_text("first")
    (out / "report.prev.html").write_text("first's report")
    outdir.keep_previous(out, lines.append)
    assert (out / "results.prev.json").read_text() == "second" and not (out / "results.json").exists()
    assert not (out / "report.prev.html").exists(), "a kept report is always the kept results'"
    assert lines == [f"kept the previous run's results as {out / 'results.prev.json'}"]
    (out / "results.json").write_text("third")
    (out / "report.html").write_text("third's report")
    outdir.keep_previous(out, lines.append)
    assert (out / "report.prev.html").read_text() == "third's report"
    assert lines[-1].endswith("results.prev.json and report.prev.html")
    outdir.keep_previous(out, lines.append)  # nothing to keep
    assert len(lines) == 2 and (out / "results.prev.json").read_text() == "third"


def test_too_little_space_names_the_path_the_free_space_and_the_need(tmp_path):
    with pytest.raises(outdir.OutDirError) as info:
        outdir.check_space(tmp_path, 10**18, "the shards")
    assert str(info.value).startswith(f"{tmp_path}: not enough free space for the shards: ")
    assert "MB free, about 1,000,000,000,000.0 MB needed" in str(info.value)
    outdir.check_space(tmp_path, 1, "the shards")


def test_an_unwritable_place_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(outdir.OutDirError, match=f"^{blocker}/sub: cannot write the submission there: Not a dir"):
        outdir.check_writable(blocker / "sub", "the submission")
    outdir.check_writable(tmp_path / "new" / "deep", "results")
    assert list((tmp_path / "new" / "deep").iterdir()) == []


def test_a_claim_holds_the_directory_and_nests(tmp_path):
    lines = []
    with outdir.claim(tmp_path, lambda: (1, "x"), lines.append) as held:
        held.describe("pid 1, run R, started T")
        with outdir.claim(tmp_path, lambda: pytest.fail("a nested claim checks nothing again"), lines.append):
            pass
        assert (tmp_path / outdir.LOCK_NAME).exists()
    assert not (tmp_path / outdir.LOCK_NAME).exists()


def test_a_refused_claim_leaves_the_previous_results_in_place(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"status": "complete"}))
    with pytest.raises(outdir.OutDirError, match="not enough free space"), \
            outdir.claim(tmp_path, lambda: (10**18, "x"), print):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
